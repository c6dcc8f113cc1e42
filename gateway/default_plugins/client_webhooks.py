"""The default `track_event` that queues client webhook deliveries in the outbox."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl
from ..webhooks.outbox import enqueue

if TYPE_CHECKING:
    from ..host import Gateway
    from ..types import Event


@hookimpl
async def track_event(gateway: Gateway, event: Event) -> None:
    if not event.outboxed:  # the core already wrote it with the change it reports
        await enqueue(gateway, event)
