"""The scheduler's cost: every "find due work" query with 100,000 connections and 1,000,000 jobs.

Run with `.venv/bin/python bench/scheduler.py [--jobs N] [--connections N] [--runs N]
[--only sqlite|postgres] [--index "CREATE INDEX …"]`. For each database (a throw-away SQLite
file, and a fresh database on the local PostgreSQL server, dropped afterwards) the gateway's
migrations create the schema, then tenants, connections, webhook deliveries and jobs are
bulk-loaded (mostly published, some waiting, failed, dead, running, processing; spread over
many tenants; secondary indexes are dropped for the load and rebuilt as the migrations define
them). Each query is then timed as the gateway runs it, through the gateway's own sessions:

- job claim: ``Workers.claim()`` whole (lost leases, the tenants with due work, the due
  candidates of the next tenants, the fenced take, the commit), and each of its queries alone;
- the connection scheduler's due refreshes and due health checks (``ConnectionRepository``);
- the webhook outbox's due deliveries (the read of a deliverer's claim, ``outbox.due_query``);
- due analytics collections (``AnalyticsRepository.due``).

It prints p50/p99/max over ``--runs`` runs as the gateway sees them (driver, pool and Python
included), on PostgreSQL the server's own execution time (median ``EXPLAIN ANALYZE``), and
each query's plan (``EXPLAIN QUERY PLAN`` /
``EXPLAIN``). ``--index`` creates an extra index (repeatable) after the load, to measure a
candidate before it becomes a migration. PostgreSQL is ``ANALYZE``d after the load, as
autovacuum would do; SQLite is left as the gateway leaves it (no ``ANALYZE``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import JSON, Boolean, DateTime, event, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from connections import postgres_database  # noqa: E402

from gateway.db.base import Base, UTCDateTime  # noqa: E402
from gateway.db.connections import ConnectionRepository  # noqa: E402
from gateway.db.jobs import AnalyticsRepository, JobRepository, _due  # noqa: E402
from gateway.db.models import PublishJobRow  # noqa: E402
from gateway.host import Gateway  # noqa: E402
from gateway.jobs.claims import ROTATION_PAGE  # noqa: E402
from gateway.jobs.worker import Workers  # noqa: E402
from gateway.settings import settings_from_mapping  # noqa: E402
from gateway.telemetry import configure_logging  # noqa: E402
from gateway.vault import generate_key  # noqa: E402
from gateway.webhooks.outbox import due_query  # noqa: E402

PLATFORMS = ("meta", "linkedin", "tiktok", "gbp", "mailchimp")
BATCH = 50_000
# The batch sizes the gateway asks for (scheduler.BATCH and the defaults of the due methods).
SCHEDULER_BATCH = 200
OUTBOX_BATCH = 50
ANALYTICS_BATCH = 20  # AnalyticsCollector.collect_due
DAY = 86400.0

# -- the data set --------------------------------------------------------------------------


class DataSet:
    """Rows generated the same way for both databases; times relative to ``now``."""

    def __init__(self, tenants: int, connections: int, jobs: int, deliveries: int) -> None:
        self.tenants, self.connections, self.jobs = tenants, connections, jobs
        self.deliveries = deliveries
        self.now = datetime.now(UTC)
        self.due = {"jobs": 0, "lost": 0, "refresh": 0, "health": 0, "outbox": 0, "analytics": 0}

    def at(self, seconds: float) -> datetime:
        return self.now + timedelta(seconds=seconds)

    def tenant_rows(self) -> Iterator[dict]:
        for t in range(self.tenants):
            yield {"id": f"ten_{t:06d}", "name": f"tenant {t}", "created_at": self.at(-400 * DAY)}

    def secret_rows(self) -> Iterator[dict]:
        for t in range(self.tenants):
            yield {
                "id": f"sec_whk_{t:06d}",
                "tenant_id": f"ten_{t:06d}",
                "purpose": "webhook_secret",
                "key_id": "bench",
                "ciphertext": b"\0" * 64,
                "version": 1,
                "created_at": self.at(-300 * DAY),
                "updated_at": self.at(-300 * DAY),
            }

    def endpoint_rows(self) -> Iterator[dict]:
        for t in range(self.tenants):
            yield {
                "id": f"whk_{t:06d}",
                "tenant_id": f"ten_{t:06d}",
                "url": f"https://client-{t}.example/hooks",
                "events": ["job.published", "job.dead"],
                "secret_id": f"sec_whk_{t:06d}",
                "active": True,
                "created_at": self.at(-300 * DAY),
            }

    def connection_rows(self) -> Iterator[dict]:
        rnd = random.Random(1)
        for c in range(self.connections):
            r = rnd.random()
            status = "active" if r < 0.97 else ("needs_reconnect" if r < 0.99 else "revoked")
            refresh = None
            if rnd.random() < 0.8:  # the rest hold tokens that cannot or need not be refreshed
                refresh = self.at(rnd.uniform(-120, 30 * DAY))
            blocked = self.at(rnd.uniform(60, 3600)) if rnd.random() < 0.005 else None
            # Health checks are spread evenly over the 6 h interval.
            health = self.at(rnd.uniform(-60, 6 * 3600))
            if status == "active" and refresh and refresh <= self.now and not blocked:
                self.due["refresh"] += 1
            if status != "revoked" and health <= self.now:
                self.due["health"] += 1
            yield {
                "id": f"conn_{c:09d}",
                "tenant_id": f"ten_{c % self.tenants:06d}",
                "platform": PLATFORMS[c % len(PLATFORMS)],
                "status": status,
                "health": "healthy",
                "display_name": f"User {c}",
                "external_user_id": f"user-{c}",
                "scopes": "profile posts.write",
                "metadata_json": {},
                "credential_version": 1,
                "token_expires_at": refresh and refresh + timedelta(minutes=10),
                "next_refresh_at": refresh,
                "refresh_failures": 0,
                "refresh_blocked_until": blocked,
                "last_health_check_at": health - timedelta(hours=6),
                "next_health_check_at": health,
                "created_at": self.at(-200 * DAY),
                "updated_at": self.at(-1 * DAY),
            }

    def job_rows(self) -> Iterator[dict]:
        rnd = random.Random(2)
        request = {"body": "Hello", "title": "Bench"}
        for j in range(self.jobs):
            c = rnd.randrange(self.connections)
            row = {
                "id": f"job_{j:012d}",
                "post_id": f"post_{j:012d}",
                "tenant_id": f"ten_{c % self.tenants:06d}",
                "connection_id": f"conn_{c:09d}",
                "account_id": f"acct_{c:09d}",
                "platform": PLATFORMS[c % len(PLATFORMS)],
                "request_json": request,
                "request_hash": "0" * 64,
                "attempts": 1,
                "failures": 0,
                "max_attempts": 4,
                "polls": 0,
                "analytics_step": 0,
            }
            r = rnd.random()
            if r < 0.015:  # scheduled for later
                created = self.at(-rnd.uniform(0, 5 * DAY))
                row.update(
                    status="scheduled",
                    attempts=0,
                    next_attempt_at=self.at(rnd.uniform(3600, 30 * DAY)),
                )
                row["scheduled_at"] = row["next_attempt_at"]
            elif r < 0.017:  # queued just now: due
                created = self.at(-rnd.uniform(0, 60))
                row.update(status="queued", attempts=0, next_attempt_at=created)
                self.due["jobs"] += 1
            elif r < 0.022:  # waiting for a retry, half of them due
                created = self.at(-rnd.uniform(3600, DAY))
                retry = self.at(rnd.uniform(-1800, 1800))
                row.update(status="failed", failures=rnd.randint(1, 3), next_attempt_at=retry)
                row["attempts"] = row["failures"]
                row["error_json"] = {"code": "transient", "message": "HTTP 503"}
                self.due["jobs"] += retry <= self.now
            elif r < 0.024:  # running; one in a hundred lost its worker
                created = self.at(-rnd.uniform(1, 60))
                lost = rnd.random() < 0.01
                lease = self.at(-rnd.uniform(1, 30) if lost else rnd.uniform(1, 60))
                row.update(
                    status="running", next_attempt_at=created, lease_owner="w", lease_until=lease
                )
                self.due["lost"] += lost
            elif r < 0.027:  # processing at the platform, polled later
                created = self.at(-rnd.uniform(60, 3600))
                row.update(
                    status="processing",
                    next_attempt_at=self.at(rnd.uniform(5, 600)),
                    poll_handle={"container": f"c{j}"},
                    processing_since=created,
                )
            elif r < 0.042:
                created = self.at(-rnd.uniform(0, 90 * DAY))
                row.update(status="dead", dead_reason="max_attempts", next_attempt_at=created)
                row["dead_at"], row["failures"] = created + timedelta(minutes=1), 4
            elif r < 0.047:
                created = self.at(-rnd.uniform(0, 90 * DAY))
                row.update(status="cancelled", attempts=0, next_attempt_at=created)
            else:
                created = self.at(-rnd.uniform(0, 90 * DAY))
                published = created + timedelta(seconds=2)
                row.update(
                    status="published",
                    next_attempt_at=created,
                    published_at=published,
                    remote_post_id=f"remote-{j}",
                    remote_url=f"https://social.example/p/{j}",
                )
                if published > self.at(-8 * DAY):  # collections until +7 d
                    nxt = self.at(rnd.uniform(-30, 7 * DAY))
                    row["analytics_next_at"] = nxt
                    row["analytics_step"] = 1
                    self.due["analytics"] += nxt <= self.now
            row["created_at"] = created
            row["updated_at"] = created
            yield row

    def delivery_rows(self) -> Iterator[dict]:
        rnd = random.Random(3)
        for d in range(self.deliveries):
            t = rnd.randrange(self.tenants)
            created = self.at(-rnd.uniform(0, 30 * DAY))
            row = {
                "id": f"evt_{d:012d}",
                "endpoint_id": f"whk_{t:06d}",
                "tenant_id": f"ten_{t:06d}",
                "event": "job.published",
                "payload": {"type": "job.published", "data": {"jobId": f"job_{d:012d}"}},
                "attempts": 1,
                "created_at": created,
            }
            r = rnd.random()
            if r < 0.015:
                nxt = self.at(rnd.uniform(-60, 7200))
                row.update(status="pending", next_attempt_at=nxt, last_status=503)
                self.due["outbox"] += nxt <= self.now
            elif r < 0.02:
                row.update(status="failed", next_attempt_at=created, last_status=500)
            else:
                row.update(status="delivered", next_attempt_at=created, delivered_at=created)
            yield row


TABLES = (
    ("tenants", DataSet.tenant_rows),
    ("sealed_secrets", DataSet.secret_rows),
    ("webhook_endpoints", DataSet.endpoint_rows),
    ("connections", DataSet.connection_rows),
    ("webhook_deliveries", DataSet.delivery_rows),
    ("publish_jobs", DataSet.job_rows),
)


def batches(rows: Iterator[dict], columns: list, convert) -> Iterator[list[tuple]]:
    """Tuples in ``columns`` order, ``BATCH`` at a time; ``convert(column)`` gives a converter."""
    names = [column.name for column in columns]
    converters = [convert(column) for column in columns]
    plain = all(c is None for c in converters)
    batch: list[tuple] = []
    for row in rows:
        values = [row.get(name) for name in names]
        if not plain:
            values = [
                v if (c is None or v is None) else c(v)
                for v, c in zip(values, converters, strict=True)
            ]
        batch.append(tuple(values))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


# -- loading ---------------------------------------------------------------------------------


def sqlite_converter(column):
    """As SQLAlchemy stores values in SQLite: UTC text timestamps, JSON text, 0/1 booleans."""
    if isinstance(column.type, DateTime | UTCDateTime):
        # The times are UTC already; "YYYY-MM-DD HH:MM:SS.ffffff", as the dialect writes.
        return lambda value: value.isoformat(" ", "microseconds")[:26]
    if isinstance(column.type, JSON):
        return json.dumps
    if isinstance(column.type, Boolean):
        return int
    return None


def load_sqlite(path: str, data: DataSet) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    # A bulk load into a fresh file: no journal, no fsync, sorts for the indexes in memory.
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("PRAGMA cache_size=-524288")
    for table, rows in TABLES:
        columns = list(Base.metadata.tables[table].columns)
        names = [c.name for c in columns]
        indexes = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=? "
            "AND sql IS NOT NULL",
            (table,),
        ).fetchall()
        for name, _ in indexes:  # rebuilt after the load: far faster than row by row
            db.execute(f'DROP INDEX "{name}"')
        marks = ", ".join("?" * len(names))
        insert = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"
        db.execute("BEGIN")
        for batch in batches(rows(data), columns, sqlite_converter):
            db.executemany(insert, batch)
        for _, sql in indexes:
            db.execute(sql)
        db.execute("COMMIT")
    db.execute("PRAGMA journal_mode=WAL")  # as the gateway runs it
    db.close()


def postgres_converter(column):
    return json.dumps if isinstance(column.type, JSON) else None


async def load_postgres(url: str, data: DataSet) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for table, rows in TABLES:
            columns = list(Base.metadata.tables[table].columns)
            # Plain indexes are rebuilt after the load; those behind constraints stay.
            indexes = await conn.fetch(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = $1 "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
                table,
            )
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            async with conn.transaction():
                # Foreign keys are checked by triggers, row by row: the rows are consistent.
                await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
                names = [c.name for c in columns]
                for batch in batches(rows(data), columns, postgres_converter):
                    await conn.copy_records_to_table(table, records=batch, columns=names)
                await conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
            for index in indexes:
                await conn.execute(index["indexdef"])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


# -- timing ----------------------------------------------------------------------------------


class Captured:
    """The SQL statements an engine sends while open, with their parameters."""

    def __init__(self, engine) -> None:
        self.engine = engine.sync_engine
        self.statements: list[tuple[str, object]] = []

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append((statement, parameters))

    def __enter__(self) -> Captured:
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


async def explain(gateway: Gateway, statement: str, parameters) -> list[str]:
    prefix = "EXPLAIN QUERY PLAN " if gateway.uses_sqlite else "EXPLAIN (COSTS OFF) "
    async with gateway.engine.connect() as conn:
        result = await conn.exec_driver_sql(prefix + statement, parameters)
        rows = result.all()
    if gateway.uses_sqlite:
        return [row[-1] for row in rows]
    return [row[0] for row in rows]


async def timed(gateway: Gateway, name: str, run: Callable[[], Awaitable[int]], runs: int) -> dict:
    """``run`` ``runs`` times (after one untimed run whose SQL is explained)."""
    with Captured(gateway.engine) as captured:
        rows = await run()
    selects = [(s, p) for s, p in captured.statements if s.lstrip().upper().startswith("SELECT")]
    plans = [await explain(gateway, s, p) for s, p in selects]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await run()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    server = None
    if not gateway.uses_sqlite:
        server = statistics.median([await server_ms(gateway, selects) for _ in range(9)])
    return {
        "name": name,
        "rows": rows,
        "server": server,
        "p50": statistics.median(samples),
        "p99": samples[min(int(len(samples) * 0.99), len(samples) - 1)],
        "max": samples[-1],
        "plans": plans,
    }


async def server_ms(gateway: Gateway, selects: list) -> float:
    """PostgreSQL's own execution time of the statements (EXPLAIN ANALYZE): no driver, no pool."""
    total = 0.0
    async with gateway.engine.connect() as conn:  # rolled back on exit: FOR UPDATE locks go
        for statement, parameters in selects:
            result = await conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, FORMAT JSON) " + statement, parameters
            )
            plan = result.scalar_one()
            total += (json.loads(plan) if isinstance(plan, str) else plan)[0]["Execution Time"]
    return total


