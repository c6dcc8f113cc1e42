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


class _Request:
    def __init__(self, key):
        self.headers = auth(key)


async def test_an_unknown_key_id_costs_what_a_wrong_secret_costs(api, tenant, monkeypatch):
    """Both are read once, then answered from memory, and both compare a secret with a hash."""
    from gateway.default_plugins import api_keys

    _, gateway = api
    reads, compared = [], []
    real_find, real_matches = api_keys.find_active_key, api_keys.secret_matches

    async def find(engine, key_id):
        reads.append(key_id)
        return await real_find(engine, key_id)

    def matches(secret, stored_hash):
        compared.append(secret)
        return real_matches(secret, stored_hash)

    monkeypatch.setattr(api_keys, "find_active_key", find)
    monkeypatch.setattr(api_keys, "secret_matches", matches)
    unknown = "key_doesnotexist.some-secret"
    wrong = f"{tenant.key_id}.some-secret"
    for presented in (unknown, wrong, unknown, wrong):
        assert await api_keys.authenticate_request(gateway, _Request(presented)) is None
    assert reads == ["key_doesnotexist", tenant.key_id]  # the second time, no database read
    assert compared == ["some-secret"] * 4  # a verify either way


async def test_a_remembered_miss_does_not_shut_out_a_new_key(api, monkeypatch):
    from gateway.default_plugins import api_keys

    _, gateway = api
    tenant = await admin.create_tenant(gateway, "acme")
    missing = "key_notyetmade.some-secret"
    assert await api_keys.authenticate_request(gateway, _Request(missing)) is None
    made = await admin.create_key(gateway, tenant.tenant_id)  # a fresh random id: never asked for
    assert await api_keys.authenticate_request(gateway, _Request(made)) is not None


def test_misses_expire_with_the_same_lifetime_and_are_kept_apart(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("gateway.default_plugins.api_keys.time.monotonic", lambda: now[0])
    cache = VerifiedKeys(ttl=5, max_entries=2)
    cache.put("key_real", ("ten", "h", ""))
    for name in ("key_x", "key_y", "key_z"):  # a flood of made-up ids...
        cache.put_miss(name)
    assert cache.get("key_real") is not None  # ...does not push a real key out
    assert not cache.missed("key_x") and cache.missed("key_z")
    now[0] += 5.1
    assert not cache.missed("key_z")
    cache.put_miss("key_w")
    cache.forget("key_w")  # as a revocation or creation in this process would
    assert not cache.missed("key_w")
    VerifiedKeys(ttl=0).put_miss("key_v")
    assert not VerifiedKeys(ttl=0).missed("key_v")


async def test_without_cache_every_unknown_id_is_read():
    reads = []

    async def load(key_id):
        reads.append(key_id)

    cache = VerifiedKeys(ttl=0)
    await cache.fetch("key_a", load)
    await cache.fetch("key_a", load)
    assert reads == ["key_a", "key_a"] and not cache.missed("key_a")
