"""Publishing every post kind through the gateway's HTTP API against the Meta sandbox."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository

CDN = "https://cdn.example.com"


async def make_due(meta, job_id: str) -> None:
    async with meta.gateway.transaction() as session:
        row = await JobRepository(session).get(job_id)
        row.next_attempt_at = utcnow() - timedelta(seconds=1)


async def published(meta, connection_id, account, **fields) -> dict:
    accepted = await meta.queued(connection_id, account, **fields)
    assert await meta.run_jobs()
    return await meta.job(accepted["jobId"])


def live_posts(state: dict) -> dict[str, dict]:
    return {post["id"]: post for post in state["posts"]}


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"body": "Just text"}, "post"),
        ({"body": "Read this", "link": "https://example.com/a"}, "post"),
        ({"body": "A photo", "mediaUrls": [f"{CDN}/a.jpg"]}, "photo"),
        ({"body": "Two", "mediaUrls": [f"{CDN}/a.jpg", f"{CDN}/b.jpg"]}, "post"),
        ({"title": "Clip", "body": "A video", "mediaUrls": [f"{CDN}/v.mp4"]}, "video"),
    ],
)
async def test_facebook_post_kinds(meta, fields, kind):
    connection_id, accounts = await meta.accounts()
    job = await published(meta, connection_id, accounts["facebook_page"], **fields)
    assert job["status"] == "published", job
    assert job["remoteUrl"].startswith("https://www.facebook.com/")
    posts = (await meta.state())["posts"]
    made = [
        p for p in posts if p["kind"] == kind and not (p["kind"] == "photo" and not p["published"])
    ]
    assert made, posts
    if len(fields.get("mediaUrls", [])) == 2:
        [feed] = [p for p in posts if p["id"] == job["remotePostId"]]
        assert len(feed["attachedMedia"]) == 2
    if kind == "photo":
        assert made[0]["postId"] == job["remotePostId"]


@pytest.mark.parametrize(
    ("fields", "product"),
    [
        ({"body": "An image #one", "mediaUrls": [f"{CDN}/a.jpg"]}, "FEED"),
        ({"body": "Carousel", "mediaUrls": [f"{CDN}/a.jpg", f"{CDN}/b.jpg"]}, "FEED"),
        (
            {"mediaUrls": [f"{CDN}/s.jpg"], "options": {"meta": {"mediaType": "STORIES"}}},
            "STORY",
        ),
    ],
)
async def test_instagram_images_publish_at_once(meta, fields, product):
    connection_id, accounts = await meta.accounts()
    job = await published(meta, connection_id, accounts["instagram_business"], **fields)
    assert job["status"] == "published", job
    [media] = [p for p in (await meta.state())["posts"] if p["platform"] == "instagram"]
    assert media["id"] == job["remotePostId"] and media["mediaProductType"] == product
    assert job["remoteUrl"] == media["permalink"]


async def test_a_reel_is_processing_until_the_container_finishes(meta):
    connection_id, accounts = await meta.accounts()
    accepted = await meta.queued(
        connection_id,
        accounts["instagram_business"],
        body="My reel",
        mediaUrls=[f"{CDN}/r.mp4"],
        options={"meta": {"mediaType": "REELS", "shareToFeed": True}},
    )
    job_id = accepted["jobId"]
    assert await meta.run_jobs()
    assert (await meta.job(job_id))["status"] == "processing"
    # Still in progress at the first poll: polled again later, nothing published.
    await make_due(meta, job_id)
    assert await meta.run_jobs()
    assert (await meta.job(job_id))["status"] == "processing"
    assert not [p for p in (await meta.state())["posts"] if p["platform"] == "instagram"]
    await meta.advance(31)
    await make_due(meta, job_id)
    assert await meta.run_jobs()
    job = await meta.job(job_id)
    assert job["status"] == "published", job
    [reel] = [p for p in (await meta.state())["posts"] if p["platform"] == "instagram"]
    assert reel["id"] == job["remotePostId"] and reel["mediaProductType"] == "REELS"
    assert job["remoteUrl"].startswith("https://www.instagram.com/reel/")
    publishes = await meta.control("GET", "journal", params={"path": "*/media_publish"})
    assert len(publishes["requests"]) == 1


async def test_a_container_in_error_fails_the_job_with_metas_reason(meta):
    connection_id, accounts = await meta.accounts()
    accepted = await meta.queued(
        connection_id, accounts["instagram_business"], mediaUrls=["https://media.invalid/r.mp4"]
    )
    assert await meta.run_jobs()
    await make_due(meta, accepted["jobId"])
    assert await meta.run_jobs()
    job = await meta.job(accepted["jobId"])
    assert job["status"] == "dead", job
    assert "2207052" in job["error"]["message"] and job["error"]["retryable"] is False


async def test_checks_refuse_before_queueing(meta):
    connection_id, accounts = await meta.accounts()
    status, body = await meta.publish(connection_id, accounts["instagram_business"], body="x")
    assert status == 422
    assert {e["field"] for e in body["errors"]} == {"mediaUrls"}
    status, body = await meta.publish(
        connection_id,
        accounts["instagram_business"],
        body=" ".join(f"#t{n}" for n in range(31)),
        mediaUrls=[f"{CDN}/a.png"],
    )
    assert status == 422
    assert {e["code"] for e in body["errors"]} == {"too_many_hashtags", "unsupported_format"}
    status, jobs = await meta.api("GET", "/api/jobs")
    assert jobs["data"] == []


async def test_the_publishing_limit_is_read_and_respected(meta):
    connection_id, accounts = await meta.accounts()
    ig = accounts["instagram_business"]
    state = await meta.state()
    [sandbox] = [a for a in state["accounts"] if a["kind"] == "instagram"]
    await meta.fault(
        method="GET",
        path=f"*/{sandbox['id']}/content_publishing_limit",
        status=200,
        body={
            "data": [{"quota_usage": 50, "config": {"quota_total": 50, "quota_duration": 86400}}]
        },
    )
    accepted = await meta.queued(connection_id, ig, mediaUrls=[f"{CDN}/a.jpg"])
    assert await meta.run_jobs()
    job = await meta.job(accepted["jobId"])
    assert job["status"] == "failed" and job["error"]["code"] == "rate_limited", job
    containers = await meta.control("GET", "journal", params={"path": "*/media"})
    assert containers["requests"] == []


async def test_delete_and_already_gone_counts_as_done(meta):
    connection_id, accounts = await meta.accounts()
    job = await published(meta, connection_id, accounts["facebook_page"], body="Bye")
    status, body = await meta.api("DELETE", f"/api/posts/{job['postId']}")
    assert status == 200 and body["deleted"] is True
    assert live_posts(await meta.state())[job["remotePostId"]]["deleted"] is True
    ig = await published(
        meta, connection_id, accounts["instagram_business"], mediaUrls=[f"{CDN}/a.jpg"]
    )
    # Someone deleted it on Instagram first: the gateway's delete still succeeds.
    await meta.fault(method="DELETE", path=f"*/{ig['remotePostId']}", status=404)
    status, body = await meta.api("DELETE", f"/api/posts/{ig['postId']}")
    assert status == 200 and body["deleted"] is True


async def test_a_server_error_is_retried_later(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(method="POST", path="*/feed", status=500)
    accepted = await meta.queued(connection_id, accounts["facebook_page"], body="Hi")
    assert await meta.run_jobs()
    job = await meta.job(accepted["jobId"])
    assert job["status"] == "failed" and job["error"]["retryable"] is True
    assert job["error"]["platformCode"] == "1"
    await make_due(meta, accepted["jobId"])
    assert await meta.run_jobs()
    assert (await meta.job(accepted["jobId"]))["status"] == "published"


async def test_throttling_by_code_not_status_waits_for_meta(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(
        method="POST",
        path="*/feed",
        status=400,
        body={
            "error": {
                "message": "(#80001) Too many calls",
                "type": "OAuthException",
                "code": 80001,
                "fbtrace_id": "x",
            }
        },
        headers={
            "X-Business-Use-Case-Usage": '{"1": [{"type": "pages", "call_count": 100, '
            '"total_cputime": 1, "total_time": 1, "estimated_time_to_regain_access": 7}]}'
        },
    )
    accepted = await meta.queued(connection_id, accounts["facebook_page"], body="Hi")
    assert await meta.run_jobs()
    job = await meta.job(accepted["jobId"])
    assert job["status"] == "failed" and job["error"]["code"] == "rate_limited", job
    wait = _seconds_until(job["nextAttemptAt"])
    assert 6 * 60 < wait <= 7 * 60 + 5


async def test_a_429_is_rate_limited(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(method="POST", path="*/feed", status=429, count=5)
    accepted = await meta.queued(connection_id, accounts["facebook_page"], body="Hi")
    assert await meta.run_jobs()
    job = await meta.job(accepted["jobId"])
    assert job["status"] == "failed" and job["error"]["code"] == "rate_limited", job


async def test_an_invalid_token_needs_reconnecting(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(
        method="POST",
        path="*/feed",
        status=400,
        body={
            "error": {
                "message": "Error validating access token: Session has expired",
                "type": "OAuthException",
                "code": 190,
                "error_subcode": 463,
                "fbtrace_id": "x",
            }
        },
    )
    accepted = await meta.queued(connection_id, accounts["facebook_page"], body="Hi")
    assert await meta.run_jobs()
    job = await meta.job(accepted["jobId"])
    assert job["status"] == "dead" and job["error"]["platformCode"] == "190/463", job
    _, connection = await meta.api("GET", f"/api/connections/{connection_id}")
    assert connection["status"] == "needs_reconnect"


def _seconds_until(moment: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(moment.replace("Z", "+00:00")) - utcnow()).total_seconds()
