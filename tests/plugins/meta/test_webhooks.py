"""Meta webhooks through the gateway: handshake, signature, stored once, acted upon."""

from __future__ import annotations

import hashlib
import hmac
import json
import types

import pytest
from sqlalchemy import func, select

from gateway import hookimpl
from gateway.db.models import PlatformWebhookEventRow

from .live import start_meta

APP_SECRET = "meta-sandbox-secret"


@pytest.fixture
async def observed(aiohttp_server, tmp_path, database_url):
    events = []
    observer = types.SimpleNamespace(
        track_event=hookimpl(lambda gateway, event: events.append(event))
    )
    running = await start_meta(
        aiohttp_server, tmp_path, database_url, extra=[("observer", observer)]
    )
    running.events = events
    yield running
    await running.http.close()


def signed(body: dict, secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return raw, {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={signature}"}


async def deliver(meta, raw: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with meta.http.post(f"{meta.base}/webhooks/meta", data=raw, headers=headers) as r:
        return r.status, await r.json(content_type=None)


async def stored(meta) -> list[PlatformWebhookEventRow]:
    async with meta.gateway.session() as session:
        return list(await session.scalars(select(PlatformWebhookEventRow)))


FEED = {
    "object": "page",
    "entry": [
        {
            "id": "1",
            "time": 1764000000,
            "changes": [{"field": "feed", "value": {"item": "status", "verb": "edited"}}],
        }
    ],
}


async def test_the_subscription_handshake(meta):
    query = {
        "hub.mode": "subscribe",
        "hub.verify_token": "meta-sandbox-verify-token",
        "hub.challenge": "1158201444",
    }
    async with meta.http.get(f"{meta.base}/webhooks/meta", params=query) as r:
        assert r.status == 200 and await r.text() == "1158201444"
    wrong = {**query, "hub.verify_token": "guess"}
    async with meta.http.get(f"{meta.base}/webhooks/meta", params=wrong) as r:
        assert r.status == 403
    async with meta.http.get(f"{meta.base}/webhooks/nowhere", params=query) as r:
        assert r.status == 404
    # The sandbox sends Meta's verification GET the way Meta does.
    target = f"{meta.base}/webhooks/meta"
    sent = await meta.control("POST", "webhooks", json={"event": "handshake", "target": target})
    assert sent["status"] == 200 and sent["body"].isdigit()
    refused = await meta.control(
        "POST",
        "webhooks",
        json={"event": "handshake", "target": target, "payload": {"verifyToken": "guess"}},
    )
    assert refused["status"] == 403


async def test_a_signed_event_is_stored_once_and_redeliveries_are_ignored(observed):
    meta = observed
    connection_id, accounts = await meta.accounts()
    job = await _published(meta, connection_id, accounts["facebook_page"])
    body = json.loads(json.dumps(FEED))
    body["entry"][0]["changes"][0]["value"]["post_id"] = job["remotePostId"]
    raw, headers = signed(body)
    assert await deliver(meta, raw, headers) == (200, {"received": 1, "duplicates": 0})
    assert await deliver(meta, raw, headers) == (200, {"received": 0, "duplicates": 1})
    [row] = await stored(meta)
    assert row.kind == "page.feed" and row.handled_at is not None and row.error is None
    changed = [e for e in meta.events if e.name == "post.changed"]
    assert len(changed) == 1 and changed[0].data["postId"] == job["postId"]


async def test_a_bad_or_missing_signature_is_refused_and_nothing_is_stored(meta):
    raw, headers = signed(FEED, secret="not-the-app-secret")
    status, problem = await deliver(meta, raw, headers)
    assert status == 401 and problem["status"] == 401
    raw, headers = signed(FEED)
    tampered = raw.replace(b"edited", b"remove")
    assert (await deliver(meta, tampered, headers))[0] == 401
    assert (await deliver(meta, raw, {"Content-Type": "application/json"}))[0] == 401
    assert await stored(meta) == []


async def test_without_an_app_secret_nothing_is_accepted(meta):
    """A gateway configured without the app secret must not take an empty key's signature."""
    oauth = meta.gateway.connector("meta").oauth
    oauth.client_secret = ""
    raw, headers = signed(FEED, secret="")
    assert (await deliver(meta, raw, headers))[0] == 401
    assert await stored(meta) == []


async def test_the_sandbox_signs_and_a_revoked_permission_needs_reconnecting(meta):
    connection_id, _ = await meta.accounts()
    answer = await meta.control(
        "POST",
        "webhooks",
        json={
            "event": "permissions",
            "target": f"{meta.base}/webhooks/meta",
            "payload": {"permission": "pages_manage_posts"},
        },
    )
    assert answer["status"] == 200, answer
    _, connection = await meta.api("GET", f"/api/connections/{connection_id}")
    assert connection["status"] == "needs_reconnect"


async def _published(meta, connection_id, account) -> dict:
    accepted = await meta.queued(connection_id, account, body="Hello")
    assert await meta.run_jobs()
    return await meta.job(accepted["jobId"])


async def test_stored_events_count(observed):
    # The unique key holds on this database too: one row per event however often it comes.
    raw, headers = signed(FEED)
    for _ in range(3):
        assert (await deliver(observed, raw, headers))[0] == 200
    async with observed.gateway.session() as session:
        count = await session.scalar(select(func.count()).select_from(PlatformWebhookEventRow))
    assert count == 1
