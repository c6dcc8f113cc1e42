"""Group commit for accepted jobs: concurrent requests share one transaction, none is acked early.

Every accepted job must be durable before its 202. Committing each alone makes the database's
one writer the bottleneck; here the requests that arrive while a commit is running wait for the
next one together, and each request is answered only after the commit that holds its row.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from sqlalchemy.exc import IntegrityError

from ..db.models import PublishJobRow

if TYPE_CHECKING:
    from ..host import Gateway

MAX_BATCH = 256


class JobInserter:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._pending: list[tuple[PublishJobRow, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="job-inserter")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        for _, future in self._pending:  # never leave a caller waiting forever
            if not future.done():
                future.set_exception(RuntimeError("the gateway is stopping"))
        self._pending.clear()

    async def insert(self, job: PublishJobRow) -> None:
        """Return once ``job`` is committed; raise what its own insert raised."""
        if self._task is None:
            async with self.gateway.transaction() as session:
                session.add(job)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((job, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._commit(batch)

    async def _commit(self, batch: list[tuple[PublishJobRow, asyncio.Future[None]]]) -> None:
        try:
            async with self.gateway.transaction() as session:
                session.add_all([job for job, _ in batch])
        except IntegrityError:
            # One row broke a constraint (a racing Idempotency-Key): commit the rest one by one,
            # so that each caller gets its own row's outcome.
            for job, future in batch:
                await self._commit_one(job, future)
            return
        except Exception as err:  # the database is down: every caller in the batch hears it
            for _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _commit_one(self, job: PublishJobRow, future: asyncio.Future[None]) -> None:
        try:
            async with self.gateway.transaction() as session:
                session.add(job)
        except Exception as err:
            if not future.done():
                future.set_exception(err)
        else:
            if not future.done():
                future.set_result(None)
