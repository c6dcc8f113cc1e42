"""Failed authentications per client address: counted, limited, forgotten after the window."""

from __future__ import annotations

import pytest

from gateway import admin, clock
from gateway.host import Gateway
from gateway.web.app import create_app
from gateway.web.lockout import FailedAuthentications

from ...conftest import auth, settings_for

PROBLEM = "application/problem+json"


def test_an_address_waits_once_it_passes_the_limit_until_its_window_ends():
    with clock.use(clock.Clock(0)) as moved:
        failures = FailedAuthentications(limit=3, window=60)
        for _ in range(2):
            failures.failed("192.0.2.1")
        assert failures.wait("192.0.2.1") == 0
        failures.failed("192.0.2.1")
        assert 0 < failures.wait("192.0.2.1") <= 60
        assert failures.wait("192.0.2.2") == 0  # another address is not held
        moved.offset = 61  # the window has passed
        assert failures.wait("192.0.2.1") == 0
        failures.failed("192.0.2.1")  # a new window: one failure so far
        assert failures.wait("192.0.2.1") == 0


def test_ipv6_is_counted_by_its_64_and_mapped_ipv4_as_ipv4():
    failures = FailedAuthentications(limit=2, window=60)
    failures.failed("2001:db8:1:2::1")
    failures.failed("2001:db8:1:2:ffff::9")
    assert failures.wait("2001:db8:1:2::77") > 0
    assert failures.wait("2001:db8:1:3::1") == 0
    failures.failed("::ffff:192.0.2.9")
    failures.failed("192.0.2.9")
    assert failures.wait("192.0.2.9") > 0


def test_no_limit_and_a_bounded_table():
    unlimited = FailedAuthentications(limit=0, window=60)
    for _ in range(10):
        unlimited.failed("192.0.2.1")
    assert unlimited.wait("192.0.2.1") == 0
    small = FailedAuthentications(limit=1, window=60, max_addresses=2)
    for last in range(1, 4):
        small.failed(f"192.0.2.{last}")
    assert small.wait("192.0.2.1") == 0 and small.wait("192.0.2.3") > 0


@pytest.fixture
async def strict(aiohttp_client, tmp_path, example_plugin):
    settings = settings_for(tmp_path, auth={"failure_limit": 3})
    gateway = Gateway.from_settings(
        settings, extra_plugins=[("example", example_plugin)], entry_points=False
    )
    client = await aiohttp_client(create_app(gateway))
    return client, gateway


async def test_past_the_limit_the_api_answers_429_even_to_a_valid_key(strict):
    client, gateway = strict
    key = await admin.create_tenant(gateway, "acme")
    for _ in range(5):  # no key at all guesses nothing and is not counted
        assert (await client.get("/api/platforms")).status == 401
    assert (await client.get("/api/platforms", headers=auth(key))).status == 200
    for _ in range(3):
        wrong = await client.get("/api/platforms", headers=auth(f"{key.key_id}.wrong"))
        assert wrong.status == 401
    refused = await client.get("/api/platforms", headers=auth(key))
    assert refused.status == 429
    assert (await client.get("/api/platforms")).status == 401  # no key: still told to send one
    assert refused.headers["Content-Type"].startswith(PROBLEM)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    problem = await refused.json()
    assert problem["type"] == "urn:gateway:problem:too_many_failures"
    assert problem["status"] == 429
    assert (await client.get("/healthz")).status == 200  # only authentication is held


async def test_dashboard_sign_in_counts_against_the_same_limit(strict):
    client, gateway = strict
    key = await admin.create_tenant(gateway, "acme")
    origin = {"Origin": str(client.make_url("")).rstrip("/")}
    for _ in range(3):
        failed = await client.post(
            "/dashboard/login", data={"apiKey": "key_nope.wrong"}, headers=origin
        )
        assert failed.status == 401
    held = await client.post(
        "/dashboard/login", data={"apiKey": key.api_key}, headers=origin, allow_redirects=False
    )
    assert held.status == 429 and int(held.headers["Retry-After"]) >= 1
    assert (await client.get("/api/platforms", headers=auth(key))).status == 429
