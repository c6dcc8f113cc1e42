"""The sandbox app: platform routes under real host names, standalone and mounted, and its root."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.sandbox import HostRoutes, Sandbox

from .flows import POSTS, Served, bearer, create_post, login

REPO = Path(__file__).resolve().parents[3]


async def test_platform_routes_live_under_their_real_host_names(served: Served) -> None:
    tokens = await login(served)
    response = await create_post(served, tokens["access_token"], text="hello")
    assert response.status == 201
    created = await response.json()
    # root_url is absolute and includes the mount prefix, so links the platform hands out work.
    assert created["url"] == f"{served.root_url()}/www.example.test/posts/{created['id']}"
    if served.prefix:
        assert served.root_url().endswith("/sandbox/example")
    async with served.client.session.get(created["url"]) as followed:
        assert followed.status == 200
        assert (await followed.json())["payload"] == {"text": "hello"}


async def test_paths_without_the_host_prefix_are_not_served(served: Served) -> None:
    response = await served.request("GET", "/v1/me")
    assert response.status == 404
    assert "does not serve /v1/me" in (await response.json())["error"]["message"]


async def test_unknown_path_is_journaled_and_a_wrong_method_is_405(served: Served) -> None:
    missing = await served.request("GET", "/api.example.test/v9/nothing")
    assert missing.status == 404
    wrong_method = await served.request("DELETE", POSTS, headers=bearer("x"))
    assert wrong_method.status == 405
    assert wrong_method.headers["Allow"] == "POST"
    _, journal = await served.control("GET", "journal")
    assert [(e["method"], e["path"], e["status"]) for e in journal["requests"]] == [
        ("GET", "/api.example.test/v9/nothing", 404),
        ("DELETE", POSTS, 405),
    ]


async def test_mounted_sandbox_leaves_the_main_app_alone(mounted: Served) -> None:
    async with mounted.client.get("/healthz") as response:
        assert (await response.json()) == {"main": True}
    # Outside the prefix nothing is journaled; the prefix alone is not the sandbox either.
    async with mounted.client.get("/api.example.test/v1/me") as response:
        assert response.status == 404
    _, journal = await mounted.control("GET", "journal")
    assert journal["requests"] == []


class PatternHosts(Sandbox):
    platform = "pattern"
    hosts = ("{dc}.api.pattern.test", "login.pattern.test")

    def setup_routes(self, routes: HostRoutes) -> None:
        routes.add("{dc}.api.pattern.test", "GET", "/3.0/ping", self.ping)
        routes.add("login.pattern.test", "GET", "/gone", self.gone)
        routes.add("login.pattern.test", "GET", "/crash", self.crash)

    async def gone(self, request: web.Request) -> web.Response:
        raise web.HTTPGone()

    async def crash(self, request: web.Request) -> web.Response:
        raise RuntimeError("emulator bug")

    async def ping(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"dc": request.match_info["dc"], "path": self.relative_path(request)}
        )


async def test_a_host_may_be_a_pattern(aiohttp_client: Any) -> None:
    main = web.Application()
    main.add_subapp("/sandbox/pattern", PatternHosts().build_app())
    client = await aiohttp_client(main)
    async with client.get("/sandbox/pattern/us6.api.pattern.test/3.0/ping") as response:
        assert await response.json() == {"dc": "us6", "path": "/us6.api.pattern.test/3.0/ping"}


async def test_raised_answers_and_crashes_are_journaled_with_their_status(
    aiohttp_client: Any,
) -> None:
    sandbox = PatternHosts()
    client = await aiohttp_client(sandbox.build_app())
    async with client.get("/login.pattern.test/gone") as response:
        assert response.status == 410
    async with client.get("/login.pattern.test/crash") as response:
        assert response.status == 500
    assert [(e.path, e.status) for e in sandbox.journal.entries] == [
        ("/login.pattern.test/gone", 410),
        ("/login.pattern.test/crash", 500),
    ]


def test_routes_must_use_a_declared_host_and_an_absolute_path() -> None:
    routes = HostRoutes(("api.example.test",), web.Application().router)

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    with pytest.raises(ValueError, match="not one of the sandbox's hosts"):
        routes.add("api.other.test", "GET", "/x", handler)
    with pytest.raises(ValueError, match="must start with '/'"):
        routes.add("api.example.test", "GET", "x", handler)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_run_standalone_serves_the_sandbox_on_its_own_port() -> None:
    port = _free_port()
    script = (
        "from tests.gateway.sandbox.example import ExampleSandbox; "
        f"ExampleSandbox().run_standalone('127.0.0.1', {port})"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(100):
                try:
                    async with session.get(f"{base}/_control/state") as response:
                        state = await response.json()
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the standalone sandbox did not start")
            assert state["posts"] == [] and state["accounts"]
            async with session.get(f"{base}/www.example.test/oauth/authorize") as response:
                assert response.status == 400  # served: the example's own client check answered
    finally:
        process.terminate()
        await process.wait()
