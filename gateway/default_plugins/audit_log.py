"""The default `track_event`: one structured log line per domain event."""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from ..host import Gateway
    from ..types import Event

log = structlog.get_logger("gateway.events")


@hookimpl
def track_event(gateway: Gateway, event: Event) -> None:
    log.info(event.name, tenant_id=event.tenant_id, **event.data)
