"""Analytics through the gateway's HTTP API: current metrics, one group failing alone, raw kept."""

from __future__ import annotations

from datetime import timedelta

from gateway import METRICS
from gateway.db.base import utcnow
from gateway.db.jobs import JobRepository
from gateway.jobs.analytics import AnalyticsCollector

CDN = "https://cdn.example.com"
RETIRED = {
    "error": {
        "message": "(#100) The value must be a valid insights metric",
        "type": "OAuthException",
        "code": 100,
        "fbtrace_id": "x",
    }
}


async def _published(meta, kind: str, **fields) -> dict:
    connection_id, accounts = await meta.accounts()
    accepted = await meta.queued(connection_id, accounts[kind], **fields)
    assert await meta.run_jobs()
    job = await meta.job(accepted["jobId"])
    assert job["status"] == "published", job
    return job


async def test_facebook_post_analytics(meta):
    job = await _published(meta, "facebook_page", body="Hello")
    status, body = await meta.api("GET", f"/api/analytics/{job['postId']}?refresh=true")
    assert status == 200, body
    metrics = body["metrics"]
    assert set(metrics) == set(METRICS)
    assert metrics["impressions"] is None and metrics["saves"] is None  # retired / not given
    for name in ("reach", "views", "likes", "comments", "shares", "clicks", "engagement"):
        assert isinstance(metrics[name], int), (name, metrics)
    assert set(body["raw"]) == {"reach", "views", "reactions", "clicks", "counts"}
    asked = await meta.control("GET", "journal", params={"path": "*/insights"})
    metric_params = [r["query"]["metric"] for r in asked["requests"]]
    assert metric_params == [
        "post_total_media_view_unique",
        "post_media_view",
        "post_reactions_by_type_total",
        "post_clicks",
    ]


async def test_a_refused_metric_group_leaves_only_its_metric_empty(meta):
    job = await _published(meta, "instagram_business", mediaUrls=[f"{CDN}/a.jpg"])
    # The first group (reach) is refused as Meta refuses a retired metric.
    await meta.fault(method="GET", path="*/insights", status=400, body=RETIRED)
    status, body = await meta.api("GET", f"/api/analytics/{job['postId']}?refresh=true")
    assert status == 200, body
    metrics = body["metrics"]
    assert metrics["reach"] is None
    assert body["raw"]["reach"]["error"]["code"] == "100"
    for name in ("views", "likes", "comments", "shares", "saves", "engagement"):
        assert isinstance(metrics[name], int), (name, metrics)
    assert metrics["impressions"] is None and metrics["clicks"] is None


async def test_scheduled_collection_stores_the_figures(meta):
    job = await _published(meta, "instagram_business", mediaUrls=[f"{CDN}/a.jpg"])
    async with meta.gateway.transaction() as session:
        row = await JobRepository(session).get(job["jobId"])
        assert row.analytics_next_at is not None
        row.analytics_next_at = utcnow() - timedelta(seconds=1)
    assert await AnalyticsCollector(meta.gateway, 60).collect_due() == 1
    status, body = await meta.api("GET", f"/api/analytics/{job['postId']}")
    assert status == 200 and isinstance(body["metrics"]["views"], int), body
