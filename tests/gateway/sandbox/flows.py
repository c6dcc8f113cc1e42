"""How the tests reach the example sandbox: serving it, and the OAuth steps they repeat."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from yarl import URL

from .example import REDIRECT_URI, ExampleSandbox

MOUNT = "/sandbox/example"

AUTHORIZE = "/www.example.test/oauth/authorize"
TOKEN = "/api.example.test/oauth/token"
ME = "/api.example.test/v1/me"
POSTS = "/api.example.test/v1/posts"


@dataclass
class Served:
    """A sandbox on a real server, reached under ``prefix`` (its root)."""

    sandbox: ExampleSandbox
    client: TestClient
    prefix: str

    def root_url(self) -> str:
        return str(self.client.make_url(self.prefix or "/")).rstrip("/")

    async def request(self, method: str, path: str, **kwargs: Any) -> ClientResponse:
        """``path`` below the sandbox root (e.g. ``/api.example.test/v1/me``)."""
        kwargs.setdefault("allow_redirects", False)
        return await self.client.request(method, self.prefix + path, **kwargs)

    async def control(self, method: str, name: str, body: Any = None) -> tuple[int, Any]:
        response = await self.request(method, f"/_control/{name}", json=body)
        return response.status, await response.json(content_type=None)


async def serve(aiohttp_client: Any, sandbox: ExampleSandbox, mount: str) -> Served:
    if mount == "standalone":
        return Served(sandbox, await aiohttp_client(sandbox.build_app()), "")
    main = web.Application()

    async def own_route(request: web.Request) -> web.Response:
        return web.json_response({"main": True})

    # The main app keeps its own routes beside the mounted sandbox, as the gateway does.
    main.router.add_get("/healthz", own_route)
    main.add_subapp(MOUNT, sandbox.build_app())
    return Served(sandbox, await aiohttp_client(main), MOUNT)


def authorize_params(**extra: str) -> dict[str, str]:
    return {
        "client_id": "client-1",
        "redirect_uri": REDIRECT_URI,
        "scope": "profile.read posts.write",
        "state": "state-1",
        **extra,
    }


async def authorize(served: Served, **extra: str) -> str:
    """Press Allow on the consent page; the code from the redirect."""
    response = await served.request(
        "POST", AUTHORIZE, params=authorize_params(**extra), data={"decision": "allow"}
    )
    assert response.status == 302, await response.text()
    location = URL(response.headers["Location"])
    assert location.query["state"] == "state-1"
    return location.query["code"]


async def token_request(served: Served, **form: str) -> ClientResponse:
    return await served.request(
        "POST", TOKEN, data={"client_id": "client-1", "client_secret": "secret-1", **form}
    )


async def redeem(served: Served, code: str, **extra: str) -> ClientResponse:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI}
    return await token_request(served, **{**form, **extra})


async def login(served: Served) -> dict[str, Any]:
    """A fresh token answer (access and refresh token) through the whole flow."""
    response = await redeem(served, await authorize(served))
    assert response.status == 200, await response.text()
    return await response.json()


async def refresh(served: Served, refresh_token: str) -> ClientResponse:
    return await token_request(served, grant_type="refresh_token", refresh_token=refresh_token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def me(served: Served, token: str) -> ClientResponse:
    return await served.request("GET", ME, headers=bearer(token))


async def create_post(served: Served, token: str, **payload: Any) -> ClientResponse:
    return await served.request(
        "POST", POSTS, json=payload or {"text": "hi"}, headers=bearer(token)
    )
