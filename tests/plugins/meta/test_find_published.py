"""Unknown outcomes at Meta: the post is looked for, adopted when it went out, never made twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiohttp import web

from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.jobs.targets import load_target
from gateway.jobs.worker import Workers

from .live import GRAPH, start_meta
from .test_publish import CDN, make_due
from .test_scheduling import at

# Requests give up after half a second; a delayed request is still carried out at the sandbox.
TIMEOUT = {"total_timeout_seconds": 0.5}
LATE = 1500  # ms: the answer comes after the client gave up


@pytest.fixture
async def meta(tmp_path):
    runners: list[web.AppRunner] = []

    async def serve(app: web.Application, port: int) -> None:
        # As `gateway serve` runs it: a client that gives up does not cancel the handler, so
        # the sandbox carries out a request whose answer the gateway never reads.
        runner = web.AppRunner(app, handler_cancellation=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)

    running = await start_meta(serve, tmp_path, outbound=TIMEOUT)
    yield running
    await running.http.close()
    for runner in runners:
        await runner.cleanup()


async def settled(meta, path: str) -> None:
    """Wait until every request to ``path`` the sandbox received has been answered."""
    for _ in range(200):
        entries = (await meta.control("GET", "journal", params={"path": path}))["requests"]
        if all(entry["status"] is not None for entry in entries):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"a request to {path} is still in flight")


async def sent(meta, method: str, path: str) -> int:
    journal = await meta.control("GET", "journal", params={"path": path, "method": method})
    return len(journal["requests"])


def facebook_posts(state: dict) -> list[dict]:
    return [p for p in state["posts"] if p["platform"] == "facebook" and p["kind"] == "post"]


def instagram_media(state: dict) -> list[dict]:
    return [p for p in state["posts"] if p["platform"] == "instagram"]


async def unknown_then_retried(meta, job_id: str) -> dict:
    """The first attempt's outcome is unknown; the next one (once due) looks first."""
    failed = await meta.job(job_id)
    assert failed["status"] == "failed" and failed["error"]["code"] == "outcome_unknown", failed
    await make_due(meta, job_id)
    assert await meta.run_jobs()
    return await meta.job(job_id)


# -- Facebook: the feed is searched for the message and the post's shape ------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"body": "Hello from the gateway"},
        {"body": "Read this", "link": "https://example.com/a"},
        {"body": "A photo", "mediaUrls": [f"{CDN}/a.jpg"]},
        {"body": "Two", "mediaUrls": [f"{CDN}/a.jpg", f"{CDN}/b.jpg"]},
    ],
)
async def test_a_page_post_made_before_the_timeout_is_adopted_not_made_again(meta, fields):
    connection_id, accounts = await meta.accounts()
    path = "*/photos" if len(fields.get("mediaUrls", [])) == 1 else "*/feed"
    await meta.fault(method="POST", path=path, delayMs=LATE)
    accepted = await meta.queued(connection_id, accounts["facebook_page"], **fields)
    assert await meta.run_jobs()
    await settled(meta, path)  # the post now exists at Meta; the gateway does not know it
    state = await meta.state()
    made = [p for p in state["posts"] if p["published"] and p["message"] == fields["body"]]
    assert len(made) == 1

    done = await unknown_then_retried(meta, accepted["jobId"])
    assert done["status"] == "published", done
    assert done["remotePostId"] == (made[0]["postId"] or made[0]["id"])
    assert done["remoteUrl"] == f"https://www.facebook.com/{done['remotePostId']}"
    assert await sent(meta, "POST", path) == 1
    state = await meta.state()
    assert [p for p in state["posts"] if p["published"] and p["message"] == fields["body"]] == made
    _, dlq = await meta.api("GET", "/api/dlq")
    assert dlq["data"] == []


