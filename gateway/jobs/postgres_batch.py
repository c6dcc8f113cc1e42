"""A group commit on PostgreSQL in one statement, one round trip, in the common case.

Through a transaction, a batch is five round trips (BEGIN, the ownership check, the read of
earlier Idempotency-Keys, the insert, COMMIT), each waiting for the event loop's next turn
under load. Here the ownership check is part of the insert, a request whose key is taken is
left out by ``ON CONFLICT DO NOTHING``, and the statement runs on its own (autocommit: it is
its own transaction, committed before the answer comes back). The account rows are locked
``FOR SHARE`` as the portable path locks them, so a concurrent revoke either waits for this
insert or is seen by it. What the statement left out with a key (a repeat, a clash, a key
to free, or an account not publishable) is settled afterwards by the portable path; without
a key, only a refused account is left out. Values are converted by the columns' own
SQLAlchemy types.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from sqlalchemy import text

from ..db.models import AccountRow, ConnectionRow, PublishJobRow
from .batch import PendingJob, Refused, Stored

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect
    from sqlalchemy.ext.asyncio import AsyncConnection
    from sqlalchemy.sql.elements import TextClause

JOBS = PublishJobRow.__table__
ACCOUNTS = AccountRow.__table__.name
CONNECTIONS = ConnectionRow.__table__.name


async def insert_owned(
    connection: AsyncConnection, batch: list[PendingJob]
) -> list[Stored | Refused | None]:
    """Insert the jobs of ``batch`` whose account is publishable and whose key (if any) is
    free, committed; refuse the others without a key; None for the others with a key, which
    the caller settles in a transaction.

    ``connection`` is idle (no transaction open) and is left so; after an error, it is not to
    be used again (the pool resets what was changed here when it is given back).
    """
    statement, binds = _statement(connection.dialect, tuple(batch[0].values))
    params = {
        name: [job.values[name] if bind is None else bind(job.values[name]) for job in batch]
        for name, bind in binds
    }
    default = connection.default_isolation_level
    await connection.execution_options(isolation_level="AUTOCOMMIT")
    result = await connection.execute(statement, params)
    inserted = set(result.scalars())
    await connection.commit()  # SQLAlchemy's bookkeeping; the statement committed itself
    await connection.execution_options(isolation_level=default)
    return [
        job.stored()
        if job.values["id"] in inserted
        else None
        if job.idempotency is not None
        else Refused(job.values["connection_id"])
        for job in batch
    ]


# The SQL below is built only from the models' table, column and type names; every value is a
# bound parameter (hence the S608 waiver).


@lru_cache(maxsize=8)
def _statement(dialect: Dialect, keys: tuple[str, ...]) -> tuple[TextClause, list]:
    columns = [JOBS.c[key] for key in keys]
    arrays = ", ".join(f"CAST(:{c.name} AS {c.type.compile(dialect)}[])" for c in columns)
    names = ", ".join(keys)
    sql = (
        f"INSERT INTO {JOBS.name} ({names}) "  # noqa: S608
        f"SELECT {names} FROM unnest({arrays}) AS v({names}) "
        f"WHERE EXISTS (SELECT 1 FROM {ACCOUNTS} a JOIN {CONNECTIONS} c ON c.id = a.connection_id "
        "WHERE a.id = v.account_id AND a.connection_id = v.connection_id "
        "AND c.tenant_id = v.tenant_id AND a.active AND c.status = 'active' "
        "FOR SHARE OF a) "
        # A key already taken (or twice in the batch) leaves its request to be settled.
        "ON CONFLICT (tenant_id, idempotency_key) DO NOTHING "
        f"RETURNING {JOBS.c.id.name}"
    )
    binds = [(c.name, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in columns]
    return text(sql), binds
