"""The control API: state, clock, reset, webhooks, and 400s naming the bad field."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from gateway import clock
from gateway.sandbox import Sandbox, WebhookTargets

from .flows import ME, Served, create_post, login, me, serve


async def test_state_lists_posts_tokens_and_accounts(served: Served) -> None:
    tokens = await login(served)
    await create_post(served, tokens["access_token"], text="hello", link="https://x.test")
    status, state = await served.control("GET", "state")
    assert status == 200
    assert [p["payload"] for p in state["posts"]] == [{"text": "hello", "link": "https://x.test"}]
    assert state["accounts"] == [{"id": "page_1", "name": "Example Page"}]
    [token] = state["tokens"]
    assert token["accessToken"] == tokens["access_token"]
    assert token["refreshToken"] == tokens["refresh_token"]
    assert token["status"] == "active" and token["refreshStatus"] == "active"
    assert token["scopes"] == ["profile.read", "posts.write"]
    assert token["expiresAt"].endswith("Z")


async def test_a_bare_sandbox_still_answers_the_three_lists(aiohttp_client: Any) -> None:
    class Bare(Sandbox):
        platform = "bare"

        def snapshot(self) -> dict[str, Any]:
            return {"custom": 1}

    client = await aiohttp_client(Bare().build_app())
    async with client.get("/_control/state") as response:
        assert await response.json() == {"custom": 1, "posts": [], "tokens": [], "accounts": []}


async def test_clock_advance_answers_the_new_time_and_expires_tokens(served: Served) -> None:
    token = (await login(served))["access_token"]
    before = clock.timestamp()
    status, answer = await served.control("POST", "clock", {"advanceSeconds": 3599})
    assert status == 200
    assert answer["offsetSeconds"] == 3599
    assert answer["timestamp"] == pytest.approx(before + 3599, abs=2)
    assert (await me(served, token)).status == 200
    await served.control("POST", "clock", {"advanceSeconds": 1.5})
    expired = await me(served, token)
    assert expired.status == 401
    assert (await expired.json())["error"]["code"] == "token_expired"
    _, state = await served.control("GET", "state")
    assert state["tokens"][0]["status"] == "expired"


async def test_reset_forgets_everything(served: Served) -> None:
    token = (await login(served))["access_token"]
    assert (await create_post(served, token)).status == 201
    await served.control("POST", "faults", {"path": "/www.example.test/*", "status": 500})
    await served.control("POST", "clock", {"advanceSeconds": 100})
    served.sandbox.accounts.append({"id": "page_2"})
    for _ in range(4):
        await me(served, token)
    assert served.sandbox.me_limit.used(token) == 4

    status, answer = await served.control("POST", "reset")
    assert (status, answer) == (200, {"reset": True})

    _, state = await served.control("GET", "state")
    assert state == {
        "posts": [],
        "tokens": [],
        "accounts": [{"id": "page_1", "name": "Example Page"}],
    }
    _, journal = await served.control("GET", "journal")
    assert journal["requests"] == []
    assert served.sandbox.clock.offset == 0
    forgotten = await me(served, token)
    assert (await forgotten.json())["error"]["code"] == "token_unknown"
    # The fault is gone (login goes through www.example.test) and the rate window is empty.
    await login(served)
    assert served.sandbox.me_limit.used(token) == 0


@pytest.mark.parametrize(
    ("route", "body", "field"),
    [
        ("faults", {"status": "500"}, "status"),
        ("faults", {"status": 99}, "status"),
        ("faults", {"status": True}, "status"),
        ("faults", {"status": 500, "count": 0}, "count"),
        ("faults", {"status": 500, "count": 1.5}, "count"),
        ("faults", {"delayMs": -1}, "delayMs"),
        ("faults", {"delayMs": "slow"}, "delayMs"),
        ("faults", {"status": 500, "headers": {"Retry-After": 7}}, "headers"),
        ("faults", {"status": 500, "method": "PO ST"}, "method"),
        ("faults", {"status": 500, "path": ""}, "path"),
        ("faults", {"status": 500, "delay": 100}, "delay"),
        ("faults", {"body": {"error": 1}}, "body"),
        ("faults", {"path": "/x"}, "status"),
        ("faults", [1, 2], "body"),
        ("clock", {}, "advanceSeconds"),
        ("clock", {"advanceSeconds": -5}, "advanceSeconds"),
        ("clock", {"advanceSeconds": "60"}, "advanceSeconds"),
        ("clock", {"advanceSeconds": 1e300}, "advanceSeconds"),
        ("faults", {"delayMs": 10**9}, "delayMs"),
        ("webhooks", {"target": "http://127.0.0.1:9/x"}, "event"),
        ("webhooks", {"event": "post.published"}, "target"),
        ("webhooks", {"event": "post.published", "target": "/relative"}, "target"),
        ("webhooks", {"event": "post.published", "target": "ftp://h/x"}, "target"),
        ("webhooks", {"event": "post.exploded", "target": "http://127.0.0.1:9/x"}, "event"),
        (
            "webhooks",
            {"event": "post.published", "target": "http://127.0.0.1:9/x", "payload": []},
            "payload",
        ),
    ],
)
async def test_bad_control_input_is_400_naming_the_field(
    standalone: Served, route: str, body: Any, field: str
) -> None:
    status, problem = await standalone.control("POST", route, body)
    assert status == 400
    assert problem["status"] == 400
    assert [e["field"] for e in problem["errors"]] == [field]
    assert standalone.sandbox.faults.pending == []
    assert standalone.sandbox.clock.offset == 0


async def test_malformed_json_is_400(standalone: Served) -> None:
    response = await standalone.request(
        "POST", "/_control/faults", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert (await response.json())["errors"][0]["field"] == "body"


class Receiver:
    """A real HTTP server standing in for the gateway's webhook endpoint."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[bytes, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), dict(request.headers)))
        return web.Response(status=self.status, text=f"received {len(self.received)}")


