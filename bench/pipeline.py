"""Publish pipeline figures: jobs end to end beside a plain aiohttp loop, and the 300 ms load tests.

Run with `.venv/bin/python bench/pipeline.py [--postgres] [--jobs N] [--concurrency 4,16]
[--only load|e2e]`.
Each run starts a gateway (bench/connections.py's set-up: the example OAuth platform, its sandbox
mounted in the same process, a throw-away SQLite database unless a URL is given), connects
accounts of several tenants by OAuth, then:

- end to end: ``--jobs`` jobs accepted through ``POST /api/publish`` (50 clients) and published
  by the gateway's workers at each ``--concurrency``, timed from the first accept to the last
  ``job.published`` event; beside it, in the same run and against the same sandbox, a plain
  asyncio + aiohttp loop with as many tasks sending the connector's request
  (``POST /v1/pages/{page}/posts``, same headers and body) and nothing else;
- the report's load tests: with every platform call delayed 300 ms by a sandbox fault, 100
  concurrent publish jobs (accept to all published) and 50 concurrent health checks (one per
  connection, ``--health-rounds`` times: the first round changes every connection's health,
  the later ones are the steady state), each against a 600 ms budget; beside the checks, the
  same 50 platform calls sent straight to the sandbox, the floor of one round trip.

``--only load`` runs the load tests alone, ``--only e2e`` the end-to-end figures alone.

The client, the gateway and the sandbox share one process and the machine's cores: every
figure is a floor. ``--profile`` prints where the gateway's end-to-end run spends its time.

The ``ceiling`` column is the ratio the gateway would reach if its workers cost nothing but the
platform call itself: one process doing, per job, the work of accepting it (as measured alone)
and the plain loop's call, ``accept / (accept + plain)``. While accepting a job costs about
as much as the call, that ceiling stays under one half whatever the workers do.

The ``bare relay`` column measures that bound: the same jobs POSTed by the same 50 clients to
a bare aiohttp handler that makes the platform call and answers (no queue, no database, no
checks), as a ratio of the plain loop. No design that takes jobs over HTTP in this process can
beat it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "example-plugin" / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from connections import (  # noqa: E402
    oauth_connect,
    postgres_database,
    start_example_gateway,
)
from sqlalchemy import event, func, select  # noqa: E402

from gateway import admin, hookimpl  # noqa: E402
from gateway.db.models import PublishJobRow  # noqa: E402
from gateway.eventloop import (  # noqa: E402
    CHOICES,
    freeze_startup_objects,
    loop_factory,
    loop_name,
)
from gateway.jobs.worker import Workers  # noqa: E402
from gateway.ops.browser import browser  # noqa: E402

POSTS = "/api.examplesocial.test/v1/pages/{page}/posts"
ME = "/api.examplesocial.test/v1/me"
HEALTH_CHECKS = 50
LATENCY_MS = 300
ACCEPT_CLIENTS = 50
# The sandbox allows 100 calls a minute per token: jobs are spread over enough connections that
# neither the gateway's run nor the plain loop's ever waits for that budget.
PER_TOKEN_BUDGET = 100


class FinishLine:
    """A plugin that notes when the expected number of jobs has been published."""

    def __init__(self) -> None:
        self.expected = 0
        self.published = 0
        self.unhappy: dict[str, int] = {}
        self.first = self.last = 0.0
        self.done = asyncio.Event()

    def expect(self, count: int) -> None:
        self.expected, self.published, self.unhappy = count, 0, {}
        self.done.clear()

    @hookimpl
    def track_event(self, event) -> None:
        if event.name == "job.published":
            self.published += 1
            self.last = time.perf_counter()
            if self.published == 1:
                self.first = self.last
            if self.published >= self.expected:
                self.done.set()
        elif event.name in ("job.failed", "job.dead"):
            self.unhappy[event.name] = self.unhappy.get(event.name, 0) + 1


@dataclass(frozen=True)
class Target:
    """One account to publish to, with what the plain loop needs to call the platform itself."""

    key: str
    connection_id: str
    account_id: str
    page: str
    token: str


@dataclass
class Bench:
    runner: object
    gateway: object
    base: str
    finish: FinishLine
    http: aiohttp.ClientSession
    targets: list[Target]

    @property
    def sandbox(self) -> str:
        return f"{self.base}/sandbox/examplesocial"

    async def close(self) -> None:
        await self.http.close()
        await self.runner.cleanup()


async def start(database_url: str | None, concurrency: int, tenants: int, connections: int):
    finish = FinishLine()
    runner, gateway, base, first_key = await start_example_gateway(
        database_url, plugins=(("bench-finish-line", finish),), jobs={"concurrency": concurrency}
    )
    keys = [first_key] + [
        (await admin.create_tenant(gateway, f"bench-{n}")).api_key for n in range(1, tenants)
    ]
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    targets: list[Target] = []
    for n in range(connections):
        key = keys[n % len(keys)]
        auth = {"Authorization": f"Bearer {key}"}
        async with browser(headers=auth) as tenant_http:
            connection_id = await oauth_connect(tenant_http, base, f"bench-user-{n}")
            async with tenant_http.get(f"{base}/api/connections/{connection_id}/accounts") as r:
                accounts = (await r.json())["data"]
        credentials = await gateway.tokens.credentials(connection_id)
        token = credentials.access_token.reveal()
        targets += [Target(key, connection_id, a["id"], a["externalId"], token) for a in accounts]
    freeze_startup_objects()  # as `gateway serve` does once started
    return Bench(runner, gateway, base, finish, http, targets)


async def post_jobs(bench: Bench, url: str, count: int, clients: int, job) -> float:
    """``count`` POSTs to ``url`` from ``clients`` clients, each answered 202; ``job(n,
    target)`` gives the n-th's JSON body and headers. Seconds taken."""
    remaining = list(range(count))

    async def client() -> None:
        while remaining:
            n = remaining.pop()
            body, headers = job(n, bench.targets[n % len(bench.targets)])
            async with bench.http.post(url, json=body, headers=headers) as response:
                assert response.status == 202, await response.text()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - started


