"""Audience webhooks end to end: registered at Mailchimp with the connection's secret URL (which
Mailchimp validates with a GET), delivered as forms, refused without the secret or about another
connection's audience, stored once, and handed on as ``mailchimp.*`` events to that connection."""

from __future__ import annotations

import json
import types

import pytest
from structlog.testing import capture_logs

from gateway import admin, hookimpl

from .conftest import ACME, FREEBIE, Running, start_running

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


async def registered(
    live: Running, *, key=None, api_key: str = ACME.api_key, audience: str = LIST
) -> tuple[str, str]:
    status, connection = await live.api(
        "POST", "/api/connections", key=key, json={"platform": "mailchimp", "apiKey": api_key}
    )
    assert status == 201
    _, accounts = await live.api("GET", f"/api/connections/{connection['id']}/accounts", key=key)
    account = next(a for a in accounts["data"] if a["externalId"] == audience)
    status, answer = await live.api(
        "POST", f"/api/plugins/mailchimp/audiences/{account['id']}/webhook", key=key
    )
    assert status == 200, answer
    assert "url" not in answer  # only Mailchimp is given the URL
    hooks = [h for h in (await live.state())["webhooks"] if h["list_id"] == audience]
    (hook,) = hooks
    return connection["id"], hook["url"]


async def deliver(
    live: Running, target: str, event: str = "subscribe", **fields: str
) -> tuple[int, dict]:
    # A redelivery repeats the body exactly, fired_at included.
    payload = {"fired_at": "2026-11-26 01:00:00", **fields}
    status, answer = await live.control(
        "POST", "webhooks", {"event": event, "target": target, "payload": payload}
    )
    assert status == 200, answer
    return answer["status"], json.loads(answer["body"])


async def test_registration_is_validated_by_mailchimp_with_a_get(live: Running):
    _, url = await registered(live)
    assert url.startswith(f"{live.base}/webhooks/mailchimp/") and "?" not in url
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


async def test_clients_can_subscribe_to_mailchimp_events(live: Running):
    from sqlalchemy import select

    from gateway.db.models import WebhookDeliveryRow

    status, endpoint = await live.api(
        "POST",
        "/api/webhook-endpoints",
        json={"url": "https://app.example.com/hooks", "events": ["mailchimp.subscribe"]},
    )
    assert status == 201, endpoint
    status, refused = await live.api(
        "POST",
        "/api/webhook-endpoints",
        json={"url": "https://app.example.com/hooks", "events": ["mailchimp.nonsense"]},
    )
    assert status == 400, refused
    _, url = await registered(live)
    await deliver(live, url)
    await deliver(live, url, "upemail")  # not subscribed to
    async with live.gateway.session() as session:
        rows = (await session.execute(select(WebhookDeliveryRow))).scalars().all()
    assert [(r.endpoint_id, r.event) for r in rows] == [(endpoint["id"], "mailchimp.subscribe")]
    assert rows[0].payload["data"]["connectionId"]


async def test_a_tenant_cannot_send_events_about_another_tenants_audience(live: Running):
    """Tenant B sees its own URL in its Mailchimp account; it cannot reach tenant A with it."""
    connection_a, url_a = await registered(live)
    other = await admin.create_tenant(live.gateway, "other")
    connection_b, url_b = await registered(
        live, key=other, api_key=FREEBIE.api_key, audience="0f9e8d7c6b"
    )
    assert url_a != url_b
    # B's own URL, naming A's Mailchimp account and audience (the old URL carried ?account=).
    forged = f"{url_b}?account={ACME.id}"
    refused = [await deliver(live, forged, list_id=LIST), await deliver(live, url_b, list_id="no")]
    assert refused[0][0] == 403 and refused[0] == refused[1]  # A's audience or nobody's: alike
    assert live.events == []
    # Each URL carries its own connection's events, to that connection's tenant only.
    assert (await deliver(live, url_b, list_id="0f9e8d7c6b"))[0] == 200
    assert (await deliver(live, url_a, list_id=LIST))[0] == 200
    assert [(e.tenant_id, e.data["connectionId"]) for e in live.events] == [
        (other.tenant_id, connection_b),
        (live.key.tenant_id, connection_a),
    ]


async def test_the_url_token_is_never_logged(live: Running):
    with capture_logs() as logs:
        _, url = await registered(live)
        await deliver(live, url)
        await deliver(live, url, list_id="nope")
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 43 and token not in repr(logs)
    paths = {e["path"] for e in logs if e["event"] == "http.request"}
    assert "/webhooks/mailchimp/[redacted]" in paths


async def test_registering_again_keeps_one_webhook_at_the_same_url(live: Running):
    _, url = await registered(live)
    status, accounts = await live.api("GET", "/api/connections")
    connection_id = accounts["data"][0]["id"]
    _, listed = await live.api("GET", f"/api/connections/{connection_id}/accounts")
    account = next(a for a in listed["data"] if a["externalId"] == LIST)
    status, _ = await live.api("POST", f"/api/plugins/mailchimp/audiences/{account['id']}/webhook")
    assert status == 200
    assert [h["url"] for h in (await live.state())["webhooks"]] == [url]
