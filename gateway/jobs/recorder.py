"""Group commit for the workers' outcomes: concurrent results share one transaction.

Each worker's write stays fenced on its attempt number and commits together with the job's
client event (the outbox), exactly as alone; the workers whose results arrive while a commit
runs wait for the next one together, and each resumes only after the commit that holds its
write. The database's one writer (SQLite) then takes one transaction per batch, not per job.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from ..db.jobs import JobRepository
from .events import job_event, stage_all

if TYPE_CHECKING:
    from ..db.models import PublishJobRow
    from ..host import Gateway
    from ..types import Event

log = structlog.get_logger("gateway.jobs")

MAX_BATCH = 256


@dataclass(slots=True)
class Outcome:
    """One worker's fenced write, and the client event it reports once written."""

    job: PublishJobRow
    fence: int
    values: dict[str, Any]
    event: str | None
    future: asyncio.Future[tuple[bool, Event | None]] = field(repr=False)


class Recorder:
    """Writes outcomes in batches; a batch is committed by a task that ends when none wait."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._pending: list[Outcome] = []
        self._task: asyncio.Task | None = None

    async def record(
        self, job: PublishJobRow, fence: int, values: dict[str, Any], event: str | None = None
    ) -> tuple[bool, Event | None]:
        """Write ``values`` if ``fence`` is still the job's attempt, and stage ``event`` with
        them; return (written, the staged event) once committed.

        ``job`` carries what the event reports (its remote id, its error).
        """
        future = asyncio.get_running_loop().create_future()
        self._pending.append(Outcome(job, fence, values, event, future))
        if self._task is None or self._task.done():
            # Never cancelled: it finishes the batch in hand and stops when nothing waits.
            self._task = asyncio.create_task(self._drain(), name="job-outcomes")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                results = await self._commit(batch)
            except Exception as err:  # the database is down: every worker of the batch hears it
                log.warning("jobs.outcomes_failed", jobs=len(batch), error=type(err).__name__)
                for outcome in batch:
                    if not outcome.future.done():
                        outcome.future.set_exception(err)
                continue
            for outcome, result in zip(batch, results, strict=True):
                if not outcome.future.done():
                    outcome.future.set_result(result)

    async def _commit(self, batch: list[Outcome]) -> list[tuple[bool, Event | None]]:
        items = [(o.job.id, o.fence, o.values) for o in batch]
        if len(batch) > 1 and self.gateway.engine.dialect.supports_sane_multi_rowcount:
            try:
                async with self.gateway.transaction() as session:
                    if not await JobRepository(session).fenced_update_all(items):
                        raise _FenceLost
                    return await _staged(session, batch, [True] * len(batch))
            except _FenceLost:
                pass  # rolled back: each is written alone below, to learn which one lost
        async with self.gateway.transaction() as session:
            repo = JobRepository(session)
            written = [await repo.fenced_update(*item[:2], **item[2]) for item in items]
            return await _staged(session, batch, written)


async def _staged(session, batch: list[Outcome], written: list[bool]):
    events = [
        job_event(o.job, o.event) if done and o.event is not None else None
        for o, done in zip(batch, written, strict=True)
    ]
    staged = iter(await stage_all(session, [e for e in events if e is not None]))
    return [
        (done, None if event is None else next(staged))
        for done, event in zip(written, events, strict=True)
    ]


class _FenceLost(Exception):
    """A write of the batch lost its fence: the batch is rolled back."""
