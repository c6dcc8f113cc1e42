"""Publishing to Instagram: containers, their status, ``media_publish``, the publishing limit."""

from __future__ import annotations

from typing import Any

from gateway import (
    InvalidRequest,
    PlatformError,
    PostKind,
    PublishRequest,
    PublishResult,
    RateLimited,
)

from .checks import compose_message, instagram_kind, is_video
from .graph import GraphClient

QUOTA_WAIT_SECONDS = 3600.0


async def publish(graph: GraphClient, request: PublishRequest, ig_id: str, token: str):
    """Create the container (children first for a carousel); publish it at once if it is ready.

    Images are usually ready immediately; video is not, and then the result is ``processing``
    with a handle that ``poll`` follows until the container is ``FINISHED``.
    """
    await check_quota(graph, ig_id, token)
    kind = instagram_kind(request)
    fields: dict[str, str] = {}
    caption = compose_message(request)
    if caption and kind is not PostKind.STORY:
        fields["caption"] = caption
    options = request.options
    if kind is PostKind.CAROUSEL:
        children = [await _child(graph, ig_id, token, url) for url in request.media_urls]
        fields.update(media_type="CAROUSEL", children=",".join(children))
    else:
        url = request.media_urls[0]
        fields.update({"video_url" if is_video(url) else "image_url": url})
        if kind is PostKind.REEL:
            fields["media_type"] = "REELS"
            if "shareToFeed" in options:
                fields["share_to_feed"] = "true" if options["shareToFeed"] else "false"
            if options.get("coverUrl"):
                fields["cover_url"] = str(options["coverUrl"])
        elif kind is PostKind.STORY:
            fields["media_type"] = "STORIES"
        elif options.get("altText"):
            fields["alt_text"] = str(options["altText"])
    container = _id(await graph.post(f"{ig_id}/media", token, data=fields, account=ig_id))
    handle = {"containerId": container, "igUserId": ig_id}
    if any(is_video(url) for url in request.media_urls):
        return PublishResult(remote_id=container, processing=True, handle=handle)
    return await poll(graph, handle, token)


async def _child(graph: GraphClient, ig_id: str, token: str, url: str) -> str:
    fields = {"is_carousel_item": "true"}
    fields.update(
        {"media_type": "VIDEO", "video_url": url} if is_video(url) else {"image_url": url}
    )
    return _id(await graph.post(f"{ig_id}/media", token, data=fields, account=ig_id))


async def check_quota(graph: GraphClient, ig_id: str, token: str) -> None:
    """Respect the account's publishing limit (read live: the documented figure varies)."""
    answer = await graph.get(
        f"{ig_id}/content_publishing_limit",
        token,
        params={"fields": "quota_usage,config"},
        account=ig_id,
    )
    rows = answer.get("data") or [{}]
    usage, config = rows[0].get("quota_usage"), rows[0].get("config") or {}
    total = config.get("quota_total")
    if isinstance(usage, int) and isinstance(total, int) and usage >= total:
        raise RateLimited(
            f"the Instagram account published {usage} of its {total} posts in 24 hours",
            retry_after=QUOTA_WAIT_SECONDS,
            platform_code="publishing_limit",
        )


async def poll(graph: GraphClient, handle: dict[str, Any], token: str) -> PublishResult:
    """Ask the container's status: wait, publish it, or fail with Meta's reason."""
    container, ig_id = str(handle["containerId"]), str(handle["igUserId"])
    status = await graph.get(
        container, token, params={"fields": "status_code,status"}, account=ig_id
    )
    code = status.get("status_code")
    if code == "IN_PROGRESS":
        return PublishResult(remote_id=container, processing=True, handle=handle)
    if code in ("ERROR", "EXPIRED"):
        reason = status.get("status") or code
        raise InvalidRequest(
            f"Instagram could not publish the media: {reason}",
            platform_code=f"container_{str(code).lower()}",
        )
    if code != "FINISHED":
        raise PlatformError(
            f"the container is {code}; it cannot be published again",
            platform_code=f"container_{str(code).lower()}",
        )
    media = _id(
        await graph.post(
            f"{ig_id}/media_publish", token, data={"creation_id": container}, account=ig_id
        )
    )
    read = await graph.get(media, token, params={"fields": "permalink"}, account=ig_id)
    return PublishResult(remote_id=media, url=read.get("permalink"))


def _id(answer: dict) -> str:
    value = answer.get("id")
    if not isinstance(value, str) or not value:
        raise PlatformError("Meta answered without an id", platform_code="invalid_response")
    return value
