"""The Meta sandbox as a client of the real Graph API sees it: tokens, pages, publishing, errors."""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from gateway.sandbox import WebhookTargets
from plugins.meta.sandbox import APP_SECRET

from .conftest import start_graph


async def test_login_gives_short_then_long_lived_tokens_and_page_tokens(graph):
    short = await graph.short_token()
    assert short["expires_in"] == 3600 and short["token_type"] == "bearer"
    long = await graph.long_token(short["access_token"])
    assert long["expires_in"] == 5_184_000 and long["access_token"] != short["access_token"]
    me = await graph.ok("GET", "/me", long["access_token"], params={"fields": "id,name"})
    assert me["name"] == "User 1" and me["id"].isdigit()
    pages = await graph.ok(
        "GET",
        "/me/accounts",
        long["access_token"],
        params={"fields": "id,name,access_token,tasks,instagram_business_account"},
    )
    first, second = pages["data"]
    assert first["instagram_business_account"]["id"] and "instagram_business_account" not in second
    assert "CREATE_CONTENT" in first["tasks"] and first["access_token"].startswith("EAA")
    # A Page token from a long-lived user token never expires.
    info = await graph.ok(
        "GET",
        "/debug_token",
        params={"input_token": first["access_token"], "access_token": f"{_app_token()}"},
    )
    assert info["data"]["type"] == "PAGE" and info["data"]["expires_at"] == 0
    assert info["data"]["is_valid"] is True and "pages_manage_posts" in info["data"]["scopes"]


def _app_token() -> str:
    from plugins.meta.sandbox import APP_ID

    return f"{APP_ID}|{APP_SECRET}"


async def test_unversioned_paths_and_the_token_as_a_parameter_work(graph):
    token = (await graph.short_token())["access_token"]
    async with graph.http.get(
        f"{graph.root}/graph.facebook.com/me", params={"access_token": token}
    ) as r:
        assert r.status == 200 and (await r.json())["name"] == "User 1"


async def test_an_expired_short_token_cannot_be_exchanged(graph):
    short = (await graph.short_token())["access_token"]
    await graph.advance(3601)
    error = await graph.error(
        "GET",
        "/oauth/access_token",
        params={
            "grant_type": "fb_exchange_token",
            "client_id": "meta-sandbox-client",
            "client_secret": APP_SECRET,
            "fb_exchange_token": short,
        },
    )
    assert (error["code"], error["error_subcode"]) == (190, 463)
    error = await graph.error("GET", "/me", short)
    assert (error["code"], error["error_subcode"]) == (190, 463)


async def test_a_code_is_single_use_and_bound_to_the_redirect_uri(graph):
    code = await graph.code()
    params = {
        "client_id": "meta-sandbox-client",
        "client_secret": APP_SECRET,
        "redirect_uri": "https://app.example.com/other",
        "code": code,
    }
    error = await graph.error("GET", "/oauth/access_token", params=params)
    assert (error["code"], error["error_subcode"]) == (100, 36008)
    error = await graph.error("GET", "/oauth/access_token", params=params)
    assert error["error_subcode"] == 36009


async def test_declined_permissions_are_not_granted(graph):
    token = (await graph.short_token(declined="instagram_content_publish"))["access_token"]
    permissions = await graph.ok("GET", "/me/permissions", token)
    granted = {p["permission"] for p in permissions["data"]}
    assert "instagram_basic" in granted and "instagram_content_publish" not in granted


async def test_unknown_tokens_and_objects_get_graph_errors(graph):
    error = await graph.error("GET", "/me", "EAAnonsense")
    assert error["code"] == 190 and error["type"] == "OAuthException"
    error = await graph.error("GET", "/me")
    assert error["code"] == 104
    user, _ = await graph.page_tokens()
    error = await graph.error("GET", "/123456", user)
    assert (error["code"], error["error_subcode"]) == (100, 33)


