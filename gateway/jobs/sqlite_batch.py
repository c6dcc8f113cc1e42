"""A group commit's SQL on SQLite, run in one trip to aiosqlite's thread.

Through SQLAlchemy, each statement of a batch (the ownership check, the Idempotency-Key lookup,
the insert, and their cursors) is a trip from the event loop to aiosqlite's thread and back;
on a busy machine those trips cost ten times the SQL. Here the statements run together as one
function on the connection's own thread, inside the transaction SQLAlchemy began (``BEGIN
IMMEDIATE``, in ``gateway.transaction()``), and commit with it. Values are converted by the
columns' own SQLAlchemy types, so the rows are exactly what the ORM would have written.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import aiosqlite

from ..db.base import utcnow
from ..db.models import AccountRow, ConnectionRow, PublishJobRow
from .batch import PendingJob, Stored, settle

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

JOBS = PublishJobRow.__table__
ACCOUNTS = AccountRow.__table__.name
CONNECTIONS = ConnectionRow.__table__.name


def one_hop_available() -> bool:
    # aiosqlite runs every call through Connection._execute(fn); without it (a future
    # version), the batch takes the portable path through SQLAlchemy.
    return callable(getattr(aiosqlite.Connection, "_execute", None))


async def write_in_one_hop(
    driver: aiosqlite.Connection, dialect: Dialect, batch: list[PendingJob]
) -> list[Stored | Exception]:
    """Settle and insert ``batch`` in the transaction open on ``driver``, in one hop."""
    codec = _codec(dialect, tuple(batch[0].values))
    now = utcnow()
    return await driver._execute(lambda: _write(driver._conn, codec, batch, now))


class _Codec:
    """The SQL of a batch and the column conversions, made once per dialect and row shape."""

    def __init__(self, dialect: Dialect, keys: tuple[str, ...]) -> None:
        columns = [JOBS.c[key] for key in keys]
        self.binds = [(c.name, _bind(c, dialect)) for c in columns]
        names = ", ".join(keys)
        self.insert = f"INSERT INTO {JOBS.name} ({names}) VALUES ({_marks(len(keys))})"  # noqa: S608
        self.read_created = JOBS.c.created_at.type.dialect_impl(dialect).result_processor(
            dialect, None
        )
        self.bind_time = _bind(JOBS.c.updated_at, dialect)
        self.true = _bind(AccountRow.__table__.c.active, dialect)(True)

    def row(self, values: dict[str, Any]) -> tuple:
        return tuple(
            values[name] if bind is None else bind(values[name]) for name, bind in self.binds
        )


def _bind(column, dialect: Dialect):
    # What SQLAlchemy itself applies: the type as this dialect implements it (SQLite keeps
    # datetimes as text in its own format), wrapped by our TypeDecorators.
    return column.type.dialect_impl(dialect).bind_processor(dialect)


@lru_cache(maxsize=8)
def _codec(dialect: Dialect, keys: tuple[str, ...]) -> _Codec:
    return _Codec(dialect, keys)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


# The SQL below is built only from the models' table and column names and "?" marks; every
# value is a bound parameter (hence the S608 waivers).


def _write(
    conn: sqlite3.Connection, codec: _Codec, batch: list[PendingJob], now: datetime
) -> list[Stored | Exception]:
    """Runs on aiosqlite's thread, inside the open write transaction."""
    account_ids = list({job.values["account_id"] for job in batch})
    owned = set(
        conn.execute(
            f"SELECT c.tenant_id, a.connection_id, a.id FROM {ACCOUNTS} a "  # noqa: S608
            f"JOIN {CONNECTIONS} c ON c.id = a.connection_id "
            f"WHERE a.id IN ({_marks(len(account_ids))}) AND a.active = ? AND c.status = ?",
            [*account_ids, codec.true, "active"],
        ).fetchall()
    )
    previous: list[tuple] = []
    keys = {job.idempotency for job in batch} - {None}
    if keys:
        tenants = list({tenant for tenant, _ in keys})
        names = list({key for _, key in keys})
        for *head, created_at in conn.execute(
            "SELECT id, post_id, status, tenant_id, idempotency_key, request_hash, created_at "  # noqa: S608
            f"FROM {JOBS.name} WHERE tenant_id IN ({_marks(len(tenants))}) "
            f"AND idempotency_key IN ({_marks(len(names))})",
            [*tenants, *names],
        ):
            if (head[3], head[4]) in keys:
                previous.append((*head, codec.read_created(created_at)))
    outcomes, rows, freed = settle(batch, owned, previous, now)
    if freed:
        conn.execute(
            f"UPDATE {JOBS.name} SET idempotency_key = NULL, updated_at = ? "  # noqa: S608
            f"WHERE id IN ({_marks(len(freed))})",
            [codec.bind_time(now), *freed],
        )
    if rows:
        conn.executemany(codec.insert, [codec.row(values) for values in rows])
    return outcomes
