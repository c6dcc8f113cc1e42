"""Who reaches the control API (loopback, or the control token) and where its webhooks may go.

Every connection stays on the loopback: a caller from another machine is one whose transport
reports another machine's peer address to the real check; a mocked transport covers the
spellings of real sockets' peers.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway.sandbox import WebhookTargets, access
from gateway.sandbox.access import peer_is_loopback
from gateway.web.app import create_app

from ...conftest import settings_for
from .example import ExampleSandbox

PROBLEM = "application/problem+json"
CONTROL_ROUTES = [
    ("GET", "state"),
    ("GET", "journal"),
    ("POST", "faults"),
    ("DELETE", "faults"),
    ("POST", "clock"),
    ("POST", "webhooks"),
    ("POST", "reset"),
]


class SeenFromAfar:
    """A connection's transport as the gateway would see a caller on another machine: its
    peer is a documentation address (203.0.113.0/24); everything else is the real socket's."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("203.0.113.9", 40000) if name == "peername" else self.real.get_extra_info(name)


async def remote_client(aiohttp_client: Any, app: web.Application, monkeypatch: Any) -> Any:
    """A client whose requests the control API sees as coming from off the loopback.

    The connection itself stays on the loopback (tests send nothing elsewhere); only the peer
    address the check reads from the transport is another machine's. The check's own reading
    of real sockets' peers is covered by the mocked-transport test below.
    """
    check = access.peer_is_loopback

    def from_afar(request: web.Request) -> bool:
        return check(_with_transport(request, SeenFromAfar(request.transport)))

    monkeypatch.setattr(access, "peer_is_loopback", from_afar)
    return await aiohttp_client(app)


def _with_transport(request: web.Request, transport: Any) -> web.Request:
    return make_mocked_request(
        request.method, request.path_qs, headers=request.headers, transport=transport
    )


@pytest.mark.parametrize(("method", "name"), CONTROL_ROUTES)
async def test_a_caller_off_the_loopback_is_refused_every_control_route(
    aiohttp_client: Any, monkeypatch: Any, method: str, name: str
) -> None:
    sandbox = ExampleSandbox()
    client = await remote_client(aiohttp_client, sandbox.build_app(), monkeypatch)
    # Headers claiming a local caller change nothing: the socket's peer decides.
    headers = {"X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1"}
    async with client.request(method, f"/_control/{name}", json={}, headers=headers) as response:
        assert response.status == 403
        assert response.headers["Content-Type"].startswith(PROBLEM)
        assert "loopback" in (await response.json())["detail"]
    assert sandbox.clock.offset == 0 and sandbox.faults.pending == []
    # The platform's own routes still answer it: only the control API is closed.
    async with client.get("/api.example.test/v1/me") as response:
        assert response.status == 401


async def test_with_a_control_token_its_bearer_is_let_in_from_anywhere(
    aiohttp_client: Any, monkeypatch: Any
) -> None:
    sandbox = ExampleSandbox(control_token="ctl-s3cret")
    client = await remote_client(aiohttp_client, sandbox.build_app(), monkeypatch)
    async with client.get("/_control/state") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    headers = {"Authorization": "Bearer ctl-s3cret"}
    async with client.post("/_control/clock", json={"advanceSeconds": 5}, headers=headers) as r:
        assert r.status == 200
    assert sandbox.clock.offset == 5


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", "Bearer ctl-s3cre", "Basic ctl-s3cret", "ctl-s3cret"]
)
async def test_with_a_control_token_loopback_callers_need_it_too(
    aiohttp_client: Any, authorization: str | None
) -> None:
    sandbox = ExampleSandbox(control_token="ctl-s3cret")
    client = await aiohttp_client(sandbox.build_app())
    headers = {"Authorization": authorization} if authorization else {}
    async with client.post("/_control/reset", headers=headers) as response:
        assert response.status == 401
        assert response.headers["Content-Type"].startswith(PROBLEM)
    async with client.get("/_control/state", headers={"Authorization": "Bearer ctl-s3cret"}) as r:
        assert r.status == 200


@pytest.mark.parametrize(
    ("peer", "local"),
    [
        (("127.0.0.1", 5000), True),
        (("127.8.9.10", 5000), True),
        (("::1", 5000, 0, 0), True),
        (("::ffff:127.0.0.1", 5000, 0, 0), True),
        (("192.0.2.7", 5000), False),
        (("::ffff:192.0.2.7", 5000, 0, 0), False),
        (("fe80::1%eth0", 5000, 0, 2), False),
        ("", False),  # a Unix socket
        (None, False),
    ],
)
def test_the_loopback_check_reads_the_socket_peer(peer: Any, local: bool) -> None:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        peer if name == "peername" else default
    )
    request = make_mocked_request(
        "GET", "/_control/state", headers={"X-Forwarded-For": "127.0.0.1"}, transport=transport
    )
    assert peer_is_loopback(request) is local


