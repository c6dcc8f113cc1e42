"""Client webhooks: subscribe, signed deliveries, retries, survival across a restart."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from datetime import timedelta

import pytest
from aiohttp import web
from sqlalchemy import select

from gateway import admin
from gateway.db.base import utcnow
from gateway.db.models import WebhookDeliveryRow
from gateway.host import Gateway
from gateway.jobs.events import stage_all
from gateway.jobs.worker import Workers
from gateway.types import Event
from gateway.webhooks import outbox
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


# --- Claims: several processes, slow receivers ------------------------------------------------


class Receivers:
    """Client receivers at ``/hooks/{name}``: record each delivery as it arrives and answer 200,
    or a status queued in ``answers``; a request finds ``hold`` set waits until it is opened."""

    def __init__(self) -> None:
        self.base = ""
        self.arrived: list[tuple[str, str]] = []  # (receiver, Gateway-Delivery)
        self.answers: dict[str, list[int]] = defaultdict(list)
        self.hold: dict[str, asyncio.Event] = {}  # holds the next request to that receiver
        self.delay = 0.0
        self.seen: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.most_at_once: dict[str, int] = defaultdict(int)

    def url(self, name: str) -> str:
        return f"{self.base}/hooks/{name}"

    def ids(self, name: str) -> list[str]:
        return [delivery_id for receiver, delivery_id in self.arrived if receiver == name]

    async def arrivals(self, name: str, count: int) -> None:
        """Wait until ``count`` deliveries have arrived at the receiver."""
        while len(self.ids(name)) < count:
            self.seen[name].clear()
            await self.seen[name].wait()

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.arrived.append((name, request.headers["Gateway-Delivery"]))
        self.seen[name].set()
        self.in_flight[name] += 1
        self.most_at_once[name] = max(self.most_at_once[name], self.in_flight[name])
        try:
            gate = self.hold.pop(name, None)
            if gate is not None:
                await gate.wait()
            await asyncio.sleep(self.delay)
            answers = self.answers[name]
            return web.Response(status=answers.pop(0) if answers else 200)
        finally:
            self.in_flight[name] -= 1


@pytest.fixture
async def receivers(aiohttp_server):
    found = Receivers()
    app = web.Application()
    app.router.add_post("/hooks/{name}", found.handle)
    server = await aiohttp_server(app)
    found.base = str(server.make_url("")).rstrip("/")
    return found


@pytest.fixture
async def live_db(aiohttp_server, tmp_path, database_url):
    running = await start_live(aiohttp_server, tmp_path, database_url)
    yield running
    await running.http.close()


async def announce(live, count: int) -> None:
    """``count`` events for the tenant's subscribers, each committed on its own, in order."""
    for number in range(count):
        event = Event("job.published", live.key.tenant_id, {"number": number})
        await outbox.enqueue(live.gateway, event)


@contextlib.asynccontextmanager
async def another_process(live):
    """A second gateway on the same database, as another `gateway serve` or `worker` runs."""
    other = Gateway.from_settings(live.gateway.settings, entry_points=False)
    await other.open_storage()
    try:
        yield other
    finally:
        await other.close_storage()


async def make_due(gateway: Gateway, delivery_id: str) -> None:
    """The delivery is due now: its lease (or retry wait) ran out."""
    async with gateway.transaction() as session:
        (await session.get(WebhookDeliveryRow, delivery_id)).next_attempt_at = utcnow()


async def test_processes_delivering_at_once_send_each_delivery_once(live_db, receivers):
    live = live_db
    for name in ("a", "b", "c"):
        await subscribe(live, receivers.url(name))
    await announce(live, 4)
    receivers.delay = 0.1  # slow enough that the two processes' sends overlap
    async with (
        another_process(live) as other,
        Deliverer(live.gateway) as one,
        Deliverer(other) as two,
    ):
        handled = await asyncio.gather(one.deliver_due(), two.deliver_due())
    rows = await deliveries(live.gateway)
    assert len(rows) == 12 and sum(handled) == 12
    assert sorted(delivery_id for _, delivery_id in receivers.arrived) == sorted(r.id for r in rows)
    assert all(row.status == "delivered" and row.attempts == 1 for row in rows)


