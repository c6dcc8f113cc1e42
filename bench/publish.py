"""Accept path: POST /api/publish throughput and latency at 50 concurrent clients, /healthz too.

Run with `.venv/bin/python bench/publish.py [--database-url URL]`. A gateway serves on a free
loopback port with the test suite's example OAuth platform (its sandbox mounted in the same
process) and no workers, so only accepting is measured: schema check, tenant and account
lookups, the connector's check, and the committed job row. The client shares the process and
the two cores with the server: the figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures" / "example-plugin" / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from connections import PLATFORM, start_example_gateway  # noqa: E402


async def load(http, url, clients: int, requests: int, body=None) -> dict[str, float]:
    latencies: list[float] = []
    remaining = requests

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            if body is None:
                async with http.get(url) as response:
                    await response.read()
                    assert response.status == 200
            else:
                async with http.post(url, json=body) as response:
                    await response.read()
                    assert response.status == 202, response.status
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(int(len(latencies) * q), len(latencies) - 1)] * 1000  # noqa: E731
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p95": pick(0.95),
        "p99": pick(0.99),
    }


async def main(database_url: str | None, clients: int, requests: int) -> None:
    runner, _, base, key = await start_example_gateway(database_url, jobs={"concurrency": 0})
    try:
        connector = aiohttp.TCPConnector(limit=clients)
        headers = {"Authorization": f"Bearer {key}"}
        async with aiohttp.ClientSession(connector=connector, headers=headers) as http:
            async with http.post(f"{base}/api/oauth/{PLATFORM}/start", json={}) as r:
                started = await r.json()
            async with http.get(started["authorizationUrl"], allow_redirects=False) as consent:
                callback = consent.headers["Location"]
            async with http.get(callback) as r:
                connection_id = (await r.json())["connectionId"]
            async with http.get(f"{base}/api/connections/{connection_id}/accounts") as r:
                account_id = (await r.json())["data"][0]["id"]
            body = {"connectionId": connection_id, "accountId": account_id, "body": "Hello"}
            await load(http, f"{base}/api/publish", clients, clients, body)  # warm up
            publish = await load(http, f"{base}/api/publish", clients, requests, body)
            ceiling = await load(http, f"{base}/healthz", clients, requests)
    finally:
        await runner.cleanup()
    kind = "PostgreSQL" if database_url else "SQLite"
    for name, figures in (("POST /api/publish", publish), ("GET /healthz", ceiling)):
        print(
            f"{name} ({kind}, {clients} concurrent, {requests} requests): "
            f"{figures['rps']:.0f} req/s, p50 {figures['p50']:.1f} ms, "
            f"p95 {figures['p95']:.1f} ms, p99 {figures['p99']:.1f} ms"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    asyncio.run(main(args.database_url, args.clients, args.requests))
