"""Core figures: cold start to /readyz, idle RSS, and GET /api/platforms at 50 concurrent clients.

Run with `make bench` (or `.venv/bin/python bench/core.py`). It starts a real `gateway serve`
process on a free loopback port with a throw-away SQLite database, and drives it from this
process over real sockets. The client shares the machine's cores with the server, so the
throughput is a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_ready(base: str, deadline: float) -> float:
    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() - started < deadline:
            try:
                async with session.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return time.perf_counter() - started
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.01)
    raise RuntimeError("gateway did not become ready")


async def load(
    base: str, key: str, clients: int, requests: int, path: str = "/api/platforms"
) -> dict[str, float]:
    latencies: list[float] = []
    remaining = requests
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=clients)

    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                async with session.get(f"{base}{path}") as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        # Warm up connections and caches before timing.
        await asyncio.gather(*(session.get(f"{base}/api/platforms") for _ in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--database-url", help="default: a throw-away SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            GATEWAY_CORE_DATA_DIR=f"{tmp}/var",
            GATEWAY_DATABASE_URL=args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db",
            GATEWAY_LOGGING_LEVEL="warning",
        )
        gateway = [sys.executable, "-m", "gateway"]
        created = subprocess.run(
            [*gateway, "tenants", "create", "bench", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        key = json.loads(created.stdout)["apiKey"]
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        launched = time.perf_counter()
        server = subprocess.Popen(
            [*gateway, "serve", "--port", str(port)],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(wait_ready(base, deadline=60))
            cold_start = time.perf_counter() - launched
            time.sleep(2)
            idle_rss = rss_mib(server.pid)
            figures = asyncio.run(load(base, key, args.clients, args.requests))
            baseline = asyncio.run(load(base, key, args.clients, args.requests, "/healthz"))
            loaded_rss = rss_mib(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"cold start to /readyz ready: {cold_start * 1000:.0f} ms (process launch to first 200)")
    print(f"idle RSS after start:        {idle_rss:.1f} MiB (after the load: {loaded_rss:.1f} MiB)")
    print(
        f"GET /api/platforms, {args.clients} concurrent clients, {figures['requests']} requests: "
        f"{figures['rps']:.0f} req/s, p50 {figures['p50_ms']:.1f} ms, "
        f"p99 {figures['p99_ms']:.1f} ms"
    )
    print(
        f"GET /healthz (no auth, no database), same load: {baseline['rps']:.0f} req/s, "
        f"p50 {baseline['p50_ms']:.1f} ms, p99 {baseline['p99_ms']:.1f} ms"
    )


if __name__ == "__main__":
    main()
