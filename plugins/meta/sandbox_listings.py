"""Reading lists in the emulator: a Page's feed and scheduled posts, an Instagram account's media.

Lists come newest first in Graph's shape, ``{"data": [...], "paging": {"cursors": {...},
"next": ...}}``, with ``limit`` (25 by default, at most 100) and an ``after`` cursor; ``next``
is a whole URL carrying the request's own parameters, and is left out on the last page.
``since`` and ``until`` (Unix seconds) bound a Page's lists by ``created_time``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from gateway import sandbox

from .sandbox_content import ContentStore, FacebookObject
from .sandbox_graph import GraphError, fb_time

PAGE_SIZE, PAGE_MAX = 25, 100


def feed(
    store: ContentStore, page_id: str, params: sandbox.RequestParams, now: float, fields: set[str]
):
    """``GET /{page-id}/feed``: the Page's published posts (photos and videos make one each)."""
    rows = [
        (when, _post_row(obj, post_id, when, fields))
        for obj in store.facebook.values()
        if obj.page_id == page_id and not obj.deleted
        for post_id, when in [_feed_entry(obj, now)]
        if post_id is not None
    ]
    return _listing(_bounded(rows, params), params, f"{page_id}/feed")


def scheduled_posts(
    store: ContentStore, page_id: str, params: sandbox.RequestParams, now: float, fields: set[str]
):
    """``GET /{page-id}/scheduled_posts``: posts waiting for their time (not in the feed yet)."""
    rows = [
        (obj.created_at, _post_row(obj, obj.id, obj.created_at, fields))
        for obj in store.facebook.values()
        if obj.page_id == page_id
        and obj.kind == "post"
        and not obj.deleted
        and obj.scheduled_for is not None
        and not obj.is_published(now)
    ]
    return _listing(_bounded(rows, params), params, f"{page_id}/scheduled_posts")


def ig_media(store: ContentStore, ig_id: str, params: sandbox.RequestParams, fields: set[str]):
    """``GET /{ig-user-id}/media``: the account's published media; stories have their own edge."""
    rows = [
        (m.created_at, {k: v for k, v in m.fields().items() if k in fields or k == "id"})
        for m in store.media.values()
        if m.ig_user == ig_id and not m.deleted and m.product_type != "STORY"
    ]
    return _listing(rows, params, f"{ig_id}/media")


def _feed_entry(obj: FacebookObject, now: float) -> tuple[str | None, float]:
    """The feed post an object is (or makes), and its ``created_time``; None if it is none."""
    if obj.kind == "post":
        if not obj.is_published(now):
            return None, 0.0
        # A scheduled post enters the feed at its time.
        return obj.id, obj.scheduled_for or obj.created_at
    # A published photo or a video makes its own feed post; unpublished photos make none.
    if obj.post_id is not None and (obj.kind == "video" or obj.published):
        return obj.post_id, obj.created_at
    return None, 0.0


def _post_row(obj: FacebookObject, post_id: str, when: float, fields: set[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"id": post_id}
    if "message" in fields and obj.message:
        row["message"] = obj.message
    if "created_time" in fields:
        row["created_time"] = fb_time(when)
    if "permalink_url" in fields:
        row["permalink_url"] = obj.permalink
    if "scheduled_publish_time" in fields and obj.scheduled_for:
        row["scheduled_publish_time"] = int(obj.scheduled_for)
    if "attachments" in fields:
        attachments = _attachments(obj)
        if attachments:
            row["attachments"] = {"data": attachments}
    return row


def _attachments(obj: FacebookObject) -> list[dict[str, Any]]:
    if obj.kind == "photo":
        return [_photo(obj.id)]
    if obj.kind == "video":
        return [{"type": "video_inline", "target": {"id": obj.id}, "url": obj.permalink}]
    if obj.attached:
        photos = [_photo(fbid) for fbid in obj.attached]
        return [{"type": "album", "subattachments": {"data": photos}}]
    if obj.link:
        # Meta shows links through its l.facebook.com shim; unshimmed_url is the original.
        shim = f"https://l.facebook.com/l.php?u={quote(obj.link, safe='')}"
        return [{"type": "share", "url": shim, "unshimmed_url": obj.link}]
    return []


def _photo(fbid: str) -> dict[str, Any]:
    return {"type": "photo", "target": {"id": fbid}}


def _bounded(
    rows: list[tuple[float, dict]], params: sandbox.RequestParams
) -> list[tuple[float, dict]]:
    since, until = _time(params, "since"), _time(params, "until")
    return [
        (when, row)
        for when, row in rows
        if (since is None or when >= since) and (until is None or when <= until)
    ]


def _time(params: sandbox.RequestParams, name: str) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise GraphError(100, f"(#100) The parameter {name} must be a Unix timestamp") from None


def _listing(
    rows: list[tuple[float, dict]], params: sandbox.RequestParams, path: str
) -> dict[str, Any]:
    rows.sort(key=lambda item: item[0], reverse=True)
    try:
        start = int(params.get("after") or 0)
        limit = min(int(params.get("limit") or PAGE_SIZE), PAGE_MAX)
    except ValueError:
        raise GraphError(100, "(#100) after and limit must be numbers") from None
    chunk = [row for _, row in rows[start : start + limit]]
    paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(chunk))}}
    if start + limit < len(rows):
        query = {k: v for k, v in params.items() if k != "access_token"}
        query["after"] = str(start + limit)
        paging["next"] = f"https://graph.facebook.com/v25.0/{path}?{urlencode(query)}"
    return {"data": chunk, "paging": paging}
