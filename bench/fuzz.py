"""A long schemathesis run against a real `gateway serve`, on SQLite and on PostgreSQL.

Run with `.venv/bin/python bench/fuzz.py [--examples 250] [--seed 7] [--database sqlite|postgres]`.
The test suite fuzzes every operation briefly (tests/gateway/web/test_openapi.py, 40 examples,
seed 1, every check and the stateful phase); this is the same run made longer, to find what a
short one misses. Each database gets its own server, a throw-away database and a tenant key;
the script prints, per database, the operations fuzzed, the failures schemathesis found and
the time it took, then schemathesis's own failure report. Exit status 1 when anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.core import free_port  # noqa: E402
from tests.conftest import (  # noqa: E402
    TEST_KEY,
    _drop_postgres_database,
    _postgres_database,
)

# Refused by rules beyond their schema (a platform's verdict on a key, an unknown OAuth state, an
# address netguard refuses): fuzzed for every check but "schema-valid input is accepted".
JUDGED_BY_OTHERS = "^(create_connection|create_endpoint|oauth_callback|oauth_start)$"


def serve(database_url: str, data: Path) -> tuple[subprocess.Popen, str, str]:
    """A `gateway serve` on a free port; its base URL and a new tenant's API key."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_CORE_DATA_DIR=str(data),
        GATEWAY_DATABASE_URL=database_url,
        GATEWAY_VAULT_KEYS=TEST_KEY,
        GATEWAY_SERVER_PORT=str(port),
        GATEWAY_AUTH_FAILURE_LIMIT="0",  # a fuzzer's hundreds of bad keys are not an attack
    )
    run = [sys.executable, "-m", "gateway"]
    tenant = subprocess.run(
        [*run, "tenants", "create", "fuzz", "--json"], env=env, capture_output=True, check=True
    )
    key = json.loads(tenant.stdout)["apiKey"]
    log = (data / "serve.log").open("wb")
    process = subprocess.Popen([*run, "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=1):
                return process, base, key
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"gateway serve did not become ready; see {data / 'serve.log'}")


def fuzz(base: str, key: str, examples: int, seed: int, *args: str) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{base}/openapi.json",
        "--header",
        f"Authorization: Bearer {key}",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--no-color",
        "--generation-database",
        ":memory:",
        *args,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return result.returncode, result.stdout


def one_database(name: str, url: str, examples: int, seed: int) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        process, base, key = serve(url, Path(tmp))
        try:
            started = time.perf_counter()
            first = fuzz(
                base, key, examples, seed, "--exclude-operation-id-regex", JUDGED_BY_OTHERS
            )
            second = fuzz(
                base,
                key,
                examples,
                seed,
                "--include-operation-id-regex",
                JUDGED_BY_OTHERS,
                "--exclude-checks",
                "positive_data_acceptance",
            )
            took = time.perf_counter() - started
        finally:
            process.terminate()
            process.wait(30)
    failed = [out for code, out in (first, second) if code != 0]
    print(
        f"{name}: {examples} examples a phase, seed {seed}: "
        f"{'no failures' if not failed else f'{len(failed)} run(s) failed'} in {took:.0f} s"
    )
    for out in failed:
        print(out[out.find("FAILURES") :] if "FAILURES" in out else out[-6000:])
    return not failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=250)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if args.database in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{tmp}/fuzz.db"
            ok &= one_database("SQLite", url, args.examples, args.seed)
    if args.database in ("postgres", "both"):
        url = asyncio.run(_postgres_database())
        try:
            ok &= one_database("PostgreSQL", url, args.examples, args.seed)
        finally:
            asyncio.run(_drop_postgres_database(url))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
