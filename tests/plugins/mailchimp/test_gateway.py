"""End to end through the gateway's HTTP API, against the Mailchimp sandbox mounted in it."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway import admin, clock
from gateway.ops.browser import consent
from plugins.mailchimp.connector import round_up_to_quarter

from .conftest import ACME, FREEBIE, Running, start_running

LIST = "a1b2c3d4e5"


@pytest.fixture
async def live(tmp_path):
    running, runner = await start_running(tmp_path, jobs={"concurrency": 1, "poll_seconds": 0.05})
    yield running
    await running.http.close()
    await runner.cleanup()


async def connect_key(live: Running, api_key: str = ACME.api_key) -> tuple[str, dict]:
    status, connection = await live.api(
        "POST", "/api/connections", json={"platform": "mailchimp", "apiKey": api_key}
    )
    assert status == 201, connection
    status, accounts = await live.api("GET", f"/api/connections/{connection['id']}/accounts")
    assert status == 200
    return connection["id"], {a["externalId"]: a for a in accounts["data"]}


async def settled(live: Running, job_id: str) -> dict:
    """The job once the worker is done with it (published, failed or dead)."""
    for _ in range(400):
        status, job = await live.api("GET", f"/api/jobs/{job_id}")
        assert status == 200
        if job["status"] in ("published", "failed", "dead", "processing"):
            return job
        await asyncio.sleep(0.025)
    pytest.fail(f"job {job_id} stayed {job['status']}")


async def publish(live: Running, connection_id: str, account: dict, **fields) -> tuple[int, dict]:
    body = {"connectionId": connection_id, "accountId": account["id"], **fields}
    return await live.api("POST", "/api/publish", json=body)


async def test_platform_entry_documents_both_ways_in_and_the_options(live: Running):
    _, platforms = await live.api("GET", "/api/platforms")
    mailchimp = next(p for p in platforms["data"] if p["name"] == "mailchimp")
    assert mailchimp["auth"] == "oauth2" and mailchimp["authMethods"] == ["oauth2", "apiKey"]
    assert mailchimp["capabilities"]["postKinds"] == {"mailchimp_audience": ["email_campaign"]}
    assert mailchimp["capabilities"]["scheduling"] is True
    assert "testEmails" in mailchimp["options"]["properties"]


async def test_connect_with_an_api_key(live: Running):
    connection_id, accounts = await connect_key(live)
    assert {a["kind"] for a in accounts.values()} == {"mailchimp_audience"}
    assert accounts[LIST]["name"] == "Acme Newsletter"
    status, check = await live.api("POST", f"/api/connections/{connection_id}/health-check")
    assert status == 200, check


@pytest.mark.parametrize(
    ("api_key", "says"),
    [
        ("0123456789abcdef", "malformed"),
        ("f" * 32 + "-us6", "API Key Invalid"),
        ("0" * 32 + "-us6", "User Disabled"),
    ],
)
async def test_a_bad_key_is_422_naming_the_problem(live: Running, api_key, says):
    status, problem = await live.api(
        "POST", "/api/connections", json={"platform": "mailchimp", "apiKey": api_key}
    )
    assert status == 422
    assert problem["errors"][0]["field"] == "apiKey" and says in problem["detail"]
    assert api_key not in str(problem)
    status, listed = await live.api("GET", "/api/connections")
    assert listed["data"] == []


async def test_connect_with_oauth(live: Running):
    status, started = await live.api(
        "POST",
        "/api/oauth/mailchimp/start",
        json={"returnUrl": "https://app.example.com/done"},
    )
    assert status == 200
    callback = await consent(live.http, started["authorizationUrl"], query={"login_as": "freebie"})
    async with live.http.get(callback, allow_redirects=False) as done:
        assert done.status == 302
        connection_id = parse_qs(urlsplit(done.headers["Location"]).query)["connectionId"][0]
    status, connection = await live.api("GET", f"/api/connections/{connection_id}")
    assert connection["tokenExpiresAt"] is None and connection["nextRefreshAt"] is None
    assert connection["displayName"] == "Freebie Sandbox"
    status, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts")
    assert [a["name"] for a in accounts["data"]] == ["Freebie List"]


async def test_publish_now_sends_the_campaign(live: Running):
    connection_id, accounts = await connect_key(live)
    status, accepted = await publish(
        live,
        connection_id,
        accounts[LIST],
        title="Spring news",
        body="Hello!",
        link="https://acme.example/spring",
        mediaUrls=["https://cdn.example.com/a.jpg"],
    )
    assert status == 202, accepted
    job = await settled(live, accepted["jobId"])
    assert job["status"] == "published", job
    campaigns = (await live.state())["posts"]
    assert [c["id"] for c in campaigns] == [job["remotePostId"]]
    assert campaigns[0]["status"] in ("sending", "sent")
    assert job["remoteUrl"] == campaigns[0]["archive_url"]


async def test_nothing_is_queued_when_mailchimp_would_refuse(live: Running):
    connection_id, accounts = await connect_key(live)
    status, problem = await publish(live, connection_id, accounts["f6e5d4c3b2"], body="Hello")
    assert status == 422
    assert {e["field"] for e in problem["errors"]} == {
        "title",
        "options.mailchimp.fromName",
        "options.mailchimp.replyTo",
    }
    assert (await live.state())["posts"] == []


async def test_a_test_email_through_options(live: Running):
    connection_id, accounts = await connect_key(live)
    status, accepted = await publish(
        live,
        connection_id,
        accounts[LIST],
        title="Draft",
        body="Check me",
        options={"mailchimp": {"testEmails": ["qa@acme.example"], "testOnly": True}},
    )
    assert status == 202
    assert (await settled(live, accepted["jobId"]))["status"] == "published"
    (campaign,) = (await live.state())["posts"]
    assert campaign["status"] == "save"
    assert campaign["tests"][0]["emails"] == ["qa@acme.example"]


async def test_a_sent_campaign_cannot_be_deleted_and_the_client_is_told(live: Running):
    connection_id, accounts = await connect_key(live)
    _, accepted = await publish(live, connection_id, accounts[LIST], title="Hi", body="x")
    await settled(live, accepted["jobId"])
    status, problem = await live.api("DELETE", f"/api/posts/{accepted['postId']}")
    assert status == 422
    assert "sent campaign cannot be deleted" in problem["detail"]


@pytest.mark.parametrize(
    ("status", "title", "job_status", "code"),
    [
        (401, "API Key Invalid", "dead", "needs_reauth"),
        (403, "User Disabled", "dead", "permission_denied"),
        (429, "Too Many Requests", "failed", "rate_limited"),
    ],
)
async def test_platform_refusals_reach_the_job(live: Running, status, title, job_status, code):
    connection_id, accounts = await connect_key(live)
    body = {"type": "x", "title": title, "status": status, "detail": "sandbox says no"}
    await live.control(
        "POST",
        "faults",
        {"method": "POST", "path": "*/3.0/campaigns", "status": status, "body": body},
    )
    _, accepted = await publish(live, connection_id, accounts[LIST], title="Hi", body="x")
    job = await settled(live, accepted["jobId"])
    assert (job["status"], job["error"]["code"], job["error"]["httpStatus"]) == (
        job_status,
        code,
        status,
    )
    assert job["error"]["platformCode"] == title
    _, connection = await live.api("GET", f"/api/connections/{connection_id}")
    assert connection["status"] == ("needs_reconnect" if status == 401 else "active")


async def test_the_readme_tour_fails_a_post_into_the_dlq_and_replays_it(live: Running):
    """The README's "To see a job fail" steps, as a client and the sandbox's control API do."""
    connection_id, accounts = await connect_key(live)
    async with live.http.post(
        f"{live.base}/sandbox/mailchimp/_control/faults", json={"method": "POST", "status": 400}
    ) as armed:
        assert armed.status == 201
    status, accepted = await publish(live, connection_id, accounts[LIST], title="Hi", body="Hello")
    assert status == 202 and accepted["status"] == "queued"
    dead = await settled(live, accepted["jobId"])
    assert (dead["status"], dead["attempts"], dead["error"]["code"]) == (
        "dead",
        1,
        "invalid_request",
    )
    _, dlq = await live.api("GET", "/api/dlq")
    assert [(d["jobId"], d["reasonCode"]) for d in dlq["data"]] == [
        (accepted["jobId"], "non_retryable")
    ]
    status, replayed = await live.api("POST", f"/api/dlq/{accepted['jobId']}/replay")
    assert status == 200 and replayed["status"] == "queued"
    published = await settled(live, accepted["jobId"])
    assert (published["status"], published["attempts"]) == ("published", 2)
    assert published["remotePostId"]
    assert (await live.api("GET", "/api/dlq"))[1]["data"] == []


async def test_members_upsert_tags_remove_and_batch(live: Running):
    _, accounts = await connect_key(live)
    base = f"/api/plugins/mailchimp/audiences/{accounts[LIST]['id']}/members"
    status, member = await live.api(
        "PUT",
        base,
        json={"email": "Jane@Example.com", "mergeFields": {"FNAME": "Jane"}, "tags": ["vip"]},
    )
    assert status == 200, member
    assert member["id"] == hashlib.md5(b"jane@example.com").hexdigest()
    assert (member["status"], member["tags"]) == ("subscribed", ["vip"])
    status, tagged = await live.api(
        "POST",
        f"{base}/tags",
        json={"email": "jane@example.com", "add": ["new"], "remove": ["vip"]},
    )
    assert tagged["tags"] == ["new"]
    status, batch = await live.api(
        "POST",
        f"{base}/batch",
        json={
            "members": [
                {"email": "a@example.com"},
                {"email": "jane@example.com", "status": "unsubscribed"},
            ]
        },
    )
    assert status == 200
    assert [m["email"] for m in batch["created"]] == ["a@example.com"]
    assert [(m["email"], m["status"]) for m in batch["updated"]] == [
        ("Jane@Example.com", "unsubscribed")  # the address as first given
    ]
    status, removed = await live.api("POST", f"{base}/remove", json={"email": "a@example.com"})
    assert (status, removed["removed"]) == (200, True)
    stored = (await live.state())["members"][LIST]
    assert {m["email_address"]: m["status"] for m in stored} == {
        "Jane@Example.com": "unsubscribed",
        "a@example.com": "archived",
    }
    status, problem = await live.api("PUT", base, json={"email": "not-an-address"})
    assert status == 422 and problem["errors"][0]["field"] == "email"
    status, problem = await live.api("PUT", base, json={"mail": "x@example.com"})
    assert status == 400


async def test_member_routes_are_tenant_scoped_and_documented(live: Running):
    _, accounts = await connect_key(live)
    other = await admin.create_tenant(live.gateway, "other")
    path = f"/api/plugins/mailchimp/audiences/{accounts[LIST]['id']}/members"
    status, _ = await live.api("PUT", path, key=other, json={"email": "x@example.com"})
    assert status == 404
    status, _ = await live.api(
        "PUT", "/api/plugins/mailchimp/audiences/acct_nope/members", json={"email": "x@example.com"}
    )
    assert status == 404
    assert (await live.state())["members"][LIST] == []
    async with live.http.get(f"{live.base}/openapi.json") as r:
        document = await r.json()
    operation = document["paths"]["/api/plugins/mailchimp/audiences/{accountId}/members"]["put"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["email"]
    assert operation["parameters"][0]["name"] == "accountId"
    assert "/api/plugins/mailchimp/audiences/{accountId}/members/batch" in document["paths"]


async def test_report_metrics_after_the_sandbox_clock_moves(live: Running):
    connection_id, accounts = await connect_key(live)
    _, accepted = await publish(live, connection_id, accounts[LIST], title="Hi", body="x")
    assert (await settled(live, accepted["jobId"]))["status"] == "published"
    path = f"/api/analytics/{accepted['postId']}?refresh=true"
    status, early = await live.api("GET", path)
    assert status == 200, early
    assert early["metrics"]["reach"] == 0 and early["metrics"]["likes"] is None
    await live.advance(24 * 3600)
    status, later = await live.api("GET", path)
    assert later["metrics"]["reach"] == 420 and later["metrics"]["impressions"] == 630
    assert later["metrics"]["clicks"] == later["raw"]["clicks"]["clicks_total"] > 0
    assert later["raw"]["emails_sent"] == 1000 and later["raw"]["bounces"]["hard_bounces"] == 4


async def wait_for(live: Running, job_id: str, predicate) -> dict:
    for _ in range(400):
        _, job = await live.api("GET", f"/api/jobs/{job_id}")
        if predicate(job):
            return job
        await asyncio.sleep(0.025)
    pytest.fail(f"job {job_id} never got there: {job}")


def later_on(minutes: int, extra_seconds: int = 0) -> datetime:
    base = round_up_to_quarter(clock.now() + timedelta(minutes=minutes))
    return base + timedelta(minutes=4, seconds=extra_seconds)


async def test_publish_scheduled_on_mailchimp_then_cancel(live: Running):
    connection_id, accounts = await connect_key(live)
    asked = later_on(120, 10)
    status, accepted = await publish(
        live,
        connection_id,
        accounts[LIST],
        title="Later",
        body="x",
        scheduledAt=asked.isoformat().replace("+00:00", "Z"),
    )
    assert (status, accepted["status"]) == (202, "scheduled")
    job = await wait_for(live, accepted["jobId"], lambda j: j["remotePostId"])
    assert job["status"] == "scheduled"
    send_at = round_up_to_quarter(asked)
    assert any("rounded up" in note and f"{send_at:%H:%M}" in note for note in job["notes"])
    (campaign,) = (await live.state())["posts"]
    assert (campaign["status"], campaign["id"]) == ("schedule", job["remotePostId"])
    assert campaign["send_time"] == send_at.isoformat()
    status, cancelled = await live.api("DELETE", f"/api/jobs/{accepted['jobId']}")
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert (await live.state())["posts"] == []  # unscheduled, and the draft removed


async def test_a_free_plan_falls_back_to_the_gateway_scheduler(live: Running):
    connection_id, accounts = await connect_key(live, FREEBIE.api_key)
    _, accepted = await publish(
        live,
        connection_id,
        accounts["0f9e8d7c6b"],
        title="Later",
        body="x",
        scheduledAt=later_on(60).isoformat().replace("+00:00", "Z"),
    )
    job = await wait_for(live, accepted["jobId"], lambda j: j["notes"])
    assert job["status"] == "scheduled" and job["remotePostId"] is None
    assert "free plan" in job["notes"][0]
    assert (await live.state())["posts"] == []


async def test_publish_and_contacts_on_both_databases(tmp_path, database_url):
    running, runner = await start_running(
        tmp_path, database_url, jobs={"concurrency": 1, "poll_seconds": 0.05}
    )
    try:
        connection_id, accounts = await connect_key(running)
        _, accepted = await publish(running, connection_id, accounts[LIST], title="Hi", body="x")
        assert (await settled(running, accepted["jobId"]))["status"] == "published"
        path = f"/api/plugins/mailchimp/audiences/{accounts[LIST]['id']}/members"
        status, member = await running.api("PUT", path, json={"email": "db@example.com"})
        assert (status, member["status"]) == (200, "subscribed")
    finally:
        await running.http.close()
        await runner.cleanup()