async def accept(bench: Bench, count: int, clients: int, tag: str) -> float:
    """``count`` jobs through ``POST /api/publish`` from ``clients`` clients; seconds taken."""

    def job(n: int, target: Target) -> tuple[dict, dict]:
        body = {
            "connectionId": target.connection_id,
            "accountId": target.account_id,
            "body": f"Hello {tag} {n}",
        }
        return body, {"Authorization": f"Bearer {target.key}"}

    return await post_jobs(bench, f"{bench.base}/api/publish", count, clients, job)


async def through_gateway(bench: Bench, count: int, tag: str, limit: float = 300.0) -> dict:
    """Accept ``count`` jobs and wait until the workers have published them all."""
    bench.finish.expect(count)
    started = time.perf_counter()
    accepted = await accept(bench, count, min(ACCEPT_CLIENTS, count), tag)
    try:
        await asyncio.wait_for(bench.finish.done.wait(), limit)
    except TimeoutError:
        states = await job_states(bench)
        raise SystemExit(
            f"{tag}: only {bench.finish.published}/{count} published after {limit:.0f} s: "
            f"{states}, events {bench.finish.unhappy}"
        ) from None
    wall = bench.finish.last - started
    return {
        "wall": wall,
        "accept": accepted,
        "first": bench.finish.first - started,
        "rate": count / wall,
        **bench.finish.unhappy,
    }


async def job_states(bench: Bench) -> dict[str, int]:
    async with bench.gateway.session() as session:
        rows = await session.execute(
            select(PublishJobRow.status, func.count()).group_by(PublishJobRow.status)
        )
        return dict(rows.all())


