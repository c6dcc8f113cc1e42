"""A gateway in sandbox mode on a real port, with the example OAuth platform and a tenant."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp

from gateway import admin
from gateway.host import Gateway
from gateway.ops.browser import browser, consent
from gateway.web.app import create_app

from ...conftest import auth, settings_for
from ...support import free_port

PLATFORM = "examplesocial"
RETURN_URL = "https://app.example.com/connected"


@dataclass
class Live:
    """One running gateway: its base URL, the gateway object, a tenant key and a session."""

    base: str
    gateway: Gateway
    key: admin.IssuedKey
    http: aiohttp.ClientSession

    def sandbox(self, path: str) -> str:
        return f"{self.base}/sandbox/{PLATFORM}{path}"

    async def api(
        self, method: str, path: str, *, key=None, content_type=None, headers_extra=None, **kwargs
    ):
        headers = {**auth(key or self.key), **(headers_extra or {})}
        if content_type:
            headers["Content-Type"] = content_type
        async with self.http.request(method, f"{self.base}{path}", headers=headers, **kwargs) as r:
            body = await r.json(content_type=None) if r.content_length != 0 else None
            return r.status, body

    async def journal(self, path_glob: str = "*") -> list[dict]:
        async with self.http.get(
            self.sandbox("/_control/journal"), params={"path": path_glob}
        ) as r:
            return (await r.json())["requests"]

    async def revoke_grant(self, connection_id: str) -> None:
        """The user removes the app at the platform: the whole grant is revoked there."""
        credentials = await self.gateway.tokens.credentials(connection_id)
        revoke = {
            "token": credentials.refresh_token.reveal(),
            "client_id": f"{PLATFORM}-sandbox-client",
            "client_secret": f"{PLATFORM}-sandbox-secret",
        }
        url = self.sandbox("/api.examplesocial.test/oauth/revoke")
        async with self.http.post(url, data=revoke) as response:
            assert response.status == 200

    async def start(self, *, key=None, **body) -> dict:
        status, started = await self.api("POST", f"/api/oauth/{PLATFORM}/start", json=body, key=key)
        assert status == 200, started
        return started

    async def connect(
        self, *, return_url: str | None = None, login_as: str | None = None, key=None
    ) -> tuple[int, dict | None, str | None]:
        """The browser's trip: start, the go link, the consent page (auto-approved), callback."""
        started = await self.start(key=key, **({"returnUrl": return_url} if return_url else {}))
        query = {"login_as": login_as} if login_as else None
        callback = await consent(self.http, started["authorizationUrl"], query=query)
        return await self.follow_callback(callback)

    async def follow_callback(self, callback: str) -> tuple[int, dict | None, str | None]:
        async with self.http.get(callback, allow_redirects=False) as response:
            location = response.headers.get("Location")
            body = None if location else await response.json(content_type=None)
            return response.status, body, location


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def start_live(aiohttp_server, tmp_path, database_url=None, **sections) -> Live:
    import gateway_example_plugin

    port = free_port()
    defaults = {
        "server": {"port": port},
        "sandbox": {"auto_approve": True},
        "oauth": {"allowed_return_urls": ["https://app.example.com/"]},
        "connections": {"background": False},
        "jobs": {"concurrency": 0},
        "webhooks": {"background": False},
    }
    for name, values in sections.items():
        defaults.setdefault(name, {}).update(values)
    settings = settings_for(tmp_path, database_url, **defaults)
    gateway = Gateway.from_settings(
        settings, extra_plugins=[("example", gateway_example_plugin)], entry_points=False
    )
    await aiohttp_server(create_app(gateway), port=port)
    key = await admin.create_tenant(gateway, "acme")
    return Live(f"http://127.0.0.1:{port}", gateway, key, browser())
