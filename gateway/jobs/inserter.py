"""Group commit for accepted jobs: concurrent requests share one transaction, none is acked early.

Every accepted job must be durable before its 202. Committing each alone makes the database's
one writer the bottleneck; here the requests that arrive while a commit is running wait for the
next one together, and each request is answered only after the commit that holds its row.

The batch's transaction also does what would otherwise cost each request its own round trip,
with the write lock held (SQLite) or the accounts locked against a concurrent revoke
(PostgreSQL, ``FOR SHARE``), so that nothing read here can change before the commit:

- ownership, checked again: the account is active on an active connection of the tenant (the
  request's view of it may come from a cache);
- idempotency: a key seen before answers with its job (same body) or a conflict (another body),
  also between two requests of the same batch; a key older than the window is freed.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from ..db.base import utcnow
from ..db.models import AccountRow, ConnectionRow, PublishJobRow
from . import postgres_batch
from .batch import PendingJob, Stored, settle
from .sqlite_batch import one_hop_available, write_in_one_hop

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..host import Gateway

log = structlog.get_logger("gateway.jobs")

MAX_BATCH = 512
# Between two bursts of requests the writer keeps its connection; after this long without
# any, it gives it back to the pool.
IDLE_SECONDS = 1.0


class JobInserter:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._pending: list[PendingJob] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self.commits = 0  # transactions, and the requests they answered (the mean batch size)
        self.answered = 0

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="job-inserter")

    async def stop(self) -> None:
        """Commit what is pending, then stop (never in the middle of a query)."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None

    async def insert(self, job: PendingJob) -> Stored:
        """Return once ``job`` (or the job its key names) is committed.

        :raises Refused: the account is not (any more) publishable for the tenant.
        :raises Conflict: the Idempotency-Key was used with another body.
        """
        job.future = asyncio.get_running_loop().create_future()
        if self._task is None or self._stopping:
            async with _Writer(self.gateway) as writer:
                await self._commit([job], writer)
        else:
            self._pending.append(job)
            self._wake.set()
        return await job.future

    async def _run(self) -> None:
        # One connection for as long as requests keep coming: taking it from the pool and
        # giving it back cost a trip each (a ping, a reset) on every batch.
        async with _Writer(self.gateway) as writer:
            while True:
                if not self._pending and not self._stopping:
                    await self._idle(writer)
                self._wake.clear()
                while self._pending:
                    batch = self._pending[:MAX_BATCH]
                    self._pending = self._pending[MAX_BATCH:]
                    await self._commit(batch, writer)
                if self._stopping:
                    return

    async def _idle(self, writer: _Writer) -> None:
        """Wait for requests; the connection goes back to the pool when none come for a while."""
        try:
            await asyncio.wait_for(self._wake.wait(), IDLE_SECONDS)
        except TimeoutError:
            await writer.release()
            await self._wake.wait()

    async def _commit(self, batch: list[PendingJob], writer: _Writer) -> None:
        """Write ``batch`` in one transaction and tell each caller its own outcome."""
        try:
            outcomes = await writer.write(batch)
        except (IntegrityError, sqlite3.IntegrityError):
            # A racing process stored the same Idempotency-Key between our read and our
            # insert (PostgreSQL). Alone, each request now sees that row and answers with it.
            if len(batch) > 1:
                for job in batch:
                    await self._commit([job], writer)
                return
            try:
                outcomes = await writer.write(batch)
            except Exception as err:
                outcomes = [err]
        except Exception as err:  # the database is down: every caller in the batch hears it
            log.warning("jobs.insert_failed", jobs=len(batch), error=type(err).__name__)
            outcomes = [err] * len(batch)
        self.commits += 1
        self.answered += len(batch)
        for job, outcome in zip(batch, outcomes, strict=True):
            if job.future.done():
                continue
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)