async def plain_loop(bench: Bench, count: int, concurrency: int, tag: str) -> dict:
    """The connector's platform call, ``count`` times from ``concurrency`` tasks, nothing else."""
    remaining = list(range(count))
    failures = 0
    api = f"{bench.sandbox}{POSTS}"

    async with aiohttp.ClientSession() as http:

        async def task() -> None:
            nonlocal failures
            while remaining:
                n = remaining.pop()
                target = bench.targets[n % len(bench.targets)]
                async with http.post(
                    api.format(page=target.page),
                    json={"client_reference": f"plain_{tag}_{n}", "message": f"Hello {tag} {n}"},
                    headers={
                        "Authorization": f"Bearer {target.token}",
                        "Accept": "application/json",
                    },
                ) as response:
                    body = await response.json(content_type=None)
                    if response.status >= 400 or not body.get("id"):
                        failures += 1

        started = time.perf_counter()
        await asyncio.gather(*(task() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    return {"wall": wall, "rate": count / wall, "failures": failures}


async def bare_relay(bench: Bench, count: int, concurrency: int, tag: str) -> dict:
    """The least any gateway could do: ``count`` jobs POSTed by 50 clients (as to the gateway)
    to a bare aiohttp handler that makes the platform call itself, as the plain loop does, and
    answers: no queue, no database, no checks. What it reaches bounds every design that takes
    jobs over HTTP in this process, the gateway's included."""
    api = f"{bench.sandbox}{POSTS}"
    slots = asyncio.Semaphore(concurrency)  # as many calls at once as the gateway has workers
    failures = 0

    async with aiohttp.ClientSession() as platform:

        async def relay(request: web.Request) -> web.Response:
            nonlocal failures
            job = await request.json()
            async with (
                slots,
                platform.post(
                    api.format(page=job["page"]),
                    json={"client_reference": job["ref"], "message": job["message"]},
                    headers={
                        "Authorization": f"Bearer {job['token']}",
                        "Accept": "application/json",
                    },
                ) as response,
            ):
                body = await response.json(content_type=None)
                if response.status >= 400 or not body.get("id"):
                    failures += 1
            return web.json_response({"status": "published"}, status=202)

        app = web.Application()
        app.router.add_post("/relay", relay)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]

        def job(n: int, target: Target) -> tuple[dict, dict]:
            ref, message = f"relay_{tag}_{n}", f"Hello {tag} {n}"
            body = {"page": target.page, "token": target.token, "ref": ref, "message": message}
            return body, {"Authorization": "x"}  # a header, as the gateway's clients send

        try:
            clients = min(ACCEPT_CLIENTS, count)
            wall = await post_jobs(bench, f"http://127.0.0.1:{port}/relay", count, clients, job)
        finally:
            await runner.cleanup()
    return {"wall": wall, "rate": count / wall, "failures": failures}


async def fault(bench: Bench, method: str | None, path: str, delay_ms: int) -> None:
    spec = {"path": path, "delayMs": delay_ms, "count": 1_000_000}
    if method:
        spec["method"] = method
    async with bench.http.post(f"{bench.sandbox}/_control/faults", json=spec) as response:
        assert response.status in (200, 201), await response.text()


async def clear_faults(bench: Bench) -> None:
    async with bench.http.delete(f"{bench.sandbox}/_control/faults") as response:
        assert response.status in (200, 204), await response.text()


def one_per_connection(bench: Bench, count: int) -> list[Target]:
    seen, unique = set(), []
    for target in bench.targets:
        if target.connection_id not in seen:
            seen.add(target.connection_id)
            unique.append(target)
    return unique[:count]


async def health_checks(bench: Bench, count: int) -> tuple[float, list[str]]:
    """``count`` concurrent ``POST /api/connections/{id}/health-check``: wall seconds, statuses."""

    async def check(target: Target) -> str:
        async with bench.http.post(
            f"{bench.base}/api/connections/{target.connection_id}/health-check",
            headers={"Authorization": f"Bearer {target.key}"},
        ) as response:
            return (await response.json())["status"]

    started = time.perf_counter()
    statuses = await asyncio.gather(*(check(t) for t in one_per_connection(bench, count)))
    return time.perf_counter() - started, statuses


async def plain_health_calls(bench: Bench, count: int) -> float:
    """The floor: the connector's health call (``GET /v1/me``), ``count`` at once, nothing else."""
    url = f"{bench.sandbox}{ME}"
    async with aiohttp.ClientSession() as http:

        async def call(target: Target) -> None:
            headers = {"Authorization": f"Bearer {target.token}", "Accept": "application/json"}
            async with http.get(url, headers=headers) as response:
                assert response.status == 200, await response.text()
                await response.json(content_type=None)

        started = time.perf_counter()
        await asyncio.gather(*(call(t) for t in one_per_connection(bench, count)))
        return time.perf_counter() - started


def profile_report(profiler: cProfile.Profile, lines: int = 25) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(lines)
    return out.getvalue()


@contextlib.asynccontextmanager
async def database(args) -> AsyncIterator[str | None]:
    """``--postgres``: a fresh PostgreSQL database per gateway; else the gateway's own SQLite."""
    if not args.postgres:
        yield None
        return
    async with postgres_database("gw_bench_pipeline") as url:
        yield url


async def end_to_end(args, concurrency: int) -> dict:
    async with database(args) as url:
        return await _end_to_end(args, concurrency, url)


async def _end_to_end(args, concurrency: int, url: str | None) -> dict:
    bench = await start(url, concurrency, args.tenants, args.connections)
    try:
        warm = min(100, args.jobs)
        await plain_loop(bench, warm, concurrency, f"warm-plain-{concurrency}")
        await through_gateway(bench, warm, f"warm-{concurrency}")
        plain = await plain_loop(bench, args.jobs, concurrency, f"plain-{concurrency}")
        await bare_relay(bench, warm, concurrency, f"warm-relay-{concurrency}")
        relay = await bare_relay(bench, args.jobs, concurrency, f"relay-{concurrency}")
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        with StatementCounter(bench.gateway.engine) as sql:
            gateway = await through_gateway(bench, args.jobs, f"e2e-{concurrency}")
        if profiler:
            profiler.disable()
            print(f"--- profile of the gateway run, concurrency {concurrency} ---")
            print(profile_report(profiler))
        split = await accept_then_drain(bench, args.jobs, concurrency, f"split-{concurrency}")
        states = await job_states(bench)
    finally:
        await bench.close()
    expected = {"published": 2 * args.jobs + warm}
    if states != expected:
        raise SystemExit(f"concurrency {concurrency}: jobs ended {states}, expected {expected}")
    return {
        "concurrency": concurrency,
        "gateway": gateway,
        "plain": plain,
        "relay": relay,
        "split": split,
        "sql": sql.statements / args.jobs,
        "checkouts": sql.checkouts / args.jobs,
        "commits": sql.commits / args.jobs,
        "trips": sql.trips / args.jobs,
    }


async def accept_then_drain(bench: Bench, count: int, concurrency: int, tag: str) -> dict:
    """The halves apart: accept ``count`` jobs with no worker running, then let workers drain."""
    gateway = bench.gateway
    await gateway.workers.stop()
    gateway.workers = None
    started = time.perf_counter()
    await accept(bench, count, min(ACCEPT_CLIENTS, count), tag)
    accept_rate = count / (time.perf_counter() - started)
    bench.finish.expect(count)
    gateway.workers = Workers(gateway, concurrency)
    started = time.perf_counter()
    gateway.workers.start()
    await asyncio.wait_for(bench.finish.done.wait(), 300)
    return {"accept": accept_rate, "drain": count / (bench.finish.last - started)}


class StatementCounter:
    """Counts, while open: the SQL statements sent through SQLAlchemy, the pooled connections
    checked out, the transactions committed (SQLite's one writer takes them one at a time)
    and, on SQLite, the trips to aiosqlite's threads (each statement through SQLAlchemy is
    several; the gateway's one-trip paths, which SQLAlchemy's events do not see, are one).
    """

    def __init__(self, engine) -> None:
        self.engine = engine.sync_engine
        self.statements = self.checkouts = self.commits = self.trips = 0
        self._patched = None

    def _statement(self, *_args) -> None:
        self.statements += 1

    def _checkout(self, *_args) -> None:
        self.checkouts += 1

    def _commit(self, *_args) -> None:
        self.commits += 1

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine.pool, "checkout", self._checkout)
        event.listen(self.engine, "commit", self._commit)
        if self.engine.dialect.driver == "aiosqlite":
            import aiosqlite

            # Every call aiosqlite makes on its thread goes through this one method.
            original = self._patched = aiosqlite.Connection._execute
            counter = self

            async def counted(connection, fn, *args, **kwargs):
                counter.trips += 1
                return await original(connection, fn, *args, **kwargs)

            aiosqlite.Connection._execute = counted
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine.pool, "checkout", self._checkout)
        event.remove(self.engine, "commit", self._commit)
        if self._patched is not None:
            import aiosqlite

            aiosqlite.Connection._execute = self._patched


