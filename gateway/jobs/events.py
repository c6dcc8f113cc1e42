"""A job's client events, written to the outbox inside the transaction that changes the job."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ..types import Event
from ..webhooks import outbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..db.models import PublishJobRow
    from ..host import Gateway


def job_event(job: PublishJobRow, name: str) -> Event:
    return Event(
        name,
        tenant_id=job.tenant_id,
        data={
            "jobId": job.id,
            "postId": job.post_id,
            "platform": job.platform,
            "remotePostId": job.remote_post_id,
            "error": job.error_json,
        },
    )


async def stage(session: AsyncSession, event: Event) -> Event:
    """Write the event's deliveries in ``session``; tell observers with the result after commit.

    A crash between the job's change and its notification can then lose neither.
    """
    await outbox.stage(session, event)
    return replace(event, outboxed=True)


async def stage_all(session: AsyncSession, events: list[Event]) -> list[Event]:
    """:func:`stage` for a batch, with one read of their tenants' endpoints."""
    await outbox.stage_many(session, events)
    return [replace(event, outboxed=True) for event in events]


async def announce(gateway: Gateway, events: list[Event]) -> None:
    """After the commit, tell the `track_event` observers (the commit woke the deliverer if it
    staged deliveries)."""
    for event in events:
        await gateway.emit(event)