async def test_the_look_starts_when_the_job_was_queued_however_long_ago(meta):
    """A job queued two days ago (its post lost, say, and replayed from the DLQ since) is
    looked for from then on, not only over the last hours."""
    connection_id, accounts = await meta.accounts()
    await meta.fault(method="POST", path="*/feed", delayMs=LATE)
    accepted = await meta.queued(connection_id, accounts["facebook_page"], body="Long ago")
    queued = utcnow() - timedelta(days=2)
    async with meta.gateway.transaction() as session:
        (await JobRepository(session).get(accepted["jobId"])).created_at = queued
    assert await meta.run_jobs()
    await settled(meta, "*/feed")
    done = await unknown_then_retried(meta, accepted["jobId"])
    assert done["status"] == "published", done
    assert await sent(meta, "POST", "*/feed") == 1
    [look] = (await meta.control("GET", "journal", params={"path": "*/feed", "method": "GET"}))[
        "requests"
    ]
    since = int(look["query"]["since"])
    assert abs(since - (queued - timedelta(minutes=5)).timestamp()) < 2


def test_a_request_that_does_not_say_when_it_was_queued_is_looked_for_hours_back():
    from gateway import PublishRequest
    from plugins.meta.graph import lookback_start

    start = lookback_start(PublishRequest(body="x"))
    assert abs((utcnow() - start) - timedelta(hours=6)) < timedelta(seconds=5)


async def test_a_page_post_that_never_arrived_is_published_once(meta):
    connection_id, accounts = await meta.accounts()
    # Late and failed: the request was never carried out.
    await meta.fault(method="POST", path="*/feed", delayMs=LATE, status=500)
    accepted = await meta.queued(connection_id, accounts["facebook_page"], body="Hi there")
    assert await meta.run_jobs()
    await settled(meta, "*/feed")
    assert facebook_posts(await meta.state()) == []

    done = await unknown_then_retried(meta, accepted["jobId"])
    assert done["status"] == "published", done
    [post] = facebook_posts(await meta.state())
    assert post["id"] == done["remotePostId"] and post["message"] == "Hi there"
    feeds = await meta.control("GET", "journal", params={"path": "*/feed"})
    looks = [e for e in feeds["requests"] if e["method"] == "GET"]
    assert len(looks) == 1 and "since" in looks[0]["query"]


async def test_another_post_is_not_mistaken_for_the_lost_one(meta):
    connection_id, accounts = await meta.accounts()
    page = accounts["facebook_page"]
    other = await meta.queued(connection_id, page, body="Hello, world!")
    same_text_with_link = await meta.queued(
        connection_id, page, body="Hello", link="https://example.com/x"
    )
    assert await meta.run_jobs() and await meta.run_jobs()
    await meta.fault(method="POST", path="*/feed", delayMs=LATE, status=500)
    accepted = await meta.queued(connection_id, page, body="Hello")
    assert await meta.run_jobs()
    await settled(meta, "*/feed")

    done = await unknown_then_retried(meta, accepted["jobId"])
    assert done["status"] == "published", done
    earlier = {(await meta.job(j["jobId"]))["remotePostId"] for j in (other, same_text_with_link)}
    assert done["remotePostId"] not in earlier
    posts = facebook_posts(await meta.state())
    assert sorted(p["message"] for p in posts) == ["Hello", "Hello", "Hello, world!"]


async def test_a_look_that_runs_out_of_pages_cannot_tell(meta):
    """The feed is read only so far: past that bound the lost post may still be there, so the
    look says it cannot tell instead of answering "not there"."""
    from gateway.errors import OutcomeUnknown

    connection_id, accounts = await meta.accounts()
    page = accounts["facebook_page"]
    for n in range(3):
        await meta.queued(connection_id, page, body=f"Post {n}")
        assert await meta.run_jobs()
    posted = await meta.queued(connection_id, page, body="Post 3")
    async with meta.gateway.session() as session:
        row = await JobRepository(session).get(posted["jobId"])
    account = (await load_target(meta.gateway, row)).account
    graph = meta.gateway.connector("meta").graph

    async def look(max_pages: int):
        return await graph.find(
            f"{account.external_id}/feed",
            account.token.reveal(),
            params={"fields": "id,message,created_time"},
            account=account.external_id,
            match=lambda post: post.get("message") == "Never posted",
            since=utcnow() - timedelta(hours=1),
            time_field="created_time",
            page_size=1,
            max_pages=max_pages,
        )

    with pytest.raises(OutcomeUnknown, match="more than 2 entries"):
        await look(max_pages=2)  # three posts (the fourth job is not run), two pages of one
    assert await look(max_pages=4) is None  # read to the end: it is not there


