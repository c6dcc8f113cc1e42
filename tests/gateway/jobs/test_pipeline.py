"""The publish pipeline end to end against the example sandbox: accept, publish, retry, DLQ."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.db.models import PublishJobRow
from gateway.jobs.worker import Workers

from ..connections.conftest import start_live


async def account_of(live) -> tuple[str, str]:
    status, body, _ = await live.connect()
    assert status == 200, body
    connection_id = body["connectionId"]
    _, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts")
    return connection_id, accounts["data"][0]["id"]


async def queue(live, connection_id, account_id, *, key=None, **fields):
    body = {"connectionId": connection_id, "accountId": account_id, "body": "Hello", **fields}
    headers = {"Idempotency-Key": key} if key else {}
    return await live.api("POST", "/api/publish", json=body, headers_extra=headers)


async def another_tenant_publishes(live, name: str, body: str):
    """A second tenant connects its own account and publishes one post: (its key, the 202)."""
    from gateway import admin

    key = await admin.create_tenant(live.gateway, name)
    status, connected, _ = await live.connect(key=key, login_as=f"{name}-user")
    assert status == 200, connected
    connection_id = connected["connectionId"]
    _, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts", key=key)
    status, accepted = await live.api(
        "POST",
        "/api/publish",
        key=key,
        json={"connectionId": connection_id, "accountId": accounts["data"][0]["id"], "body": body},
    )
    assert status == 202, accepted
    return key, accepted


async def tenants_with_backlogs(live, tenants: int, jobs_each: int) -> None:
    """``tenants`` more tenants, each with ``jobs_each`` queued jobs like one made through the
    API (rows written directly: a few hundred publishes would only slow the test)."""
    from gateway.db.jobs import JobRepository
    from gateway.db.models import PublishJobRow, TenantRow

    connection_id, account_id = await account_of(live)
    _, first = await queue(live, connection_id, account_id)
    async with live.gateway.transaction() as session:
        row = await JobRepository(session).get(first["jobId"])
        fields = {
            c.name: getattr(row, c.key)
            for c in PublishJobRow.__table__.columns
            if c.name not in ("id", "post_id", "tenant_id")
        }
        made = [TenantRow(id=f"ten_backlog_{n:03}", name=f"t{n}") for n in range(tenants)]
        session.add_all(made)
        await session.flush()
        session.add_all(
            PublishJobRow(
                id=f"job_{n:03}_{k}", post_id=f"post_{n:03}_{k}", tenant_id=tenant.id, **fields
            )
            for n, tenant in enumerate(made)
            for k in range(jobs_each)
        )


async def job(live, job_id) -> dict:
    status, body = await live.api("GET", f"/api/jobs/{job_id}")
    assert status == 200, body
    return body


async def jobs_count(live) -> int:
    async with live.gateway.session() as session:
        return (await session.execute(select(func.count()).select_from(PublishJobRow))).scalar_one()


async def fault(live, **spec) -> None:
    async with live.http.post(live.sandbox("/_control/faults"), json=spec) as response:
        assert response.status in (200, 201), await response.text()


async def make_due(live, job_id) -> None:
    async with live.gateway.transaction() as session:
        row = await JobRepository(session).get(job_id)
        row.next_attempt_at = utcnow() - timedelta(seconds=1)


async def posts(live) -> list[dict]:
    async with live.http.get(live.sandbox("/_control/state")) as response:
        return (await response.json())["posts"]


POSTS = "/api.examplesocial.test/v1/pages/*/posts"


async def test_a_post_is_accepted_then_published(live, example_plugin):
    connection_id, account_id = await account_of(live)
    status, accepted = await queue(live, connection_id, account_id, title="Hi")
    assert status == 202 and accepted["status"] == "queued"
    assert accepted["jobId"].startswith("job_") and accepted["postId"].startswith("post_")
    assert await Workers(live.gateway, 1).run_once()
    published = await job(live, accepted["jobId"])
    assert published["status"] == "published" and published["attempts"] == 1
    assert published["remotePostId"] and published["remoteUrl"].startswith("https://")
    [post] = await posts(live)
    assert post["message"] == "Hi\n\nHello"
    assert post["clientReference"] == accepted["jobId"]
    assert "job.published" in example_plugin.EVENTS
    assert not await Workers(live.gateway, 1).run_once()  # nothing else is due


async def test_bad_requests_queue_nothing(live):
    connection_id, account_id = await account_of(live)
    cases = [
        ({"connectionId": "conn_nope", "accountId": account_id, "body": "x"}, 404),
        ({"connectionId": connection_id, "accountId": "acct_nope", "body": "x"}, 404),
        ({"connectionId": connection_id, "accountId": account_id}, 422),
        ({"connectionId": connection_id, "accountId": account_id, "body": "x" * 501}, 422),
        (
            {
                "connectionId": connection_id,
                "accountId": account_id,
                "body": "x",
                "mediaUrls": ["ftp://x"],
            },
            400,
        ),
        (
            {
                "connectionId": connection_id,
                "accountId": account_id,
                "body": "x",
                "scheduledAt": "2001-01-01T00:00:00Z",
            },
            422,
        ),
        (
            {
                "connectionId": connection_id,
                "accountId": account_id,
                "body": "x",
                "scheduledAt": "2999-01-01T00:00:00Z",
            },
            422,
        ),
        (
            {
                "connectionId": connection_id,
                "accountId": account_id,
                "body": "x",
                "scheduledAt": "tomorrow",
            },
            422,
        ),
        ({"accountId": account_id, "body": "x"}, 400),
    ]
    for body, expected in cases:
        status, problem = await live.api("POST", "/api/publish", json=body)
        assert status == expected, (body, problem)
    status, problem = await live.api(
        "POST", "/api/publish", json={"connectionId": connection_id, "accountId": account_id}
    )
    assert problem["errors"][0]["field"] == "body"
    assert await jobs_count(live) == 0


async def test_idempotency_key(live):
    connection_id, account_id = await account_of(live)
    first = await queue(live, connection_id, account_id, key="k-1")
    again = await queue(live, connection_id, account_id, key="k-1")
    assert first[0] == 202 and again[0] == 200 and again[1]["jobId"] == first[1]["jobId"]
    other = await queue(live, connection_id, account_id, key="k-1", title="different")
    assert other[0] == 409
    racing = await asyncio.gather(
        *(queue(live, connection_id, account_id, key="k-2") for _ in range(10))
    )
    assert {r[1]["jobId"] for r in racing} == {racing[0][1]["jobId"]}
    assert sorted(r[0] for r in racing).count(202) == 1
    assert await jobs_count(live) == 2


async def test_scheduled_posts_wait_for_their_time(live, monkeypatch):
    from dataclasses import replace

    from gateway_example_plugin.social_connector import ExampleSocialConnector

    # The gateway's own scheduler: as for a platform that cannot schedule.
    capabilities = replace(ExampleSocialConnector.capabilities, native_scheduling=False)
    monkeypatch.setattr(ExampleSocialConnector, "capabilities", capabilities)
    connection_id, account_id = await account_of(live)
    when = (utcnow() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    status, accepted = await queue(live, connection_id, account_id, scheduledAt=when)
    assert status == 202 and accepted["status"] == "scheduled"
    assert not await Workers(live.gateway, 1).run_once()
    await make_due(live, accepted["jobId"])
    assert await Workers(live.gateway, 1).run_once()
    assert (await job(live, accepted["jobId"]))["status"] == "published"


async def test_a_repeated_request_answers_as_the_first_did_after_its_job_has_run(live, monkeypatch):
    from dataclasses import replace

    from gateway_example_plugin.social_connector import ExampleSocialConnector

    # The gateway's own scheduler publishes the scheduled one at its time.
    capabilities = replace(ExampleSocialConnector.capabilities, native_scheduling=False)
    monkeypatch.setattr(ExampleSocialConnector, "capabilities", capabilities)
    connection_id, account_id = await account_of(live)
    when = (utcnow() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    now_status, now_job = await queue(live, connection_id, account_id, key="now")
    later_status, later_job = await queue(
        live, connection_id, account_id, key="later", scheduledAt=when
    )
    assert (now_status, later_status) == (202, 202)
    await make_due(live, later_job["jobId"])
    workers = Workers(live.gateway, 1)
    while await workers.run_once():
        pass
    for accepted in (now_job, later_job):
        assert (await job(live, accepted["jobId"]))["status"] == "published"
    # The client retrying either request (its first answer lost) gets that first answer again.
    assert await queue(live, connection_id, account_id, key="now") == (200, now_job)
    again = await queue(live, connection_id, account_id, key="later", scheduledAt=when)
    assert again == (200, later_job)
    assert later_job["status"] == "scheduled" and now_job["status"] == "queued"


async def test_transient_failures_back_off_then_succeed(live):
    connection_id, account_id = await account_of(live)
    await fault(live, method="POST", path=POSTS, status=503, count=1)
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    failed = await job(live, accepted["jobId"])
    assert failed["status"] == "failed" and failed["error"]["code"] == "transient"
    wait = (
        __import__("datetime").datetime.fromisoformat(
            failed["nextAttemptAt"].replace("Z", "+00:00")
        )
        - utcnow()
    ).total_seconds()
    assert 0.3 < wait < 1.3  # the first step of 1 s, 3 s, 9 s, 27 s, with jitter
    await make_due(live, accepted["jobId"])
    await Workers(live.gateway, 1).run_once()
    done = await job(live, accepted["jobId"])
    assert done["status"] == "published" and done["attempts"] == 2
    assert len(await posts(live)) == 1


async def test_max_attempts_lead_to_the_dlq_and_replay_works(live, example_plugin):
    connection_id, account_id = await account_of(live)
    await fault(live, method="POST", path=POSTS, status=503, count=10)
    _, accepted = await queue(live, connection_id, account_id)
    workers = Workers(live.gateway, 1)
    for _ in range(4):
        await make_due(live, accepted["jobId"])
        assert await workers.run_once()
    dead = await job(live, accepted["jobId"])
    assert dead["status"] == "dead" and dead["attempts"] == 4
    _, dlq = await live.api("GET", "/api/dlq")
    [entry] = dlq["data"]
    assert entry["jobId"] == accepted["jobId"] and entry["reasonCode"] == "max_attempts"
    assert "job.dead" in example_plugin.EVENTS
    async with live.http.delete(live.sandbox("/_control/faults")) as response:
        assert response.status in (200, 204)
    status, replayed = await live.api("POST", f"/api/dlq/{accepted['jobId']}/replay")
    assert status == 200 and replayed["status"] == "queued"
    assert await workers.run_once()
    assert (await job(live, accepted["jobId"]))["status"] == "published"
    assert (await live.api("GET", "/api/dlq"))[1]["data"] == []


async def test_a_refused_request_is_dead_at_once(live):
    connection_id, account_id = await account_of(live)
    body = {"error": {"code": "invalid_parameter", "message": "no", "field": "message"}}
    await fault(live, method="POST", path=POSTS, status=400, body=body)
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    dead = await job(live, accepted["jobId"])
    assert dead["status"] == "dead" and dead["attempts"] == 1
    _, dlq = await live.api("GET", "/api/dlq")
    assert dlq["data"][0]["reasonCode"] == "non_retryable"
    status, discarded = await live.api("DELETE", f"/api/dlq/{accepted['jobId']}")
    assert status == 200 and discarded["status"] == "cancelled"


async def test_rate_limits_make_jobs_wait_without_spending_attempts(live):
    connection_id, account_id = await account_of(live)
    await fault(live, method="POST", path=POSTS, status=429, headers={"Retry-After": "120"})
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    waiting = await job(live, accepted["jobId"])
    assert waiting["status"] == "failed" and waiting["error"]["code"] == "rate_limited"
    async with live.gateway.session() as session:
        row = await JobRepository(session).get(accepted["jobId"])
    assert row.failures == 0
    assert timedelta(seconds=115) < row.next_attempt_at - utcnow() <= timedelta(seconds=121)


async def test_a_revoked_grant_sends_the_job_to_the_dlq_as_auth(live, example_plugin):
    connection_id, account_id = await account_of(live)
    await live.revoke_grant(connection_id)
    _, _accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    _, dlq = await live.api("GET", "/api/dlq")
    assert dlq["data"][0]["reasonCode"] == "auth"
    _, connection = await live.api("GET", f"/api/connections/{connection_id}")
    assert connection["status"] == "needs_reconnect"
    assert "connection.needs_reconnect" in example_plugin.EVENTS
    # New posts for it are refused until it is reconnected.
    assert (await queue(live, connection_id, account_id))[0] == 409


async def test_an_unknown_outcome_is_looked_up_before_any_retry(aiohttp_server, tmp_path):
    live = await start_live(aiohttp_server, tmp_path, outbound={"total_timeout_seconds": 0.5})
    try:
        connection_id, account_id = await account_of(live)
        # 1. The post went out but the answer was lost: the job adopts it, no second post.
        _, lost_answer = await queue(live, connection_id, account_id)
        credentials = await live.gateway.tokens.credentials(connection_id)
        _, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts")
        page = accounts["data"][0]["externalId"]
        made = {"message": "Hello", "client_reference": lost_answer["jobId"]}
        headers = {"Authorization": f"Bearer {credentials.access_token.reveal()}"}
        url = live.sandbox(f"/api.examplesocial.test/v1/pages/{page}/posts")
        async with live.http.post(url, json=made, headers=headers) as response:
            assert response.status == 201
            remote_id = (await response.json())["id"]
        await fault(live, method="POST", path=POSTS, delayMs=1500)
        await Workers(live.gateway, 1).run_once()
        unsure = await job(live, lost_answer["jobId"])
        assert unsure["status"] == "failed" and unsure["error"]["code"] == "outcome_unknown"
        # It waits until the lost request must be over (timeout + 1 s) before it looks.
        async with live.gateway.session() as session:
            row = await JobRepository(session).get(lost_answer["jobId"])
        assert row.next_attempt_at - row.updated_at >= timedelta(seconds=1.45)
        await make_due(live, lost_answer["jobId"])
        await Workers(live.gateway, 1).run_once()
        adopted = await job(live, lost_answer["jobId"])
        assert adopted["status"] == "published" and adopted["remotePostId"] == remote_id
        assert len(await posts(live)) == 1

        # 2. The request never got through: nothing to adopt, so it is retried, once.
        _, lost_request = await queue(live, connection_id, account_id)
        await fault(live, method="POST", path=POSTS, delayMs=1500)
        await Workers(live.gateway, 1).run_once()
        waiting = await job(live, lost_request["jobId"])
        assert waiting["status"] == "failed" and waiting["error"]["code"] == "outcome_unknown"
        await asyncio.sleep(1.2)  # the abandoned request is over at the sandbox
        await make_due(live, lost_request["jobId"])
        await Workers(live.gateway, 1).run_once()
        assert (await job(live, lost_request["jobId"]))["status"] == "published"
        references = [p["clientReference"] for p in await posts(live)]
        assert sorted(references) == sorted([lost_answer["jobId"], lost_request["jobId"]])
    finally:
        await live.http.close()


async def cannot_tell(*_args, **_kwargs):
    from gateway.errors import OutcomeUnknown

    raise OutcomeUnknown("this kind of post cannot be found at the platform")


@pytest.mark.parametrize("look", ["unsupported", "cannot_tell"])
async def test_a_replay_after_an_unknown_outcome_the_platform_cannot_check_publishes(
    aiohttp_server, tmp_path, monkeypatch, look
):
    from gateway_example_plugin.social_connector import ExampleSocialConnector

    from gateway import Connector

    # A platform that cannot be asked whether a post went out, or not about this one.
    find = Connector.find_published if look == "unsupported" else cannot_tell
    monkeypatch.setattr(ExampleSocialConnector, "find_published", find)
    live = await start_live(aiohttp_server, tmp_path, outbound={"total_timeout_seconds": 0.5})
    try:
        connection_id, account_id = await account_of(live)
        _, accepted = await queue(live, connection_id, account_id)
        await fault(live, method="POST", path=POSTS, delayMs=1500, count=1)
        await Workers(live.gateway, 1).run_once()
        await asyncio.sleep(1.2)  # the abandoned request is over at the sandbox
        if look == "cannot_tell":  # the next attempt looks first, and learns nothing
            await make_due(live, accepted["jobId"])
            await Workers(live.gateway, 1).run_once()
        dead = await job(live, accepted["jobId"])
        assert dead["status"] == "dead" and dead["error"]["code"] == "outcome_unknown"
        # The operator checked the platform (nothing there) and replays it.
        assert await posts(live) == []
        status, replayed = await live.api("POST", f"/api/dlq/{accepted['jobId']}/replay")
        assert status == 200 and replayed["status"] == "queued" and replayed["error"] is None
        assert "replayed from the DLQ after an unknown outcome" in replayed["notes"][0]
        assert await Workers(live.gateway, 1).run_once()
        assert (await job(live, accepted["jobId"]))["status"] == "published"
        assert len(await posts(live)) == 1
    finally:
        await live.http.close()


async def test_a_stale_worker_cannot_overwrite_the_attempt_that_replaced_it(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    slow, fast = Workers(live.gateway, 1), Workers(live.gateway, 1)
    stale = await slow.claim()
    assert stale.attempts == 1
    async with live.gateway.transaction() as session:  # its lease runs out
        row = await JobRepository(session).get(stale.id)
        row.lease_until = utcnow() - timedelta(seconds=1)
    assert await fast.claim() is None  # fences the stale attempt off; nothing is due yet
    assert (await job(live, accepted["jobId"]))["attempts"] == 2
    async with live.gateway.transaction() as session:
        assert not await JobRepository(session).fenced_update(stale.id, 1, status="failed")
    await make_due(live, accepted["jobId"])
    assert await fast.run_once()
    assert (await job(live, accepted["jobId"]))["status"] == "published"


async def test_cancel_only_what_has_not_started(live):
    connection_id, account_id = await account_of(live)
    _, first = await queue(live, connection_id, account_id)
    status, cancelled = await live.api("DELETE", f"/api/jobs/{first['jobId']}")
    assert status == 200 and cancelled["status"] == "cancelled"
    assert not await Workers(live.gateway, 1).run_once()
    _, second = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    status, _ = await live.api("DELETE", f"/api/jobs/{second['jobId']}")
    assert status == 409


async def test_jobs_list_filters_and_isolation(live):
    from gateway import admin

    connection_id, account_id = await account_of(live)
    for _ in range(3):
        await queue(live, connection_id, account_id)
    _, page = await live.api("GET", "/api/jobs?limit=2&status=queued")
    assert len(page["data"]) == 2 and page["nextCursor"]
    _, rest = await live.api("GET", f"/api/jobs?limit=2&status=queued&cursor={page['nextCursor']}")
    assert len(rest["data"]) == 1 and rest["nextCursor"] is None
    other = await admin.create_tenant(live.gateway, "other")
    assert (await live.api("GET", "/api/jobs", key=other))[1]["data"] == []
    assert (await live.api("GET", f"/api/jobs/{page['data'][0]['jobId']}", key=other))[0] == 404


async def test_delete_a_published_post(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    await Workers(live.gateway, 1).run_once()
    status, body = await live.api("DELETE", f"/api/posts/{accepted['postId']}")
    assert status == 200 and body == {"postId": accepted["postId"], "deleted": True}
    assert [p["deleted"] for p in await posts(live)] == [True]
    assert (await live.api("DELETE", f"/api/posts/{accepted['postId']}"))[0] == 200
    assert (await live.api("DELETE", "/api/posts/post_nope"))[0] == 404


async def test_deleting_a_connection_cancels_its_queued_jobs(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    await live.api("DELETE", f"/api/connections/{connection_id}")
    assert (await job(live, accepted["jobId"]))["status"] == "cancelled"


async def test_a_job_waiting_more_than_seven_days_expires(live):
    connection_id, account_id = await account_of(live)
    _, accepted = await queue(live, connection_id, account_id)
    async with live.gateway.transaction() as session:
        row = await JobRepository(session).get(accepted["jobId"])
        row.created_at = utcnow() - timedelta(days=8)
    await Workers(live.gateway, 1).run_once()
    _, dlq = await live.api("GET", "/api/dlq")
    assert dlq["data"][0]["reasonCode"] == "expired"
    assert await posts(live) == []


async def test_background_workers_publish_without_help(aiohttp_server, tmp_path):
    live = await start_live(aiohttp_server, tmp_path, jobs={"concurrency": 2, "poll_seconds": 0.2})
    try:
        connection_id, account_id = await account_of(live)
        _, accepted = await queue(live, connection_id, account_id)
        for _ in range(100):
            if (await job(live, accepted["jobId"]))["status"] == "published":
                break
            await asyncio.sleep(0.05)
        assert (await job(live, accepted["jobId"]))["status"] == "published"
    finally:
        await live.http.close()


async def test_one_job_at_a_time_per_account_when_the_connector_asks(live, monkeypatch):
    from gateway_example_plugin.social_connector import ExampleSocialConnector

    monkeypatch.setattr(ExampleSocialConnector, "one_at_a_time_per_account", True)
    connection_id, account_id = await account_of(live)
    _, first = await queue(live, connection_id, account_id)
    _, second = await queue(live, connection_id, account_id)
    busy, other = Workers(live.gateway, 1), Workers(live.gateway, 1)
    claimed = await busy.claim()
    assert claimed.id == first["jobId"]
    assert await other.claim() is None  # the same account is busy: the second job waits
    await busy.execute(claimed)
    assert await other.run_once()
    assert [(await job(live, a["jobId"]))["status"] for a in (first, second)] == ["published"] * 2
