"""The shared OAuth flow against a strict sandbox: round trip, refusals, reconnects."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text

from gateway import admin
from gateway.db.models import ConnectionRow, OAuthStateRow
from gateway.ops.browser import consent, open_link

from .conftest import PLATFORM, RETURN_URL, query_of


async def count(live, model) -> int:
    async with live.gateway.session() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_round_trip_creates_a_connection_with_accounts(live):
    status, body, location = await live.connect()
    assert status == 200 and location is None
    assert body["created"] is True
    connection_id = body["connectionId"]
    status, connection = await live.api("GET", f"/api/connections/{connection_id}")
    assert status == 200
    assert connection["platform"] == PLATFORM and connection["status"] == "active"
    assert connection["externalUserId"] == "user-1"
    assert set(connection["scopes"]) == {"profile", "posts.write", "pages.read"}
    assert connection["tokenExpiresAt"] and connection["nextRefreshAt"]
    status, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts")
    assert status == 200 and len(accounts["data"]) == 2
    assert {a["kind"] for a in accounts["data"]} == {"examplesocial_page"}
    # The authorization used PKCE S256 and the per-platform callback.
    [authorize] = await live.journal("/www.examplesocial.test/oauth/authorize")
    assert authorize["query"]["code_challenge_method"] == "S256"
    assert authorize["query"]["redirect_uri"] == f"{live.base}/api/oauth/{PLATFORM}/callback"
    assert len(authorize["query"]["state"]) >= 43  # 256 bits, base64url


async def test_round_trip_redirects_to_the_return_url(live):
    status, _, location = await live.connect(return_url=RETURN_URL)
    assert status == 302 and location.startswith(RETURN_URL + "?")
    assert query_of(location)["connectionId"].startswith("conn_")


async def test_return_url_must_be_allowed(live):
    for bad in (
        "https://evil.example.net/x",
        "https://app.example.com.evil.net/",
        "javascript:alert(1)",
    ):
        status, _body = await live.api(
            "POST", f"/api/oauth/{PLATFORM}/start", json={"returnUrl": bad}
        )
        assert status in (400, 422), bad
    assert await count(live, OAuthStateRow) == 0


async def test_denied_consent_creates_nothing(live):
    status, started = await live.api(
        "POST", f"/api/oauth/{PLATFORM}/start", json={"returnUrl": RETURN_URL}
    )
    state = started["state"]
    await open_link(live.http, started["authorizationUrl"])  # the user is at the platform
    callback = f"{live.base}/api/oauth/{PLATFORM}/callback?error=access_denied&state={state}"
    status, _, location = await live.follow_callback(callback)
    assert status == 302 and query_of(location)["error"] == "access_denied"
    assert await count(live, ConnectionRow) == 0


async def test_reused_state_is_refused(live):
    _status, started = await live.api("POST", f"/api/oauth/{PLATFORM}/start", json={})
    callback = await consent(live.http, started["authorizationUrl"])
    first = await live.follow_callback(callback)
    assert first[0] == 200
    again = await live.follow_callback(callback)
    assert again[0] == 400 and "already used" in again[1]["detail"]
    assert await count(live, ConnectionRow) == 1


async def test_unknown_missing_and_expired_state_are_refused(live):
    for query in ("code=x", "code=x&state=not-a-state-we-issued"):
        status, body, _ = await live.follow_callback(
            f"{live.base}/api/oauth/{PLATFORM}/callback?{query}"
        )
        assert status == 400 and body["type"].endswith("invalid_state")
    status, started = await live.api("POST", f"/api/oauth/{PLATFORM}/start", json={})
    callback = await consent(live.http, started["authorizationUrl"])
    async with live.gateway.engine.begin() as conn:
        await conn.execute(
            text("UPDATE oauth_states SET expires_at = :t"), {"t": "2000-01-01 00:00:00"}
        )
    status, body, _ = await live.follow_callback(callback)
    assert status == 400 and "expired" in body["detail"]
    assert await count(live, ConnectionRow) == 0


async def test_state_issued_for_another_platform_is_refused_and_spent(live):
    status, started = await live.api("POST", f"/api/oauth/{PLATFORM}/start", json={})
    callback = await consent(live.http, started["authorizationUrl"])
    elsewhere = callback.replace(f"/api/oauth/{PLATFORM}/", "/api/oauth/example/")
    status, body, _ = await live.follow_callback(elsewhere)
    assert status == 400 and "another platform" in body["detail"]
    # The state is spent: replaying it at the right platform fails too.
    status, body, _ = await live.follow_callback(callback)
    assert status == 400
    assert await count(live, ConnectionRow) == 0


async def test_a_state_binds_the_connection_to_its_tenant(live):
    other = await admin.create_tenant(live.gateway, "other")
    _status, body, _ = await live.connect()
    connection_id = body["connectionId"]
    assert (await live.api("GET", f"/api/connections/{connection_id}"))[0] == 200
    assert (await live.api("GET", f"/api/connections/{connection_id}", key=other))[0] == 404
    assert (await live.api("GET", "/api/connections", key=other))[1]["data"] == []


async def test_missing_required_scopes_are_named_and_nothing_is_created(live):
    _, started = await live.api(
        "POST", f"/api/oauth/{PLATFORM}/start", json={"returnUrl": RETURN_URL}
    )
    # The user unticks posts.write on the consent page.
    form = [("decision", "allow"), ("granted_scope", "profile"), ("granted_scope", "pages.read")]
    callback = await consent(live.http, started["authorizationUrl"], form=form)
    _status, _, location = await live.follow_callback(callback)
    error = query_of(location)
    assert error["error"] == "missing_scopes" and "posts.write" in error["error_description"]
    assert await count(live, ConnectionRow) == 0


async def test_a_code_the_platform_rejects_is_refused(live):
    status, started = await live.api("POST", f"/api/oauth/{PLATFORM}/start", json={})
    await open_link(live.http, started["authorizationUrl"])
    callback = f"{live.base}/api/oauth/{PLATFORM}/callback?code=forged&state={started['state']}"
    status, body, _ = await live.follow_callback(callback)
    assert status == 400 and body["type"].endswith("code_rejected")
    assert await count(live, ConnectionRow) == 0


async def test_reconnecting_the_same_account_updates_and_keeps_it(live):
    _, first, _ = await live.connect()
    _, second, _ = await live.connect()
    assert second["connectionId"] == first["connectionId"] and second["created"] is False
    assert await count(live, ConnectionRow) == 1


async def test_reconnect_with_another_account_is_refused(live):
    _, first, _ = await live.connect()
    body = {"connectionId": first["connectionId"], "returnUrl": RETURN_URL}
    _, started = await live.api("POST", f"/api/oauth/{PLATFORM}/start", json=body)
    callback = await consent(live.http, started["authorizationUrl"], query={"login_as": "user-2"})
    _status, _, location = await live.follow_callback(callback)
    assert query_of(location)["error"] == "different_account"
    assert await count(live, ConnectionRow) == 1


async def test_api_key_platforms_refuse_oauth_start(live):
    status, body = await live.api("POST", "/api/oauth/example/start", json={})
    assert status == 422 and "API key" in body["detail"]
    status, body = await live.api("POST", "/api/oauth/nosuch/start", json={})
    assert status == 404


def test_state_lifetime_is_ten_minutes_by_default():
    from gateway.settings import OAuthSettings

    assert timedelta(seconds=OAuthSettings().state_ttl_seconds) == timedelta(minutes=10)


async def test_the_gateways_own_url_is_allowed_on_whatever_port_it_runs(live):
    port = live.gateway.settings.server.port
    assert port != 8080  # the point: the default config's port is not the one in use
    for own in (f"{live.base}/connected", f"http://localhost:{port}/", live.base + "/"):
        status, started = await live.api(
            "POST", f"/api/oauth/{PLATFORM}/start", json={"returnUrl": own}
        )
        assert status == 200, (own, started)
    # Another port of the same host is another origin: still refused, and not in the
    # platform's name (the platform was never asked).
    status, problem = await live.api(
        "POST", f"/api/oauth/{PLATFORM}/start", json={"returnUrl": f"http://127.0.0.1:{port + 1}/"}
    )
    assert status == 422
    assert problem["type"] == "urn:gateway:problem:invalid_input"
    assert problem["title"] == "Request is invalid"
    assert problem["errors"][0]["field"] == "returnUrl"


def test_the_allow_list_follows_the_configured_port_and_public_url(tmp_path):
    from gateway.connections.return_urls import allowed_return_urls
    from gateway.settings import load_settings

    from ...conftest import ROOT

    moved = load_settings(ROOT / "config" / "gateway.toml", environ={"GATEWAY_SERVER_PORT": "8090"})
    allowed = allowed_return_urls(moved)
    assert {"http://127.0.0.1:8090/", "http://localhost:8090/"} <= set(allowed)
    assert not any(":8080" in prefix for prefix in allowed)
    assert "http://localhost:3000/" in allowed  # the configured entries stay
    public = load_settings(
        ROOT / "config" / "gateway.toml",
        environ={"GATEWAY_SERVER_PUBLIC_URL": "https://gw.example.com/base/"},
    )
    assert allowed_return_urls(public) == ("http://localhost:3000/", "https://gw.example.com/base/")
