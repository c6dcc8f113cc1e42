"""The async engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from .. import clock
from ..settings import DatabaseSettings
from .checkpoint import BACKSTOP_PAGES
from .failures import DatabaseFailure, reason_of
from .location import describe

NOW_FUNCTION = "gateway_now_ms"  # what the health views call for the time (migration 0012)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def sqlite_file(url: str) -> str | None:
    """The file of a SQLite database URL (None for another database, or one in memory)."""
    if not is_sqlite(url):
        return None
    database = make_url(url).database
    return database if database and database != ":memory:" else None


def gateway_now_ms() -> float:
    """The gateway's clock in milliseconds since the epoch, as the health views compare it."""
    return clock.timestamp() * 1000.0


def create_engine(settings: DatabaseSettings) -> AsyncEngine:
    """An engine with each backend's settings; SQLite gets WAL, busy_timeout and foreign keys."""
    url = make_url(settings.url)
    if is_sqlite(settings.url):
        if url.database and url.database != ":memory:":
            _prepare_sqlite_file(Path(url.database), settings.url)
        engine = create_async_engine(
            url,
            echo=settings.echo,
            connect_args={"timeout": settings.busy_timeout_ms / 1000},
        )
        _configure_sqlite(engine, settings.busy_timeout_ms, settings.sqlite_synchronous)
        return engine
    return create_async_engine(
        url, echo=settings.echo, pool_size=settings.pool_size, pool_pre_ping=True
    )


def _prepare_sqlite_file(path: Path, url: str) -> None:
    """Create the file's directory, and refuse a file SQLite could not open, before it tries.

    A failed open is not only a vague "unable to open database file": aiosqlite then stops its
    connection thread with a future of the event loop, which the command has often closed by
    the time the thread gets there, and the thread's traceback follows the one-line error.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        # Said as the database's failure: "File exists" alone names neither.
        reason = f"cannot create its directory: {reason_of(err)}"
        raise DatabaseFailure(describe(url), reason) from err
    if path.is_dir():
        reason = "a directory, not a database file"
    elif path.exists():
        reason = "" if os.access(path, os.R_OK | os.W_OK) else "permission denied (read and write)"
    elif not os.access(path.parent, os.W_OK | os.X_OK):
        reason = f"cannot create it: permission denied on {path.parent}"
    else:
        reason = ""
    if reason:
        raise DatabaseFailure(describe(url), reason)
    _create_private(path, url)


def _create_private(path: Path, url: str) -> None:
    """Create a new database file readable by its owner only (it holds sealed tokens and key
    hashes, as private as the vault key beside it); SQLite gives its -wal and -shm files the
    database file's mode. An existing file keeps the mode its operator chose."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as err:
        raise DatabaseFailure(describe(url), f"cannot create it: {reason_of(err)}") from err
    os.close(fd)


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int, synchronous: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:
        # pysqlite's own transaction handling would defer BEGIN; we issue BEGIN ourselves so
        # that writers can take the lock up front (BEGIN IMMEDIATE) instead of failing late.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")  # see checkpoint.py
        cursor.close()
        # The health views' time (migration 0012). Declared deterministic so that SQLite reads
        # it once per statement, as it reads its own 'now'; nothing indexes or stores it.
        dbapi_connection.create_function(NOW_FUNCTION, 0, gateway_now_ms, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