async def test_facebook_posts_photos_videos_and_delete(graph):
    _, page = await graph.page_tokens()
    token, page_id = page["access_token"], page["id"]
    text = await graph.ok(
        "POST", f"/{page_id}/feed", token, json={"message": "Hi", "link": "https://example.com"}
    )
    assert text["id"].startswith(f"{page_id}_")
    photo = await graph.ok(
        "POST", f"/{page_id}/photos", token, data={"url": "https://cdn.example.com/a.jpg"}
    )
    assert photo["post_id"].startswith(f"{page_id}_")
    unpublished = [
        (
            await graph.ok(
                "POST",
                f"/{page_id}/photos",
                token,
                data={"url": f"https://cdn.example.com/{n}.jpg", "published": "false"},
            )
        )["id"]
        for n in (1, 2)
    ]
    multi = await graph.ok(
        "POST",
        f"/{page_id}/feed",
        token,
        json={"message": "Two", "attached_media": [{"media_fbid": i} for i in unpublished]},
    )
    video = await graph.ok(
        "POST",
        f"/{page_id}/videos",
        token,
        data={"file_url": "https://cdn.example.com/v.mp4", "description": "V"},
    )
    read = await graph.ok("GET", f"/{video['id']}", token, params={"fields": "permalink_url"})
    assert read["permalink_url"].endswith(f"/videos/{video['id']}")
    async with graph.http.get(f"{graph.root}/_control/state") as r:
        posts = (await r.json())["posts"]
    [feed_post] = [p for p in posts if p["id"] == multi["id"]]
    assert feed_post["attachedMedia"] == unpublished
    assert await graph.ok("DELETE", f"/{text['id']}", token) == {"success": True}
    error = await graph.error("DELETE", f"/{text['id']}", token)
    assert (error["code"], error["error_subcode"]) == (100, 33)


async def test_the_feed_lists_posts_newest_first_bounded_by_since_and_paged(graph):
    _, page = await graph.page_tokens()
    token, page_id = page["access_token"], page["id"]
    first = await graph.ok("POST", f"/{page_id}/feed", token, json={"message": "Old"})
    await graph.advance(3600)
    since = int(graph.sandbox.clock.timestamp())
    link = await graph.ok(
        "POST", f"/{page_id}/feed", token, json={"message": "L", "link": "https://example.com/a"}
    )
    photo = await graph.ok(
        "POST",
        f"/{page_id}/photos",
        token,
        data={"url": "https://cdn.example.com/a.jpg", "message": "P"},
    )
    await graph.ok(
        "POST",
        f"/{page_id}/photos",
        token,
        data={"url": "https://cdn.example.com/b.jpg", "published": "false"},
    )
    await graph.ok(
        "POST",
        f"/{page_id}/feed",
        token,
        json={"message": "Later", "published": False, "scheduled_publish_time": str(since + 7200)},
    )
    fields = "id,message,created_time,attachments{type,unshimmed_url,subattachments}"
    params = {"fields": fields, "since": str(since), "limit": "1"}
    listed = await graph.ok("GET", f"/{page_id}/feed", token, params=params)
    [newest] = listed["data"]
    assert newest["id"] == photo["post_id"] and newest["message"] == "P"
    assert newest["attachments"]["data"][0]["type"] == "photo"
    following = urlsplit(listed["paging"]["next"])
    assert following.path == f"/v25.0/{page_id}/feed"
    # The next page's URL carries the request's own parameters (since, fields) and the cursor.
    rest = await graph.ok("GET", f"/{page_id}/feed", token, params=dict(parse_qsl(following.query)))
    [older] = rest["data"]
    assert older["id"] == link["id"]
    assert older["attachments"]["data"][0]["unshimmed_url"] == "https://example.com/a"
    assert "next" not in rest["paging"]  # "Old" is before since; unpublished ones never show
    everything = await graph.ok("GET", f"/{page_id}/feed", token)
    assert [p["id"] for p in everything["data"]][-1] == first["id"]
    assert set(everything["data"][-1]) == {"id", "message", "created_time"}