def queries(gateway: Gateway) -> list[tuple[str, Callable[[], Awaitable[int]]]]:
    skip_locked = not gateway.uses_sqlite
    workers = Workers(gateway, 1)
    first_tenant: list[str] = []
    middle_tenant = "ten_000500"  # the tenants are ten_000000…: a page from half-way

    async def read(work) -> int:
        # A session that only reads and is rolled back: the data stay as loaded.
        async with gateway.session() as session:
            return len(await work(session))

    async def claim() -> int:
        return 0 if await workers.claim() is None else 1

    async def tenants(session):
        # As the claimer reads them: a page, after the last tenant served.
        found = await JobRepository(session).tenants_with_due_work(
            _now(), after=middle_tenant, limit=ROTATION_PAGE
        )
        first_tenant[:] = found[:10]
        return found

    async def all_tenants(session):
        return await JobRepository(session).tenants_with_due_work(_now())

    async def candidates(session):
        # A batch claim's read: the first due jobs of the next tenants in the rotation.
        found = await JobRepository(session).due_candidates(
            first_tenant, _now(), 10, skip_locked=skip_locked
        )
        return [row for rows in found.values() for row in rows]

    async def floor(session):
        return (await session.execute(text("SELECT 1"))).all()

    return [
        ("floor: SELECT 1 in a session (driver, pool)", lambda: read(floor)),
        ("job claim: Workers.claim() (one transaction)", claim),
        (
            "  lost_leases",
            lambda: read(
                lambda s: JobRepository(s).lost_leases(_now(), 5, skip_locked=skip_locked)
            ),
        ),
        (f"  tenants_with_due_work (a page of {ROTATION_PAGE})", lambda: read(tenants)),
        ("  (every tenant with due work: the read before pages)", lambda: read(all_tenants)),
        ("  due_candidates (10 tenants, 10 each)", lambda: read(candidates)),
        ("  (alternative: DISTINCT tenant_id of due jobs)", lambda: read(due_tenants)),
        (
            "connections due for refresh",
            lambda: read(
                lambda s: ConnectionRepository(s).due_for_refresh(_now(), SCHEDULER_BATCH)
            ),
        ),
        (
            "connections due for a health check",
            lambda: read(
                lambda s: ConnectionRepository(s).due_for_health_check(_now(), SCHEDULER_BATCH)
            ),
        ),
        ("webhook outbox due", lambda: read(outbox_due)),
        (
            "analytics due",
            lambda: read(lambda s: AnalyticsRepository(s).due(_now(), ANALYTICS_BATCH)),
        ),
    ]


