"""Publishing to a Facebook Page: text and link posts, one photo, several photos, a video."""

from __future__ import annotations

import json

from gateway import PlatformError, PostKind, PublishRequest, PublishResult

from .checks import compose_message, facebook_kind
from .const import VIDEO_HOST, WEB
from .graph import GraphClient


async def publish(graph: GraphClient, request: PublishRequest, page_id: str, token: str):
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
    post = await graph.post(
        f"{page_id}/feed", token, data={**fields, "fields": "id,permalink_url"}, account=page_id
    )
    return PublishResult(remote_id=_id(post), url=post.get("permalink_url") or f"{WEB}/{_id(post)}")


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
