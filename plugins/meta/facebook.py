"""Publishing to a Facebook Page: text and link posts, one photo, several photos, a video."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway import PlatformError, PostKind, PublishRequest, PublishResult

from .checks import compose_message, facebook_kind
from .const import VIDEO_HOST, WEB
from .graph import GraphClient

SCHEDULE_MIN, SCHEDULE_MAX = timedelta(minutes=10), timedelta(days=30)
SCHEDULABLE = (PostKind.TEXT, PostKind.LINK, PostKind.MULTI_IMAGE)


def schedule_problem(request: PublishRequest) -> str | None:
    """Why Meta cannot hold this post until ``request.scheduled_at`` (None: it can)."""
    if request.scheduled_at is None:
        return None
    if facebook_kind(request) not in SCHEDULABLE:
        return "Meta schedules text, link and multi-photo Page posts only"
    ahead = request.scheduled_at - datetime.now(UTC)
    if not SCHEDULE_MIN <= ahead <= SCHEDULE_MAX:
        return "Meta schedules Page posts 10 minutes to 30 days ahead"
    return None


async def publish(graph: GraphClient, request: PublishRequest, page_id: str, token: str):
    """Publish now, or (``request.scheduled_at``) hand the post to Meta's scheduler."""
    kind = facebook_kind(request)
    message = compose_message(request)
    if kind is PostKind.IMAGE:
        fields = {"url": request.media_urls[0], **_text("message", message)}
        photo = await graph.post(f"{page_id}/photos", token, data=fields, account=page_id)
        return _post(photo.get("post_id") or photo.get("id"))
    if kind is PostKind.VIDEO:
        fields = {"file_url": request.media_urls[0], **_text("description", message)}
        video = await graph.post(
            f"{page_id}/videos", token, data=fields, host=VIDEO_HOST, account=page_id
        )
        video_id = _id(video)
        read = await graph.get(video_id, token, params={"fields": "permalink_url"}, account=page_id)
        url = read.get("permalink_url") or f"{WEB}/{page_id}/videos/{video_id}"
        return PublishResult(remote_id=video_id, url=url)
    fields = {**_text("message", message), **_text("link", request.link)}
    if kind is PostKind.MULTI_IMAGE:
        # Each photo is uploaded unpublished, then attached to one feed post.
        attached = []
        for url in request.media_urls:
            photo = await graph.post(
                f"{page_id}/photos", token, data={"url": url, "published": "false"}, account=page_id
            )
            attached.append({"media_fbid": _id(photo)})
        fields["attached_media"] = json.dumps(attached)
    if request.scheduled_at is not None:
        fields["published"] = "false"
        fields["scheduled_publish_time"] = str(int(request.scheduled_at.timestamp()))
    post = await graph.post(
        f"{page_id}/feed", token, data={**fields, "fields": "id,permalink_url"}, account=page_id
    )
    result = PublishResult(
        remote_id=_id(post), url=post.get("permalink_url") or f"{WEB}/{_id(post)}"
    )
    if request.scheduled_at is None:
        return result
    handle = {"scheduledPostId": result.remote_id, "pageId": page_id}
    return replace(result, processing=True, poll_at=request.scheduled_at, handle=handle)


async def poll_scheduled(graph: GraphClient, handle: dict, token: str) -> PublishResult:
    """A scheduled post: live yet? Meta publishes it at its time; nothing is sent again."""
    post_id, page_id = str(handle["scheduledPostId"]), str(handle["pageId"])
    read = await graph.get(
        post_id, token, params={"fields": "is_published,permalink_url"}, account=page_id
    )
    url = read.get("permalink_url") or f"{WEB}/{post_id}"
    if read.get("is_published") is True:
        return PublishResult(remote_id=post_id, url=url)
    return PublishResult(remote_id=post_id, url=url, processing=True, handle=handle)


def _post(post_id: object) -> PublishResult:
    if not isinstance(post_id, str) or not post_id:
        raise PlatformError("Meta answered without a post id", platform_code="invalid_response")
    return PublishResult(remote_id=post_id, url=f"{WEB}/{post_id}")


def _id(answer: dict) -> str:
    value = answer.get("id")
    if not isinstance(value, str) or not value:
        raise PlatformError("Meta answered without an id", platform_code="invalid_response")
    return value


def _text(name: str, value: str | None) -> dict[str, str]:
    return {name: value} if value else {}
