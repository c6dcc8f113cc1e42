"""A standalone Meta sandbox on a real port, and a signed-in Graph client for it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from plugins.meta.sandbox import APP_ID, APP_SECRET, MetaSandbox

REDIRECT = "https://app.example.com/callback"


@dataclass
class Graph:
    """Raw HTTP against the sandbox, exactly as a client of the real Graph API would call it."""

    root: str
    sandbox: MetaSandbox
    http: aiohttp.ClientSession

    def url(self, path: str, host: str = "graph.facebook.com", version: str = "v25.0") -> str:
        prefix = f"/{version}" if version else ""
        return f"{self.root}/{host}{prefix}{path}"

    async def call(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.request(method, self.url(path), headers=headers, **kwargs) as r:
            return r.status, await r.json(), r.headers

    async def ok(self, method: str, path: str, token: str | None = None, **kwargs) -> dict:
        status, body, _ = await self.call(method, path, token, **kwargs)
        assert status == 200, body
        return body

    async def error(self, method: str, path: str, token: str | None = None, **kwargs) -> dict:
        status, body, _ = await self.call(method, path, token, **kwargs)
        assert status >= 400 and set(body) == {"error"}, body
        assert body["error"]["fbtrace_id"] and body["error"]["type"]
        return body["error"]

    async def code(self, scope: str = "", **extra: str) -> str:
        params = {
            "client_id": APP_ID,
            "redirect_uri": REDIRECT,
            "state": "s1",
            "scope": scope or ",".join(SCOPES),
            **extra,
        }
        dialog = f"{self.root}/www.facebook.com/v25.0/dialog/oauth"
        async with self.http.get(dialog, params=params, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            query = parse_qs(urlsplit(r.headers["Location"]).query)
        assert query["state"] == ["s1"]
        return query["code"][0]

    async def short_token(self, **extra: str) -> dict:
        code = await self.code(**extra)
        return await self.ok(
            "GET",
            "/oauth/access_token",
            params={
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "redirect_uri": REDIRECT,
                "code": code,
            },
        )

    async def long_token(self, short: str) -> dict:
        return await self.ok(
            "GET",
            "/oauth/access_token",
            params={
                "grant_type": "fb_exchange_token",
                "client_id": APP_ID,
                "client_secret": APP_SECRET,
                "fb_exchange_token": short,
            },
        )

    async def page_tokens(self) -> tuple[str, dict]:
        """A long-lived user token and the first Page (with its token and IG account)."""
        user = (await self.long_token((await self.short_token())["access_token"]))["access_token"]
        pages = await self.ok(
            "GET",
            "/me/accounts",
            user,
            params={"fields": "id,name,access_token,instagram_business_account"},
        )
        return user, pages["data"][0]

    async def advance(self, seconds: float) -> None:
        async with self.http.post(
            f"{self.root}/_control/clock", json={"advanceSeconds": seconds}
        ) as r:
            assert r.status == 200


SCOPES = (
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_posts",
    "read_insights",
    "publish_video",
    "instagram_basic",
    "instagram_content_publish",
    "instagram_manage_insights",
    "instagram_manage_contents",
)


async def start_graph(aiohttp_server, **options) -> Graph:
    sandbox = MetaSandbox(auto_approve=True, **options)
    server = await aiohttp_server(sandbox.build_app())
    return Graph(str(server.make_url("")).rstrip("/"), sandbox, aiohttp.ClientSession())


@pytest.fixture
async def graph(aiohttp_server):
    running = await start_graph(aiohttp_server)
    yield running
    await running.http.close()


@pytest.fixture
async def meta(aiohttp_server, tmp_path):
    from .live import start_meta

    running = await start_meta(aiohttp_server, tmp_path)
    yield running
    await running.http.close()
