"""Post analytics: Meta's current insight metrics, one request per group, as unified metrics.

One retired or unavailable metric fails Meta's whole request (code 100), so each group is asked
on its own: a group that fails leaves its metrics ``None`` and its error in ``raw``, the others
still count. Metrics Meta removed (``post_impressions*``, IG ``impressions``, ``plays``,
``video_views``) are not asked for; ``impressions`` is therefore always ``None``.
"""

from __future__ import annotations

from typing import Any

from gateway import AccountRef, Analytics, InvalidRequest, PermissionDenied

from .const import IG_KIND
from .graph import GraphClient

FACEBOOK_GROUPS = {
    "reach": ("post_total_media_view_unique",),
    "views": ("post_media_view",),
    "reactions": ("post_reactions_by_type_total",),
    "clicks": ("post_clicks",),
}
FACEBOOK_COUNTS = (
    "reactions.summary(total_count).limit(0),comments.summary(total_count).limit(0),shares"
)
INSTAGRAM_GROUPS = {
    "FEED": {
        "reach": ("reach",),
        "views": ("views",),
        "interactions": ("likes", "comments", "shares", "saved"),
        "total": ("total_interactions",),
    },
    "REELS": {
        "reach": ("reach",),
        "views": ("views",),
        "interactions": ("likes", "comments", "shares", "saved"),
        "total": ("total_interactions",),
    },
    "STORY": {
        "reach": ("reach",),
        "views": ("views",),
        "interactions": ("shares", "replies"),
        "total": ("total_interactions",),
    },
}
# Meta's name → the unified name.
UNIFIED = {
    "post_total_media_view_unique": "reach",
    "post_media_view": "views",
    "post_clicks": "clicks",
    "reach": "reach",
    "views": "views",
    "likes": "likes",
    "comments": "comments",
    "shares": "shares",
    "saved": "saves",
    "total_interactions": "engagement",
}


async def fetch(graph: GraphClient, remote_id: str, account: AccountRef, token: str) -> Analytics:
    if account.kind == IG_KIND:
        return await _instagram(graph, remote_id, account.external_id, token)
    return await _facebook(graph, remote_id, account.external_id, token)


async def _groups(
    graph: GraphClient, remote_id: str, groups: dict[str, tuple[str, ...]], token: str, account: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each group's values by Meta's metric name, and the raw answers (errors included)."""
    values: dict[str, Any] = {}
    raw: dict[str, Any] = {}
    for name, metrics in groups.items():
        try:
            answer = await graph.get(
                f"{remote_id}/insights",
                token,
                params={"metric": ",".join(metrics)},
                account=account,
            )
        except (InvalidRequest, PermissionDenied) as err:
            raw[name] = {"error": {"code": err.platform_code, "message": err.detail}}
            continue
        raw[name] = answer
        for row in answer.get("data") or []:
            # Prefer the lifetime row: some metrics also come with a stale `day` row of 0.
            if isinstance(row, dict) and row.get("period", "lifetime") == "lifetime":
                rows = row.get("values") or [{}]
                values[row.get("name")] = rows[-1].get("value")
    return values, raw


async def _facebook(graph: GraphClient, post_id: str, page_id: str, token: str) -> Analytics:
    values, raw = await _groups(graph, post_id, FACEBOOK_GROUPS, token, page_id)
    counts = await graph.get(post_id, token, params={"fields": FACEBOOK_COUNTS}, account=page_id)
    raw["counts"] = counts
    metrics = _unified(values)
    reactions = values.get("post_reactions_by_type_total")
    if isinstance(reactions, dict):
        metrics["likes"] = sum(v for v in reactions.values() if isinstance(v, int))
    else:
        metrics["likes"] = _count(counts, "reactions")
    metrics["comments"] = _count(counts, "comments")
    shares = counts.get("shares")
    metrics["shares"] = shares.get("count", 0) if isinstance(shares, dict) else 0
    parts = [metrics.get(k) for k in ("likes", "comments", "shares", "clicks")]
    known = [p for p in parts if isinstance(p, int)]
    metrics["engagement"] = sum(known) if known else None
    return Analytics(metrics=metrics, raw=raw)


async def _instagram(graph: GraphClient, media_id: str, ig_id: str, token: str) -> Analytics:
    media = await graph.get(
        media_id,
        token,
        params={"fields": "media_product_type,like_count,comments_count"},
        account=ig_id,
    )
    groups = INSTAGRAM_GROUPS.get(str(media.get("media_product_type")), INSTAGRAM_GROUPS["FEED"])
    values, raw = await _groups(graph, media_id, groups, token, ig_id)
    raw["media"] = media
    metrics = _unified(values)
    # The media's own counters when the insights group was refused.
    for unified, field in (("likes", "like_count"), ("comments", "comments_count")):
        if metrics.get(unified) is None and isinstance(media.get(field), int):
            metrics[unified] = media[field]
    return Analytics(metrics=metrics, raw=raw)


def _unified(values: dict[str, Any]) -> dict[str, int | float | None]:
    metrics: dict[str, int | float | None] = {"impressions": None}
    for name, value in values.items():
        if name in UNIFIED and isinstance(value, int | float):
            metrics[UNIFIED[name]] = value
    return metrics


def _count(answer: dict[str, Any], edge: str) -> int | None:
    summary = (
        (answer.get(edge) or {}).get("summary") if isinstance(answer.get(edge), dict) else None
    )
    total = summary.get("total_count") if isinstance(summary, dict) else None
    return total if isinstance(total, int) else None