async def test_scheduled_posts_are_listed_apart_with_the_page_token(graph):
    user, page = await graph.page_tokens()
    token, page_id = page["access_token"], page["id"]
    when = int(graph.sandbox.clock.timestamp()) + 7200
    body = {"message": "Later", "published": False, "scheduled_publish_time": str(when)}
    held = await graph.ok("POST", f"/{page_id}/feed", token, json=body)
    fields = {"fields": "id,message,scheduled_publish_time"}
    listed = await graph.ok("GET", f"/{page_id}/scheduled_posts", token, params=fields)
    assert listed["data"] == [
        {"id": held["id"], "message": "Later", "scheduled_publish_time": when}
    ]
    assert (await graph.error("GET", f"/{page_id}/scheduled_posts", user))["code"] == 200
    await graph.advance(7300)  # its time came: it moved to the feed
    assert (await graph.ok("GET", f"/{page_id}/scheduled_posts", token))["data"] == []
    feed = await graph.ok("GET", f"/{page_id}/feed", token)
    assert [p["id"] for p in feed["data"]] == [held["id"]]


async def test_instagram_media_lists_published_media_but_not_stories(graph):
    _, page = await graph.page_tokens()
    token, ig = page["access_token"], page["instagram_business_account"]["id"]
    made = []
    for data in (
        {"image_url": "https://cdn.example.com/a.jpg", "caption": "One"},
        {"image_url": "https://cdn.example.com/s.jpg", "media_type": "STORIES"},
        {"image_url": "https://cdn.example.com/b.jpg", "caption": "Two"},
    ):
        container = await graph.ok("POST", f"/{ig}/media", token, data=data)
        published = await graph.ok(
            "POST", f"/{ig}/media_publish", token, data={"creation_id": container["id"]}
        )
        made.append(published["id"])
    await graph.ok(
        "POST", f"/{ig}/media", token, data={"image_url": "https://cdn.example.com/c.jpg"}
    )
    fields = "id,caption,media_type,media_product_type,timestamp,permalink"
    listed = await graph.ok("GET", f"/{ig}/media", token, params={"fields": fields, "limit": "1"})
    [newest] = listed["data"]
    assert newest["id"] == made[2] and newest["caption"] == "Two"
    assert (newest["media_type"], newest["media_product_type"]) == ("IMAGE", "FEED")
    assert newest["timestamp"].endswith("+0000") and newest["permalink"]
    assert listed["paging"]["next"]
    rest = await graph.ok(
        "GET", f"/{ig}/media", token, params={"fields": fields, "limit": "1", "after": "1"}
    )
    assert [m["id"] for m in rest["data"]] == [made[0]] and "next" not in rest["paging"]


async def test_publishing_to_a_page_needs_its_page_token(graph):
    user, page = await graph.page_tokens()
    error = await graph.error("POST", f"/{page['id']}/feed", user, json={"message": "x"})
    assert error["code"] == 200


async def test_scheduled_posts_must_be_ten_minutes_to_thirty_days_ahead(graph):
    _, page = await graph.page_tokens()
    body = {"message": "Later", "published": False, "scheduled_publish_time": "1"}
    error = await graph.error("POST", f"/{page['id']}/feed", page["access_token"], json=body)
    assert error["code"] == 100


async def test_an_image_container_is_ready_at_once_and_publishes(graph):
    _, page = await graph.page_tokens()
    token, ig = page["access_token"], page["instagram_business_account"]["id"]
    container = await graph.ok(
        "POST",
        f"/{ig}/media",
        token,
        data={"image_url": "https://cdn.example.com/a.jpg", "caption": "Hello"},
    )
    status = await graph.ok(
        "GET", f"/{container['id']}", token, params={"fields": "status_code,status"}
    )
    assert status["status_code"] == "FINISHED"
    media = await graph.ok(
        "POST", f"/{ig}/media_publish", token, data={"creation_id": container["id"]}
    )
    read = await graph.ok("GET", f"/{media['id']}", token, params={"fields": "permalink"})
    assert read["permalink"].startswith("https://www.instagram.com/p/")
    again = await graph.error(
        "POST", f"/{ig}/media_publish", token, data={"creation_id": container["id"]}
    )
    assert again["code"] == 100