async def load_tests(args, concurrency: int) -> dict:
    async with database(args) as url:
        return await _load_tests(args, concurrency, url)


async def _load_tests(args, concurrency: int, url: str | None) -> dict:
    bench = await start(url, concurrency, args.tenants, args.connections)
    try:
        await through_gateway(bench, 100, f"warm-load-{concurrency}")
        await fault(bench, None, "/api.examplesocial.test/*", LATENCY_MS)
        publish = await through_gateway(bench, 100, f"load-{concurrency}")
        # The first round is each connection's first check (a health change, with its event);
        # the later ones are the steady state. The plain calls, between them, are the floor.
        checks, plain = [], []
        for _ in range(args.health_rounds):
            wall, statuses = await health_checks(bench, HEALTH_CHECKS)
            bad = [s for s in statuses if s != "healthy"]
            if bad:
                raise SystemExit(f"health checks: {len(bad)} not healthy: {sorted(set(bad))}")
            checks.append(wall)
            plain.append(await plain_health_calls(bench, HEALTH_CHECKS))
        await clear_faults(bench)
    finally:
        await bench.close()
    return {"concurrency": concurrency, "publish": publish, "checks": checks, "plain": plain}


async def main(args) -> None:
    # Per token: the warm-up and the timed run, through the gateway and the plain loop.
    needed = -(-(3 * args.jobs + 200) // (PER_TOKEN_BUDGET - 10))
    if args.connections < needed:
        raise SystemExit(f"--connections {args.connections} is too few for --jobs {args.jobs}")
    kind = "PostgreSQL" if args.postgres else "SQLite"
    rows = [await end_to_end(args, c) for c in args.concurrency] if args.only != "load" else []
    loads = [await load_tests(args, c) for c in args.load_concurrency] if args.only != "e2e" else []

    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"event loop: {loop_name(asyncio.get_running_loop())}")
    if rows:
        print_end_to_end(args, kind, rows)
    if loads:
        print_load_tests(kind, loads)