class _Writer:
    """A connection for a run of group commits, taken on first use, dropped after an error."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._connection: AsyncConnection | None = None

    async def __aenter__(self) -> _Writer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release()

    async def write(self, batch: list[PendingJob]) -> list[Stored | Exception]:
        """Settle, insert and commit ``batch`` in one write transaction."""
        if self._connection is None:
            # SQLite: a transaction that reads and then writes takes the write lock up front.
            engine = self.gateway.engine.execution_options(sqlite_begin="IMMEDIATE")
            self._connection = await engine.connect()
        try:
            return await self._write(self._connection, batch)
        except BaseException:
            await self.release()  # the next batch starts on a fresh connection
            raise

    async def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except Exception as err:  # already broken: the pool replaces it
                log.warning("jobs.insert_connection_close_failed", error=type(err).__name__)

    async def _write(
        self, connection: AsyncConnection, batch: list[PendingJob]
    ) -> list[Stored | Exception]:
        async with self.gateway.write_turn():
            if self.gateway.uses_sqlite and one_hop_available():
                # The whole transaction in one trip to aiosqlite's thread: each trip waits
                # for the event loop's next turn, and costs more than the SQL itself.
                raw = await connection.get_raw_connection()
                return await write_in_one_hop(raw.driver_connection, connection.dialect, batch)
            if not self.gateway.uses_sqlite:
                outcomes = await postgres_batch.insert_owned(connection, batch)
                pairs = zip(batch, outcomes, strict=True)
                unsettled = [job for job, outcome in pairs if outcome is None]
                if not unsettled:
                    return outcomes
                settled = iter(await _settle(connection, unsettled))
                return [next(settled) if outcome is None else outcome for outcome in outcomes]
            return await _settle(connection, batch)


async def _settle(connection: AsyncConnection, batch: list[PendingJob]) -> list[Stored | Exception]:
    """The portable path, in one transaction: ownership and earlier keys read, each request
    settled, the new jobs written (the caller holds the write turn)."""
    async with connection.begin():
        owned = await _owned(connection, batch)
        previous = await _previous(connection, batch)
        outcomes, rows, freed = settle(batch, owned, previous, utcnow())
        t = PublishJobRow.__table__
        if freed:
            await connection.execute(
                update(t).where(t.c.id.in_(freed)).values(idempotency_key=None, updated_at=utcnow())
            )
        if rows:
            await connection.execute(insert(t), rows)
    return outcomes


async def _owned(connection: AsyncConnection, batch: list[PendingJob]) -> set[tuple[str, str, str]]:
    """(tenant, connection, account) of the batch's accounts that may be published to now."""
    account_ids = {job.values["account_id"] for job in batch}
    query = (
        select(ConnectionRow.tenant_id, AccountRow.connection_id, AccountRow.id)
        .join(ConnectionRow, ConnectionRow.id == AccountRow.connection_id)
        .where(
            AccountRow.id.in_(account_ids),
            AccountRow.active.is_(True),
            ConnectionRow.status == "active",
        )
        # PostgreSQL: a revoke deactivates the accounts before it cancels the connection's
        # queued jobs. Either it did so first and this read waits for it and sees them
        # inactive, or this commit comes first and the revoke's cancel sees our rows.
        .with_for_update(read=True, of=AccountRow)
    )
    return {tuple(row) for row in await connection.execute(query)}


async def _previous(connection: AsyncConnection, batch: list[PendingJob]) -> list[tuple]:
    """The jobs already holding the batch's Idempotency-Keys."""
    keys = {job.idempotency for job in batch} - {None}
    if not keys:
        return []
    t = PublishJobRow.__table__.c
    result = await connection.execute(
        select(t.id, t.post_id, t.status, t.tenant_id, t.idempotency_key)
        .add_columns(t.request_hash, t.created_at)
        .where(
            t.tenant_id.in_({tenant for tenant, _ in keys}),
            t.idempotency_key.in_({key for _, key in keys}),
        )
    )
    return [tuple(row) for row in result if (row[3], row[4]) in keys]