async def test_a_reel_is_in_progress_until_the_clock_moves(graph):
    _, page = await graph.page_tokens()
    token, ig = page["access_token"], page["instagram_business_account"]["id"]
    container = await graph.ok(
        "POST",
        f"/{ig}/media",
        token,
        data={"media_type": "REELS", "video_url": "https://cdn.example.com/r.mp4"},
    )
    fields = {"fields": "status_code"}
    assert (await graph.ok("GET", f"/{container['id']}", token, params=fields))[
        "status_code"
    ] == "IN_PROGRESS"
    early = await graph.error(
        "POST", f"/{ig}/media_publish", token, data={"creation_id": container["id"]}
    )
    assert (early["code"], early["error_subcode"]) == (9007, 2207027)
    await graph.advance(31)
    assert (await graph.ok("GET", f"/{container['id']}", token, params=fields))[
        "status_code"
    ] == "FINISHED"
    await graph.ok("POST", f"/{ig}/media_publish", token, data={"creation_id": container["id"]})
    assert (await graph.ok("GET", f"/{container['id']}", token, params=fields))[
        "status_code"
    ] == "PUBLISHED"


async def test_containers_fail_on_unreachable_media_and_expire_after_a_day(graph):
    _, page = await graph.page_tokens()
    token, ig = page["access_token"], page["instagram_business_account"]["id"]
    bad = await graph.ok(
        "POST", f"/{ig}/media", token, data={"image_url": "https://cdn.invalid/a.jpg"}
    )
    status = await graph.ok("GET", f"/{bad['id']}", token, params={"fields": "status_code,status"})
    assert status["status_code"] == "ERROR" and "2207052" in status["status"]
    stale = await graph.ok(
        "POST", f"/{ig}/media", token, data={"image_url": "https://cdn.example.com/a.jpg"}
    )
    await graph.advance(86401)
    status = await graph.ok("GET", f"/{stale['id']}", token, params={"fields": "status_code"})
    assert status["status_code"] == "EXPIRED"


async def test_carousels_need_two_to_ten_items(graph):
    _, page = await graph.page_tokens()
    token, ig = page["access_token"], page["instagram_business_account"]["id"]
    child = await graph.ok(
        "POST",
        f"/{ig}/media",
        token,
        data={"image_url": "https://cdn.example.com/a.jpg", "is_carousel_item": "true"},
    )
    error = await graph.error(
        "POST", f"/{ig}/media", token, data={"media_type": "CAROUSEL", "children": child["id"]}
    )
    assert (error["code"], error["error_subcode"]) == (100, 2207028)


async def test_the_publishing_limit_is_enforced_and_reported(aiohttp_server):
    graph = await start_graph(aiohttp_server, publish_quota=1)
    try:
        _, page = await graph.page_tokens()
        token, ig = page["access_token"], page["instagram_business_account"]["id"]
        for expected in ("ok", "limit"):
            container = await graph.ok(
                "POST", f"/{ig}/media", token, data={"image_url": "https://cdn.example.com/a.jpg"}
            )
            data = {"creation_id": container["id"]}
            if expected == "ok":
                await graph.ok("POST", f"/{ig}/media_publish", token, data=data)
            else:
                error = await graph.error("POST", f"/{ig}/media_publish", token, data=data)
                assert (error["code"], error["error_subcode"]) == (9, 2207042)
        limit = await graph.ok(
            "GET", f"/{ig}/content_publishing_limit", token, params={"fields": "quota_usage,config"}
        )
        assert limit["data"][0]["quota_usage"] == 1
        assert limit["data"][0]["config"]["quota_total"] == 1
    finally:
        await graph.http.close()