def print_end_to_end(args, kind: str, rows: list[dict]) -> None:
    print(
        f"End to end, {args.jobs} jobs ({kind}; {args.tenants} tenants, "
        f"{args.connections} connections; sandbox answering at once)"
    )
    print(
        f"{'workers':>8} {'gateway jobs/s':>15} {'plain loop calls/s':>19} {'ratio':>6}"
        f" {'ceiling':>8} {'bare relay':>11} {'accept alone/s':>15} {'drain alone/s':>14}"
        f" {'SQL/job':>8}"
        f" {'checkouts/job':>14}"
        f" {'commits/job':>12} {'trips/job':>10}"
    )
    for row in rows:
        g, p, split, relay = row["gateway"], row["plain"], row["split"], row["relay"]
        if relay["failures"]:
            raise SystemExit(f"the bare relay's platform calls failed {relay['failures']} times")
        ceiling = split["accept"] / (split["accept"] + p["rate"])
        print(
            f"{row['concurrency']:>8} {g['rate']:>15.0f} {p['rate']:>19.0f}"
            f" {g['rate'] / p['rate']:>6.2f} {ceiling:>8.2f} {relay['rate'] / p['rate']:>11.2f}"
            f" {split['accept']:>15.0f} {split['drain']:>14.0f}"
            f" {row['sql']:>8.1f} {row['checkouts']:>14.1f} {row['commits']:>12.2f}"
            f" {row['trips'] or float('nan'):>10.1f}"
        )


def print_load_tests(kind: str, loads: list[dict]) -> None:
    budget = 2 * LATENCY_MS
    print(f"Load tests: every platform call delayed {LATENCY_MS} ms; budget {budget} ms ({kind})")
    print(
        f"{'workers':>8} {'100 jobs: accepted':>19} {'first published':>16} {'last published':>15}"
    )
    for row in loads:
        publish = row["publish"]
        wall = publish["wall"] * 1000
        print(
            f"{row['concurrency']:>8} {publish['accept'] * 1000:>16.0f} ms"
            f" {publish['first'] * 1000:>13.0f} ms {wall:>12.0f} ms {verdict(wall, budget):>4}"
        )
    rounds = len(loads[0]["checks"])
    print(
        f"{HEALTH_CHECKS} concurrent health checks, {rounds} rounds (the first changes every"
        f" connection's health);\nplain loop: the same {HEALTH_CHECKS} GET /v1/me straight to"
        " the sandbox, one platform round trip"
    )
    print(
        f"{'workers':>8} {'first round':>12} {'median':>10} {'slowest':>10} {'':>4}"
        f" {'plain loop (median)':>20}"
    )
    for row in loads:
        checks = [wall * 1000 for wall in row["checks"]]
        middle = statistics.median(checks)
        print(
            f"{row['concurrency']:>8} {checks[0]:>9.0f} ms {middle:>7.0f} ms"
            f" {max(checks):>7.0f} ms {verdict(middle, budget):>4}"
            f" {statistics.median(row['plain']) * 1000:>17.0f} ms"
        )


def verdict(ms: float, budget: float) -> str:
    return "ok" if ms <= budget else "OVER"


def integers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL (PG_TEST_URL)")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--concurrency", type=integers, default=[4, 16, 64])
    parser.add_argument("--load-concurrency", type=integers, default=[100])
    parser.add_argument("--health-rounds", type=int, default=5, help="rounds of health checks")
    parser.add_argument("--tenants", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--event-loop", choices=CHOICES, default="auto")
    parser.add_argument(
        "--only",
        choices=("e2e", "load"),
        help="run only the end-to-end figures or only the 300 ms load tests",
    )
    arguments = parser.parse_args()
    # The loop `gateway serve` would run on (server.event_loop = "auto"); the plain loop shares it.
    with asyncio.Runner(loop_factory=loop_factory(arguments.event_loop)) as runner:
        runner.run(main(arguments))
