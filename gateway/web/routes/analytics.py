"""GET /api/analytics/{postId}: a published post's latest figures, or fresh ones on request."""

from __future__ import annotations

from aiohttp import web

from ...db.jobs import AnalyticsRepository, JobRepository
from ...errors import Conflict, ResourceNotFound, UnsupportedCapability
from ...jobs.analytics import collect
from ...timefmt import rfc3339
from ...types import METRICS
from ..keys import GATEWAY, principal_of
from ..spec import ApiSpec, Schema, json_response, path_param, problem, query_params

NUMBER = {"type": ["number", "null"]}
ANALYTICS = Schema(
    "Analytics",
    {
        "type": "object",
        "required": ["postId", "platform", "collectedAt", "metrics", "raw"],
        "properties": {
            "postId": {"type": "string"},
            "platform": {"type": "string"},
            "collectedAt": {"type": "string"},
            "metrics": {
                "type": "object",
                "description": "A metric the platform does not report is null, never 0.",
                "required": list(METRICS),
                "properties": {name: NUMBER for name in METRICS},
            },
            "raw": {"type": "object"},
        },
    },
)
REFRESH = {
    "name": "refresh",
    "in": "query",
    "required": False,
    "description": "fetch from the platform now instead of returning the latest collection",
    "schema": {"type": "boolean", "default": False},
}


def install(spec: ApiSpec) -> None:
    spec.route(
        "GET",
        "/api/analytics/{postId}",
        summary="A published post's figures (latest collection, or fresh with refresh=true)",
        tags=("analytics",),
        parameters=(path_param("postId"), REFRESH),
        responses={
            200: json_response(ANALYTICS),
            404: problem("No such post"),
            409: problem("Not published (yet), or deleted"),
            422: problem("The platform gives no analytics"),
        },
    )(read_analytics)


async def read_analytics(request: web.Request) -> web.Response:
    gateway = request.config_dict[GATEWAY]
    post_id = request.match_info["postId"]
    refresh = query_params(request, (REFRESH,))["refresh"]
    async with gateway.session() as session:
        job = await JobRepository(session).by_post(post_id, principal_of(request).tenant_id)
        if job is None:
            raise ResourceNotFound(f"no post {post_id}")
        latest = await AnalyticsRepository(session).latest(job.id)
    connector = gateway.connector(job.platform)
    if connector is None or not connector.capabilities.analytics:
        raise UnsupportedCapability(f"{job.platform} gives no analytics")
    if job.status != "published" or job.deleted_at is not None:
        state = "deleted" if job.deleted_at is not None else job.status
        raise Conflict(f"post {post_id} is {state}; analytics exist for published posts only")
    if refresh or latest is None:
        latest = await collect(gateway, job, "refresh")
    return web.json_response(
        {
            "postId": job.post_id,
            "platform": job.platform,
            "collectedAt": rfc3339(latest.collected_at),
            "metrics": latest.metrics,
            "raw": latest.raw,
        }
    )
