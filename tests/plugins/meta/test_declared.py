"""Meta's limits per account kind, as /api/platforms shows them and as submit enforces them."""

from __future__ import annotations

CDN = "https://cdn.example.com"


async def platform(meta, name: str) -> dict:
    status, listed = await meta.api("GET", "/api/platforms")
    assert status == 200, listed
    [entry] = [p for p in listed["data"] if p["name"] == name]
    return entry


async def test_api_platforms_gives_each_account_kind_its_own_limits(meta):
    described = await platform(meta, "meta")
    by_kind = described["limits"]["byAccountKind"]
    assert by_kind["facebook_page"]["captionLength"] == 63206
    assert by_kind["instagram_business"]["captionLength"] == 2200
    assert (
        by_kind["instagram_business"]["hashtagsMax"],
        by_kind["facebook_page"]["hashtagsMax"],
    ) == (30, None)
    assert by_kind["instagram_business"]["mediaCountMin"] == 1
    assert by_kind["instagram_business"]["mediaTypes"] == [
        "image/jpeg",
        "video/mp4",
        "video/quicktime",
    ]
    assert described["capabilities"]["postKinds"]["instagram_business"] == [
        "image",
        "carousel",
        "reel",
        "story",
    ]
    assert described["options"]["additionalProperties"] is False


async def test_a_long_facebook_post_is_taken_where_instagram_refuses_it(meta):
    """3,000 characters: within a Page's 63,206, over Instagram's 2,200. A client that reads
    the limit of its account's kind from /api/platforms cuts neither short."""
    connection_id, accounts = await meta.accounts()
    by_kind = (await platform(meta, "meta"))["limits"]["byAccountKind"]
    text = "x" * 3000
    status, accepted = await meta.publish(connection_id, accounts["facebook_page"], body=text)
    assert status == 202, accepted
    assert len(text) <= by_kind["facebook_page"]["captionLength"]
    status, problem = await meta.publish(
        connection_id, accounts["instagram_business"], body=text, mediaUrls=[f"{CDN}/a.jpg"]
    )
    assert status == 422, problem
    assert problem["type"] == "urn:gateway:problem:unprocessable"
    [error] = problem["errors"]
    assert (error["field"], error["code"]) == ("body", "too_long")
    assert str(by_kind["instagram_business"]["captionLength"]) in error["message"].replace(",", "")
    _, jobs = await meta.api("GET", "/api/jobs")
    assert [job["jobId"] for job in jobs["data"]] == [accepted["jobId"]]


async def test_options_are_held_to_metas_schema_before_anything_is_queued(meta):
    connection_id, accounts = await meta.accounts()
    reel = {"body": "My reel", "mediaUrls": [f"{CDN}/r.mp4"]}
    cases = [
        # A wrong type was taken, then sent to Meta as "true".
        ({"meta": {"mediaType": "REELS", "shareToFeed": "no"}}, "options.meta.shareToFeed", "type"),
        ({"meta": {"mediaType": "REELS", "colour": "red"}}, "options.meta.colour", "unknown"),
        # Keyed by the product, not the platform: dropped unread, the reel went out as a post.
        ({"instagram": {"mediaType": "REELS"}}, "options.instagram", "not_this_platform"),
    ]
    for options, field, code in cases:
        status, problem = await meta.publish(
            connection_id, accounts["instagram_business"], options=options, **reel
        )
        assert status == 422, problem
        assert [(e["field"], e["code"]) for e in problem["errors"]] == [(field, code)]
    _, jobs = await meta.api("GET", "/api/jobs")
    assert jobs["data"] == []
