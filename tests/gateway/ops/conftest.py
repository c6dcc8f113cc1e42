"""A storage-only gateway (the example plugins' platforms) on SQLite and PostgreSQL, seeded."""

from __future__ import annotations

import pytest

from gateway.host import Gateway

from ...conftest import settings_for
from .seed import seed


@pytest.fixture
async def seeded(tmp_path, database_url, example_plugin):
    gateway = Gateway.from_settings(
        settings_for(tmp_path, database_url),
        extra_plugins=[("example", example_plugin)],
        entry_points=False,
    )
    await gateway.open_storage()
    try:
        yield gateway, await seed(gateway)
    finally:
        await gateway.close_storage()
