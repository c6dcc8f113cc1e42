"""The fast accept path stays right: stale ownership caches, the one-hop SQLite batch, settling."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from sqlalchemy import select, text

from gateway.db.base import utcnow
from gateway.db.connections import ConnectionRepository
from gateway.db.models import PublishJobRow
from gateway.errors import Conflict
from gateway.jobs import inserter as inserter_module
from gateway.jobs.batch import Refused, Stored, pending_job, settle
from gateway.jobs.ownership import ownership_of

from ..connections.conftest import start_live
from .test_pipeline import account_of, jobs_count, queue


async def _two_gateways(aiohttp_server, tmp_path, database_url):
    """Two gateways ("processes": own caches, own write queues) over one database."""
    first = await start_live(aiohttp_server, tmp_path, database_url)
    second = await start_live(aiohttp_server, tmp_path, database_url)
    second.key = first.key  # one tenant, served by both
    return first, second


async def test_a_deleted_connection_is_refused_at_once_in_this_process(live):
    connection_id, account_id = await account_of(live)
    assert (await queue(live, connection_id, account_id))[0] == 202
    assert ownership_of(live.gateway).peek(connection_id) is not None
    assert (await live.api("DELETE", f"/api/connections/{connection_id}"))[0] == 200
    status, problem = await queue(live, connection_id, account_id)
    assert status == 404, problem
    assert await jobs_count(live) == 1


async def test_a_stale_cache_in_another_process_cannot_queue_for_a_deleted_connection(
    aiohttp_server, tmp_path, database_url
):
    one, other = await _two_gateways(aiohttp_server, tmp_path, database_url)
    try:
        connection_id, account_id = await account_of(one)
        status, first = await queue(other, connection_id, account_id)
        assert status == 202, first
        # The other process still believes the connection is active...
        assert (await one.api("DELETE", f"/api/connections/{connection_id}"))[0] == 200
        assert ownership_of(other.gateway).peek(connection_id).status == "active"
        # ...but its write checks again, and the refusal comes from a fresh read.
        status, problem = await queue(other, connection_id, account_id, key="after-delete")
        assert status == 404, problem
        async with one.gateway.session() as session:
            rows = (await session.execute(select(PublishJobRow))).scalars().all()
        assert [(r.id, r.status) for r in rows] == [(first["jobId"], "cancelled")]
    finally:
        await one.http.close()
        await other.http.close()


async def test_a_connection_needing_reconnect_elsewhere_is_refused_with_409(
    aiohttp_server, tmp_path
):
    one, other = await _two_gateways(aiohttp_server, tmp_path, None)
    try:
        connection_id, account_id = await account_of(one)
        assert (await queue(other, connection_id, account_id))[0] == 202
        async with one.gateway.session() as session:
            row = await ConnectionRepository(session).get(connection_id)
        await one.gateway.tokens.mark_needs_reconnect(row, "the user removed the app")
        assert ownership_of(other.gateway).peek(connection_id) is not None
        assert (await queue(other, connection_id, account_id))[0] == 409
        assert await jobs_count(one) == 1
    finally:
        await one.http.close()
        await other.http.close()


async def test_another_tenant_cannot_use_a_cached_connection(live):
    from gateway import admin

    connection_id, account_id = await account_of(live)
    assert (await queue(live, connection_id, account_id))[0] == 202
    stranger = await admin.create_tenant(live.gateway, "stranger")
    body = {"connectionId": connection_id, "accountId": account_id, "body": "Hello"}
    status, _ = await live.api("POST", "/api/publish", json=body, key=stranger)
    assert status == 404
    assert await jobs_count(live) == 1


async def test_the_one_hop_batch_writes_exactly_what_the_portable_path_writes(live, monkeypatch):
    connection_id, account_id = await account_of(live)
    hops = []
    one_hop = inserter_module.write_in_one_hop

    async def counted(*args):
        hops.append(1)
        return await one_hop(*args)

    monkeypatch.setattr(inserter_module, "write_in_one_hop", counted)
    when = (utcnow() + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
    fields = {"title": "Ünïcode ✓", "scheduledAt": when, "options": {"examplesocial": {}}}
    status, fast = await queue(live, connection_id, account_id, key="fast", **fields)
    assert status == 202 and hops == [1]
    monkeypatch.setattr(inserter_module, "one_hop_available", lambda: False)
    status, portable = await queue(live, connection_id, account_id, key="portable", **fields)
    assert status == 202 and hops == [1]

    async with live.gateway.session() as session:
        result = await session.execute(
            text("SELECT * FROM publish_jobs WHERE id IN (:a, :b) ORDER BY idempotency_key"),
            {"a": fast["jobId"], "b": portable["jobId"]},
        )
        a, b = (dict(row._mapping) for row in result)
    differ = {"id", "post_id", "idempotency_key", "created_at", "updated_at", "next_attempt_at"}
    assert {k: v for k, v in a.items() if k not in differ} == {
        k: v for k, v in b.items() if k not in differ
    }
    stamp = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")
    for column in ("created_at", "updated_at", "next_attempt_at", "scheduled_at"):
        assert stamp.fullmatch(a[column]) and stamp.fullmatch(b[column]), (a, b)
    # And the ORM reads it back as it wrote it.
    status, job = await live.api("GET", f"/api/jobs/{fast['jobId']}")
    assert status == 200 and job["status"] == "scheduled" and job["scheduledAt"] == when


async def test_a_batch_without_keys_writes_what_a_batch_with_keys_writes(
    aiohttp_server, tmp_path, database_url
):
    # PostgreSQL: a batch without Idempotency-Keys is one INSERT ... SELECT statement, the
    # other goes through a transaction; SQLite: both take the one-hop path.
    live = await start_live(aiohttp_server, tmp_path, database_url)
    try:
        connection_id, account_id = await account_of(live)
        when = (utcnow() + timedelta(hours=2)).isoformat().replace("+00:00", "Z")
        fields = {"title": "Ünïcode ✓", "scheduledAt": when, "options": {"examplesocial": {}}}
        status, plain = await queue(live, connection_id, account_id, **fields)
        assert status == 202, plain
        status, keyed = await queue(live, connection_id, account_id, key="keyed", **fields)
        assert status == 202, keyed
        async with live.gateway.session() as session:
            a = dict((await session.get(PublishJobRow, plain["jobId"])).__dict__)
            b = dict((await session.get(PublishJobRow, keyed["jobId"])).__dict__)
        differ = {"_sa_instance_state", "id", "post_id", "idempotency_key", "created_at"}
        differ |= {"updated_at", "next_attempt_at"}
        assert {k: v for k, v in a.items() if k not in differ} == {
            k: v for k, v in b.items() if k not in differ
        }
        assert a["request_json"]["options"] == {"examplesocial": {}}
        assert a["idempotency_key"] is None and a["polls"] == 0 and a["lease_owner"] is None
        status, job = await live.api("GET", f"/api/jobs/{plain['jobId']}")
        assert status == 200 and job["status"] == "scheduled" and job["scheduledAt"] == when

        # The write refuses an account that went away since the cached view was taken.
        async with live.gateway.transaction() as session:
            await session.execute(text("UPDATE accounts SET active = false"))
        status, problem = await queue(live, connection_id, account_id)
        assert status == 404, problem
        assert await jobs_count(live) == 2
    finally:
        await live.http.close()


async def test_concurrent_duplicates_in_one_batch_make_one_job(
    aiohttp_server, tmp_path, database_url
):
    live = await start_live(aiohttp_server, tmp_path, database_url)
    try:
        connection_id, account_id = await account_of(live)
        same = [queue(live, connection_id, account_id, key="dup") for _ in range(8)]
        different = queue(live, connection_id, account_id, key="dup", title="other")
        plain = [queue(live, connection_id, account_id) for _ in range(4)]  # no key
        *answers, clash = (await asyncio.gather(*same, different, *plain))[:-4]
        job_ids = {body["jobId"] for status, body in answers if status in (200, 202)}
        assert len(job_ids) == 1
        # Whichever body came first owns the key; every request with the other body is a 409.
        assert sorted(status for status, _ in [*answers, clash]).count(202) == 1
        assert clash[0] in (409, 202)
        assert await jobs_count(live) == 5  # the four without a key, and the key's one
    finally:
        await live.http.close()


async def test_an_expired_key_is_freed_for_a_new_job(aiohttp_server, tmp_path, database_url):
    live = await start_live(aiohttp_server, tmp_path, database_url)
    try:
        connection_id, account_id = await account_of(live)
        _, first = await queue(live, connection_id, account_id, key="old")
        async with live.gateway.transaction() as session:
            row = await session.get(PublishJobRow, first["jobId"])
            row.created_at = utcnow() - timedelta(hours=25)
        status, second = await queue(live, connection_id, account_id, key="old", title="new")
        assert status == 202 and second["jobId"] != first["jobId"]
        async with live.gateway.session() as session:
            old = await session.get(PublishJobRow, first["jobId"])
        assert old.idempotency_key is None
    finally:
        await live.http.close()


async def test_keys_repeated_refused_and_new_in_one_batch_are_each_settled(
    aiohttp_server, tmp_path, database_url
):
    """One batch with a new key, a repeat of a stored key (same body, and another body), a
    key for an account that went away, and no key: each gets its own answer (PostgreSQL
    inserts what it can in one statement and settles the rest)."""
    live = await start_live(aiohttp_server, tmp_path, database_url)
    try:
        connection_id, account_id = await account_of(live)
        status, connected, _ = await live.connect(login_as="another-user")
        assert status == 200, connected
        other_connection = connected["connectionId"]
        _, accounts = await live.api("GET", f"/api/connections/{other_connection}/accounts")
        other_account = accounts["data"][0]["id"]
        assert other_connection != connection_id
        _, stored = await queue(live, connection_id, account_id, key="stored")
        assert (await live.api("DELETE", f"/api/connections/{other_connection}"))[0] == 200
        answers = await asyncio.gather(
            queue(live, connection_id, account_id, key="new"),
            queue(live, connection_id, account_id, key="stored"),
            queue(live, connection_id, account_id, key="stored", title="another body"),
            queue(live, other_connection, other_account, key="gone"),
            queue(live, connection_id, account_id),
        )
        (new, new_body), (again, again_body), (clash, _), (gone, _), (plain, _) = answers
        assert new == 202 and new_body["jobId"] != stored["jobId"]
        assert again == 200 and again_body["jobId"] == stored["jobId"]
        assert clash == 409 and gone == 404 and plain == 202
        assert await jobs_count(live) == 3  # stored, new and plain
    finally:
        await live.http.close()


async def test_stopping_commits_what_is_pending(live):
    connection_id, account_id = await account_of(live)
    async with live.gateway.session() as session:
        tenant_id = (await ConnectionRepository(session).get(connection_id)).tenant_id
    jobs = [_pending(tenant_id, connection_id, account_id, f"job_stop{i}") for i in range(3)]
    waiting = [asyncio.create_task(live.gateway.inserter.insert(job)) for job in jobs]
    await asyncio.sleep(0)  # they are queued for the next group commit
    await live.gateway.inserter.stop()
    assert [(await task).job_id for task in waiting] == ["job_stop0", "job_stop1", "job_stop2"]
    # Once stopped, a request is committed on its own rather than waiting forever.
    late = await live.gateway.inserter.insert(
        _pending(tenant_id, connection_id, account_id, "job_late")
    )
    assert late.job_id == "job_late"
    assert await jobs_count(live) == 4


def _pending(tenant_id, connection_id, account_id, job_id, *, key=None, digest="h" * 64):
    now = utcnow()
    return pending_job(
        job_id=job_id,
        post_id=job_id.replace("job", "post"),
        tenant_id=tenant_id,
        connection_id=connection_id,
        account_id=account_id,
        platform="examplesocial",
        status="queued",
        request_json={"body": "x"},
        idempotency_key=key,
        request_hash=digest,
        max_attempts=4,
        scheduled_at=None,
        next_attempt_at=now,
        now=now,
    )


def test_settle_decides_each_request_of_a_batch():
    now = utcnow()
    owned = {("ten_a", "conn_1", "acct_1")}
    batch = [
        _pending("ten_a", "conn_1", "acct_1", "job_1", key="k", digest="d1"),
        _pending("ten_a", "conn_1", "acct_1", "job_2", key="k", digest="d1"),  # same body
        _pending("ten_a", "conn_1", "acct_1", "job_3", key="k", digest="d2"),  # other body
        _pending("ten_b", "conn_1", "acct_1", "job_4"),  # not this tenant's account
        _pending("ten_a", "conn_1", "acct_1", "job_5", key="seen", digest="d1"),
        _pending("ten_a", "conn_1", "acct_1", "job_6", key="stale", digest="d9"),
    ]
    previous = [
        ("job_0", "post_0", "published", "ten_a", "seen", "d1", now - timedelta(hours=1)),
        ("job_9", "post_9", "queued", "ten_a", "stale", "d1", now - timedelta(hours=25)),
    ]
    outcomes, rows, freed = settle(batch, owned, previous, now)
    assert outcomes[0] == Stored("job_1", "post_1", "queued")
    assert outcomes[1] == Stored("job_1", "post_1", "queued", replayed=True)
    assert isinstance(outcomes[2], Conflict)
    assert isinstance(outcomes[3], Refused)
    assert outcomes[4] == Stored("job_0", "post_0", "published", replayed=True)
    assert outcomes[5] == Stored("job_6", "post_6", "queued")
    assert [row["id"] for row in rows] == ["job_1", "job_6"]
    assert freed == ["job_9"]
