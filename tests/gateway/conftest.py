"""A gateway with the example OAuth platform on a real port, for every test under tests/gateway."""

from __future__ import annotations

import pytest

from .connections.conftest import start_live


@pytest.fixture
async def live(aiohttp_server, tmp_path):
    running = await start_live(aiohttp_server, tmp_path)
    yield running
    await running.http.close()


@pytest.fixture
async def live_db(aiohttp_server, tmp_path, database_url):
    """``live`` on each database: SQLite, and PostgreSQL where there is one."""
    running = await start_live(aiohttp_server, tmp_path, database_url)
    yield running
    await running.http.close()
