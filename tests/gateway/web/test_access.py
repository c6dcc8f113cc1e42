"""Access rules for API routes: the admin scope, and another tenant's ids answering 404."""

from __future__ import annotations

from gateway import admin

from ...conftest import auth

PROBLEM = "application/problem+json"


async def test_admin_scope_is_required_where_asked(api, tenant):
    client, gateway = api
    refused = await client.get("/api/plugins/example/admin-only", headers=auth(tenant))
    assert refused.status == 403
    assert (await refused.json(content_type=PROBLEM))["type"] == "urn:gateway:problem:forbidden"
    operator = await admin.create_tenant(gateway, "ops", admin=True)
    allowed = await client.get("/api/plugins/example/admin-only", headers=auth(operator))
    assert allowed.status == 200


async def test_another_tenants_resource_is_indistinguishable_from_a_missing_one(api, tenant):
    client, gateway = api
    other = await admin.create_tenant(gateway, "other")
    mine = await client.get(
        f"/api/plugins/example/things/t1?owner={tenant.tenant_id}", headers=auth(tenant)
    )
    assert mine.status == 200
    theirs = await client.get(
        f"/api/plugins/example/things/t1?owner={other.tenant_id}", headers=auth(tenant)
    )
    missing = await client.get(
        "/api/plugins/example/things/t1?owner=ten_nobody", headers=auth(tenant)
    )
    assert theirs.status == missing.status == 404
    assert await theirs.json(content_type=PROBLEM) == await missing.json(content_type=PROBLEM)
