"""Group commit of health-check results: concurrent checks share one transaction.

Fifty checks that come back together would otherwise queue fifty transactions behind SQLite's
one writer, each reading the connection, inserting the check and updating the connection in
its own round trips. Here the results that arrive while a commit runs wait for the next one
together; each caller is answered once the commit that holds its result is done. The
``connection.health_changed`` events are written to the webhook outbox in the same transaction,
so a change and its notification commit together.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, insert, select, update

from ..db.base import utcnow
from ..db.models import ConnectionRow, HealthCheckRow
from ..types import Event
from ..webhooks import outbox

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..host import Gateway
    from .health import CheckResult

MAX_BATCH = 500
HEALTH_CHANGED = "connection.health_changed"

_UPDATE_HEALTH = (
    update(ConnectionRow.__table__)
    .where(ConnectionRow.__table__.c.id == bindparam("connection_id"))
    .values(
        health=bindparam("health"),
        last_health_check_at=bindparam("checked_at"),
        updated_at=bindparam("updated_at"),
    )
)


@dataclass(slots=True)
class _Pending:
    row: ConnectionRow
    result: CheckResult
    future: asyncio.Future[Event | None] = field(repr=False)


class HealthLog:
    """Writes check results in batches; one per gateway (see :func:`health_log`)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._pending: list[_Pending] = []
        self._writer: asyncio.Task | None = None
        self.commits = 0  # transactions, and the results they held (the mean batch size)
        self.written = 0

    async def record(self, row: ConnectionRow, result: CheckResult) -> Event | None:
        """Store ``result``; once committed, the health-change event it caused, if any.

        The event is already in the outbox; the caller tells the `track_event` observers.
        """
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(row, result, future))
        if self._writer is None:
            # Not the caller's task: a caller that gives up must not cancel a query mid-way
            # (its future is cancelled instead; its result is written all the same).
            self._writer = asyncio.create_task(self._drain(), name="health-log")
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                try:
                    events = await self._write(batch)
                except Exception as err:  # the database is down: every caller hears it
                    for item in batch:
                        if not item.future.done():
                            item.future.set_exception(err)
                    continue
                self.commits += 1
                self.written += len(batch)
                for item, changed in zip(batch, events, strict=True):
                    if not item.future.done():
                        item.future.set_result(changed)
        finally:
            self._writer = None

    async def _write(self, batch: list[_Pending]) -> list[Event | None]:
        ids = {item.row.id for item in batch}
        events: list[Event | None] = []
        async with self.gateway.transaction() as session:
            found = await session.execute(
                select(ConnectionRow.id, ConnectionRow.health).where(ConnectionRow.id.in_(ids))
            )
            health = {connection_id: value for connection_id, value in found.all()}
            checks, updates = [], []
            for item in batch:
                row, result = item.row, item.result
                if row.id not in health:  # deleted meanwhile: nothing to record
                    events.append(None)
                    continue
                previous, health[row.id] = health[row.id], result.status
                checks.append(_check_values(row, result))
                updates.append(
                    {
                        "connection_id": row.id,
                        "health": result.status,
                        "checked_at": result.checked_at,
                        "updated_at": utcnow(),
                    }
                )
                events.append(_change(row, result, previous))
            if checks:
                await session.execute(insert(HealthCheckRow), checks)
                await _update_connections(session, updates)
            changed = [event for event in events if event is not None]
            if changed:
                await outbox.stage_many(session, changed)
        return [None if e is None else replace(e, outboxed=True) for e in events]


async def _update_connections(session: AsyncSession, updates: list[dict]) -> None:
    connection = await session.connection()
    await connection.execute(_UPDATE_HEALTH, updates)


def _check_values(row: ConnectionRow, result: CheckResult) -> dict:
    return {
        "connection_id": row.id,
        "tenant_id": row.tenant_id,
        "platform": row.platform,
        "checked_at": result.checked_at,
        "status": result.status,
        "ok": result.ok,
        "latency_ms": result.latency_ms,
        "error_code": result.error_code,
        "detail": result.detail,
    }


def _change(row: ConnectionRow, result: CheckResult, previous: str) -> Event | None:
    if previous == result.status:
        return None
    return Event(
        HEALTH_CHANGED,
        tenant_id=row.tenant_id,
        data={
            "connectionId": row.id,
            "platform": row.platform,
            "from": previous,
            "to": result.status,
            "detail": result.detail,
        },
    )


_logs: weakref.WeakKeyDictionary[Gateway, HealthLog] = weakref.WeakKeyDictionary()


def health_log(gateway: Gateway) -> HealthLog:
    """The gateway's health log, made on first use."""
    log = _logs.get(gateway)
    if log is None:
        log = _logs[gateway] = HealthLog(gateway)
    return log
