"""The web app: service routes, problem+json, request ids, platforms list, metrics, lifecycle."""

from __future__ import annotations

import json

from gateway import admin

from ...conftest import auth

PROBLEM = "application/problem+json"


async def test_healthz_needs_no_auth(api):
    client, _ = api
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_reports_each_check(api):
    client, _ = api
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "plugins": "ok"},
    }


async def test_readyz_is_503_while_draining(api):
    client, gateway = api
    gateway.draining = True
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["server"] == "draining"


async def test_readyz_is_503_when_migrations_are_behind(api):
    client, gateway = api
    from sqlalchemy import text

    async with gateway.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["checks"]["migrations"] == "behind"


async def test_api_routes_need_a_valid_key(api, tenant):
    client, _ = api
    for headers in ({}, {"Authorization": "Basic abc"}, auth("key_nope.secret"), auth("garbage")):
        response = await client.get("/api/platforms", headers=headers)
        assert response.status == 401
        assert response.headers["Content-Type"].startswith(PROBLEM)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    wrong_secret = tenant.api_key.split(".")[0] + ".not-the-secret"
    assert (await client.get("/api/platforms", headers=auth(wrong_secret))).status == 401
    assert (await client.get("/api/platforms", headers=auth(tenant))).status == 200


async def test_unknown_api_path_is_401_before_404(api, tenant):
    client, _ = api
    assert (await client.get("/api/nothing-here")).status == 401
    response = await client.get("/api/nothing-here", headers=auth(tenant))
    assert response.status == 404
    body = await response.json(content_type=PROBLEM)
    assert body["type"] == "urn:gateway:problem:not_found" and body["status"] == 404


async def test_revoked_key_stops_working_at_once(api, tenant):
    client, gateway = api
    assert (await client.get("/api/platforms", headers=auth(tenant))).status == 200
    await admin.revoke_key(gateway, tenant.key_id)
    assert (await client.get("/api/platforms", headers=auth(tenant))).status == 401


async def test_wrong_method_is_405_problem_with_allow(api):
    client, _ = api
    response = await client.post("/healthz")
    assert response.status == 405
    assert response.headers["Allow"] == "GET"
    body = await response.json(content_type=PROBLEM)
    assert set(body) == {"type", "title", "status", "detail"}


async def test_request_id_is_echoed_or_made(api):
    client, _ = api
    given = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-Id": "bad id\twith junk"})
    assert made.headers["X-Request-Id"] != "bad id\twith junk"
    assert len(made.headers["X-Request-Id"]) == 32


async def test_platforms_lists_what_plugins_provide(api, tenant):
    client, _ = api
    response = await client.get("/api/platforms", headers=auth(tenant))
    body = await response.json()
    assert body["nextCursor"] is None
    assert [p["name"] for p in body["data"]] == ["example", "examplesocial"]
    example = body["data"][0]
    assert body["data"][1]["auth"] == "oauth2"
    # The example declares one `Limits` for every account kind (the form before per-kind limits).
    limits = {
        "captionLength": 280,
        "titleLength": None,
        "mediaCountMin": 0,
        "mediaCountMax": 4,
        "mediaMaxBytes": None,
        "mediaTypes": [],
        "hashtagsMax": None,
        "mentionsMax": None,
    }
    assert example == {
        "name": "example",
        "displayName": "Example Network",
        "auth": "apiKey",
        "authMethods": ["apiKey"],
        "capabilities": {
            "postKinds": {"example_page": ["text", "image"]},
            "delete": True,
            "analytics": False,
            "webhooks": False,
            "scheduling": False,
        },
        "limits": {"default": limits, "byAccountKind": {"example_page": limits}},
        # As enforced: an object, and no key it does not declare (it declares none).
        "options": {"type": "object", "additionalProperties": False},
        "version": "0",
    }
    # Limits per account kind: Example Social declares its page's own.
    social = body["data"][1]["limits"]
    assert social["byAccountKind"]["examplesocial_page"]["captionLength"] == 500
    assert social["default"]["captionLength"] is None


async def test_platforms_pagination_and_bad_parameters(api, tenant):
    client, _ = api
    first = await (await client.get("/api/platforms?limit=1", headers=auth(tenant))).json()
    assert [p["name"] for p in first["data"]] == ["example"] and first["nextCursor"]
    second = await (
        await client.get(
            f"/api/platforms?limit=1&cursor={first['nextCursor']}", headers=auth(tenant)
        )
    ).json()
    assert [p["name"] for p in second["data"]] == ["examplesocial"]
    assert second["nextCursor"] is None
    for query in ("limit=0", "limit=201", "limit=abc", "cursor=%%%"):
        response = await client.get(f"/api/platforms?{query}", headers=auth(tenant))
        assert response.status == 400, query
        body = await response.json(content_type=PROBLEM)
        assert body["errors"][0]["field"] in ("limit", "cursor")


async def test_plugin_route_is_authenticated_and_knows_the_tenant(api, tenant):
    client, _ = api
    assert (await client.get("/api/plugins/example/whoami")).status == 401
    response = await client.get("/api/plugins/example/whoami", headers=auth(tenant))
    assert await response.json() == {"tenantId": tenant.tenant_id}


async def test_metrics_expose_the_report_names(api):
    client, gateway = api
    gateway.telemetry.instruments.publish_success.add(1, {"platform": "example"})
    gateway.telemetry.instruments.health_check.record(12.5, {"platform": "example"})
    await client.get("/healthz")
    text = await (await client.get("/metrics")).text()
    for name in (
        "connector_publish_success_total",
        "connector_health_check",
        "api_requests_total",
        "api_error_rate",
    ):
        assert name in text, name


async def test_errors_never_leak_a_stack_trace(api, tenant):
    client, _ = api
    response = await client.get("/api/plugins/example/boom", headers=auth(tenant))
    assert response.status == 500
    text = await response.text()
    assert "Traceback" not in text and "internals" not in text and "abc" not in text
    assert json.loads(text)["type"] == "urn:gateway:problem:internal_error"


async def test_plugins_startup_and_shutdown_hooks_run(aiohttp_client, make_gateway, example_plugin):
    from gateway.web.app import create_app

    client = await aiohttp_client(create_app(make_gateway((("example", example_plugin),))))
    assert example_plugin.STARTED == ["up"]
    await client.close()
    assert example_plugin.STARTED == ["up", "down"]
