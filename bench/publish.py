"""Accept path: POST /api/publish throughput and latency at 50 concurrent clients, /healthz too.

Run with `.venv/bin/python bench/publish.py [--database postgres] [--idempotency-keys]
[--rounds N]`. The gateway runs in its own process on a free loopback port, with the test
suite's example OAuth platform (its sandbox mounted in that process) and no workers, so only
accepting is measured: auth, schema check, ownership, the connector's check, and the committed
job row (with ``--idempotency-keys``, each request has its own key). This process drives it over
real sockets with a lean HTTP/1.1 keep-alive client (one connection per concurrent client, like
wrk), so the client costs the server little of the machine's two cores; then it checks that
every `202` left exactly one job row behind. `GET /healthz` (no auth, no database) is measured
in the same run as the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from gateway.eventloop import CHOICES, loop_factory, loop_name

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("PG_TEST_URL", "postgresql://127.0.0.1:5432/test")
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection answering one request at a time (Content-Length only)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = _LENGTH.search(self.buffer, 0, end + 2)
        size = int(length.group(1)) if length else 0
        if len(self.buffer) < end + 4 + size:
            return
        status = int(self.buffer[9:12])
        body = bytes(self.buffer[end + 4 : end + 4 + size])
        del self.buffer[: end + 4 + size]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    def connection_lost(self, exc) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def send(self, request: bytes) -> tuple[int, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def http_request(method: str, path: str, host: str, key: str | None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def load(
    host: str,
    port: int,
    request: bytes | Callable[[], bytes],
    clients: int,
    requests: int,
    expect: int,
) -> tuple[dict[str, float], list[bytes]]:
    """``requests`` requests over ``clients`` connections; every answer must be ``expect``.

    ``request``: the bytes of every request, or a function making each one.
    """
    make = request if callable(request) else lambda: request
    loop = asyncio.get_running_loop()
    connections = [
        (await loop.create_connection(HttpConnection, host, port))[1] for _ in range(clients)
    ]
    latencies: list[float] = []
    bodies: list[bytes] = []
    remaining = requests

    async def client(connection: HttpConnection) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            status, body = await connection.send(make())
            latencies.append(time.perf_counter() - started)
            if status != expect:
                raise AssertionError(f"answered {status}, not {expect}: {body[:300]!r}")
            bodies.append(body)

    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        for connection in connections:
            connection.transport.close()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(int(len(latencies) * q), len(latencies) - 1)] * 1000

    figures = {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p95": pick(0.95),
        "p99": pick(0.99),
        "max": latencies[-1] * 1000,
    }
    return figures, bodies


# --- The server process ---


async def serve(database_url: str, profile: str | None, synchronous: str | None) -> None:
    """Start the gateway, connect one account, print where, then serve until stdin closes."""
    sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "example-plugin" / "src"))
    sys.path.insert(0, str(ROOT / "bench"))
    from connections import PLATFORM, start_example_gateway
    from sqlalchemy import func, select, text

    from gateway.db.models import PublishJobRow
    from gateway.ops.browser import browser, consent
    from gateway.web.app import freeze_startup_objects

    runner, gateway, base, key = await start_example_gateway(database_url, jobs={"concurrency": 0})
    if synchronous:
        await _sqlite_synchronous(gateway, synchronous)
    headers = {"Authorization": f"Bearer {key}"}
    async with browser(headers=headers) as http:
        async with http.post(f"{base}/api/oauth/{PLATFORM}/start", json={}) as r:
            started = await r.json()
        callback = await consent(http, started["authorizationUrl"])
        async with http.get(callback) as r:
            connection_id = (await r.json())["connectionId"]
        async with http.get(f"{base}/api/connections/{connection_id}/accounts") as r:
            account_id = (await r.json())["data"][0]["id"]
    ready = {
        "base": base,
        "key": key,
        "connectionId": connection_id,
        "accountId": account_id,
        "pid": os.getpid(),
    }
    await freeze_startup_objects(runner.app)  # as `gateway serve` does
    print(json.dumps(ready), flush=True)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := await stdin.readline():
        if line.strip() == b"cpu":
            times = os.times()
            print(json.dumps({"cpu": times.user + times.system}), flush=True)
        elif line.strip() == b"count":
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profile)
                profiler = None
            async with gateway.session() as session:
                count = await session.scalar(select(func.count()).select_from(PublishJobRow))
                sync = None
                if gateway.uses_sqlite:  # what the connections really use (0 off ... 3 extra)
                    sync = await session.scalar(text("PRAGMA synchronous"))
            inserter = gateway.inserter
            batch = inserter.answered / max(inserter.commits, 1)
            print(json.dumps({"jobs": count, "batch": batch, "sync": sync}), flush=True)
    await runner.cleanup()


async def _sqlite_synchronous(gateway, level: str) -> None:
    """Every SQLite connection from now on syncs at ``level`` (FULL: fsync at each commit)."""
    from sqlalchemy import event

    @event.listens_for(gateway.engine.sync_engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:  # runs after the gateway's own
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA synchronous={level}")
        cursor.close()

    await gateway.engine.dispose()  # the pooled connections reconnect with it


# --- The driver ---


async def drive(
    server: subprocess.Popen, clients: int, requests: int, rounds: int, label: str, keys: bool
) -> None:
    ready = json.loads(await asyncio.to_thread(server.stdout.readline))
    print(f"server pid {ready['pid']}", flush=True)
    base, key = ready["base"], ready["key"]
    host, port = base.removeprefix("http://").split(":")
    port = int(port)
    body = json.dumps(
        {"connectionId": ready["connectionId"], "accountId": ready["accountId"], "body": "Hello"}
    ).encode()
    plain = http_request("POST", "/api/publish", f"{host}:{port}", key, body)
    keyed = plain.replace(b"\r\n\r\n", b"\r\nIdempotency-Key: %s\r\n\r\n", 1)

    def with_a_key() -> bytes:  # the key lookup in the group commit, on every request
        return keyed % uuid.uuid4().hex.encode()

    publish = with_a_key if keys else plain
    healthz = http_request("GET", "/healthz", f"{host}:{port}", None)

    async def server_cpu() -> float:
        server.stdin.write(b"cpu\n")
        server.stdin.flush()
        return json.loads(await asyncio.to_thread(server.stdout.readline))["cpu"]

    async def measured(
        request: bytes | Callable[[], bytes], expect: int
    ) -> tuple[dict[str, float], list[bytes]]:
        before = await server_cpu()
        figures, bodies = await load(host, port, request, clients, requests, expect)
        figures["cpu_us"] = (await server_cpu() - before) / len(bodies) * 1e6
        return figures, bodies

    accepted = 0
    await load(host, port, publish, clients, clients * 4, 202)  # warm up
    accepted += clients * 4
    for round_no in range(1, rounds + 1):
        figures, bodies = await measured(publish, 202)
        accepted += len(bodies)
        job_ids = {json.loads(b)["jobId"] for b in bodies}
        assert len(job_ids) == len(bodies), "two requests were answered with the same job"
        ceiling, _ = await measured(healthz, 200)
        for name, f in (("POST /api/publish", figures), ("GET /healthz     ", ceiling)):
            print(
                f"round {round_no} {name} ({label}, {clients} concurrent, {requests} requests): "
                f"{f['rps']:6.0f} req/s, p50 {f['p50']:5.1f} ms, p95 {f['p95']:5.1f} ms, "
                f"p99 {f['p99']:5.1f} ms, max {f['max']:6.1f} ms; "
                f"server CPU {f['cpu_us']:.0f} us/request",
                flush=True,
            )
    server.stdin.write(b"count\n")
    server.stdin.flush()
    counted = json.loads(await asyncio.to_thread(server.stdout.readline))
    stored = counted["jobs"]
    print(
        f"accepted {accepted} jobs (202), {stored} job rows stored; "
        f"{counted['batch']:.1f} requests per group commit on average"
        + (f"; PRAGMA synchronous = {counted['sync']}" if counted["sync"] is not None else "")
    )
    if stored != accepted:
        raise SystemExit("MISMATCH: an accepted job is missing (or an extra one was stored)")


async def postgres_database(create: bool, name: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        if create:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--idempotency-keys", action="store_true", help="send each publish with its own key"
    )
    parser.add_argument(
        "--event-loop",
        choices=CHOICES,
        default="auto",
        help="the server's loop, as server.event_loop (auto: uvloop where installed)",
    )
    parser.add_argument("--profile", help="write the server's cProfile stats to this file")
    parser.add_argument(
        "--synchronous",
        choices=("NORMAL", "FULL", "EXTRA"),
        help="SQLite: override database.sqlite_synchronous (the default is FULL)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the server process
    args = parser.parse_args()
    if args.serve:
        with asyncio.Runner(loop_factory=loop_factory(args.event_loop)) as runner:
            runner.run(serve(args.serve, args.profile, args.synchronous))
        return

    import tempfile

    pg_name = f"gw_bench_{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        if args.database == "postgres":
            url = asyncio.run(postgres_database(True, pg_name))
        else:
            url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        command = [sys.executable, __file__, "--serve", url, "--event-loop", args.event_loop]
        if args.profile:
            command += ["--profile", args.profile]
        if args.synchronous:
            command += ["--synchronous", args.synchronous]
        server = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        probe = loop_factory(args.event_loop)()
        database = "PostgreSQL" if args.database == "postgres" else "SQLite"
        label = f"{database}, {loop_name(probe)}"
        probe.close()
        if args.database == "sqlite":
            label += f", synchronous={args.synchronous or 'FULL'}"
        try:
            if args.idempotency_keys:
                label += ", Idempotency-Key"
            asyncio.run(
                drive(
                    server, args.clients, args.requests, args.rounds, label, args.idempotency_keys
                )
            )
        finally:
            server.stdin.close()
            server.wait(timeout=60)
            if args.database == "postgres":
                asyncio.run(postgres_database(False, pg_name))


if __name__ == "__main__":
    main()