async def test_usage_rises_towards_the_limit_then_calls_are_throttled(aiohttp_server):
    graph = await start_graph(aiohttp_server, calls_per_hour=10)
    try:
        user, page = await graph.page_tokens()  # 1 app call (/me/accounts)
        seen = []
        for _ in range(9):
            status, _, headers = await graph.call("GET", "/me", user)
            assert status == 200
            seen.append(json.loads(headers["X-App-Usage"])["call_count"])
        assert seen == sorted(seen) and seen[-1] == 100
        error = await graph.error("GET", "/me", user)
        assert error["code"] == 4 and error["is_transient"] is True
        # Page tokens are counted per Page, in the Business Use Case header.
        status, _, headers = await graph.call("GET", f"/{page['id']}", page["access_token"])
        usage = json.loads(headers["X-Business-Use-Case-Usage"])[page["id"]][0]
        assert status == 200 and usage["type"] == "pages" and usage["call_count"] == 10
    finally:
        await graph.http.close()


async def test_a_throttled_page_says_when_access_returns(aiohttp_server):
    graph = await start_graph(aiohttp_server, calls_per_hour=2)
    try:
        _, page = await graph.page_tokens()
        for _ in range(2):
            await graph.ok("GET", f"/{page['id']}", page["access_token"])
        status, body, headers = await graph.call("GET", f"/{page['id']}", page["access_token"])
        assert status == 400
        assert body["error"]["code"] == 80001
        usage = json.loads(headers["X-Business-Use-Case-Usage"])[page["id"]][0]
        assert usage["estimated_time_to_regain_access"] >= 1
    finally:
        await graph.http.close()


async def test_insights_refuse_retired_metrics_and_answer_current_ones(graph):
    _, page = await graph.page_tokens()
    token, ig = page["access_token"], page["instagram_business_account"]["id"]
    post = await graph.ok("POST", f"/{page['id']}/feed", token, json={"message": "Hi"})
    retired = await graph.error(
        "GET", f"/{post['id']}/insights", token, params={"metric": "post_impressions"}
    )
    assert retired["code"] == 100
    current = await graph.ok(
        "GET",
        f"/{post['id']}/insights",
        token,
        params={"metric": "post_total_media_view_unique,post_clicks"},
    )
    assert [row["name"] for row in current["data"]] == [
        "post_total_media_view_unique",
        "post_clicks",
    ]
    assert current["data"][0]["period"] == "lifetime"
    container = await graph.ok(
        "POST", f"/{ig}/media", token, data={"image_url": "https://cdn.example.com/a.jpg"}
    )
    media = await graph.ok(
        "POST", f"/{ig}/media_publish", token, data={"creation_id": container["id"]}
    )
    error = await graph.error(
        "GET", f"/{media['id']}/insights", token, params={"metric": "impressions"}
    )
    assert error["code"] == 100
    rows = await graph.ok(
        "GET", f"/{media['id']}/insights", token, params={"metric": "reach,likes,saved"}
    )
    assert all(isinstance(row["values"][0]["value"], int) for row in rows["data"])


async def test_faults_use_the_graph_error_envelope(graph):
    async with graph.http.post(
        f"{graph.root}/_control/faults", json={"path": "/graph.facebook.com/*", "status": 500}
    ) as r:
        assert r.status == 201
    error = await graph.error("GET", "/me", "EAAx")
    assert error["code"] == 1 and error["is_transient"] is True


async def test_webhooks_are_signed_with_the_app_secret(graph, aiohttp_server):
    received = []

    async def receive(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers["X-Hub-Signature-256"]))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    server = await aiohttp_server(app)
    graph.sandbox.webhook_targets = WebhookTargets.only(str(server.make_url("/hook")))
    async with graph.http.post(
        f"{graph.root}/_control/webhooks",
        json={
            "event": "feed",
            "target": str(server.make_url("/hook")),
            "payload": {"value": {"post_id": "1_2"}},
        },
    ) as r:
        assert r.status == 200, await r.text()
    [(body, signature)] = received
    expected = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    event = json.loads(body)
    assert event["object"] == "page"
    assert event["entry"][0]["changes"][0] == {
        "field": "feed",
        "value": {**event["entry"][0]["changes"][0]["value"], "post_id": "1_2"},
    }