async def due_tenants(session) -> list:
    """What ``tenants_with_due_work`` could be: cost by due jobs, not by tenants."""
    result = await session.execute(
        select(PublishJobRow.tenant_id)
        .where(_due(_now()))
        .distinct()
        .order_by(PublishJobRow.tenant_id)
    )
    return list(result.scalars())


async def outbox_due(session) -> list:
    """The read of a deliverer's claim (``outbox.due_query``; the claim then leases the rows)."""
    sqlite = session.bind.dialect.name == "sqlite"
    return (await session.execute(due_query(_now(), OUTBOX_BATCH, skip_locked=not sqlite))).all()


def _now() -> datetime:
    return datetime.now(UTC)


# -- one database ----------------------------------------------------------------------------


async def open_gateway(url: str, tmp: Path) -> Gateway:
    raw = {
        "core": {"data_dir": str(tmp)},
        "database": {"url": url},
        "vault": {"keys": [f"bench:{generate_key()}"]},
        "logging": {"level": "warning", "format": "json"},
    }
    settings = settings_from_mapping(raw)
    configure_logging(settings.logging)
    gateway = Gateway.from_settings(settings, entry_points=False)
    await gateway.open_storage()  # runs the migrations
    return gateway


async def measure(kind: str, url: str, tmp: Path, args) -> None:
    data = DataSet(args.tenants, args.connections, args.jobs, args.deliveries)
    gateway = await open_gateway(url, tmp)
    try:
        started = time.perf_counter()
        if kind == "SQLite":
            # The bulk load needs the file to itself (the checkpointer holds a connection).
            await gateway.close_storage()
            await asyncio.to_thread(load_sqlite, url.split("///", 1)[1], data)
            await gateway.open_storage()
        else:
            await load_postgres(url, data)
        loaded = time.perf_counter() - started
        results = [await timed(gateway, name, run, args.runs) for name, run in queries(gateway)]
        report(kind, data, loaded, results, args.runs, [])
        if args.index:
            async with gateway.engine.begin() as conn:
                for sql in args.index:
                    await conn.exec_driver_sql(sql)
                if kind == "PostgreSQL":
                    await conn.exec_driver_sql("ANALYZE publish_jobs")
            results = [await timed(gateway, name, run, args.runs) for name, run in queries(gateway)]
            report(kind, data, loaded, results, args.runs, args.index)
    finally:
        await gateway.close_storage()