async def test_the_gateway_mounts_its_sandboxes_with_the_configured_control_token(
    aiohttp_client: Any, make_gateway: Any, example_plugin: Any, tmp_path: Any
) -> None:
    settings = settings_for(tmp_path, sandbox={"control_token": "ctl-s3cret"})
    gateway = make_gateway((("example", example_plugin),), use_settings=settings)
    client = await aiohttp_client(create_app(gateway))
    async with client.get("/sandbox/example/_control/state") as response:
        assert response.status == 401
    headers = {"Authorization": "Bearer ctl-s3cret"}
    async with client.get("/sandbox/example/_control/state", headers=headers) as response:
        assert response.status == 200
    assert "ctl-s3cret" not in repr(settings)


# -- where webhooks may go ------------------------------------------------------------------


class Receiver:
    def __init__(self) -> None:
        self.hits: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        if request.path == "/bounce":
            raise web.HTTPFound("http://127.0.0.1:9/elsewhere")
        return web.Response(text="secret body")


async def receiver(aiohttp_server: Any) -> tuple[Receiver, str]:
    found = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", found.handle)
    server = await aiohttp_server(app)
    return found, str(server.make_url("")).rstrip("/")


async def send(client: Any, target: str | None) -> tuple[int, dict]:
    body = {"event": "post.published", **({"target": target} if target else {})}
    async with client.post("/_control/webhooks", json=body) as response:
        return response.status, await response.json(content_type=None)


async def test_without_a_webhook_target_nothing_is_fetched(
    aiohttp_client: Any, aiohttp_server: Any
) -> None:
    found, base = await receiver(aiohttp_server)
    client = await aiohttp_client(ExampleSandbox().build_app())
    status, problem = await send(client, f"{base}/anything")
    assert status == 403 and "--webhook-target" in problem["detail"]
    assert found.hits == []


async def test_mounted_webhooks_go_only_below_the_gateway(
    aiohttp_client: Any, aiohttp_server: Any
) -> None:
    gateway, gateway_base = await receiver(aiohttp_server)
    other, other_base = await receiver(aiohttp_server)
    sandbox = ExampleSandbox(webhook_targets=WebhookTargets.below(gateway_base + "/gw"))
    client = await aiohttp_client(sandbox.build_app())
    for target in (
        f"{other_base}/gw/webhooks/example",
        f"{gateway_base}/elsewhere",
        f"{gateway_base}/gwx",
        gateway_base.replace("127.0.0.1", "localhost") + "/gw/x",
        gateway_base.replace("http:", "https:") + "/gw/x",
    ):
        status, problem = await send(client, target)
        assert status == 403, target
        assert problem["title"] == "Forbidden"
    assert other.hits == [] and gateway.hits == []
    assert await send(client, f"{gateway_base}/gw/webhooks/example") == (
        200,
        {"status": 200, "body": "secret body"},
    )
    # A dot segment does not climb out of the gateway's path.
    assert (await send(client, f"{gateway_base}/gw/../bounce"))[0] == 403
    assert (await send(client, f"{gateway_base}/gw"))[0] == 200
    assert gateway.hits == ["/gw/webhooks/example", "/gw"]


async def test_standalone_webhooks_go_only_to_the_one_target(
    aiohttp_client: Any, aiohttp_server: Any
) -> None:
    found, base = await receiver(aiohttp_server)
    sandbox = ExampleSandbox(webhook_targets=WebhookTargets.only(f"{base}/hook?x=1"))
    client = await aiohttp_client(sandbox.build_app())
    for target in (f"{base}/hook", f"{base}/hook?x=2", f"{base}/other"):
        assert (await send(client, target))[0] == 403, target
    assert found.hits == []
    assert (await send(client, None)) == (200, {"status": 200, "body": "secret body"})
    assert (await send(client, f"{base}/hook?x=1"))[0] == 200
    assert found.hits == ["/hook", "/hook"]


async def test_a_redirect_from_the_target_is_not_followed(
    aiohttp_client: Any, aiohttp_server: Any
) -> None:
    found, base = await receiver(aiohttp_server)
    sandbox = ExampleSandbox(webhook_targets=WebhookTargets.only(f"{base}/bounce"))
    client = await aiohttp_client(sandbox.build_app())
    status, answer = await send(client, None)
    assert (status, answer["status"]) == (200, 302)
    assert found.hits == ["/bounce"]
