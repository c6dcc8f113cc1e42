"""Audience webhooks end to end: registered at Mailchimp with the gateway's secret URL (which
Mailchimp validates with a GET), delivered as forms, refused without the secret, stored once,
and handed on as ``mailchimp.*`` events to the tenants connected to the account."""

from __future__ import annotations

import json
import types

import pytest

from gateway import hookimpl

from .conftest import ACME, Running, start_running

LIST = "a1b2c3d4e5"


@pytest.fixture
async def live(tmp_path):
    seen: list = []
    observer = types.SimpleNamespace(
        track_event=hookimpl(
            lambda event: seen.append(event) if event.name.startswith("mailchimp.") else None
        )
    )
    running, runner = await start_running(tmp_path, extra_plugins=[("observer", observer)])
    running.events = seen
    yield running
    await running.http.close()
    await runner.cleanup()


async def registered(live: Running) -> tuple[str, str]:
    status, connection = await live.api(
        "POST", "/api/connections", json={"platform": "mailchimp", "apiKey": ACME.api_key}
    )
    assert status == 201
    _, accounts = await live.api("GET", f"/api/connections/{connection['id']}/accounts")
    account = next(a for a in accounts["data"] if a["externalId"] == LIST)
    status, answer = await live.api(
        "POST", f"/api/plugins/mailchimp/audiences/{account['id']}/webhook"
    )
    assert status == 200, answer
    assert "url" not in answer  # the secret is the platform's, never a tenant's
    (hook,) = (await live.state())["webhooks"]
    return connection["id"], hook["url"]


async def deliver(live: Running, target: str, event: str = "subscribe") -> tuple[int, dict]:
    # A redelivery repeats the body exactly, fired_at included.
    payload = {"fired_at": "2026-11-26 01:00:00"}
    status, answer = await live.control(
        "POST", "webhooks", {"event": event, "target": target, "payload": payload}
    )
    assert status == 200, answer
    return answer["status"], json.loads(answer["body"])


async def test_registration_is_validated_by_mailchimp_with_a_get(live: Running):
    _, url = await registered(live)
    assert f"{live.base}/webhooks/mailchimp/" in url and f"account={ACME.id}" in url
    async with live.http.get(url) as validation:
        assert validation.status == 200
    status, answer = await live.control("POST", "webhooks", {"event": "handshake", "target": url})
    assert (status, answer["status"]) == (200, 200)
    bare = url.split("/webhooks/mailchimp/")[0] + "/webhooks/mailchimp"
    status, answer = await live.control("POST", "webhooks", {"event": "handshake", "target": bare})
    assert answer["status"] == 401


async def test_events_are_stored_once_and_reach_the_tenant(live: Running):
    connection_id, url = await registered(live)
    assert await deliver(live, url) == (200, {"received": 1, "duplicates": 0})
    assert await deliver(live, url) == (200, {"received": 0, "duplicates": 1})
    assert await deliver(live, url, "upemail") == (200, {"received": 1, "duplicates": 0})
    assert [e.name for e in live.events] == ["mailchimp.subscribe", "mailchimp.upemail"]
    first = live.events[0]
    assert first.tenant_id == live.key.tenant_id
    assert first.data["connectionId"] == connection_id
    assert (first.data["listId"], first.data["email"]) == (LIST, "jane@example.com")


async def test_deliveries_without_the_secret_are_refused(live: Running):
    await registered(live)
    for target in (f"{live.base}/webhooks/mailchimp", f"{live.base}/webhooks/mailchimp/guess"):
        status, body = await deliver(live, target)
        assert status == 401, body
    assert live.events == []


async def test_a_body_that_is_not_an_event_is_400(live: Running):
    _, url = await registered(live)
    async with live.http.post(url, data={"type": "nonsense"}) as response:
        assert response.status == 400
    async with live.http.post(url, data=b"") as empty:  # the other validation style
        assert empty.status == 200


async def test_contacts_changed_through_the_gateway_come_back_as_events(live: Running):
    connection_id, _ = await registered(live)
    _, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts")
    account = next(a for a in accounts["data"] if a["externalId"] == LIST)
    path = f"/api/plugins/mailchimp/audiences/{account['id']}/members"
    await live.api("PUT", path, json={"email": "new@example.com"})
    await live.api("PUT", path, json={"email": "new@example.com", "mergeFields": {"FNAME": "N"}})
    await live.api("PUT", path, json={"email": "new@example.com", "status": "unsubscribed"})
    assert [(e.name, e.data["email"]) for e in live.events] == [
        ("mailchimp.subscribe", "new@example.com"),
        ("mailchimp.profile", "new@example.com"),
        ("mailchimp.unsubscribe", "new@example.com"),
    ]
    assert live.events[1].data["data"]["merges"] == {"EMAIL": "new@example.com", "FNAME": "N"}
