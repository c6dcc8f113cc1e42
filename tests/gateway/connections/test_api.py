"""The connections API: API-key connections, listing, accounts, refresh, delete."""

from __future__ import annotations

from sqlalchemy import func, select

from gateway import admin
from gateway.db.models import ConnectionRow, SealedSecretRow

from .conftest import PLATFORM

GOOD_KEY = "ex-" + "c" * 32


async def rows(live, model) -> int:
    async with live.gateway.session() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_api_key_is_checked_before_it_is_stored(live):
    status, body = await live.api(
        "POST", "/api/connections", json={"platform": "example", "apiKey": "not-a-key"}
    )
    assert status == 422
    assert body["errors"][0]["field"] == "apiKey" and "invalid API key" in body["detail"]
    assert await rows(live, ConnectionRow) == 0 and await rows(live, SealedSecretRow) == 0

    status, connection = await live.api(
        "POST", "/api/connections", json={"platform": "example", "apiKey": GOOD_KEY}
    )
    assert status == 201
    assert connection["platform"] == "example" and connection["status"] == "active"
    assert connection["tokenExpiresAt"] is None  # API keys do not expire
    status, accounts = await live.api("GET", f"/api/connections/{connection['id']}/accounts")
    assert [a["externalId"] for a in accounts["data"]] == ["page-1"]
    # The same key again updates the same connection.
    status, again = await live.api(
        "POST", "/api/connections", json={"platform": "example", "apiKey": GOOD_KEY}
    )
    assert status == 200 and again["id"] == connection["id"]


async def test_bad_bodies_are_400_and_unknown_platforms_404(live):
    cases = [
        ({"platform": "example"}, 400),
        ({"platform": "example", "apiKey": ""}, 400),
        ({"platform": "example", "apiKey": GOOD_KEY, "extra": 1}, 400),
        ({"platform": "nosuch", "apiKey": GOOD_KEY}, 404),
        ({"platform": PLATFORM, "apiKey": GOOD_KEY}, 422),  # an OAuth platform
    ]
    for body, expected in cases:
        status, problem = await live.api("POST", "/api/connections", json=body)
        assert status == expected, (body, problem)
    for raw, content_type in (
        ("{not json", "application/json"),
        ("[]", "application/json"),
        ("a=b", "text/plain"),
    ):
        status, _ = await live.api("POST", "/api/connections", data=raw, content_type=content_type)
        assert status == 400, raw
    assert await rows(live, ConnectionRow) == 0


async def test_list_get_and_tenant_isolation(live):
    _, first, _ = await live.connect()
    _, second = await live.api(
        "POST", "/api/connections", json={"platform": "example", "apiKey": GOOD_KEY}
    )
    status, page = await live.api("GET", "/api/connections?limit=1")
    assert status == 200 and len(page["data"]) == 1 and page["nextCursor"]
    status, rest = await live.api("GET", f"/api/connections?limit=1&cursor={page['nextCursor']}")
    ids = {page["data"][0]["id"], rest["data"][0]["id"]}
    assert ids == {first["connectionId"], second["id"]} and rest["nextCursor"] is None
    status, only_oauth = await live.api("GET", f"/api/connections?platform={PLATFORM}")
    assert [c["id"] for c in only_oauth["data"]] == [first["connectionId"]]
    other = await admin.create_tenant(live.gateway, "other")
    for path in ("", "/accounts"):
        status, _ = await live.api("GET", f"/api/connections/{second['id']}{path}", key=other)
        assert status == 404
    for method, path in (("POST", "/refresh"), ("POST", "/health-check"), ("DELETE", "")):
        status, _ = await live.api(method, f"/api/connections/{second['id']}{path}", key=other)
        assert status == 404


async def test_refresh_endpoint(live):
    _, connected, _ = await live.connect()
    connection_id = connected["connectionId"]
    _, before = await live.api("GET", f"/api/connections/{connection_id}")
    status, after = await live.api("POST", f"/api/connections/{connection_id}/refresh")
    assert status == 200 and after["tokenExpiresAt"] >= before["tokenExpiresAt"]
    _, key_connection = await live.api(
        "POST", "/api/connections", json={"platform": "example", "apiKey": GOOD_KEY}
    )
    status, problem = await live.api("POST", f"/api/connections/{key_connection['id']}/refresh")
    assert status == 422 and "cannot be refreshed" in problem["detail"]


async def test_delete_revokes_at_the_platform_and_erases_the_tokens(live, example_plugin):
    _, connected, _ = await live.connect()
    connection_id = connected["connectionId"]
    credentials = await live.gateway.tokens.credentials(connection_id)
    access = credentials.access_token.reveal()
    status, deleted = await live.api("DELETE", f"/api/connections/{connection_id}")
    assert status == 200 and deleted["status"] == "revoked"
    assert [c["status"] for c in await live.journal("/api.examplesocial.test/oauth/revoke")] == [
        200
    ]
    assert await rows(live, SealedSecretRow) == 0
    # The platform no longer accepts the token.
    headers = {"Authorization": f"Bearer {access}"}
    async with live.http.get(live.sandbox("/api.examplesocial.test/v1/me"), headers=headers) as r:
        assert r.status == 401
    assert "connection.revoked" in example_plugin.EVENTS
    status, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts")
    assert accounts["data"] == []
