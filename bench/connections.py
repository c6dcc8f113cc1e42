"""Connection figures: OAuth round trip, token refresh latency, 50 concurrent health checks.

Run with `.venv/bin/python bench/connections.py`. A gateway in sandbox mode serves on a free
loopback port with a throw-away SQLite database and the test suite's example OAuth platform
(`tests/fixtures/example-plugin`), whose sandbox is mounted in the same process; every figure
crosses real sockets: client → gateway → sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "example-plugin" / "src"))

from gateway import admin  # noqa: E402
from gateway.host import Gateway  # noqa: E402
from gateway.ops.browser import browser, consent  # noqa: E402
from gateway.settings import settings_from_mapping  # noqa: E402
from gateway.vault import generate_key  # noqa: E402
from gateway.web.app import create_app  # noqa: E402

PLATFORM = "examplesocial"
POSTGRES_URL = os.environ.get("PG_TEST_URL", "postgresql://127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.asynccontextmanager
async def postgres_database(prefix: str = "gw_bench") -> AsyncIterator[str]:
    """A fresh database on the local PostgreSQL server (``PG_TEST_URL``), dropped afterwards.

    Yields its SQLAlchemy URL (``postgresql+asyncpg://…``).
    """
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin_conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin_conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin_conn.close()
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin_conn = await asyncpg.connect(POSTGRES_URL)
        try:
            await admin_conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin_conn.close()


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(int(len(ordered) * 0.95) - 1, 0)]
    return (
        f"n={len(ordered)} p50 {statistics.median(ordered) * 1000:.1f} ms, "
        f"p95 {p95 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"
    )


async def start_example_gateway(
    database_url: str | None = None, *, plugins: tuple = (), **sections: dict
) -> tuple[web.AppRunner, Gateway, str, str]:
    """A gateway with the example plugin on a free loopback port: (runner, gateway, URL, key).

    ``plugins``: more ``(name, plugin)`` pairs to register beside the example plugin.
    """
    import gateway_example_plugin

    from gateway.telemetry import configure_logging

    tmp = Path(tempfile.mkdtemp())
    port = free_port()
    raw = {
        "core": {"data_dir": str(tmp)},
        "server": {"port": port},
        "database": {"url": database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"},
        "vault": {"keys": [f"bench:{generate_key()}"]},
        "sandbox": {"auto_approve": True},
        "logging": {"level": "warning", "format": "json"},
        "connections": {"background": False},
        **sections,
    }
    settings = settings_from_mapping(raw)
    configure_logging(settings.logging)
    gateway = Gateway.from_settings(
        settings,
        extra_plugins=[("example", gateway_example_plugin), *plugins],
        entry_points=False,
    )
    runner = web.AppRunner(create_app(gateway), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    key = (await admin.create_tenant(gateway, "bench")).api_key
    return runner, gateway, f"http://127.0.0.1:{port}", key


async def oauth_connect(http: aiohttp.ClientSession, base: str, login_as: str) -> str:
    """One OAuth round trip (start, consent, callback) as ``login_as``: the new connection's id.

    ``http`` carries the tenant's API key and a browser's cookie jar (``browser()``); the
    example sandbox approves at once.
    """
    async with http.post(f"{base}/api/oauth/{PLATFORM}/start", json={}) as r:
        started = await r.json()
    callback = await consent(http, started["authorizationUrl"], query={"login_as": login_as})
    async with http.get(callback) as r:
        assert r.status == 200, await r.text()
        return (await r.json())["connectionId"]


async def main(rounds: int, connections: int) -> None:
    runner, gateway, base, key = await start_example_gateway()
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with browser(headers=headers) as http:

            async def oauth_round_trip(login_as: str) -> str:
                return await oauth_connect(http, base, login_as)

            round_trips, ids = [], []
            for i in range(rounds):
                started = time.perf_counter()
                ids.append(await oauth_round_trip(f"user-{i}"))
                round_trips.append(time.perf_counter() - started)

            refreshes = []
            for connection_id in ids:
                started = time.perf_counter()
                async with http.post(f"{base}/api/connections/{connection_id}/refresh") as r:
                    assert r.status == 200, await r.text()
                refreshes.append(time.perf_counter() - started)
            in_process = []
            for connection_id in ids:
                started = time.perf_counter()
                await gateway.tokens.refresh(connection_id, force=True)
                in_process.append(time.perf_counter() - started)

            while len(ids) < connections:
                ids.append(await oauth_round_trip(f"user-{len(ids)}"))
            checks = ids[:connections]
            started = time.perf_counter()

            async def check(connection_id: str) -> float:
                begun = time.perf_counter()
                async with http.post(f"{base}/api/connections/{connection_id}/health-check") as r:
                    body = await r.json()
                    assert body["status"] == "healthy", body
                return time.perf_counter() - begun

            each = await asyncio.gather(*(check(c) for c in checks))
            wall = time.perf_counter() - started
    finally:
        await runner.cleanup()

    print(f"OAuth round trip (start, consent, callback, accounts): {summary(round_trips)}")
    print(f"POST /api/connections/{{id}}/refresh (refresh + accounts): {summary(refreshes)}")
    print(f"token refresh alone (lease, grant, sealed write): {summary(in_process)}")
    print(
        f"{connections} concurrent health checks: wall {wall * 1000:.0f} ms; each {summary(each)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.connections))