async def test_a_natively_scheduled_post_is_found_among_the_scheduled_posts(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(method="POST", path="*/feed", delayMs=LATE)
    accepted = await meta.queued(
        connection_id, accounts["facebook_page"], body="Later", scheduledAt=at(timedelta(hours=2))
    )
    assert await meta.run_jobs()
    await settled(meta, "*/feed")
    [post] = facebook_posts(await meta.state())
    assert post["published"] is False  # held by Meta's scheduler, so not in the feed

    held = await unknown_then_retried(meta, accepted["jobId"])
    assert held["status"] == "scheduled" and held["remotePostId"] == post["id"], held
    assert await sent(meta, "POST", "*/feed") == 1
    assert len(facebook_posts(await meta.state())) == 1


async def test_a_page_video_whose_outcome_is_unknown_goes_to_the_dlq(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(method="POST", path="*/videos", delayMs=LATE)
    accepted = await meta.queued(
        connection_id, accounts["facebook_page"], body="Clip", mediaUrls=[f"{CDN}/v.mp4"]
    )
    assert await meta.run_jobs()
    await settled(meta, "*/videos")
    dead = await unknown_then_retried(meta, accepted["jobId"])
    assert dead["status"] == "dead" and dead["error"]["code"] == "outcome_unknown", dead
    assert "video" in dead["error"]["message"]
    assert await sent(meta, "POST", "*/videos") == 1


# -- Instagram: the container says whether it went out --------------------------------------


async def test_a_lost_media_publish_answer_is_settled_by_the_container(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(method="POST", path="*/media_publish", delayMs=LATE)
    accepted = await meta.queued(
        connection_id, accounts["instagram_business"], body="My photo", mediaUrls=[f"{CDN}/a.jpg"]
    )
    assert await meta.run_jobs()
    await settled(meta, "*/media_publish")
    [media] = instagram_media(await meta.state())  # it went out
    waiting = await meta.job(accepted["jobId"])
    assert waiting["status"] == "processing", waiting  # not a failure: the container knows

    await make_due(meta, accepted["jobId"])
    assert await meta.run_jobs()
    done = await meta.job(accepted["jobId"])
    assert done["status"] == "published", done
    assert done["remotePostId"] == media["id"] and done["remoteUrl"] == media["permalink"]
    assert await sent(meta, "POST", "*/media_publish") == 1
    assert len(instagram_media(await meta.state())) == 1


async def test_a_media_publish_that_never_arrived_is_published_once(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(method="POST", path="*/media_publish", delayMs=LATE, status=500)
    accepted = await meta.queued(
        connection_id, accounts["instagram_business"], body="My photo", mediaUrls=[f"{CDN}/a.jpg"]
    )
    assert await meta.run_jobs()
    await settled(meta, "*/media_publish")
    assert instagram_media(await meta.state()) == []

    await make_due(meta, accepted["jobId"])
    assert await meta.run_jobs()  # the container is still FINISHED: published now
    done = await meta.job(accepted["jobId"])
    assert done["status"] == "published", done
    [media] = instagram_media(await meta.state())
    assert media["id"] == done["remotePostId"]
    containers = [c for c in (await meta.state())["containers"]]
    assert len(containers) == 1  # the same container, not a new one


async def test_a_timed_out_container_request_is_simply_made_again(meta):
    connection_id, accounts = await meta.accounts()
    await meta.fault(method="POST", path="*/media", delayMs=LATE)
    accepted = await meta.queued(
        connection_id, accounts["instagram_business"], body="Mine", mediaUrls=[f"{CDN}/a.jpg"]
    )
    assert await meta.run_jobs()
    done = await meta.job(accepted["jobId"])
    assert done["status"] == "published", done  # retried at once: containers are harmless
    await settled(meta, "*/media")
    [media] = instagram_media(await meta.state())
    assert media["id"] == done["remotePostId"]
    assert len((await meta.state())["containers"]) == 2  # the abandoned one expires unused


async def worker_lost_mid_attempt(meta, job_id: str) -> Workers:
    """A worker claimed the job and stopped answering; its lease ran out and was taken over."""
    old = await Workers(meta.gateway, 1).claim()
    assert old is not None and old.id == job_id
    async with meta.gateway.transaction() as session:
        (await JobRepository(session).get(job_id)).lease_until = utcnow() - timedelta(seconds=1)
    replacement = Workers(meta.gateway, 1)
    assert await replacement.claim() is None  # fenced off; reconciled once the call is over
    return replacement


async def publish_as_the_lost_worker_did(meta, job_id: str, caption: str) -> str:
    """What the old worker got done at Meta before it stopped: a published image."""
    async with meta.gateway.session() as session:
        row = await JobRepository(session).get(job_id)
    account = (await load_target(meta.gateway, row)).account
    headers = {"Authorization": f"Bearer {account.token.reveal()}"}
    base = meta.sandbox(f"{GRAPH}/v25.0/{account.external_id}")
    form = {"image_url": f"{CDN}/a.jpg", "caption": caption}
    async with meta.http.post(f"{base}/media", data=form, headers=headers) as response:
        container = (await response.json())["id"]
    form = {"creation_id": container}
    async with meta.http.post(f"{base}/media_publish", data=form, headers=headers) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["id"]


async def test_after_a_lost_worker_the_published_media_is_adopted(meta):
    connection_id, accounts = await meta.accounts()
    ig = accounts["instagram_business"]
    other = await meta.queued(connection_id, ig, body="Not mine", mediaUrls=[f"{CDN}/b.jpg"])
    assert await meta.run_jobs()
    accepted = await meta.queued(connection_id, ig, body="Mine", mediaUrls=[f"{CDN}/a.jpg"])
    replacement = await worker_lost_mid_attempt(meta, accepted["jobId"])
    media_id = await publish_as_the_lost_worker_did(meta, accepted["jobId"], "Mine")

    await make_due(meta, accepted["jobId"])
    assert await replacement.run_once()
    done = await meta.job(accepted["jobId"])
    assert done["status"] == "published" and done["remotePostId"] == media_id, done
    assert done["remotePostId"] != (await meta.job(other["jobId"]))["remotePostId"]
    assert len(instagram_media(await meta.state())) == 2


async def test_after_a_lost_worker_nothing_found_is_published_once(meta):
    connection_id, accounts = await meta.accounts()
    ig = accounts["instagram_business"]
    other = await meta.queued(connection_id, ig, body="Not mine", mediaUrls=[f"{CDN}/b.jpg"])
    assert await meta.run_jobs()
    accepted = await meta.queued(connection_id, ig, body="Mine", mediaUrls=[f"{CDN}/a.jpg"])
    replacement = await worker_lost_mid_attempt(meta, accepted["jobId"])

    await make_due(meta, accepted["jobId"])
    assert await replacement.run_once()
    done = await meta.job(accepted["jobId"])
    assert done["status"] == "published", done
    assert done["remotePostId"] != (await meta.job(other["jobId"]))["remotePostId"]
    captions = sorted(m["caption"] for m in instagram_media(await meta.state()))
    assert captions == ["Mine", "Not mine"]


async def test_after_a_lost_worker_a_story_goes_to_the_dlq(meta):
    connection_id, accounts = await meta.accounts()
    accepted = await meta.queued(
        connection_id,
        accounts["instagram_business"],
        mediaUrls=[f"{CDN}/s.jpg"],
        options={"meta": {"mediaType": "STORIES"}},
    )
    replacement = await worker_lost_mid_attempt(meta, accepted["jobId"])
    await make_due(meta, accepted["jobId"])
    assert await replacement.run_once()
    dead = await meta.job(accepted["jobId"])
    assert dead["status"] == "dead" and dead["error"]["code"] == "outcome_unknown", dead
    assert instagram_media(await meta.state()) == []
