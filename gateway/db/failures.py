"""A database error as one line: the driver's own words, without SQLAlchemy's SQL and link."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc

from ..errors import GatewayError
from .location import describe
from .outage import outage_of

# Database drivers that are optional extras, with the extra that installs each.
_DRIVER_EXTRAS = {"asyncpg": "postgres"}


class DatabaseFailure(GatewayError):
    """The configured database could not be used: ``detail`` names it and says why."""

    code = "database_failure"
    status = 503
    title = "Database failure"

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"database {location}: {reason}")
        self.location = location
        self.reason = reason


def reason_of(error: BaseException) -> str:
    """What went wrong, in one line.

    SQLAlchemy's own text adds the SQL, its parameters and a link to its documentation on
    further lines; the driver's message (``orig``) is the part that tells an operator why.
    """
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        text = str(error.orig)
    elif isinstance(error, exc.SQLAlchemyError):
        text = str(error.args[0]) if error.args else ""
    elif isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    elif isinstance(error, TimeoutError):
        text = "timed out"
    else:
        text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn what the database at ``url`` fails with inside the block into a
    :class:`DatabaseFailure`; every other error passes through untouched."""
    try:
        yield
    except exc.SQLAlchemyError as err:
        raise DatabaseFailure(describe(url), reason_of(err)) from err
    except ModuleNotFoundError as err:
        extra = _DRIVER_EXTRAS.get(err.name or "")
        if extra is None:
            raise
        reason = f"its driver {err.name} is not installed (pip install '.[{extra}]')"
        raise DatabaseFailure(describe(url), reason) from err
    except (OSError, TimeoutError) as err:
        if outage_of(err) is None:  # not the driver's: a file, a socket of something else
            raise
        raise DatabaseFailure(describe(url), reason_of(err)) from err
