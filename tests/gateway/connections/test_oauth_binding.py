"""OAuth flows bound to the browser that opened them: the one-time go link and its cookie."""

from __future__ import annotations

from datetime import timedelta
from http.cookies import SimpleCookie

from sqlalchemy import text
from yarl import URL

from gateway import admin
from gateway.connections.oauth_binding import cookie_name, new_cookie
from gateway.connections.oauth_flow import state_hash
from gateway.db.base import utcnow
from gateway.db.models import ConnectionRow
from gateway.ops.browser import browser, consent, open_link

from .conftest import PLATFORM, RETURN_URL, query_of
from .test_oauth_flow import count


async def test_authorization_url_is_a_go_link_that_binds_the_browser(live):
    started = await live.start()
    url = started["authorizationUrl"]
    assert url.startswith(f"{live.base}/oauth/{PLATFORM}/go/")
    assert started["state"] not in url  # the handle is not the state
    async with live.http.get(url, allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"].startswith(live.sandbox("/www.examplesocial.test/"))
        assert query_of(response.headers["Location"])["state"] == started["state"]
        [header] = response.headers.getall("Set-Cookie")
    cookie = next(iter(SimpleCookie(header).values()))
    assert cookie.key == cookie_name(state_hash(started["state"]))
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # the gateway is served over http here
    assert cookie["path"] == f"/api/oauth/{PLATFORM}/callback"
    assert 0 < int(cookie["max-age"]) <= live.gateway.settings.oauth.state_ttl_seconds


def test_the_cookie_is_secure_when_the_gateway_is_served_over_https():
    now = utcnow()
    callback = "https://gw.example.com/base/api/oauth/x/callback"
    cookie = new_cookie(
        "ab" * 32, callback=callback, expires_at=now + timedelta(seconds=30), now=now
    )
    assert cookie.secure and cookie.path == "/base/api/oauth/x/callback" and cookie.max_age == 30


def test_the_state_is_derived_from_the_link_under_the_vault_key():
    from gateway.connections.oauth_binding import new_link_id, state_for
    from gateway.vault import Vault, generate_key

    vault = Vault.from_entries([f"k1:{generate_key()}"])
    other = Vault.from_entries([f"k1:{generate_key()}"])
    link = new_link_id()
    assert state_for(vault, link) == state_for(vault, link)  # the go route rebuilds it
    assert len(state_for(vault, link)) == 43 and state_for(vault, link) != link
    assert state_for(vault, new_link_id()) != state_for(vault, link)
    assert state_for(other, link) != state_for(vault, link)  # not computable without the key


async def test_the_go_link_can_be_followed_once(live):
    started = await live.start()
    await open_link(live.http, started["authorizationUrl"])
    async with browser() as other:  # the same browser again, or anyone the link was passed to
        for http in (live.http, other):
            async with http.get(started["authorizationUrl"], allow_redirects=False) as r:
                problem = await r.json(content_type=None)
                assert r.status == 410 and problem["type"].endswith("link_used"), problem
                assert "Set-Cookie" not in r.headers and "Location" not in r.headers
    assert await count(live, ConnectionRow) == 0


async def test_unknown_and_expired_go_links_are_refused(live):
    async with live.http.get(f"{live.base}/oauth/{PLATFORM}/go/not-a-link") as r:
        assert r.status == 404
        assert (await r.json(content_type=None))["type"].endswith("unknown_link")
    started = await live.start()
    async with live.gateway.engine.begin() as conn:
        await conn.execute(
            text("UPDATE oauth_states SET expires_at = :t"), {"t": "2000-01-01 00:00:00"}
        )
    async with live.http.get(started["authorizationUrl"], allow_redirects=False) as r:
        assert r.status == 410
        assert (await r.json(content_type=None))["type"].endswith("link_expired")


async def test_a_callback_without_the_binding_cookie_is_refused_and_spends_the_state(live):
    started = await live.start(returnUrl=RETURN_URL)
    callback = await consent(live.http, started["authorizationUrl"])
    async with browser() as other, other.get(callback, allow_redirects=False) as response:
        problem = await response.json(content_type=None)
    # A problem, not a redirect: the flow's returnUrl is not this browser's to be sent to.
    assert response.status == 400 and problem["type"].endswith("browser_mismatch"), problem
    assert await count(live, ConnectionRow) == 0
    # Nothing is left to retry with: the state is spent, even for the browser that opened it.
    status, problem, _ = await live.follow_callback(callback)
    assert status == 400 and "already used" in problem["detail"]
    assert await count(live, ConnectionRow) == 0


async def test_a_consent_url_passed_to_a_victim_links_nothing(live):
    """Another tenant opens its own link and sends the platform's consent URL to a victim."""
    attacker = await admin.create_tenant(live.gateway, "attacker")
    started = await live.start(key=attacker)
    async with browser() as attackers:
        consent_url = await open_link(attackers, started["authorizationUrl"])
    async with browser() as victims:
        async with victims.get(
            consent_url + "&login_as=user-2", allow_redirects=False
        ) as page:  # the victim allows access with their own account
            callback = page.headers["Location"]
        async with victims.get(callback, allow_redirects=False) as response:
            problem = await response.json(content_type=None)
    assert response.status == 400 and problem["type"].endswith("browser_mismatch")
    assert await count(live, ConnectionRow) == 0
    assert (await live.api("GET", "/api/connections", key=attacker))[1]["data"] == []


async def test_another_flows_cookie_does_not_complete_this_one(live):
    mine = await live.start()
    await open_link(live.http, mine["authorizationUrl"])
    [own] = [c for c in live.http.cookie_jar if c.key.startswith("gw_oauth_")]
    theirs = await live.start()
    async with browser() as elsewhere:
        callback = await consent(elsewhere, theirs["authorizationUrl"])
    # Even under the other flow's cookie name, this flow's value does not match.
    live.http.cookie_jar.update_cookies(
        {cookie_name(state_hash(theirs["state"])): own.value}, URL(callback)
    )
    status, problem, _ = await live.follow_callback(callback)
    assert status == 400 and problem["type"].endswith("browser_mismatch"), problem
    assert await count(live, ConnectionRow) == 0


async def test_a_code_from_one_flow_with_the_state_of_another_is_refused(live):
    """Tenant B's flow, completed with the code the platform issued for A's: PKCE refuses it."""
    other = await admin.create_tenant(live.gateway, "other")
    first = await live.start()
    code_of_a = query_of(await consent(live.http, first["authorizationUrl"]))["code"]
    second = await live.start(key=other)
    async with browser() as b:
        own = query_of(await consent(b, second["authorizationUrl"], query={"login_as": "user-2"}))
        swapped = f"{live.base}/api/oauth/{PLATFORM}/callback?code={code_of_a}&state={own['state']}"
        async with b.get(swapped, allow_redirects=False) as response:
            problem = await response.json(content_type=None)
    assert response.status == 400 and problem["type"].endswith("code_rejected"), problem
    assert await count(live, ConnectionRow) == 0
    assert (await live.api("GET", "/api/connections", key=other))[1]["data"] == []


async def test_two_flows_in_one_browser_both_complete(live):
    first = await live.start()
    second = await live.start()
    first_callback = await consent(live.http, first["authorizationUrl"])
    second_callback = await consent(
        live.http, second["authorizationUrl"], query={"login_as": "user-2"}
    )
    assert (await live.follow_callback(second_callback))[0] == 200
    assert (await live.follow_callback(first_callback))[0] == 200
    assert await count(live, ConnectionRow) == 2


async def test_the_callback_clears_the_binding_cookie(live):
    status, _, _ = await live.connect()
    assert status == 200
    assert not [c for c in live.http.cookie_jar if c.key.startswith("gw_oauth_")]
