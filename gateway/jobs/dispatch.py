"""One transaction for many workers: their outcomes written, and their next jobs claimed.

A worker's turn at the database is the fenced write of its last job's outcome (with the job's
client event, in the outbox) and the claim of its next job. The turns that arrive while a
transaction runs share the next one: every write stays fenced on its attempt number, every
claim takes a lease and a new attempt number, and each worker resumes only after the commit
that holds its turn. The database's one writer (SQLite) then takes one transaction per batch
of turns, not two per job.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from ..db.jobs import JobRepository
from ..db.outage import log_failed_pass
from ..errors import GatewayError
from .events import announce, job_event, stage_all
from .targets import Target, load_targets

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..db.models import PublishJobRow
    from ..host import Gateway
    from ..types import Event
    from .claims import Claimed, Claimer

log = structlog.get_logger("gateway.jobs")

MAX_TURNS = 256
# The most jobs one transaction claims (for the turns that want one and the idle workers).
MAX_CLAIM = 100


@dataclass(frozen=True, slots=True)
class Handout:
    """A claimed job on its way to a worker, with what its call needs (or why it cannot be
    made), loaded for the whole claim at once."""

    job: PublishJobRow
    was: str  # its status before the claim, to give it back unstarted
    target: Target | GatewayError | None = None


@dataclass(slots=True)
class Outcome:
    """A worker's fenced write, and the client event it reports once written.

    ``job`` carries what the event reports (its remote id, its error).
    """

    job: PublishJobRow
    fence: int
    values: dict[str, Any]
    event: str | None = None


@dataclass(frozen=True, slots=True)
class TurnResult:
    written: bool = False
    event: Event | None = None  # the staged client event, to announce
    handout: Handout | None = None  # the worker's next job


@dataclass(slots=True)
class _Turn:
    outcome: Outcome | None
    wants_job: bool
    future: asyncio.Future[TurnResult] = field(repr=False)


class Dispatcher:
    """Runs the turns in batches; a batch is committed by a task that stops when none wait.

    ``spare`` says how many more jobs the process could start now (idle workers); they are
    claimed with the batch and left in ``ready``, and ``hand_out`` wakes that many workers
    to take them.
    """

    def __init__(
        self,
        gateway: Gateway,
        claimer: Claimer,
        spare: Callable[[], int],
        hand_out: Callable[[int, bool], None],
    ) -> None:
        self.gateway = gateway
        self.claimer = claimer
        self.spare = spare
        self.hand_out = hand_out
        self._pending: list[_Turn] = []
        self._task: asyncio.Task | None = None
        # Jobs claimed for this process and not yet taken by a worker.
        self.ready: deque[Handout] = deque()

    async def turn(self, outcome: Outcome | None, *, wants_job: bool) -> TurnResult:
        """Write ``outcome`` if its fence still holds (staging its event), and claim a job
        if ``wants_job``; return once committed."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append(_Turn(outcome, wants_job, future))
        if self._task is None or self._task.done():
            # Never cancelled (a query must not be cut off): it ends when no turn waits.
            self._task = asyncio.create_task(self._drain(), name="job-dispatch")
        return await future

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_TURNS], self._pending[MAX_TURNS:]
            try:
                results = await self._run(batch)
            except Exception as err:  # the database is down: every worker of the batch hears it
                log.warning("jobs.dispatch_failed", turns=len(batch), error=type(err).__name__)
                for turn in batch:
                    if not turn.future.done():
                        turn.future.set_exception(err)
                continue
            for turn, result in zip(batch, results, strict=True):
                if not turn.future.done():
                    turn.future.set_result(result)
                elif result.handout is not None:  # its worker was cancelled: another takes it
                    self.ready.append(result.handout)

    async def _run(self, batch: list[_Turn]) -> list[TurnResult]:
        wanting = sum(turn.wants_job for turn in batch)
        # Jobs already claimed for this process serve first; claim only what they do not cover.
        want = min(MAX_CLAIM, max(0, wanting + self.spare() - len(self.ready)))
        if want == 0 and all(turn.outcome is None for turn in batch):
            written, events, claimed = [False] * len(batch), [None] * len(batch), []
        else:
            try:
                written, events, claimed = await self._commit(batch, want)
            except Exception:
                self.claimer.buried.clear()  # rolled back with the rest
                raise
            await announce(self.gateway, self.claimer_buried())
        handouts = await self._handouts(claimed)
        self.ready.extend(handouts)
        results = []
        for turn, done, event in zip(batch, written, events, strict=True):
            handout = self.ready.popleft() if turn.wants_job and self.ready else None
            results.append(TurnResult(done, event, handout))
        full = bool(want) and len(handouts) == want
        if self.ready or full:
            self.hand_out(len(self.ready), full)
        return results

    def claimer_buried(self) -> list:
        buried, self.claimer.buried = self.claimer.buried, []
        return buried

    async def _commit(self, batch: list[_Turn], want: int):
        outcomes = [turn.outcome for turn in batch]
        items = [(o.job.id, o.fence, o.values) for o in outcomes if o is not None]
        if len(items) > 1 and not self.gateway.engine.dialect.supports_sane_multi_rowcount:
            # PostgreSQL: one statement per shape of values tells which rows it wrote.
            async with self.gateway.transaction() as session:
                each = iter(await JobRepository(session).fenced_update_each(items))
                written = [o is not None and next(each) for o in outcomes]
                return await self._finish(session, outcomes, written, want)
        if len(items) > 1:
            # SQLite: one executemany per shape; its count says whether all were written.
            try:
                async with self.gateway.transaction() as session:
                    if not await JobRepository(session).fenced_update_all(items):
                        raise _FenceLost
                    written = [o is not None for o in outcomes]
                    return await self._finish(session, outcomes, written, want)
            except _FenceLost:
                self.claimer.buried.clear()  # rolled back: each is written alone below
        async with self.gateway.transaction() as session:
            repo = JobRepository(session)
            written = [
                o is not None and await repo.fenced_update(o.job.id, o.fence, **o.values)
                for o in outcomes
            ]
            return await self._finish(session, outcomes, written, want)

    async def _finish(
        self,
        session: AsyncSession,
        outcomes: list[Outcome | None],
        written: list[bool],
        want: int,
    ):
        """Stage the written outcomes' events and claim ``want`` jobs, in the same transaction."""
        events = [
            job_event(o.job, o.event) if done and o is not None and o.event else None
            for o, done in zip(outcomes, written, strict=True)
        ]
        staged = iter(await stage_all(session, [e for e in events if e is not None]))
        events = [None if event is None else next(staged) for event in events]
        claimed: list[Claimed] = []
        if want:
            claimer = self.claimer
            if claimer.sweep_due():
                await claimer.sweep_lost_leases(session)
            if claimer.rotation_due(want):
                await claimer.refresh_rotation(session, want)
            claimed = await claimer.claim(session, want)
        return written, events, claimed

    async def _handouts(self, claimed: list[Claimed]) -> list[Handout]:
        if not claimed:
            return []
        try:
            targets = await load_targets(self.gateway, [c.job for c in claimed])
        except Exception as err:  # each worker loads its own, and fails its job properly
            log_failed_pass(log, "worker.targets_failed", err, jobs=len(claimed))
            targets = {}
        return [Handout(c.job, c.was, targets.get(c.job.id)) for c in claimed]


class _FenceLost(Exception):
    """A write of the batch lost its fence: the batch is rolled back."""
