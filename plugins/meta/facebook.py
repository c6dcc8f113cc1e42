"""Publishing to a Facebook Page: text and link posts, one photo, several photos, a video."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gateway import OutcomeUnknown, PlatformError, PostKind, PublishRequest, PublishResult, clock

from .checks import facebook_kind
from .const import VIDEO_HOST, WEB
from .graph import GraphClient, Row, lookback_start

SCHEDULE_MIN, SCHEDULE_MAX = timedelta(minutes=10), timedelta(days=30)
SCHEDULABLE = (PostKind.TEXT, PostKind.LINK, PostKind.MULTI_IMAGE)


def schedule_problem(request: PublishRequest) -> str | None:
    """Why Meta cannot hold this post until ``request.scheduled_at`` (None: it can)."""
    if request.scheduled_at is None:
        return None
    if facebook_kind(request) not in SCHEDULABLE:
        return "Meta schedules text, link and multi-photo Page posts only"
    ahead = request.scheduled_at - clock.now()
    if not SCHEDULE_MIN <= ahead <= SCHEDULE_MAX:
        return "Meta schedules Page posts 10 minutes to 30 days ahead"
    return None


async def publish(graph: GraphClient, request: PublishRequest, page_id: str, token: str):
    """Publish now, or (``request.scheduled_at``) hand the post to Meta's scheduler."""
    kind = facebook_kind(request)
    message = request.text
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
        url = f"{WEB}/{page_id}/videos/{video_id}"
        try:
            read = await graph.get(
                video_id, token, params={"fields": "permalink_url"}, account=page_id
            )
        except PlatformError:
            # It is up: a failed read must not make the job upload it again.
            return PublishResult(remote_id=video_id, url=url)
        return PublishResult(remote_id=video_id, url=read.get("permalink_url") or url)
    fields = {**_text("message", message), **_text("link", request.link)}
    if kind is PostKind.MULTI_IMAGE:
        # Each photo is uploaded unpublished, then attached to one feed post.
        attached = []
        for url in request.media_urls:
            # An unpublished photo shows nowhere until a post attaches it: one made twice
            # (a timed-out upload retried) is harmless, so the upload is retried like a read.
            photo = await graph.post(
                f"{page_id}/photos",
                token,
                data={"url": url, "published": "false"},
                account=page_id,
                idempotent=True,
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


FEED_FIELDS = "id,message,created_time,permalink_url,attachments{type,unshimmed_url,subattachments}"
SCHEDULED_FIELDS = f"{FEED_FIELDS},scheduled_publish_time"


async def find_published(
    graph: GraphClient, request: PublishRequest, page_id: str, token: str
) -> PublishResult | None:
    """The Page post an attempt with an unknown outcome made, if it made one.

    Meta takes no idempotency key, so the post is looked for in the Page's feed (and among its
    scheduled posts, where a natively scheduled one waits) by exactly what ``publish`` sends:
    the message and the attachment's shape, made since its job was queued.

    :raises OutcomeUnknown: for posts that cannot be told apart reliably; the job goes to the
        dead-letter queue rather than risk a second post.
    """
    kind = facebook_kind(request)
    message = request.text
    if kind is PostKind.VIDEO:
        # A video is processed after the upload and reaches the feed only then, so a look
        # soon after the timeout can miss one that is on its way; and the video id ``publish``
        # returns is not what the feed lists.
        raise OutcomeUnknown(
            "Meta cannot be asked reliably whether a Page video went out, so it is not "
            "published again (check the Page, then replay it from the DLQ)"
        )
    if kind in (PostKind.IMAGE, PostKind.MULTI_IMAGE) and message is None:
        # Meta re-hosts photos: without text nothing tells this post from another photo.
        raise OutcomeUnknown(
            "a Page photo post without text cannot be told apart from others at Meta, so it is "
            "not published again (check the Page, then replay it from the DLQ)"
        )
    since = lookback_start(request)

    def match(post: Row) -> bool:
        return post.get("message") == message and _same_shape(post, kind, request)

    post = await _look(graph, f"{page_id}/feed", token, page_id, FEED_FIELDS, since, match)
    if post is not None:
        return PublishResult(remote_id=_id(post), url=post.get("permalink_url") or _url(post))
    if kind not in SCHEDULABLE:
        return None
    # Scheduled posts are not in the feed until their time. The core does not say whether
    # the last attempt handed the post to Meta's scheduler, so schedulable kinds look there too.
    post = await _look(
        graph, f"{page_id}/scheduled_posts", token, page_id, SCHEDULED_FIELDS, since, match
    )
    if post is None:
        return None
    result = PublishResult(remote_id=_id(post), url=post.get("permalink_url") or _url(post))
    when = post.get("scheduled_publish_time")
    poll_at = datetime.fromtimestamp(int(when), UTC) if isinstance(when, int | str) else None
    handle = {"scheduledPostId": result.remote_id, "pageId": page_id}
    return replace(result, processing=True, poll_at=poll_at, handle=handle)


async def _look(graph, path, token, page_id, fields, since, match) -> Row | None:
    return await graph.find(
        path,
        token,
        params={"fields": fields, "since": str(int(since.timestamp()))},
        account=page_id,
        match=match,
        since=since,
        time_field="created_time",
    )


def _same_shape(post: Row, kind: PostKind, request: PublishRequest) -> bool:
    """Whether the post's attachments are what ``publish`` made for ``kind``."""
    attachments = [a for a in (post.get("attachments") or {}).get("data") or [] if a]
    types = [a.get("type") for a in attachments]
    if kind is PostKind.LINK:
        return any(a.get("unshimmed_url") == request.link for a in attachments)
    if kind is PostKind.IMAGE:
        return types == ["photo"]
    if kind is PostKind.MULTI_IMAGE:
        if types != ["album"]:
            return False
        photos = (attachments[0].get("subattachments") or {}).get("data") or []
        return len(photos) == len(request.media_urls)
    # Text: no media, and no link but a preview Meta may add for a URL written in the message
    # (a link post with the same text is another post).
    text = str(post.get("message") or "")
    return not {"photo", "album", "video_inline", "video"} & set(types) and all(
        str(a.get("unshimmed_url") or "") in text for a in attachments
    )


def _url(post: Row) -> str:
    return f"{WEB}/{_id(post)}"


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