async def test_a_hanging_receiver_does_not_hold_up_another_endpoint(live_db, receivers):
    live = live_db
    receivers.hold["hangs"] = held = asyncio.Event()
    await subscribe(live, receivers.url("hangs"))
    await announce(live, 1)  # the oldest delivery: the first sent
    await subscribe(live, receivers.url("answers"))
    await announce(live, 1)
    async with Deliverer(live.gateway) as deliverer:
        sending = asyncio.create_task(deliverer.deliver_due())
        try:
            # Held up, it would arrive only once the hanging send timed out (10 s).
            await asyncio.wait_for(receivers.seen["answers"].wait(), 5)
        finally:
            held.set()
            handled = await sending
    assert handled == 3
    assert all(row.status == "delivered" for row in await deliveries(live.gateway))


async def test_one_endpoints_deliveries_arrive_one_at_a_time_in_the_order_created(
    live_db, receivers
):
    live = live_db
    endpoints = {
        (await subscribe(live, receivers.url(name)))["id"]: name for name in ("first", "second")
    }
    await announce(live, 4)
    rows = sorted(await deliveries(live.gateway), key=lambda row: row.created_at)
    # Earlier ones were retried: all are due, but the older a delivery, the later it became due.
    async with live.gateway.transaction() as session:
        for age, row in enumerate(rows):
            delivery = await session.get(WebhookDeliveryRow, row.id)
            delivery.next_attempt_at = utcnow() - timedelta(seconds=age + 1)
    receivers.delay = 0.05
    async with Deliverer(live.gateway) as deliverer:
        assert await deliverer.deliver_due() == 8
    for endpoint_id, name in endpoints.items():
        assert receivers.ids(name) == [row.id for row in rows if row.endpoint_id == endpoint_id]
        assert receivers.most_at_once[name] == 1


async def test_a_delivery_whose_sender_died_is_sent_again_once_its_lease_runs_out(
    live_db, receivers
):
    live = live_db
    receivers.hold["hooks"] = held = asyncio.Event()  # the first attempt gets no answer
    await subscribe(live, receivers.url("hooks"))
    await announce(live, 1)
    async with Deliverer(live.gateway) as dying:
        sending = asyncio.create_task(dying.deliver_due())
        await asyncio.wait_for(receivers.seen["hooks"].wait(), 5)
        sending.cancel()  # the process dies mid-send
        with contextlib.suppress(asyncio.CancelledError):
            await sending
    held.set()
    [row] = await deliveries(live.gateway)
    assert row.status == "pending" and row.attempts == 0 and row.next_attempt_at > utcnow()
    async with another_process(live) as other, Deliverer(other) as deliverer:
        assert await deliverer.deliver_due() == 0  # claimed: nobody sends it meanwhile
        await make_due(other, row.id)
        assert await deliverer.deliver_due() == 1
    assert receivers.ids("hooks") == [row.id, row.id]  # at least once
    [row] = await deliveries(live.gateway)
    assert row.status == "delivered" and row.attempts == 1


async def test_a_late_outcome_does_not_overwrite_a_newer_attempt(live_db, receivers):
    live = live_db
    receivers.hold["hooks"] = held = asyncio.Event()
    await subscribe(live, receivers.url("hooks"))
    await announce(live, 1)
    async with Deliverer(live.gateway) as slow:
        sending = asyncio.create_task(slow.deliver_due())
        await asyncio.wait_for(receivers.seen["hooks"].wait(), 5)
        # The slow process's lease runs out, another process takes the delivery over, and its
        # attempt fails.
        [row] = await deliveries(live.gateway)
        await make_due(live.gateway, row.id)
        receivers.answers["hooks"].append(500)
        async with another_process(live) as other, Deliverer(other) as takeover:
            assert await takeover.deliver_due() == 1
        [newer] = await deliveries(live.gateway)
        assert (newer.status, newer.attempts, newer.last_status) == ("pending", 1, 500)
        held.set()  # now the slow process's receiver answers 200
        assert await sending == 1
    [row] = await deliveries(live.gateway)
    assert (row.status, row.attempts, row.last_status) == ("pending", 1, 500)
    assert row.next_attempt_at == newer.next_attempt_at


