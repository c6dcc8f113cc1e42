"""`gateway status`: what it reports about the config, database, tenants and server."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web

from gateway import admin
from gateway.db.migrate import head_revision
from gateway.host import Gateway
from gateway.ops.status import gather, render

from ...conftest import settings_for
from ...support import free_port


async def report_for(settings, environ=None):
    return await gather(settings, chosen_by="default", environ=environ or {})


async def test_a_sqlite_database_not_created_yet_is_reported_and_left_uncreated(tmp_path):
    settings = settings_for(tmp_path, server={"port": free_port()})
    report = await report_for(settings)
    assert report["database"]["reachable"] is False
    assert report["database"]["error"].startswith("no such file yet")
    assert report["tenants"] is None
    assert not (tmp_path / "gateway.db").exists()
    assert report["server"]["answering"] is False
    assert report["server"]["detail"] == "nothing answers (connection refused)"


async def test_a_migrated_database_with_tenants(tmp_path):
    settings = settings_for(tmp_path, server={"port": free_port()})
    gateway = Gateway.from_settings(settings, entry_points=False)
    await gateway.open_storage()
    try:
        first = await admin.create_tenant(gateway, "acme")
        await admin.create_key(gateway, first.tenant_id)
        await admin.create_tenant(gateway, "globex")
    finally:
        await gateway.close_storage()
    report = await report_for(settings)
    database = report["database"]
    assert database["reachable"] is True and database["error"] is None
    assert database["revision"] == head_revision() and database["upToDate"] is True
    assert report["tenants"]["count"] == 2
    assert [(t["name"], t["activeKeys"]) for t in report["tenants"]["items"]] == [
        ("acme", 2),
        ("globex", 1),
    ]
    text = render(report)
    assert f"migrations: {head_revision()} (up to date)" in text
    assert "tenants:    2" in text


async def test_an_empty_database_is_behind_head(tmp_path):
    (tmp_path / "gateway.db").write_bytes(b"")  # an empty file is an empty SQLite database
    report = await report_for(settings_for(tmp_path, server={"port": free_port()}))
    assert report["database"]["reachable"] is True
    assert report["database"]["revision"] is None and report["database"]["upToDate"] is False
    assert "migrations: none: an empty database" in render(report)


async def test_an_unreachable_database_is_reported_without_its_password(tmp_path):
    url = f"postgresql+asyncpg://gw:hunter2@127.0.0.1:{free_port()}/gw"
    report = await report_for(settings_for(tmp_path, url, server={"port": free_port()}))
    assert report["database"]["reachable"] is False
    assert report["database"]["location"] == url.replace("+asyncpg", "").replace("hunter2", "***")
    assert "Connect call failed" in report["database"]["error"]
    assert "hunter2" not in str(report) + render(report)


async def test_a_gateway_answering_on_the_configured_port(tmp_path, aiohttp_server):
    async def healthz(_request):
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    server = await aiohttp_server(app)
    report = await report_for(settings_for(tmp_path, server={"port": server.port}))
    assert report["server"]["answering"] is True
    assert f"127.0.0.1:{server.port}: a gateway answers" in render(report)


async def test_something_else_on_the_port_is_not_taken_for_a_gateway(tmp_path, aiohttp_server):
    server = await aiohttp_server(web.Application())  # 404 everywhere
    report = await report_for(settings_for(tmp_path, server={"port": server.port}))
    assert report["server"]["answering"] is False
    assert report["server"]["detail"] == "something else answers (HTTP 404)"


async def test_the_config_file_and_the_overrides_in_force(tmp_path):
    config = tmp_path / "gateway.toml"
    config.write_text("")
    settings = replace(settings_for(tmp_path, server={"port": free_port()}), source=str(config))
    environ = {"GATEWAY_DATABASE_URL": "secret-ish", "GATEWAY_CONFIG": str(config), "HOME": "/"}
    report = await gather(settings, chosen_by="GATEWAY_CONFIG", environ=environ)
    assert report["config"] == {
        "file": str(config),
        "found": True,
        "chosenBy": "GATEWAY_CONFIG",
        "environment": ["GATEWAY_DATABASE_URL"],
    }
    assert "secret-ish" not in render(report)
    assert Path(report["config"]["file"]).is_absolute()


@pytest.mark.postgres
async def test_a_postgres_database_is_read_as_it_is(tmp_path, postgres_url):
    report = await report_for(settings_for(tmp_path, postgres_url, server={"port": free_port()}))
    assert report["database"]["reachable"] is True
    assert report["database"]["revision"] is None  # status migrates nothing
    assert report["tenants"] is None
