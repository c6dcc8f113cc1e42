"""Client webhook endpoints go through netguard: refused at creation where the URL shows it,
at delivery once resolved; never a redirect; a cap per tenant."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from aiohttp import web

from gateway.netguard import Guard, StaticResolver
from gateway.webhooks.outbox import Deliverer

from ..connections.conftest import start_live
from .test_deliveries import announce, deliveries, subscribe

EVENTS = ["job.published"]


@pytest.fixture
async def site(aiohttp_server):
    """Loopback receivers: ``/hooks`` answers 200, ``/moved`` a 307 to ``/internal``."""
    received: list[tuple[str, bytes]] = []
    where: dict[str, str] = {}

    async def hooks(request: web.Request) -> web.Response:
        received.append((request.path, await request.read()))
        return web.Response(status=200)

    async def moved(request: web.Request) -> web.Response:
        received.append((request.path, await request.read()))
        raise web.HTTPTemporaryRedirect(where["internal"])

    app = web.Application()
    app.router.add_post("/hooks", hooks)
    app.router.add_post("/internal", hooks)
    app.router.add_post("/moved", moved)
    server = await aiohttp_server(app)
    where["internal"] = str(server.make_url("/internal"))
    return server.port, received


@pytest.fixture
async def strict(aiohttp_server, tmp_path):
    """A gateway configured as production is: private and loopback targets refused."""
    running = await start_live(aiohttp_server, tmp_path, security={"allow_private_targets": False})
    yield running
    await running.http.close()


@pytest.fixture
async def live(aiohttp_server, tmp_path):
    running = await start_live(aiohttp_server, tmp_path)
    yield running
    await running.http.close()


async def create(live, url: str, key=None) -> tuple[int, dict]:
    return await live.api(
        "POST", "/api/webhook-endpoints", json={"url": url, "events": EVENTS}, key=key
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hooks",
        "http://localhost:3000/hooks",
        "http://127.1/hooks",
        "http://0x7f000001/hooks",
        "http://2130706433/hooks",
        "http://0.0.0.0/hooks",
        "http://[::1]/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://10.0.0.8/hooks",
        "http://[fd12::8]/hooks",
        "http://169.254.169.254/latest/meta-data/",
    ],
)
async def test_internal_endpoints_are_refused_at_creation(strict, url):
    status, problem = await create(strict, url)
    assert status == 422, problem
    assert problem["type"] == "urn:gateway:problem:invalid_input"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("url", "target_refused")]
    _, listed = await strict.api("GET", "/api/webhook-endpoints")
    assert listed["data"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/",
        "http://[::ffff:169.254.169.254]/",
        "http://[fd00:ec2::254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://0.0.0.0:8080/hooks",
        "http://[fe80::1]/hooks",
    ],
)
async def test_metadata_link_local_and_unspecified_are_refused_in_sandbox_mode_too(live, url):
    status, problem = await create(live, url)
    assert status == 422 and problem["errors"][0]["field"] == "url", problem


async def test_a_local_receiver_is_accepted_in_sandbox_mode(live, site):
    port, received = site
    await subscribe(live, f"http://127.0.0.1:{port}/hooks", events=EVENTS)
    await subscribe(live, f"http://localhost:{port}/hooks", events=EVENTS)
    await announce(live, 1)
    async with Deliverer(live.gateway) as deliverer:
        assert await deliverer.deliver_due() == 2
    assert [path for path, _ in received] == ["/hooks", "/hooks"]


@pytest.mark.parametrize(
    ("allow_private", "address", "reason"),
    [(False, "127.0.0.1", "loopback"), (True, "169.254.169.254", "metadata")],
)
async def test_a_name_resolving_to_a_refused_address_fails_the_delivery_for_good(
    aiohttp_server, tmp_path, site, allow_private, address, reason
):
    live = await start_live(
        aiohttp_server, tmp_path, security={"allow_private_targets": allow_private}
    )
    port, received = site
    # The name passes at creation (a name shows nothing); DNS then answers an internal address.
    await subscribe(live, f"http://hooks.example:{port}/hooks?token=client-secret", events=EVENTS)
    live.gateway.guard = Guard(
        live.gateway.guard.policy, lambda: StaticResolver({"hooks.example": [address]})
    )
    await announce(live, 1)
    try:
        with structlog.testing.capture_logs() as logs:
            async with Deliverer(live.gateway) as deliverer:
                assert await deliverer.deliver_due() == 1
    finally:
        await live.http.close()
    assert received == []
    [row] = await deliveries(live.gateway)
    assert (row.status, row.attempts) == ("failed", 1)  # not retried: it would be refused again
    assert row.last_error.startswith("target_refused") and address in row.last_error
    [entry] = [e for e in logs if e["event"] == "webhooks.delivery_refused"]
    assert entry["reason"] == reason and entry["host"] == "hooks.example"
    assert "client-secret" not in repr(logs)


async def test_a_delivery_never_follows_a_redirect(live, site):
    port, received = site
    await subscribe(live, f"http://127.0.0.1:{port}/moved", events=EVENTS)
    await announce(live, 1)
    async with Deliverer(live.gateway) as deliverer:
        assert await deliverer.deliver_due() == 1
    # The signed body went to the endpoint only, not where its 307 pointed.
    assert [path for path, _ in received] == ["/moved"]
    [row] = await deliveries(live.gateway)
    # A failed attempt like any other non-2xx: retried on the schedule, given up after 3 days.
    assert (row.status, row.last_status, row.attempts) == ("pending", 307, 1)


async def test_endpoints_per_tenant_are_capped(aiohttp_server, tmp_path, database_url):
    from gateway import admin

    live = await start_live(
        aiohttp_server, tmp_path, database_url, webhooks={"max_endpoints_per_tenant": 2}
    )
    try:
        first = await subscribe(live, "https://a.example/hooks", events=EVENTS)
        await subscribe(live, "https://b.example/hooks", events=EVENTS)
        status, problem = await create(live, "https://c.example/hooks")
        assert status == 409 and "max_endpoints_per_tenant" in problem["detail"], problem
        other = await admin.create_tenant(live.gateway, "other")
        assert (await create(live, "https://c.example/hooks", key=other))[0] == 201
        await live.api("DELETE", f"/api/webhook-endpoints/{first['id']}")
        assert (await create(live, "https://c.example/hooks"))[0] == 201
        # Creations at once take the last place once. (The tenant's row is locked for that on
        # PostgreSQL; these requests do not reliably overlap enough to show it without.)
        _, listed = await live.api("GET", "/api/webhook-endpoints")
        await live.api("DELETE", f"/api/webhook-endpoints/{listed['data'][0]['id']}")
        answers = await asyncio.gather(*(create(live, f"https://{n}.example/") for n in "defg"))
        assert sorted(status for status, _ in answers) == [201, 409, 409, 409]
    finally:
        await live.http.close()


def test_the_gateway_guard_follows_the_settings(tmp_path):
    from gateway.host import Gateway
    from tests.conftest import settings_for

    strict = settings_for(
        tmp_path, security={"allow_private_targets": False, "allowed_hosts": ["10.1.0.0/16"]}
    )
    policy = Gateway.from_settings(strict, entry_points=False).guard.policy
    assert not policy.allow_private
    policy.check_url("http://10.1.2.3/hooks")
    policy.check_url("http://localhost:8080/sandbox/")  # the gateway's own, in sandbox mode
