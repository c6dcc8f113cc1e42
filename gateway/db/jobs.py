"""The job queue's SQL: idempotent insert, claims with a lease, fenced updates, the DLQ."""

from __future__ import annotations

import json
from collections import namedtuple
from datetime import datetime
from functools import cache, lru_cache

from sqlalchemy import (
    ARRAY,
    Integer,
    and_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy import column as sql_column
from sqlalchemy import values as sql_values
from sqlalchemy.ext.asyncio import AsyncSession

from . import sqlite_hop
from .base import utcnow
from .models import PublishJobAnalyticsRow, PublishJobRow, TenantRow

WAITING = ("scheduled", "queued", "failed")
# A due job, as much of it as deciding whether to claim it takes.
Candidate = namedtuple(
    "Candidate",
    "id tenant_id account_id platform status created_at poll_handle next_attempt_at",
)
# Claimable once due: the waiting jobs, and the processing ones whose next poll is due.
DUE = (*WAITING, "processing")
# The statuses a worker holds a job in: every fenced write requires one of them.
HELD = ("running", "processing", "scheduled")


def _due(now: datetime):
    """Due and not held: a processing job's lease is live only while one worker polls it."""
    return and_(
        PublishJobRow.status.in_(DUE),
        PublishJobRow.next_attempt_at <= now,
        or_(PublishJobRow.lease_until.is_(None), PublishJobRow.lease_until < now),
    )


CANDIDATE_COLUMNS = (
    PublishJobRow.id,
    PublishJobRow.tenant_id,
    PublishJobRow.account_id,
    PublishJobRow.platform,
    PublishJobRow.status,
    PublishJobRow.created_at,
    PublishJobRow.poll_handle,
    PublishJobRow.next_attempt_at,
)


@lru_cache(maxsize=64)
def _candidates_sql(dialect, tenants: int) -> sqlite_hop.Prepared:
    """The SQLite read of the first due jobs of ``tenants`` tenants, compiled once per count."""
    # Named parameters, each given its value at each run (these values only let it compile).
    now = bindparam("now", utcnow(), type_=PublishJobRow.next_attempt_at.type)
    parts = [
        select(
            select(*CANDIDATE_COLUMNS)
            .where(PublishJobRow.tenant_id == bindparam(f"tenant_{n}", ""), _due(now))
            .order_by(PublishJobRow.next_attempt_at)
            .limit(bindparam("limit", 1, type_=Integer()))
            .subquery()
        )
        for n in range(tenants)
    ]
    return sqlite_hop.Prepared(dialect, parts[0] if tenants == 1 else union_all(*parts))


def _tenants_query(after: bool, through: bool, limit: bool, among: bool, *, among_in=None):
    """The read of the tenants with due work, with named parameters for the bounds it has."""
    now = bindparam("now", utcnow(), type_=PublishJobRow.next_attempt_at.type)
    has_due = exists().where(PublishJobRow.tenant_id == TenantRow.id, _due(now))
    query = select(TenantRow.id).where(has_due).order_by(TenantRow.id)
    if after:
        query = query.where(TenantRow.id > bindparam("after", ""))
    if through:
        query = query.where(TenantRow.id <= bindparam("through", ""))
    if among:
        query = query.where(TenantRow.id.in_(among_in("among")))
    if limit:
        query = query.limit(bindparam("limit", 1, type_=Integer()))
    return query


def _expanding(name: str):
    return bindparam(name, expanding=True)


@lru_cache(maxsize=16)
def _tenants_sql(dialect, *bounds: bool) -> sqlite_hop.Prepared:
    """The SQLite read of the tenants with due work, compiled once per set of bounds."""
    return sqlite_hop.Prepared(dialect, _tenants_query(*bounds, among_in=sqlite_hop.each_value))


@lru_cache(maxsize=128)
def _claim_sql(dialect, claimed: int, polled: int) -> sqlite_hop.Prepared:
    """The SQLite claim of ``claimed`` jobs (``polled`` of them polls), with every column of
    the claimed rows returned; compiled once per pair of counts."""
    jobs = PublishJobRow.__table__
    stamp = utcnow()  # these values only let it compile
    statement = _claim_update(
        [bindparam(f"id_{n}", "") for n in range(claimed)],
        [bindparam(f"polled_{n}", "") for n in range(polled)] if polled else None,
        bindparam("owner", ""),
        bindparam("until", stamp, type_=jobs.c.lease_until.type),
        bindparam("stamp", stamp, type_=jobs.c.updated_at.type),
    )
    return sqlite_hop.Prepared(dialect, statement.returning(*jobs.c))


def _claim_update(job_ids, polled, owner, until, stamp):
    """The claim of ``job_ids``: a new attempt (the fencing token) and a lease; the ``polled``
    among them (``None``: none) keep their status (``processing`` or ``scheduled``)."""
    jobs = PublishJobRow.__table__
    return (
        update(jobs)
        .where(jobs.c.id.in_(job_ids))
        .values(
            attempts=jobs.c.attempts + 1,
            status=case((jobs.c.id.in_(polled), jobs.c.status), else_="running")
            if polled is not None
            else "running",
            lease_owner=owner,
            lease_until=until,
            updated_at=stamp,
            started_at=func.coalesce(jobs.c.started_at, stamp),
        )
    )


@cache
def _locking_candidates_sql():
    """PostgreSQL: the first ``limit`` due jobs of each of ``tenants``, locked ``SKIP LOCKED``
    so that processes take different rows, in one statement (a lateral read per tenant, each
    one index probe); built once, run with new values."""
    jobs = PublishJobRow
    tenants = (
        func.unnest(bindparam("tenants", type_=ARRAY(jobs.tenant_id.type)))
        .table_valued("tenant_id")
        .render_derived(name="due_tenants")
    )
    firsts = (
        select(*CANDIDATE_COLUMNS)
        .where(
            jobs.tenant_id == tenants.c.tenant_id,
            _due(bindparam("now", type_=jobs.next_attempt_at.type)),
            jobs.id.not_in(bindparam("exclude", expanding=True)),
        )
        .order_by(jobs.next_attempt_at)
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(skip_locked=True, of=jobs)
        .lateral("firsts")
    )
    return select(firsts).select_from(tenants).join(firsts, true())


@cache
def _locking_claim_sql(polled: bool):
    """PostgreSQL: the claim of the jobs ``ids`` (``polled``: some are polls), every column of
    the claimed rows returned; built once, run with new values."""
    jobs = PublishJobRow.__table__
    statement = _claim_update(
        bindparam("ids", expanding=True),
        bindparam("polled", expanding=True) if polled else None,
        bindparam("owner"),
        bindparam("until", type_=jobs.c.lease_until.type),
        bindparam("stamp", type_=jobs.c.updated_at.type),
    )
    return statement.returning(*jobs.c)


@cache
def _job_keys() -> list[str]:
    mapper = PublishJobRow.__mapper__
    return [mapper.get_property_by_column(column).key for column in PublishJobRow.__table__.c]


def _detached_job(keys: list[str], row: tuple) -> PublishJobRow:
    """A job built from a whole row, outside any session: as the constructor would build it,
    without an attribute event per column (a claim of a hundred jobs built thousands)."""
    job = PublishJobRow.__mapper__.class_manager.new_instance()
    job.__dict__.update(zip(keys, row, strict=True))
    return job


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, job_id: str, *, tenant_id: str | None = None) -> PublishJobRow | None:
        row = await self.session.get(PublishJobRow, job_id, populate_existing=True)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            return None
        return row

    async def by_post(self, post_id: str, tenant_id: str) -> PublishJobRow | None:
        result = await self.session.execute(
            select(PublishJobRow).where(
                PublishJobRow.post_id == post_id, PublishJobRow.tenant_id == tenant_id
            )
        )
        return result.scalar_one_or_none()

    async def by_idempotency_key(self, tenant_id: str, key: str) -> PublishJobRow | None:
        result = await self.session.execute(
            select(PublishJobRow).where(
                PublishJobRow.tenant_id == tenant_id, PublishJobRow.idempotency_key == key
            )
        )
        return result.scalar_one_or_none()

    async def page(
        self,
        tenant_id: str,
        *,
        limit: int,
        after: str | None,
        status: str | None = None,
        connection_id: str | None = None,
        platform: str | None = None,
    ) -> list[PublishJobRow]:
        query = select(PublishJobRow).where(PublishJobRow.tenant_id == tenant_id)
        for column, value in (
            (PublishJobRow.status, status),
            (PublishJobRow.connection_id, connection_id),
            (PublishJobRow.platform, platform),
        ):
            if value:
                query = query.where(column == value)
        if after:
            query = query.where(PublishJobRow.id > after)
        result = await self.session.execute(query.order_by(PublishJobRow.id).limit(limit))
        return list(result.scalars())

    async def claimable(
        self, now: datetime, limit: int, *, skip_locked: bool
    ) -> list[PublishJobRow]:
        """Due jobs, and running ones whose lease ran out (their worker died), oldest first."""
        query = (
            select(PublishJobRow)
            .where(
                or_(
                    _due(now),
                    (PublishJobRow.status == "running") & (PublishJobRow.lease_until < now),
                )
            )
            .order_by(PublishJobRow.next_attempt_at)
            .limit(limit)
        )
        return await self._lock(query, skip_locked)

    async def lost_leases(
        self, now: datetime, limit: int, *, skip_locked: bool
    ) -> list[PublishJobRow]:
        """Running jobs whose lease ran out: their worker died mid-attempt."""
        query = (
            select(PublishJobRow)
            .where(PublishJobRow.status == "running", PublishJobRow.lease_until < now)
            .order_by(PublishJobRow.lease_until)
            .limit(limit)
        )
        return await self._lock(query, skip_locked)

    async def tenants_with_due_work(
        self,
        now: datetime,
        *,
        after: str | None = None,
        through: str | None = None,
        limit: int | None = None,
        among: frozenset[str] | None = None,
    ) -> list[str]:
        """The tenants that have a due job, in id order: those after ``after`` and up to
        ``through`` (both optional), at most ``limit``, only those ``among`` if given.

        One index probe per tenant read, not a scan of the jobs; with ``limit``, the read
        stops there, so its cost does not grow with the number of tenants.
        """
        bounds = (after is not None, through is not None, limit is not None, among is not None)
        values = {"now": now, "after": after, "through": through, "limit": limit}
        connection = await self.session.connection()
        if sqlite_hop.available(connection):
            values["among"] = json.dumps(sorted(among or ()))
            prepared = _tenants_sql(connection.dialect, *bounds)
            found = await sqlite_hop.fetch(connection, prepared, [TenantRow.__table__.c.id], values)
            return [row[0] for row in found]
        values["among"] = list(among or ())
        result = await self.session.execute(_tenants_query(*bounds, among_in=_expanding), values)
        return list(result.scalars())

    async def _lock(self, query, skip_locked: bool) -> list[PublishJobRow]:
        if skip_locked:
            # PostgreSQL: several workers on several machines take different rows.
            query = query.with_for_update(skip_locked=True)
        result = await self.session.execute(query)
        return list(result.scalars())

    async def account_busy(self, account_id: str, job_id: str, now: datetime) -> bool:
        """Another job for this account holds a live lease."""
        result = await self.session.execute(
            select(PublishJobRow.id)
            .where(
                PublishJobRow.account_id == account_id,
                PublishJobRow.id != job_id,
                PublishJobRow.status.in_(("running", "processing")),
                PublishJobRow.lease_until >= now,
            )
            .limit(1)
        )
        return result.first() is not None

    async def fenced_update(self, job_id: str, fence: int, **values: object) -> bool:
        """Write only if this worker's attempt is still the job's current one."""
        result = await self.session.execute(
            update(PublishJobRow)
            .where(
                PublishJobRow.id == job_id,
                PublishJobRow.attempts == fence,
                PublishJobRow.status.in_(HELD),
            )
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def fenced_update_all(self, items: list[tuple[str, int, dict[str, object]]]) -> bool:
        """Fenced updates of many jobs, one statement per shape of values (``executemany``).

        True only if every one was written; otherwise some were and some were not, and the
        caller rolls the transaction back and writes them one by one (a lost fence is rare).
        Only for drivers that report the rows an ``executemany`` changed (SQLite).
        """
        shapes: dict[tuple[str, ...], list[dict[str, object]]] = {}
        stamp = utcnow()
        for job_id, fence, values in items:
            params = {"job_id": job_id, "fence": fence, "updated_at": stamp, **values}
            shapes.setdefault(tuple(sorted(values)), []).append(params)
        connection = await self.session.connection()
        jobs = PublishJobRow.__table__
        if sqlite_hop.available(connection):
            for names, params in shapes.items():
                columns = [jobs.c[name] for name in (*names, "updated_at", "id", "attempts")]
                sets = ", ".join(f"{name} = ?" for name in (*names, "updated_at"))
                held = ", ".join(f"'{status}'" for status in HELD)
                sql = (
                    f"UPDATE {jobs.name} SET {sets} "  # noqa: S608 (column names, not input)
                    f"WHERE id = ? AND attempts = ? AND status IN ({held})"
                )
                rows = [
                    [p[name] for name in (*names, "updated_at", "job_id", "fence")] for p in params
                ]
                if await sqlite_hop.execute_many(connection, sql, columns, rows) != len(rows):
                    return False
            return True
        for params in shapes.values():
            # The SET clause is the parameters' other keys: the columns of this shape.
            statement = update(jobs).where(
                jobs.c.id == bindparam("job_id"),
                jobs.c.attempts == bindparam("fence"),
                # Inline: an expanding IN cannot be part of an executemany.
                jobs.c.status.in_([literal_column(f"'{status}'") for status in HELD]),
            )
            result = await connection.execute(statement, params)
            if result.rowcount != len(params):
                return False
        return True

    async def due_candidates(
        self,
        tenant_ids: list[str],
        now: datetime,
        limit: int,
        *,
        skip_locked: bool,
        exclude: set[str] = frozenset(),
    ) -> dict[str, list]:
        """The first ``limit`` due jobs of each tenant, oldest first: light rows, enough to
        decide which to claim (id, tenant, account, platform, status, created, poll handle).

        SQLite: one statement for all the tenants (one index probe each). PostgreSQL: one
        per tenant, each ``FOR UPDATE SKIP LOCKED``, so that processes take different rows.
        """
        jobs = PublishJobRow

        def first(tenant_id: str):
            query = select(*CANDIDATE_COLUMNS).where(jobs.tenant_id == tenant_id, _due(now))
            if exclude:  # read already (and locked, on PostgreSQL) by this transaction
                query = query.where(jobs.id.not_in(exclude))
            return query.order_by(jobs.next_attempt_at).limit(limit)

        rows = []
        if skip_locked:
            if tenant_ids:
                values = {"tenants": tenant_ids, "now": now, "limit": limit, "exclude": [*exclude]}
                found = await self.session.execute(_locking_candidates_sql(), values)
                rows = [Candidate(*row) for row in found]
        elif tenant_ids:
            connection = await self.session.connection()
            if sqlite_hop.available(connection) and not exclude:
                prepared = _candidates_sql(connection.dialect, len(tenant_ids))
                values = {f"tenant_{n}": t for n, t in enumerate(tenant_ids)}
                found = await sqlite_hop.fetch(
                    connection,
                    prepared,
                    [c.expression for c in CANDIDATE_COLUMNS],
                    {**values, "now": now, "limit": limit},
                )
                rows = [Candidate(*row) for row in found]
            else:
                parts = [select(first(t).subquery()) for t in tenant_ids]
                query = parts[0] if len(parts) == 1 else union_all(*parts)
                if sqlite_hop.available(connection):
                    found = await sqlite_hop.fetch(
                        connection, query, [c.expression for c in CANDIDATE_COLUMNS]
                    )
                    rows = [Candidate(*row) for row in found]
                else:
                    rows = (await self.session.execute(query)).all()
        by_tenant: dict[str, list] = {tenant_id: [] for tenant_id in tenant_ids}
        for row in sorted(rows, key=lambda row: row.next_attempt_at):
            by_tenant[row.tenant_id].append(row)
        return by_tenant

    async def fenced_update_each(
        self, items: list[tuple[str, int, dict[str, object]]]
    ) -> list[bool]:
        """Fenced updates of many jobs, one statement per shape of values, each job's own
        values joined in from a ``VALUES`` list; which were written, in order.

        For PostgreSQL, whose driver does not count the rows of an ``executemany``.
        """
        jobs = PublishJobRow.__table__
        shapes: dict[tuple[str, ...], list[tuple[str, int, dict[str, object]]]] = {}
        for item in items:
            shapes.setdefault(tuple(sorted(item[2])), []).append(item)
        written: set[str] = set()
        stamp = utcnow()
        for names, group in shapes.items():
            given = sql_values(
                sql_column("job_id", jobs.c.id.type),
                sql_column("fence", jobs.c.attempts.type),
                *(sql_column(name, jobs.c[name].type) for name in names),
                name="given",
            ).data([(job_id, fence, *(v[name] for name in names)) for job_id, fence, v in group])
            result = await self.session.execute(
                update(jobs)
                .where(
                    jobs.c.id == given.c.job_id,
                    jobs.c.attempts == given.c.fence,
                    jobs.c.status.in_(HELD),
                )
                .values(
                    {
                        # Cast: a column of the list that is all NULLs would be text.
                        **{name: cast(given.c[name], jobs.c[name].type) for name in names},
                        "updated_at": stamp,
                    }
                )
                .returning(jobs.c.id)
            )
            written.update(result.scalars())
        return [job_id in written for job_id, _, _ in items]

    async def mark_claimed(
        self, job_ids: list[str], polled: list[str], owner: str, until: datetime
    ) -> list[PublishJobRow]:
        """Claim the jobs of a batch in one statement, and return them as claimed: a new
        attempt (the fencing token) and a lease; a polled job (in ``polled``) keeps showing
        ``processing`` or ``scheduled``.

        The rows were read in this transaction under the write lock (SQLite) or locked
        (PostgreSQL ``FOR UPDATE``), so each is still as read.
        """
        jobs = PublishJobRow.__table__
        connection = await self.session.connection()
        if sqlite_hop.available(connection):
            prepared = _claim_sql(connection.dialect, len(job_ids), len(polled))
            values = {
                **{f"id_{n}": job_id for n, job_id in enumerate(job_ids)},
                **{f"polled_{n}": job_id for n, job_id in enumerate(polled)},
                "owner": owner,
                "until": until,
                "stamp": utcnow(),
            }
            found = await sqlite_hop.fetch(connection, prepared, list(jobs.c), values)
            keys = _job_keys()
            rows = [_detached_job(keys, row) for row in found]
        else:
            values = {
                "ids": job_ids,
                "polled": polled,
                "owner": owner,
                "until": until,
                "stamp": utcnow(),
            }
            found = await self.session.execute(_locking_claim_sql(bool(polled)), values)
            keys = _job_keys()
            # Detached, so that the copy the worker keeps is never flushed over the row.
            rows = [_detached_job(keys, tuple(row)) for row in found]
        claimed = {row.id: row for row in rows}
        if len(claimed) != len(job_ids):
            raise RuntimeError("claimed jobs changed under their lock")
        return [claimed[job_id] for job_id in job_ids]

    async def cancel_waiting(
        self, job_id: str, *, status: str | None = None, attempts: int | None = None
    ) -> bool:
        """Cancel a job that has not started.

        With the ``status`` and ``attempts`` the caller read, only if no worker has touched the
        job since: meanwhile one may have handed it to the platform's own scheduler, and then
        it has to be taken back there before it is cancelled here.
        """
        seen = []
        if status is not None:
            seen.append(PublishJobRow.status == status)
        if attempts is not None:
            seen.append(PublishJobRow.attempts == attempts)
        result = await self.session.execute(
            update(PublishJobRow)
            .where(PublishJobRow.id == job_id, PublishJobRow.status.in_(WAITING), *seen)
            .values(status="cancelled", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def cancel_for_connection(self, connection_id: str) -> int:
        result = await self.session.execute(
            update(PublishJobRow)
            .where(PublishJobRow.connection_id == connection_id, PublishJobRow.status.in_(WAITING))
            .values(status="cancelled", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount

    async def dead_page(
        self, tenant_id: str, *, limit: int, after: str | None
    ) -> list[PublishJobRow]:
        query = select(PublishJobRow).where(
            PublishJobRow.tenant_id == tenant_id, PublishJobRow.status == "dead"
        )
        if after:
            query = query.where(PublishJobRow.id > after)
        result = await self.session.execute(query.order_by(PublishJobRow.id).limit(limit))
        return list(result.scalars())

    async def set_dead_status(self, job_id: str, status: str, **values: object) -> bool:
        """Replay or discard a dead job (only while it is dead)."""
        result = await self.session.execute(
            update(PublishJobRow)
            .where(PublishJobRow.id == job_id, PublishJobRow.status == "dead")
            .values(status=status, updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


class AnalyticsRepository:
    """The analytics time series and the collections that are due."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def due(self, now: datetime, limit: int) -> list[PublishJobRow]:
        result = await self.session.execute(
            select(PublishJobRow)
            .where(PublishJobRow.analytics_next_at <= now)
            .order_by(PublishJobRow.analytics_next_at)
            .limit(limit)
        )
        return list(result.scalars())

    async def postpone(self, job_id: str, seen: datetime, until: datetime) -> bool:
        """Claim a due collection (compare-and-set on its time) so that one process makes it."""
        result = await self.session.execute(
            update(PublishJobRow)
            .where(PublishJobRow.id == job_id, PublishJobRow.analytics_next_at == seen)
            .values(analytics_next_at=until)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def latest(self, job_id: str) -> PublishJobAnalyticsRow | None:
        result = await self.session.execute(
            select(PublishJobAnalyticsRow)
            .where(PublishJobAnalyticsRow.job_id == job_id)
            .order_by(PublishJobAnalyticsRow.collected_at.desc(), PublishJobAnalyticsRow.id.desc())
            .limit(1)
        )
        return result.scalar_one_or_none()

    async def series(self, job_id: str) -> list[PublishJobAnalyticsRow]:
        result = await self.session.execute(
            select(PublishJobAnalyticsRow)
            .where(PublishJobAnalyticsRow.job_id == job_id)
            .order_by(PublishJobAnalyticsRow.collected_at, PublishJobAnalyticsRow.id)
        )
        return list(result.scalars())
