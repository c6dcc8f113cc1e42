"""The default API-key check: hashes, revocation, the short verified-key cache, admin scope."""

from __future__ import annotations

from sqlalchemy import text

from gateway import admin
from gateway.default_plugins.api_keys import VerifiedKeys
from gateway.web.app import create_app

from ...conftest import auth, settings_for


async def test_only_the_hash_of_a_key_is_stored(api, tenant):
    _, gateway = api
    async with gateway.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT id, secret_hash FROM api_keys"))).all()
    secret = tenant.api_key.split(".", 1)[1]
    assert [row.id for row in stored] == [tenant.key_id]
    assert secret not in stored[0].secret_hash and len(stored[0].secret_hash) == 64


async def test_a_cached_key_still_needs_the_right_secret(api, tenant):
    client, _ = api
    assert (await client.get("/api/platforms", headers=auth(tenant))).status == 200
    forged = f"{tenant.key_id}.guessed-secret"
    assert (await client.get("/api/platforms", headers=auth(forged))).status == 401


async def test_without_cache_a_revocation_elsewhere_is_seen_at_once(
    aiohttp_client, tmp_path, example_plugin
):
    from gateway.host import Gateway

    settings = settings_for(tmp_path, auth={"key_cache_seconds": 0})
    gateway = Gateway.from_settings(
        settings, extra_plugins=[("example", example_plugin)], entry_points=False
    )
    client = await aiohttp_client(create_app(gateway))
    key = await admin.create_tenant(gateway, "acme")
    assert (await client.get("/api/platforms", headers=auth(key))).status == 200
    # Another process (the CLI) revokes it straight in the database.
    async with gateway.engine.begin() as conn:
        await conn.execute(text("UPDATE api_keys SET revoked_at = CURRENT_TIMESTAMP"))
    assert (await client.get("/api/platforms", headers=auth(key))).status == 401


def test_cache_entries_expire_and_are_bounded(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("gateway.default_plugins.api_keys.time.monotonic", lambda: now[0])
    cache = VerifiedKeys(ttl=5, max_entries=2)
    cache.put("key_a", ("ten", "h", ""))
    assert cache.get("key_a") == ("ten", "h", "")
    now[0] += 5.1
    assert cache.get("key_a") is None
    for name in ("key_a", "key_b", "key_c"):
        cache.put(name, ("ten", "h", ""))
    assert cache.get("key_a") is None and cache.get("key_c") is not None
    VerifiedKeys(ttl=0).put("key_x", ("ten", "h", ""))  # ttl 0 caches nothing


async def test_admin_scope_is_carried_by_the_principal(api):
    _, gateway = api
    admin_key = await admin.create_tenant(gateway, "ops", admin=True)
    plain = await admin.create_key(gateway, admin_key.tenant_id)
    from gateway.default_plugins.api_keys import authenticate_request

    class FakeRequest:
        def __init__(self, key):
            self.headers = auth(key)

    assert (await authenticate_request(gateway, FakeRequest(admin_key))).is_admin
    assert not (await authenticate_request(gateway, FakeRequest(plain))).is_admin


async def test_requests_that_miss_the_cache_together_share_one_lookup():
    import asyncio

    lookups = []

    async def load(key_id):
        lookups.append(key_id)
        await asyncio.sleep(0.01)
        return ("ten", "h", "")

    cache = VerifiedKeys(ttl=5)
    found = await asyncio.gather(*(cache.fetch("key_a", load) for _ in range(20)))
    assert found == [("ten", "h", "")] * 20 and lookups == ["key_a"]
    assert await cache.fetch("key_a", load) == ("ten", "h", "") and lookups == ["key_a"]
    uncached = VerifiedKeys(ttl=0)  # no cache: every request reads (revocations at once)
    await asyncio.gather(*(uncached.fetch("key_a", load) for _ in range(3)))
    assert len(lookups) == 4
