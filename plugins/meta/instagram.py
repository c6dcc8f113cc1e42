"""Publishing to Instagram: containers, their status, ``media_publish``, the publishing limit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gateway import (
    InvalidRequest,
    OutcomeUnknown,
    PlatformError,
    PostKind,
    PublishRequest,
    PublishResult,
    RateLimited,
    Transient,
    clock,
)

from .checks import instagram_kind, is_video
from .const import CLOCK_SKEW, LOOKBACK_HOURS
from .graph import GraphClient, Row, lookback_start

QUOTA_WAIT_SECONDS = 3600.0
# After a media_publish whose answer was lost, the container is asked again only once the
# lost request must be over (the gateway's request timeout is 30 s by default).
UNKNOWN_PUBLISH_WAIT = timedelta(seconds=60)
MEDIA_FIELDS = "id,caption,media_type,media_product_type,timestamp,permalink"


async def publish(graph: GraphClient, request: PublishRequest, ig_id: str, token: str):
    """Create the container (children first for a carousel); publish it at once if it is ready.

    Images are usually ready immediately; video is not, and then the result is ``processing``
    with a handle that ``poll`` follows until the container is ``FINISHED``.
    """
    await check_quota(graph, ig_id, token)
    kind = instagram_kind(request)
    fields: dict[str, str] = {}
    caption = request.text
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
    container = await _container(graph, ig_id, token, fields)
    handle: dict[str, Any] = {
        "containerId": container,
        "igUserId": ig_id,
        "createdAt": clock.now().isoformat(),
    }
    expected = _expected(request)
    if expected is not None:
        handle["expect"] = expected  # for finding the media if its publish answer is lost
    if any(is_video(url) for url in request.media_urls):
        return PublishResult(remote_id=container, processing=True, handle=handle)
    return await poll(graph, handle, token)


async def _child(graph: GraphClient, ig_id: str, token: str, url: str) -> str:
    fields = {"is_carousel_item": "true"}
    fields.update(
        {"media_type": "VIDEO", "video_url": url} if is_video(url) else {"image_url": url}
    )
    return await _container(graph, ig_id, token, fields)


async def _container(graph: GraphClient, ig_id: str, token: str, fields: dict[str, str]) -> str:
    # A container is not a post: one that is never published expires after 24 hours, unseen.
    # So a container request that timed out is simply made again (a Transient at worst),
    # never an unknown outcome; only media_publish makes something live.
    answer = await graph.post(f"{ig_id}/media", token, data=fields, account=ig_id, idempotent=True)
    return _id(answer)


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
    if code == "PUBLISHED":
        # Live already (an earlier media_publish whose answer was lost): never publish again.
        return await _published_media(graph, handle, token)
    if code != "FINISHED":
        raise PlatformError(
            f"the container is {code}; it cannot be published again",
            platform_code=f"container_{str(code).lower()}",
        )
    try:
        answer = await graph.post(
            f"{ig_id}/media_publish", token, data={"creation_id": container}, account=ig_id
        )
    except OutcomeUnknown:
        # A container is published at most once, so its status says whether this went out:
        # asked again later, PUBLISHED is looked up and FINISHED is published (no second post).
        return PublishResult(
            remote_id=container,
            processing=True,
            handle=handle,
            poll_at=clock.now() + UNKNOWN_PUBLISH_WAIT,
        )
    media = _id(answer)
    try:
        read = await graph.get(media, token, params={"fields": "permalink"}, account=ig_id)
    except PlatformError:
        # It is live: a failed read must not make the job publish it again.
        return PublishResult(remote_id=media)
    return PublishResult(remote_id=media, url=read.get("permalink"))


async def _published_media(graph: GraphClient, handle: dict[str, Any], token: str) -> PublishResult:
    """The media a PUBLISHED container became: Meta does not say, so it is looked for."""
    container, ig_id = str(handle["containerId"]), str(handle["igUserId"])
    expected = handle.get("expect")
    if not isinstance(expected, dict):
        # A story (not listed with the account's media, and without a caption), a post
        # without a caption, or a handle made before handles carried what to look for.
        raise PlatformError(
            f"container {container} is already published, but which media it became cannot "
            "be told; it is not published again (find the post on Instagram)",
            platform_code="container_published",
        )
    try:
        created = datetime.fromisoformat(str(handle.get("createdAt")))
    except ValueError:
        created = clock.now() - timedelta(hours=LOOKBACK_HOURS)
    found = await _find_media(graph, ig_id, token, expected, created - CLOCK_SKEW)
    if found is None:
        # Published, so it is there: Meta's listing may lag a moment behind the container.
        raise Transient(f"container {container} is published; its media is not listed yet")
    return found


async def find_published(
    graph: GraphClient, request: PublishRequest, ig_id: str, token: str
) -> PublishResult | None:
    """The media an attempt with an unknown outcome published, if it published one.

    ``publish`` itself never ends in an unknown outcome (containers are safe to make again
    and a lost media_publish answer is settled by the container's status), so this runs when
    a worker stopped mid-attempt and the container is not known: the account's media is
    looked through for the caption and kind ``publish`` sends, made since the job was queued. None
    (nothing published; at most an unpublished container that expires) lets the core retry.

    :raises OutcomeUnknown: for stories and posts without a caption, which cannot be found.
    """
    expected = _expected(request)
    if expected is None:
        raise OutcomeUnknown(
            "an Instagram story or a post without a caption cannot be found at Meta, so it is "
            "not published again (check the account, then replay it from the DLQ)"
        )
    return await _find_media(graph, ig_id, token, expected, lookback_start(request))


def _expected(request: PublishRequest) -> dict[str, str] | None:
    """What the published media will show: its caption, ``media_type`` and product type.

    None when it cannot be found: stories are not listed with the account's media and carry
    no caption, and a post without a caption cannot be told from another of the same kind.
    """
    kind = instagram_kind(request)
    caption = request.text
    if kind is PostKind.STORY or caption is None:
        return None
    media_type = {PostKind.CAROUSEL: "CAROUSEL_ALBUM", PostKind.REEL: "VIDEO"}.get(kind, "IMAGE")
    product = "REELS" if kind is PostKind.REEL else "FEED"
    return {"caption": caption, "mediaType": media_type, "productType": product}


async def _find_media(
    graph: GraphClient, ig_id: str, token: str, expected: dict, since: datetime
) -> PublishResult | None:
    def match(media: Row) -> bool:
        return (
            media.get("caption") == expected.get("caption")
            and media.get("media_type") == expected.get("mediaType")
            and media.get("media_product_type") == expected.get("productType")
        )

    media = await graph.find(
        f"{ig_id}/media",
        token,
        params={"fields": MEDIA_FIELDS},
        account=ig_id,
        match=match,
        since=since,
        time_field="timestamp",
    )
    if media is None:
        return None
    return PublishResult(remote_id=_id(media), url=media.get("permalink"))


def _id(answer: dict) -> str:
    value = answer.get("id")
    if not isinstance(value, str) or not value:
        raise PlatformError("Meta answered without an id", platform_code="invalid_response")
    return value
