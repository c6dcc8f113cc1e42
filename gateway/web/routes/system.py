"""Service routes: liveness, readiness, metrics, the platforms list and the OpenAPI document."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlalchemy import text

from ...db import migrate
from ...db.outage import outage_of
from ...types import PostKind
from ..keys import GATEWAY, SPEC
from ..pagination import cursor_scope, page_of
from ..spec import (
    CURSOR_PARAM,
    LIMIT_PARAM,
    ApiSpec,
    Schema,
    json_response,
    page_schema,
    query_params,
)

STATUS_SCHEMA = Schema(
    "Liveness",
    {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    },
)
READY_SCHEMA = Schema(
    "Readiness",
    {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ready", "unavailable"]},
            "checks": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
)
COUNT = {"type": ["integer", "null"], "minimum": 0}
LIMITS_SCHEMA = Schema(
    "Limits",
    {
        "type": "object",
        "description": "What a post to one account kind may carry; null: no limit. Enforced "
        "before anything is queued, except `mediaMaxBytes` (sizes are not known yet).",
        "required": [
            "captionLength",
            "titleLength",
            "mediaCountMin",
            "mediaCountMax",
            "mediaMaxBytes",
            "mediaTypes",
            "hashtagsMax",
            "mentionsMax",
        ],
        "properties": {
            "captionLength": {
                **COUNT,
                "description": "Characters of the text: the body where `titleLength` is set, "
                "else title and body joined by a blank line",
            },
            "titleLength": COUNT,
            "mediaCountMin": {"type": "integer", "minimum": 0},
            "mediaCountMax": COUNT,
            "mediaMaxBytes": COUNT,
            "mediaTypes": {
                "type": "array",
                "items": {"type": "string"},
                "description": "MIME types, told by each media URL's extension; empty: any",
            },
            "hashtagsMax": COUNT,
            "mentionsMax": COUNT,
        },
    },
)
PLATFORM_LIMITS_SCHEMA = Schema(
    "PlatformLimits",
    {
        "type": "object",
        "required": ["default", "byAccountKind"],
        "properties": {
            "default": LIMITS_SCHEMA,
            "byAccountKind": {
                "type": "object",
                "description": "The limits of each account kind (an account's `kind`); "
                "`default` is for a kind not listed",
                "additionalProperties": LIMITS_SCHEMA,
            },
        },
    },
)
CAPABILITIES_SCHEMA = Schema(
    "Capabilities",
    {
        "type": "object",
        "required": ["postKinds", "delete", "analytics", "webhooks", "scheduling"],
        "properties": {
            "postKinds": {
                "type": "object",
                "description": "The post kinds each account kind takes; a post of another "
                "kind, or to an account of a kind not listed, is refused",
                "additionalProperties": {
                    "type": "array",
                    "items": {"enum": [str(kind) for kind in PostKind]},
                },
            },
            "delete": {"type": "boolean"},
            "analytics": {"type": "boolean"},
            "webhooks": {"type": "boolean"},
            "scheduling": {"type": "boolean"},
        },
    },
)
PLATFORM_SCHEMA = Schema(
    "Platform",
    {
        "type": "object",
        "required": ["name", "displayName", "auth", "capabilities", "limits", "version"],
        "properties": {
            "name": {"type": "string"},
            "displayName": {"type": "string"},
            "auth": {"enum": ["oauth2", "apiKey"]},
            "authMethods": {"type": "array", "items": {"enum": ["oauth2", "apiKey"]}},
            "capabilities": CAPABILITIES_SCHEMA,
            "limits": PLATFORM_LIMITS_SCHEMA,
            "options": {
                "type": "object",
                "description": "The JSON Schema of `options.<name>` in a publish request, "
                "enforced: a key it does not declare is refused",
            },
            "version": {"type": "string"},
        },
    },
)
PLATFORMS_PAGE = page_schema(PLATFORM_SCHEMA)
OPENAPI_DOCUMENT = Schema("OpenApiDocument", {"type": "object"})
PLATFORMS_PARAMS = (LIMIT_PARAM, CURSOR_PARAM)


def install(spec: ApiSpec) -> None:
    """Declare the service routes on ``spec``."""
    spec.route(
        "GET",
        "/healthz",
        summary="Liveness",
        auth=False,
        tags=("service",),
        responses={200: json_response(STATUS_SCHEMA)},
    )(healthz)
    spec.route(
        "GET",
        "/readyz",
        summary="Readiness: database, migrations, plugins",
        auth=False,
        tags=("service",),
        responses={
            200: json_response(READY_SCHEMA, "Ready"),
            503: json_response(READY_SCHEMA, "Not ready, with reasons"),
        },
    )(readyz)
    spec.route(
        "GET",
        "/metrics",
        summary="Prometheus text exposition",
        auth=False,
        tags=("service",),
        responses={
            200: {
                "description": "Metrics",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )(metrics)
    spec.route(
        "GET",
        "/openapi.json",
        summary="The OpenAPI 3.1 document of these routes",
        auth=False,
        tags=("service",),
        responses={200: json_response(OPENAPI_DOCUMENT)},
    )(openapi)
    spec.route(
        "GET",
        "/api/platforms",
        summary="Platforms the loaded plugins provide",
        tags=("platforms",),
        parameters=PLATFORMS_PARAMS,
        responses={200: json_response(PLATFORMS_PAGE)},
    )(list_platforms)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    gateway = request.config_dict[GATEWAY]
    checks: dict[str, str] = {}
    retry_after = 5
    try:
        await _probe_database(gateway)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if await migrate.is_current(gateway.engine) else "behind"
    except Exception as err:  # any failure to reach the database means not ready
        outage = outage_of(err)
        if outage is None:
            checks["database"] = f"unreachable ({type(err).__name__})"
        else:
            checks["database"] = f"{outage.reason} ({type(err).__name__})"
            retry_after = outage.retry_after
    checks["plugins"] = "ok" if gateway.started else "not started"
    if gateway.draining:
        checks["server"] = "draining"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    if ready:
        return web.json_response(body)
    return web.json_response(body, status=503, headers={"Retry-After": str(retry_after)})


async def _probe_database(gateway) -> None:
    """Can the database take a write now? Raises what the next request would meet."""
    if gateway.engine is None:
        raise RuntimeError("the database is not open")
    if gateway.uses_sqlite:
        # Reads still work while another connection holds the write lock, so "SELECT 1" would
        # say ready while every publish fails: take the write lock (waiting at most the busy
        # timeout) and let it go. No asyncio timeout here: cancelling an aiosqlite query midway
        # leaves its connection unusable.
        engine = gateway.engine.execution_options(sqlite_begin="IMMEDIATE")
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await connection.rollback()
        return
    async with asyncio.timeout(2), gateway.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def metrics(request: web.Request) -> web.Response:
    body = request.config_dict[GATEWAY].telemetry.prometheus_text()
    return web.Response(
        body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.config_dict[SPEC].document())


async def list_platforms(request: web.Request) -> web.Response:
    params = query_params(request, PLATFORMS_PARAMS)
    gateway = request.config_dict[GATEWAY]
    described = [
        gateway.connectors.get(name).describe(gateway.version_of(name))
        for name in gateway.connectors
        if gateway.settings.platform(name).enabled
    ]
    items, next_cursor = page_of(
        described,
        key="name",
        limit=params["limit"],
        cursor=params.get("cursor"),
        scope=cursor_scope(request),
    )
    return web.json_response({"data": items, "nextCursor": next_cursor})
