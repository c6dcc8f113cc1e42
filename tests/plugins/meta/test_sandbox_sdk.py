"""Meta's official SDK (facebook-business), with only its Graph URL changed, against the sandbox:
Page read, feed post and read, Instagram container and publish, insights with several metrics."""

from __future__ import annotations

import asyncio

import pytest
from facebook_business.adobjects.igmedia import IGMedia
from facebook_business.adobjects.iguser import IGUser
from facebook_business.adobjects.page import Page
from facebook_business.adobjects.pagepost import PagePost
from facebook_business.adobjects.shadowigmediabuilder import ShadowIGMediaBuilder
from facebook_business.api import FacebookAdsApi
from facebook_business.exceptions import FacebookRequestError
from facebook_business.session import FacebookSession

from plugins.meta.sandbox import APP_ID, APP_SECRET

IMAGE = "https://cdn.example.com/a.jpg"


def sdk(graph, token: str, app_secret: str = APP_SECRET) -> FacebookAdsApi:
    """The SDK's own session, as an app would build it, with only GRAPH pointing at the sandbox.

    Not ``FacebookAdsApi.init``: that also sets a process-wide default and a crash reporter.
    """
    session = FacebookSession(APP_ID, app_secret, token)
    session.GRAPH = f"{graph.root}/graph.facebook.com"
    return FacebookAdsApi(session)


async def call(function, *args, **kwargs):
    """The SDK is synchronous (requests): run it off the event loop that serves the sandbox."""
    return await asyncio.to_thread(function, *args, **kwargs)


async def journal(graph, path: str) -> list[dict]:
    async with graph.http.get(f"{graph.root}/_control/journal", params={"path": path}) as r:
        return (await r.json())["requests"]


async def test_page_read_feed_post_and_feed_read(graph):
    _, page_info = await graph.page_tokens()
    api = sdk(graph, page_info["access_token"])
    page = Page(page_info["id"], api=api)
    read = await call(page.api_get, fields=[Page.Field.id, Page.Field.name])
    assert read[Page.Field.name] == page_info["name"]

    post = await call(
        page.create_feed,
        params={"message": "Hello from the SDK", "link": "https://example.com/", "published": True},
    )
    assert post["id"].startswith(f"{page_info['id']}_")
    feed = await call(
        lambda: list(page.get_feed(fields=["id", "message", "created_time", "permalink_url"]))
    )
    assert [(p["id"], p["message"]) for p in feed] == [(post["id"], "Hello from the SDK")]
    assert feed[0]["permalink_url"] == f"https://www.facebook.com/{post['id']}"


async def test_an_instagram_image_is_published_and_its_insights_read(graph):
    _, page_info = await graph.page_tokens()
    api = sdk(graph, page_info["access_token"])
    ig = IGUser(page_info["instagram_business_account"]["id"], api=api)
    container = await call(ig.create_media, params={"image_url": IMAGE, "caption": "From the SDK"})
    status = await call(
        ShadowIGMediaBuilder(container["id"], api=api).api_get, fields=["status_code"]
    )
    assert status["status_code"] == "FINISHED"
    media = await call(ig.create_media_publish, params={"creation_id": container["id"]})
    read = await call(IGMedia(media["id"], api=api).api_get, fields=["caption", "media_type"])
    assert (read["caption"], read["media_type"]) == ("From the SDK", "IMAGE")

    metrics = ["reach", "likes", "saved", "total_interactions"]
    rows = await call(
        lambda: list(IGMedia(media["id"], api=api).get_insights(params={"metric": metrics}))
    )
    assert [row["name"] for row in rows] == metrics
    assert rows[3]["values"][0]["value"] >= rows[1]["values"][0]["value"]
    # The SDK sent the list as a JSON array, on its own API version's path.
    [sent] = await journal(graph, f"/graph.facebook.com/*/{media['id']}/insights")
    assert sent["path"].startswith(f"/graph.facebook.com/{FacebookAdsApi.API_VERSION}/")
    assert sent["query"]["metric"] == '["reach","likes","saved","total_interactions"]'


# The SDK's type checker warns about any list of strings for PagePost's list<Object> metric.
@pytest.mark.filterwarnings("ignore:value of metric might not be compatible:UserWarning")
async def test_post_insights_with_several_metrics(graph):
    _, page_info = await graph.page_tokens()
    api = sdk(graph, page_info["access_token"])
    post = await call(Page(page_info["id"], api=api).create_feed, params={"message": "Hi"})
    metrics = ["post_total_media_view_unique", "post_clicks", "post_reactions_by_type_total"]
    rows = await call(
        lambda: list(PagePost(post["id"], api=api).get_insights(params={"metric": metrics}))
    )
    assert [row["name"] for row in rows] == metrics
    assert set(rows[2]["values"][0]["value"]) == {"like", "love"}


async def test_a_carousel_with_its_children_as_a_list(graph):
    _, page_info = await graph.page_tokens()
    api = sdk(graph, page_info["access_token"])
    ig = IGUser(page_info["instagram_business_account"]["id"], api=api)
    children = [
        (await call(ig.create_media, params={"image_url": url, "is_carousel_item": True}))["id"]
        for url in ("https://cdn.example.com/1.jpg", "https://cdn.example.com/2.jpg")
    ]
    carousel = await call(
        ig.create_media,
        params={"media_type": "CAROUSEL", "children": children, "caption": "Two"},
    )
    media = await call(ig.create_media_publish, params={"creation_id": carousel["id"]})
    read = await call(IGMedia(media["id"], api=api).api_get, fields=["media_type"])
    assert read["media_type"] == "CAROUSEL_ALBUM"


async def test_graph_errors_reach_the_sdk_as_its_own_errors(graph):
    _, page_info = await graph.page_tokens()
    api = sdk(graph, page_info["access_token"])
    ig = IGUser(page_info["instagram_business_account"]["id"], api=api)
    reel = await call(
        ig.create_media,
        params={"media_type": "REELS", "video_url": "https://cdn.example.com/v.mp4"},
    )
    with pytest.raises(FacebookRequestError) as caught:
        await call(ig.create_media_publish, params={"creation_id": reel["id"]})
    error = caught.value
    assert (error.http_status(), error.api_error_code(), error.api_error_subcode()) == (
        400,
        9007,
        2207027,
    )
    assert error.api_transient_error() is False

    # The SDK signs every call with appsecret_proof when it has the app secret.
    wrong = sdk(graph, page_info["access_token"], app_secret="not-the-app-secret")
    with pytest.raises(FacebookRequestError) as caught:
        await call(Page(page_info["id"], api=wrong).api_get, fields=["name"])
    assert (caught.value.api_error_code(), caught.value.api_error_type()) == (
        100,
        "GraphMethodException",
    )
