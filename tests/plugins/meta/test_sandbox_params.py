"""The Graph sandbox takes parameters in every encoding Graph does: lists, bodies and tokens."""

from __future__ import annotations

import hashlib
import hmac

import aiohttp

from plugins.meta.sandbox import APP_SECRET

IMAGE = "https://cdn.example.com/a.jpg"


async def published_media(graph) -> tuple[str, str, str]:
    """A Page token, its Instagram account, and an image published there."""
    _, page = await graph.page_tokens()
    token, ig = page["access_token"], page["instagram_business_account"]["id"]
    container = await graph.ok("POST", f"/{ig}/media", token, data={"image_url": IMAGE})
    media = await graph.ok(
        "POST", f"/{ig}/media_publish", token, data={"creation_id": container["id"]}
    )
    return token, ig, media["id"]


async def test_insight_metrics_as_a_comma_list_a_json_array_or_brackets(graph):
    token, _, media = await published_media(graph)
    spellings = [
        {"metric": "reach,likes,saved"},
        {"metric": '["reach","likes","saved"]'},  # how Meta's SDK sends a list
        [("metric[0]", "reach"), ("metric[1]", "likes"), ("metric[2]", "saved")],
    ]
    answers = [
        await graph.ok("GET", f"/{media}/insights", token, params=params) for params in spellings
    ]
    assert [row["name"] for row in answers[0]["data"]] == ["reach", "likes", "saved"]
    assert answers[1]["data"] == answers[0]["data"] and answers[2]["data"] == answers[0]["data"]


async def test_post_insight_metrics_as_a_json_array(graph):
    _, page = await graph.page_tokens()
    token = page["access_token"]
    post = await graph.ok("POST", f"/{page['id']}/feed", token, data={"message": "Hi"})
    rows = await graph.ok(
        "GET",
        f"/{post['id']}/insights",
        token,
        params={"metric": '["post_total_media_view_unique","post_clicks"]'},
    )
    assert [row["name"] for row in rows["data"]] == ["post_total_media_view_unique", "post_clicks"]


async def test_a_metric_the_media_lacks_is_named_by_its_position(graph):
    token, _, media = await published_media(graph)
    error = await graph.error(
        "GET", f"/{media}/insights", token, params={"metric": '["reach","impressions"]'}
    )
    assert error["code"] == 100
    assert error["message"].startswith("(#100) metric[1] must be one of the following values")


async def test_carousel_children_as_a_comma_list_or_a_json_array(graph):
    _, page = await graph.page_tokens()
    token, ig = page["access_token"], page["instagram_business_account"]["id"]

    async def child() -> str:
        item = {"image_url": IMAGE, "is_carousel_item": "true"}
        return (await graph.ok("POST", f"/{ig}/media", token, data=item))["id"]

    children = [await child(), await child()]
    as_comma = {"media_type": "CAROUSEL", "children": ",".join(children)}
    as_text = {"media_type": "CAROUSEL", "children": f'["{children[0]}","{children[1]}"]'}
    made = [
        await graph.ok("POST", f"/{ig}/media", token, data=as_comma),
        await graph.ok("POST", f"/{ig}/media", token, data=as_text),
        await graph.ok(
            "POST",
            f"/{ig}/media",
            token,
            json={"media_type": "CAROUSEL", "children": children, "caption": "JSON"},
        ),
    ]
    async with graph.http.get(f"{graph.root}/_control/state") as r:
        containers = {c["id"]: c for c in (await r.json())["containers"]}
    assert all(containers[m["id"]]["mediaType"] == "CAROUSEL" for m in made)
    carousel = await graph.ok(
        "POST", f"/{ig}/media_publish", token, data={"creation_id": made[2]["id"]}
    )
    read = await graph.ok("GET", f"/{carousel['id']}", token, params={"fields": "media_type"})
    assert read["media_type"] == "CAROUSEL_ALBUM"


async def test_a_post_from_a_form_a_json_or_a_multipart_body(graph):
    _, page = await graph.page_tokens()
    token, page_id = page["access_token"], page["id"]
    await graph.ok("POST", f"/{page_id}/feed", token, data={"message": "form", "published": "1"})
    await graph.ok("POST", f"/{page_id}/feed", token, json={"message": "json", "published": True})
    multipart = aiohttp.FormData()
    multipart.add_field("message", "multipart")
    multipart.add_field("source", b"\xff\xd8\xff", filename="a.jpg", content_type="image/jpeg")
    await graph.ok("POST", f"/{page_id}/feed", token, data=multipart)
    # A JSON body's real false and number are the form's "false" and digits.
    later = int(graph.sandbox.clock.timestamp()) + 3600
    scheduled = await graph.ok(
        "POST",
        f"/{page_id}/feed",
        token,
        json={"message": "later", "published": False, "scheduled_publish_time": later},
    )
    feed = await graph.ok("GET", f"/{page_id}/feed", token, params={"fields": "message"})
    assert [post["message"] for post in feed["data"]] == ["multipart", "json", "form"]
    listed = await graph.ok("GET", f"/{page_id}/scheduled_posts", token)
    assert [post["id"] for post in listed["data"]] == [scheduled["id"]]


async def test_the_token_in_the_query_the_body_or_either_header(graph):
    _, page = await graph.page_tokens()
    token, page_id = page["access_token"], page["id"]
    feed = graph.url(f"/{page_id}/feed")
    async with graph.http.get(feed, params={"access_token": token}) as r:
        assert r.status == 200, await r.text()
    async with graph.http.post(feed, data={"access_token": token, "message": "form"}) as r:
        assert r.status == 200, await r.text()
    async with graph.http.post(feed, json={"access_token": token, "message": "json"}) as r:
        assert r.status == 200, await r.text()
    for scheme in ("Bearer", "OAuth"):
        headers = {"Authorization": f"{scheme} {token}"}
        async with graph.http.get(feed, headers=headers) as r:
            assert r.status == 200, await r.text()
    async with graph.http.get(feed, headers={"Authorization": f"Basic {token}"}) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, 104)


async def test_unreadable_parameters_are_graph_code_100(graph):
    _, page = await graph.page_tokens()
    token, page_id = page["access_token"], page["id"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with graph.http.post(
        graph.url(f"/{page_id}/feed"), data=b'{"message": ', headers=headers
    ) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (400, 100)
    error = await graph.error(
        "POST", f"/{page_id}/feed", token, data={"message": "Hi", "published": "maybe"}
    )
    assert (error["code"], error["message"]) == (100, "(#100) Param published must be a boolean")


async def test_an_appsecret_proof_is_checked_when_sent(graph):
    _, page = await graph.page_tokens()
    token = page["access_token"]
    proof = hmac.new(APP_SECRET.encode(), token.encode(), hashlib.sha256).hexdigest()
    read = await graph.ok("GET", f"/{page['id']}", token, params={"appsecret_proof": proof})
    assert read["id"] == page["id"]
    error = await graph.error("GET", f"/{page['id']}", token, params={"appsecret_proof": "0" * 64})
    assert (error["code"], error["type"]) == (100, "GraphMethodException")
    assert error["message"] == "Invalid appsecret_proof provided in the API argument"
