"""Client webhooks: subscribe, signed deliveries, retries, survival across a restart."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from sqlalchemy import select

from gateway.db.base import utcnow
from gateway.db.models import WebhookDeliveryRow
from gateway.host import Gateway
from gateway.jobs.worker import Workers
from gateway.webhooks.outbox import Deliverer
from gateway.webhooks.signing import sign, verify

from ..connections.conftest import start_live
from ..jobs.test_pipeline import account_of, queue


@pytest.fixture
async def receiver(aiohttp_server):
    """A client's webhook receiver; answers with the statuses queued in ``answers``."""
    received: list[tuple[bytes, dict]] = []
    answers: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((await request.read(), dict(request.headers)))
        return web.Response(status=answers.pop(0) if answers else 200)

    app = web.Application()
    app.router.add_post("/hooks", handle)
    server = await aiohttp_server(app)
    return str(server.make_url("/hooks")), received, answers


@pytest.fixture
async def live(aiohttp_server, tmp_path):
    running = await start_live(aiohttp_server, tmp_path)
    yield running
    await running.http.close()


async def subscribe(live, url: str, events=("job.published", "job.dead")) -> dict:
    status, endpoint = await live.api(
        "POST", "/api/webhook-endpoints", json={"url": url, "events": list(events)}
    )
    assert status == 201, endpoint
    return endpoint


async def deliveries(gateway: Gateway) -> list[WebhookDeliveryRow]:
    async with gateway.session() as session:
        return list((await session.execute(select(WebhookDeliveryRow))).scalars())


def test_signatures_verify_and_tampering_is_caught():
    body = b'{"type":"job.published"}'
    header = sign("whsec_x", body)
    assert verify("whsec_x", body, header)
    assert not verify("whsec_x", body + b" ", header)
    assert not verify("whsec_other", body, header)
    assert not verify("whsec_x", body, sign("whsec_x", body, timestamp=1))  # too old


async def test_a_published_job_is_delivered_signed(live, receiver):
    url, received, _ = receiver
    endpoint = await subscribe(live, url)
    assert endpoint["secret"].startswith("whsec_")
    _, listed = await live.api("GET", "/api/webhook-endpoints")
    assert [e["id"] for e in listed["data"]] == [endpoint["id"]] and "secret" not in listed["data"][
        0
    ]
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    async with Deliverer(live.gateway) as deliverer:
        assert await deliverer.deliver_due() == 1
    [(body, headers)] = received
    assert verify(endpoint["secret"], body, headers["Gateway-Signature"])
    payload = json.loads(body)
    assert payload["type"] == "job.published" and payload["data"]["jobId"] == accepted["jobId"]
    assert headers["Gateway-Event"] == "job.published"
    [row] = await deliveries(live.gateway)
    assert row.status == "delivered"


async def test_failed_deliveries_are_retried_and_survive_a_restart(live, receiver, tmp_path):
    url, received, answers = receiver
    await subscribe(live, url)
    answers.extend([500])
    connection_id, account_id = await account_of(live)
    await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    async with Deliverer(live.gateway) as deliverer:
        await deliverer.deliver_due()
    [row] = await deliveries(live.gateway)
    assert row.status == "pending" and row.attempts == 1 and row.last_status == 500
    assert row.next_attempt_at > utcnow()
    # The process restarts: a new gateway on the same database finds the pending delivery.
    restarted = Gateway.from_settings(live.gateway.settings, entry_points=False)
    await restarted.open_storage()
    try:
        async with restarted.transaction() as session:
            (await session.get(WebhookDeliveryRow, row.id)).next_attempt_at = utcnow()
        async with Deliverer(restarted) as deliverer:
            assert await deliverer.deliver_due() == 1
    finally:
        await restarted.close_storage()
    assert len(received) == 2
    [row] = await deliveries(live.gateway)
    assert row.status == "delivered" and row.attempts == 2


async def test_events_go_only_to_subscribers_of_the_tenant(live, receiver):
    from gateway import admin

    url, _received, _ = receiver
    other = await admin.create_tenant(live.gateway, "other")
    status, _ = await live.api(
        "POST", "/api/webhook-endpoints", json={"url": url, "events": ["job.published"]}, key=other
    )
    assert status == 201
    await subscribe(live, url, events=("job.dead",))  # this tenant: not job.published
    connection_id, account_id = await account_of(live)
    await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    assert await deliveries(live.gateway) == []


async def test_bad_subscriptions_are_refused(live):
    for body in (
        {"url": "ftp://x", "events": ["job.published"]},
        {"url": "https://x.example", "events": ["job.exploded"]},
        {"url": "https://x.example", "events": []},
        {"events": ["job.published"]},
    ):
        status, _ = await live.api("POST", "/api/webhook-endpoints", json=body)
        assert status == 400, body
    assert (await live.api("DELETE", "/api/webhook-endpoints/whk_nope"))[0] == 404


async def test_a_job_published_after_a_retry_is_announced_without_the_old_error(live, receiver):
    from ..jobs.test_pipeline import POSTS, fault, make_due

    url, _, _ = receiver
    await subscribe(live, url, events=("job.published", "job.failed"))
    connection_id, account_id = await account_of(live)
    await fault(live, method="POST", path=POSTS, status=503, count=1)
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    await make_due(live, accepted["jobId"])
    await Workers(live.gateway, 1).run_once()
    events = {row.event: row.payload["data"] for row in await deliveries(live.gateway)}
    assert events["job.failed"]["error"]["code"] == "transient"
    assert events["job.published"]["remotePostId"]
    assert events["job.published"]["error"] is None


@pytest.fixture
async def background(aiohttp_server, tmp_path):
    """A gateway whose worker and deliverer run in the background; the deliverer would look for
    due deliveries on its own only once a minute."""
    running = await start_live(
        aiohttp_server,
        tmp_path,
        jobs={"concurrency": 1, "poll_seconds": 0.1},
        webhooks={"background": True, "poll_seconds": 60},
    )
    yield running
    await running.http.close()


async def test_a_delivery_goes_out_as_soon_as_its_transaction_commits(background, receiver):
    url, received, _ = receiver
    await subscribe(background, url)
    connection_id, account_id = await account_of(background)
    _, accepted = await queue(background, connection_id, account_id)
    for _ in range(200):  # long before the deliverer's own minute is up
        if received:
            break
        await asyncio.sleep(0.05)
    [(body, _headers)] = received
    assert json.loads(body)["data"]["jobId"] == accepted["jobId"]


async def test_a_job_without_subscribers_wakes_no_deliverer(background):
    connection_id, account_id = await account_of(background)
    _, accepted = await queue(background, connection_id, account_id)
    for _ in range(200):
        _, job = await background.api("GET", f"/api/jobs/{accepted['jobId']}")
        if job["status"] == "published":
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "published"
    await asyncio.sleep(0.2)  # a wake would have made a pass by now
    assert background.gateway.deliverer.passes == 1  # the first, at start