async def test_a_renewed_lease_keeps_a_taken_over_delivery_from_being_sent_twice(
    live_db, receivers, monkeypatch
):
    """An endpoint's deliveries wait their turn; one whose lease ran out meanwhile was taken
    over by another process, and is not sent again."""
    live = live_db
    monkeypatch.setattr(outbox, "RENEW_BELOW", outbox.LEASE * 2)  # every lease is running low
    receivers.hold["hooks"] = held = asyncio.Event()
    await subscribe(live, receivers.url("hooks"))
    await announce(live, 2)
    first, second = sorted(await deliveries(live.gateway), key=lambda row: row.created_at)
    async with Deliverer(live.gateway) as slow:
        sending = asyncio.create_task(slow.deliver_due())
        await asyncio.wait_for(receivers.seen["hooks"].wait(), 5)
        await make_due(live.gateway, second.id)
        async with another_process(live) as other, Deliverer(other) as takeover:
            assert await takeover.deliver_due() == 1
        held.set()
        assert await sending == 2
    assert receivers.ids("hooks") == [first.id, second.id]
    assert all(row.status == "delivered" for row in await deliveries(live.gateway))


@pytest.fixture
async def background_db(aiohttp_server, tmp_path, database_url):
    running = await start_live(
        aiohttp_server, tmp_path, database_url, webhooks={"background": True, "poll_seconds": 60}
    )
    yield running
    await running.http.close()


async def test_a_hanging_receiver_does_not_hold_up_deliveries_that_come_after_it(
    background_db, receivers
):
    live = background_db
    receivers.hold["hangs"] = held = asyncio.Event()
    await subscribe(live, receivers.url("hangs"))
    await announce(live, 1)
    await asyncio.wait_for(receivers.seen["hangs"].wait(), 5)  # its send is in hand
    await subscribe(live, receivers.url("answers"))
    await announce(live, 1)  # after the commit, the next claim leaves the hanging endpoint out
    try:
        await asyncio.wait_for(receivers.seen["answers"].wait(), 5)
    finally:
        held.set()
    # The endpoint's second delivery, left out while the first was in hand, goes out after it
    # (long before the deliverer's own minute is up).
    await asyncio.wait_for(receivers.arrivals("hangs", 2), 5)


async def test_a_batch_stages_deliveries_only_for_subscribed_tenants_and_events(live_db):
    live = live_db
    gateway = live.gateway
    await subscribe(live, "https://hooks.example.com/acme", events=("job.published",))
    quiet = await admin.create_tenant(gateway, "quiet")  # no endpoint at all
    gone = await admin.create_tenant(gateway, "gone")  # an endpoint, since removed
    status, endpoint = await live.api(
        "POST",
        "/api/webhook-endpoints",
        key=gone,
        json={"url": "https://hooks.example.com/gone", "events": ["job.published"]},
    )
    assert status == 201
    removed, _ = await live.api("DELETE", f"/api/webhook-endpoints/{endpoint['id']}", key=gone)
    assert removed == 200
    events = [
        Event("job.published", live.key.tenant_id, {"n": 1}),
        Event("job.dead", live.key.tenant_id, {"n": 2}),  # not subscribed to
        Event("job.published", quiet.tenant_id, {"n": 3}),
        Event("job.published", gone.tenant_id, {"n": 4}),
        Event("job.published", None, {"n": 5}),
        Event("job.published", live.key.tenant_id, {"n": 6}),
    ]
    async with gateway.transaction() as session:
        staged = await stage_all(session, events)
        assert session.info.get(outbox.STAGED)  # the commit wakes the deliverer
    assert [event.outboxed for event in staged] == [True] * len(events)
    rows = await deliveries(gateway)
    assert sorted((row.tenant_id, row.payload["data"]["n"]) for row in rows) == [
        (live.key.tenant_id, 1),
        (live.key.tenant_id, 6),
    ]

    async with gateway.transaction() as session:
        await stage_all(session, events[2:5])
        assert not session.info.get(outbox.STAGED)  # nobody to tell: no wake
    assert len(await deliveries(gateway)) == 2
