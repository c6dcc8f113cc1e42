"""Tell a database that is unavailable for now (locked, unreachable, saturated) from a bug."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any

from sqlalchemy import exc

# SQLite's answers when another connection holds the lock, or the file cannot be used right now.
_SQLITE_UNAVAILABLE = (
    "database is locked",
    "database table is locked",
    "database is busy",
    "unable to open database file",
    "disk i/o error",
)
# PostgreSQL SQLSTATEs of a server that cannot serve us now: connection exceptions (class 08),
# shutting down or starting up (57P01-57P03), too many connections (53300).
_PG_UNAVAILABLE_PREFIXES = ("08", "57P0", "53300")
# Where a bare OSError or TimeoutError comes from when the driver cannot connect at all.
_DRIVER_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.", "sqlite3.")


@dataclass(frozen=True, slots=True)
class Outage:
    """Why the database cannot serve a request now, and when a client should try again."""

    reason: str  # "locked", "unreachable" or "saturated"
    retry_after: int  # seconds

    @property
    def detail(self) -> str:
        return {
            "locked": "The database is busy with another writer; nothing was stored. Retry.",
            "unreachable": "The database cannot be reached; nothing was stored. Retry.",
            "saturated": "Every database connection is in use; nothing was stored. Retry.",
        }[self.reason]


LOCKED = Outage("locked", 1)
UNREACHABLE = Outage("unreachable", 5)
SATURATED = Outage("saturated", 2)


def outage_of(error: BaseException) -> Outage | None:
    """The outage ``error`` reports, or None when it is not the database being unavailable."""
    if isinstance(error, exc.TimeoutError):
        return SATURATED  # the pool had no connection to give within its timeout
    if isinstance(error, exc.DisconnectionError):
        return UNREACHABLE
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return UNREACHABLE
        message = str(error.orig).lower()
        if any(text in message for text in _SQLITE_UNAVAILABLE):
            return LOCKED if "locked" in message or "busy" in message else UNREACHABLE
        if _pg_unavailable(error.orig):
            return UNREACHABLE
        return None
    if _pg_unavailable(error):
        return UNREACHABLE
    if isinstance(error, OSError | TimeoutError) and _raised_by_driver(error.__traceback__):
        return UNREACHABLE  # refused, reset or timed out while connecting
    return None


def _pg_unavailable(error: BaseException | None) -> bool:
    """The error, or what it wraps, carries a PostgreSQL SQLSTATE of an unavailable server."""
    seen = 0
    while error is not None and seen < 5:
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        if isinstance(state, str) and state.startswith(_PG_UNAVAILABLE_PREFIXES):
            return True
        error, seen = error.__cause__, seen + 1
    return False


def _raised_by_driver(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(_DRIVER_MODULES):
            return True
        traceback = traceback.tb_next
    return False


def log_failed_pass(log: Any, event: str, error: BaseException, **fields: Any) -> None:
    """Log a background pass that failed (it runs again at its next turn): the database being
    unavailable as one warning line, since it is expected to pass and a traceback per pass per
    worker would bury the log; anything else, a bug, with its traceback."""
    outage = outage_of(error)
    if outage is None:
        log.error(event, exc_info=error, **fields)
    else:
        log.warning(event, database=outage.reason, error=type(error).__name__, **fields)
