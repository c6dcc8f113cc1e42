"""A group commit on SQLite, run in one trip to aiosqlite's thread, BEGIN to COMMIT.

Through SQLAlchemy, each step of a batch (BEGIN, the ownership check, the Idempotency-Key
lookup, the insert, COMMIT, and their cursors) is a trip from the event loop to aiosqlite's
thread and back; on a busy loop each trip waits for the loop's next turn, so a batch of six
trips took 15 ms where its SQL takes one. Here the whole transaction is one function on the
connection's own thread: ``BEGIN IMMEDIATE`` (the write lock up front, as
``gateway.transaction()`` takes it), the statements, and ``COMMIT`` before it returns, so a
request is answered only once its row is committed. Values are converted by the columns' own
SQLAlchemy types, so the rows are exactly what the ORM would have written.
"""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import aiosqlite
from sqlalchemy.exc import DBAPIError

from ..db.base import utcnow
from ..db.models import AccountRow, ConnectionRow, PublishJobRow
from .batch import PendingJob, Stored, settle

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

JOBS = PublishJobRow.__table__
_STATEMENT = f"BEGIN IMMEDIATE; <a batch of {JOBS.name}>; COMMIT"  # how errors name it
ACCOUNTS = AccountRow.__table__.name
CONNECTIONS = ConnectionRow.__table__.name


def one_hop_available() -> bool:
    # aiosqlite runs every call through Connection._execute(fn); without it (a future
    # version), the batch takes the portable path through SQLAlchemy.
    return callable(getattr(aiosqlite.Connection, "_execute", None))


async def write_in_one_hop(
    driver: aiosqlite.Connection, dialect: Dialect, batch: list[PendingJob]
) -> list[Stored | Exception]:
    """Settle, insert and commit ``batch`` on ``driver`` (idle: no transaction open), in one hop.

    The caller holds this process's write turn. A database error is raised as SQLAlchemy's
    (``OperationalError`` for "database is locked"), as the ORM path would raise it.
    """
    codec = _codec(dialect, tuple(batch[0].values))
    now = utcnow()
    try:
        return await driver._execute(lambda: _transaction(driver._conn, codec, batch, now))
    except sqlite3.Error as err:
        raise DBAPIError.instance(_STATEMENT, None, err, sqlite3.Error) from err


class _Codec:
    """The SQL of a batch and the column conversions, made once per dialect and row shape."""

    def __init__(self, dialect: Dialect, keys: tuple[str, ...]) -> None:
        columns = [JOBS.c[key] for key in keys]
        self.binds = [(c.name, _bind(c, dialect)) for c in columns]
        self._into = f"INSERT INTO {JOBS.name} ({', '.join(keys)}) VALUES "  # noqa: S608
        self._values = f"({_marks(len(keys))})"
        self._inserts: dict[int, str] = {}
        self.read_created = JOBS.c.created_at.type.dialect_impl(dialect).result_processor(
            dialect, None
        )
        self.bind_time = _bind(JOBS.c.updated_at, dialect)
        self.true = _bind(AccountRow.__table__.c.active, dialect)(True)

    def insert(self, rows: int) -> str:
        """The INSERT of ``rows`` rows (one statement per batch size, made once)."""
        sql = self._inserts.get(rows)
        if sql is None:
            sql = self._inserts[rows] = self._into + ", ".join([self._values] * rows)
        return sql

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


def _transaction(
    conn: sqlite3.Connection, codec: _Codec, batch: list[PendingJob], now: datetime
) -> list[Stored | Exception]:
    """Runs on aiosqlite's thread: the batch's whole write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        outcomes = _write(conn, codec, batch, now)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
                conn.execute("ROLLBACK")
        raise
    return outcomes


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
        # Several rows per INSERT: executemany steps (and gives up the GIL) once per row, and
        # each time this thread waits to get it back from the busy event loop.
        per_statement = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(codec.binds)
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            conn.execute(codec.insert(len(chunk)), [v for row in chunk for v in codec.row(row)])
    return outcomes
