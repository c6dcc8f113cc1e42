"""The last look before a post goes out: is the lease still this attempt's? One read for many.

A worker held up past its lease (by a busy database, say) has been replaced and must not post
as well, so each worker asks the database right before its request leaves. The workers that
ask while a read runs are answered together by the next one.
"""

from __future__ import annotations

import asyncio
import json
from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import select

from ..db import sqlite_hop
from ..db.base import utcnow
from ..db.models import PublishJobRow

if TYPE_CHECKING:
    from ..host import Gateway

MAX_BATCH = 500


class LeaseChecks:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._pending: list[tuple[str, int, asyncio.Future[bool]]] = []
        self._task: asyncio.Task | None = None

    async def held(self, job_id: str, fence: int) -> bool:
        """Whether attempt ``fence`` still holds a lease on the job that has not run out."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((job_id, fence, future))
        if self._task is None or self._task.done():
            # Never cancelled (a query must not be cut off); it stops when nobody waits.
            self._task = asyncio.create_task(self._drain(), name="job-lease-checks")
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                leases = await self._read({job_id for job_id, _, _ in batch})
            except Exception as err:  # the database is down: nobody may post on a guess
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(err)
                continue
            now = utcnow()
            for job_id, fence, future in batch:
                attempts, until = leases.get(job_id, (None, None))
                if not future.done():
                    future.set_result(attempts == fence and until is not None and until > now)

    async def _read(self, job_ids: set[str]) -> dict:
        async with self.gateway.engine.connect() as connection:
            if sqlite_hop.available(connection):  # one statement, outside any transaction
                prepared, ids = _prepared(connection.dialect), {"ids": json.dumps(list(job_ids))}
                rows = await sqlite_hop.fetch(connection, prepared, _COLUMNS, ids)
            else:
                query = select(*_COLUMNS).where(_JOBS.id.in_(job_ids))
                rows = (await connection.execute(query)).all()
        return {job_id: (attempts, until) for job_id, attempts, until in rows}


_JOBS = PublishJobRow.__table__.c
_COLUMNS = [_JOBS.id, _JOBS.attempts, _JOBS.lease_until]


@lru_cache(maxsize=4)
def _prepared(dialect) -> sqlite_hop.Prepared:
    """The SQLite read, compiled once for any number of jobs (compiling cost more than it)."""
    query = select(*_COLUMNS).where(_JOBS.id.in_(sqlite_hop.each_value("ids")))
    return sqlite_hop.Prepared(dialect, query)