async def receiver_url(aiohttp_server: Any, receiver: Receiver) -> str:
    app = web.Application()
    app.router.add_post("/webhooks/example", receiver.handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/webhooks/example"))


async def test_webhook_is_signed_and_delivered(served: Served, aiohttp_server: Any) -> None:
    receiver = Receiver()
    target = await receiver_url(aiohttp_server, receiver)
    served.sandbox.webhook_targets = WebhookTargets.only(target)
    status, answer = await served.control(
        "POST", "webhooks", {"event": "post.published", "target": target, "payload": {"id": "p1"}}
    )
    assert (status, answer) == (200, {"status": 200, "body": "received 1"})
    [(body, headers)] = receiver.received
    expected = hmac.new(b"sandbox-webhook-secret", body, hashlib.sha256).hexdigest()
    assert headers["X-Example-Signature"] == f"sha256={expected}"
    assert json.loads(body)["payload"] == {"id": "p1"}
    assert json.loads(body)["event"] == "post.published"


async def test_webhook_uses_the_configured_secret_and_relays_the_target_status(
    aiohttp_client: Any, aiohttp_server: Any
) -> None:
    from .example import ExampleSandbox

    served = await serve(aiohttp_client, ExampleSandbox(webhook_secret="s3cret"), "mounted")
    receiver = Receiver(status=401)
    target = await receiver_url(aiohttp_server, receiver)
    served.sandbox.webhook_targets = WebhookTargets.below(str(URL(target).origin()))
    status, answer = await served.control(
        "POST", "webhooks", {"event": "token.revoked", "target": target}
    )
    assert (status, answer) == (200, {"status": 401, "body": "received 1"})
    [(body, headers)] = receiver.received
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Example-Signature"] == f"sha256={expected}"
    assert json.loads(body)["payload"] == {}


async def test_webhooks_refused_where_unsupported_or_undeliverable(
    aiohttp_client: Any, standalone: Served
) -> None:
    client = await aiohttp_client(Sandbox().build_app())
    body = {"event": "x", "target": "http://127.0.0.1:9/hook"}
    async with client.post("/_control/webhooks", json=body) as response:
        assert response.status == 400
        assert (await response.json())["errors"][0]["field"] == "event"
    # Nothing listens on port 9 (discard) of the loopback: the delivery itself fails.
    status, problem = await standalone.control(
        "POST", "webhooks", {"event": "post.published", "target": "http://127.0.0.1:9/hook"}
    )
    assert status == 502
    assert problem["title"] == "Webhook not delivered"


async def test_control_calls_are_not_journaled(served: Served) -> None:
    await served.control("GET", "state")
    await served.control("POST", "clock", {"advanceSeconds": 1})
    await served.request("GET", ME)
    _, journal = await served.control("GET", "journal")
    assert [e["path"] for e in journal["requests"]] == [ME]
