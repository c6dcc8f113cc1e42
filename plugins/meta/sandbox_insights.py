"""Insights for what was published, with the metric names Meta still serves in 2026.

A retired metric (``post_impressions``, IG ``impressions``, ``plays``, ``video_views``...) fails the
whole request with code 100, as on the real API; so does a metric the media's product type
does not have (``profile_visits`` on a reel).
"""

from __future__ import annotations

from typing import Any

from gateway import sandbox

from .sandbox_content import FacebookObject, Media, figure
from .sandbox_graph import GraphError

FACEBOOK_POST_METRICS = (
    "post_total_media_view_unique",
    "post_media_view",
    "post_reactions_by_type_total",
    "post_clicks",
    "post_clicks_by_type",
    "post_video_views",
    "post_activity_by_action_type",
)
RETIRED_FACEBOOK = (
    "post_impressions",
    "post_impressions_unique",
    "post_impressions_paid",
    "post_impressions_organic",
    "post_impressions_fan_unique",
    "post_impressions_viral_unique",
    "post_engaged_users",
)
_COMMON_IG = ("views", "reach", "likes", "comments", "shares", "saved", "total_interactions")
IG_METRICS = {
    "FEED": (*_COMMON_IG, "follows", "profile_visits", "profile_activity"),
    "REELS": (*_COMMON_IG, "ig_reels_avg_watch_time", "ig_reels_video_view_total_time"),
    "STORY": ("views", "reach", "replies", "shares", "total_interactions", "navigation", "follows"),
}
RETIRED_IG = ("impressions", "plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count")


def _row(object_id: str, name: str, value: Any) -> dict[str, Any]:
    return {
        "name": name,
        "period": "lifetime",
        "values": [{"value": value}],
        "title": name.replace("_", " ").capitalize(),
        "description": f"Lifetime {name.replace('_', ' ')}",
        "id": f"{object_id}/insights/{name}/lifetime",
    }


def _metrics(params: sandbox.RequestParams) -> list[str]:
    # ``reach,likes`` or ``["reach","likes"]`` (how Meta's SDK sends a list) alike.
    names = params.list_of("metric")
    if not names:
        raise GraphError(100, "(#100) The parameter metric is required")
    return names


def facebook_insights(post: FacebookObject, params: sandbox.RequestParams) -> dict[str, Any]:
    rows = []
    for name in _metrics(params):
        if name not in FACEBOOK_POST_METRICS:
            raise GraphError(100, "(#100) The value must be a valid insights metric")
        seed = post.post_id or post.id
        reach = figure(seed, "reach", 50, 5000)
        value: Any = {
            "post_total_media_view_unique": reach,
            "post_media_view": reach + figure(seed, "views", 0, 2000),
            "post_reactions_by_type_total": {
                "like": figure(seed, "like", 0, 300),
                "love": figure(seed, "love", 0, 50),
            },
            "post_clicks": figure(seed, "clicks", 0, 400),
            "post_clicks_by_type": {"link clicks": figure(seed, "clicks", 0, 400)},
            "post_video_views": figure(seed, "video", 0, 900) if post.kind == "video" else 0,
            "post_activity_by_action_type": {"share": figure(seed, "shares", 0, 40)},
        }[name]
        rows.append(_row(seed, name, value))
    return {"data": rows}


def facebook_counts(post: FacebookObject) -> dict[str, Any]:
    """The engagement fields of a post (``reactions.summary``, ``comments.summary``, ``shares``)."""
    seed = post.post_id or post.id
    likes = figure(seed, "like", 0, 300) + figure(seed, "love", 0, 50)
    return {
        "reactions": {"data": [], "summary": {"total_count": likes}},
        "comments": {"data": [], "summary": {"total_count": figure(seed, "comments", 0, 90)}},
        "shares": {"count": figure(seed, "shares", 0, 40)},
    }


def instagram_insights(media: Media, params: sandbox.RequestParams) -> dict[str, Any]:
    allowed = IG_METRICS[media.product_type]
    rows = []
    for index, name in enumerate(_metrics(params)):
        if name not in allowed:
            raise GraphError(
                100,
                f"(#100) metric[{index}] must be one of the following values: {', '.join(allowed)}",
            )
        reach = figure(media.id, "reach", 20, 3000)
        likes, comments = figure(media.id, "likes", 0, 500), figure(media.id, "comments", 0, 80)
        shares, saved = figure(media.id, "shares", 0, 60), figure(media.id, "saved", 0, 90)
        value = {
            "views": reach + figure(media.id, "views", 0, 4000),
            "reach": reach,
            "likes": likes,
            "comments": comments,
            "shares": shares,
            "saved": saved,
            "total_interactions": likes + comments + shares + saved,
        }.get(name, figure(media.id, name, 0, 100))
        rows.append(_row(media.id, name, value))
    return {"data": rows}
