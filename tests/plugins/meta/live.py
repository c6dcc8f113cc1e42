"""A gateway in sandbox mode on a real port with the Meta plugin, and helpers to drive it."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

import plugins.meta
from gateway import admin
from gateway.host import Gateway
from gateway.jobs.worker import Workers
from gateway.ops.browser import browser, consent
from gateway.web.app import create_app

from ...conftest import auth, settings_for
from ...support import free_port

GRAPH = "/graph.facebook.com"


@dataclass
class MetaLive:
    base: str
    gateway: Gateway
    key: admin.IssuedKey
    http: aiohttp.ClientSession

    def sandbox(self, path: str) -> str:
        return f"{self.base}/sandbox/meta{path}"

    async def api(self, method: str, path: str, *, headers_extra=None, **kwargs):
        headers = {**auth(self.key), **(headers_extra or {})}
        async with self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs) as r:
            body = await r.json(content_type=None) if r.content_length != 0 else None
            return r.status, body

    async def control(self, method: str, name: str, **kwargs):
        async with self.http.request(method, self.sandbox(f"/_control/{name}"), **kwargs) as r:
            assert r.status < 300, await r.text()
            return await r.json()

    async def state(self) -> dict:
        return await self.control("GET", "state")

    async def fault(self, **spec) -> None:
        await self.control("POST", "faults", json=spec)

    async def advance(self, seconds: float) -> None:
        await self.control("POST", "clock", json={"advanceSeconds": seconds})

    async def connect(self, **dialog: str) -> tuple[int, dict | None]:
        """Start, the login dialog (auto-approved; ``declined=`` unticks permissions), callback."""
        status, started = await self.api("POST", "/api/oauth/meta/start", json={})
        assert status == 200, started
        callback = await consent(self.http, started["authorizationUrl"], query=dialog)
        async with self.http.get(callback, allow_redirects=False) as response:
            return response.status, await response.json(content_type=None)

    async def accounts(self) -> tuple[str, dict[str, dict]]:
        """Connect; the connection id and its accounts by kind (the first Page, the IG account)."""
        status, body = await self.connect()
        assert status == 200, body
        connection_id = body["connectionId"]
        status, listed = await self.api("GET", f"/api/connections/{connection_id}/accounts")
        assert status == 200, listed
        by_kind: dict[str, dict] = {}
        for account in listed["data"]:
            by_kind.setdefault(account["kind"], account)
        return connection_id, by_kind

    async def publish(self, connection_id: str, account: dict, **fields) -> tuple[int, dict]:
        body = {"connectionId": connection_id, "accountId": account["id"], **fields}
        return await self.api("POST", "/api/publish", json=body)

    async def queued(self, connection_id: str, account: dict, **fields) -> dict:
        status, accepted = await self.publish(connection_id, account, **fields)
        assert status == 202, accepted
        return accepted

    async def run_jobs(self) -> bool:
        return await Workers(self.gateway, 1).run_once()

    async def job(self, job_id: str) -> dict:
        status, body = await self.api("GET", f"/api/jobs/{job_id}")
        assert status == 200, body
        return body


async def start_meta(
    aiohttp_server, tmp_path, database_url=None, *, extra=(), **sections
) -> MetaLive:
    port = free_port()
    defaults = {
        "server": {"port": port},
        "sandbox": {"auto_approve": True},
        "connections": {"background": False},
        "jobs": {"concurrency": 0},
        "webhooks": {"background": False},
    }
    for name, values in sections.items():
        defaults.setdefault(name, {}).update(values)
    settings = settings_for(tmp_path, database_url, **defaults)
    gateway = Gateway.from_settings(
        settings, extra_plugins=[("meta", plugins.meta), *extra], entry_points=False
    )
    await aiohttp_server(create_app(gateway), port=port)
    key = await admin.create_tenant(gateway, "acme")
    return MetaLive(f"http://127.0.0.1:{port}", gateway, key, browser())