def report(
    kind: str, data: DataSet, loaded: float, results: list[dict], runs: int, indexes: list[str]
) -> None:
    due = data.due
    if indexes:
        print(f"\n{kind}, again with the extra indexes:")
        for sql in indexes:
            print(f"  {sql}")
        table(results, runs)
        return
    print(
        f"\n{kind}: {data.tenants:,} tenants, {data.connections:,} connections, {data.jobs:,} "
        f"jobs, {data.deliveries:,} webhook deliveries, loaded in {loaded:.0f} s"
    )
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"due now: {due['jobs']:,} jobs (+{due['lost']} lost leases), {due['refresh']:,} "
        f"refreshes, {due['health']:,} health checks, {due['outbox']:,} deliveries, "
        f"{due['analytics']:,} analytics collections"
    )
    table(results, runs)


def table(results: list[dict], runs: int) -> None:
    title = f"query ({runs} runs)"
    print(f"{title:<46} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'rows':>5} {'server ms':>9}")
    for r in results:
        server = "-" if r["server"] is None else f"{r['server']:.2f}"
        print(
            f"{r['name']:<46} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['max']:>7.2f} {r['rows']:>5}"
            f" {server:>9}"
        )
    print("plans:")
    for r in results:
        if r["name"].startswith(("floor", "job claim")):
            continue  # the claim's queries are listed one by one
        for n, plan in enumerate(r["plans"], 1):
            label = r["name"].strip() + (f" [{n}]" if len(r["plans"]) > 1 else "")
            print(f"  {label}:")
            for line in plan:
                print(f"    {line}")


async def main(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-scheduler-"))
    if args.only in (None, "sqlite"):
        await measure("SQLite", f"sqlite+aiosqlite:///{tmp}/scheduler.db", tmp, args)
        (tmp / "scheduler.db").unlink()
    if args.only in (None, "postgres"):
        async with postgres_database("gw_bench_scheduler") as url:
            await measure("PostgreSQL", url, tmp, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--connections", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=1_000)
    parser.add_argument("--deliveries", type=int, default=None, help="default: jobs / 2")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--only", choices=("sqlite", "postgres"))
    parser.add_argument("--index", action="append", default=[], help="an extra CREATE INDEX")
    arguments = parser.parse_args()
    if arguments.deliveries is None:
        arguments.deliveries = arguments.jobs // 2
    asyncio.run(main(arguments))
