"""Shared fixtures: settings on a temporary database, gateways with chosen plugins, API keys."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import make_url

from gateway import admin
from gateway.host import Gateway
from gateway.settings import Settings, settings_from_mapping

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN_DIR = ROOT / "tests" / "fixtures" / "example-plugin"
# The example plugin's source is importable for tests that register it by hand; only the
# discovery test pip-installs it so that it is found through its entry point.
sys.path.insert(0, str(EXAMPLE_PLUGIN_DIR / "src"))

TEST_KEY = "test1:" + base64.urlsafe_b64encode(b"k" * 32).decode()
POSTGRES_URL = os.environ.get("PG_TEST_URL", "postgresql://127.0.0.1:5432/test")


def settings_for(tmp_path: Path, database_url: str | None = None, **sections: Any) -> Settings:
    """Settings for a gateway whose files and database live under ``tmp_path``."""
    raw: dict[str, Any] = {
        "core": {"mode": "sandbox", "data_dir": str(tmp_path / "var")},
        "server": {"host": "127.0.0.1", "port": 8080},
        "database": {"url": database_url or f"sqlite+aiosqlite:///{tmp_path}/gateway.db"},
        "vault": {"keys": [TEST_KEY]},
        # Tests that exercise the workers turn them on; the rest need no queue polling.
        "jobs": {"concurrency": 0},
        "webhooks": {"background": False},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return settings_from_mapping(raw)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@pytest.fixture
def example_plugin():
    import gateway_example_plugin

    gateway_example_plugin.STARTED.clear()
    gateway_example_plugin.EVENTS.clear()
    return gateway_example_plugin


@pytest.fixture
def make_gateway(settings: Settings) -> Callable[..., Gateway]:
    """Build a gateway with only the default plugins plus ``plugins`` (name, object) pairs."""

    def build(
        plugins: tuple[tuple[str, Any], ...] = (), *, use_settings: Settings | None = None
    ) -> Gateway:
        return Gateway.from_settings(
            use_settings or settings, extra_plugins=plugins, entry_points=False
        )

    return build


@pytest.fixture
async def started_gateway(make_gateway, example_plugin) -> AsyncIterator[Gateway]:
    gateway = make_gateway((("example", example_plugin),))
    await gateway.start()
    yield gateway
    await gateway.stop()


@pytest.fixture
async def api(aiohttp_client, make_gateway, example_plugin):
    """An HTTP client on a real socket to a gateway with the example plugin, and its gateway."""
    from gateway.web.app import create_app

    gateway = make_gateway((("example", example_plugin),))
    client = await aiohttp_client(create_app(gateway))
    return client, gateway


@pytest.fixture
async def tenant(api) -> admin.IssuedKey:
    _, gateway = api
    return await admin.create_tenant(gateway, "acme")


def auth(key: admin.IssuedKey | str) -> dict[str, str]:
    value = key if isinstance(key, str) else key.api_key
    return {"Authorization": f"Bearer {value}"}


async def _postgres_database() -> str:
    """A fresh, empty database on the local PostgreSQL server; skips the test without one."""
    try:
        import asyncpg
    except ImportError:
        pytest.skip("asyncpg is not installed (pip install '.[postgres]')")
    try:
        admin_conn = await asyncio.wait_for(asyncpg.connect(POSTGRES_URL), timeout=5)
    except (TimeoutError, OSError, asyncpg.PostgresError) as err:
        pytest.skip(f"PostgreSQL is not reachable at {POSTGRES_URL} ({type(err).__name__}: {err})")
    name = f"gw_test_{uuid.uuid4().hex[:12]}"
    try:
        await admin_conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin_conn.close()
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    return f"{base}/{name}"


async def _drop_postgres_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request, tmp_path: Path) -> AsyncIterator[str]:
    """Each storage test runs on SQLite and on PostgreSQL (skipped with a reason without it)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/storage.db"
        return
    url = await _postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest.fixture
async def postgres_url():
    """A throw-away PostgreSQL database; skipped with the reason when there is no server."""
    url = await _postgres_database()
    try:
        yield url
    finally:
        await _drop_postgres_database(url)


@pytest.fixture
async def postgres_behind_proxy():
    """A throw-away PostgreSQL database reached through a relay the test can cut."""
    from .support import TcpProxy  # support imports this module

    url = await _postgres_database()
    upstream = urlsplit(POSTGRES_URL)
    proxy = await TcpProxy(upstream.hostname or "127.0.0.1", upstream.port or 5432).start()
    relayed = make_url(url).set(host="127.0.0.1", port=proxy.port)
    try:
        yield relayed.render_as_string(hide_password=False), proxy
    finally:
        await proxy.close()
        await _drop_postgres_database(url)


@pytest.fixture(scope="session")
def installed_example(tmp_path_factory) -> Path:
    """The example third-party distribution, really pip-installed into a target directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(EXAMPLE_PLUGIN_DIR),
        ],
        check=True,
        capture_output=True,
    )
    return target
