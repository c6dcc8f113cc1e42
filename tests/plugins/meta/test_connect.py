"""Connecting through the gateway's HTTP API: login dialog, long-lived token, Pages, Instagram."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from gateway import admin, clock
from gateway.ops.browser import browser, consent, open_link

from ...conftest import auth


async def test_connect_stores_the_long_lived_token_pages_and_instagram(meta):
    connection_id, accounts = await meta.accounts()
    assert set(accounts) == {"facebook_page", "instagram_business"}
    assert accounts["instagram_business"]["name"] == "user_1_ig"
    status, connection = await meta.api("GET", f"/api/connections/{connection_id}")
    assert status == 200 and connection["status"] == "active"
    assert "instagram_content_publish" in connection["scopes"]
    expires = datetime.fromisoformat(connection["tokenExpiresAt"].replace("Z", "+00:00"))
    assert timedelta(days=59) < expires - clock.now() <= timedelta(days=60)
    # The callback exchanged the code, then made the token long-lived (about 60 days).
    journal = await meta.control("GET", "journal", params={"path": "*/oauth/access_token"})
    assert [r["query"].get("grant_type") for r in journal["requests"]][-1] == "fb_exchange_token"
    state = await meta.state()
    page_tokens = [t for t in state["tokens"] if t["extra"].get("type") == "PAGE"]
    assert page_tokens and all(t["expiresAt"] is None for t in page_tokens)


async def test_a_declined_permission_is_named_and_nothing_is_stored(meta):
    status, body = await meta.connect(declined="instagram_content_publish")
    assert status == 422, body
    assert "instagram_content_publish" in body["detail"]
    status, listed = await meta.api("GET", "/api/connections")
    assert listed["data"] == []


async def test_a_code_swapped_into_another_flow_needs_that_flows_browser(meta):
    """Meta has no PKCE: the browser binding is what keeps another flow's code out.

    Another tenant consents with its own account and brings that code, with the state of the
    victim's flow (learned somehow), to the callback from its own browser.
    """
    status, victims = await meta.api("POST", "/api/oauth/meta/start", json={})
    assert status == 200, victims
    await open_link(meta.http, victims["authorizationUrl"])  # the victim is at the dialog
    attacker = auth(await admin.create_tenant(meta.gateway, "attacker"))
    async with browser() as attackers:
        start = f"{meta.base}/api/oauth/meta/start"
        async with attackers.post(start, json={}, headers=attacker) as response:
            theirs = await response.json()
        callback = await consent(attackers, theirs["authorizationUrl"])
        code = parse_qs(urlsplit(callback).query)["code"][0]
        swapped = f"{meta.base}/api/oauth/meta/callback?code={code}&state={victims['state']}"
        async with attackers.get(swapped, allow_redirects=False) as response:
            problem = await response.json(content_type=None)
    assert response.status == 400 and problem["type"].endswith("browser_mismatch"), problem
    assert (await meta.api("GET", "/api/connections"))[1]["data"] == []
    # The code was never taken to Meta's token endpoint.
    journal = await meta.control("GET", "journal", params={"path": "*/oauth/access_token"})
    assert journal["requests"] == []


async def test_the_health_check_calls_meta_with_the_user_token(meta):
    connection_id, _ = await meta.accounts()
    status, result = await meta.api("POST", f"/api/connections/{connection_id}/health-check")
    assert status == 200 and result["status"] == "healthy", result
    assert "User 1" in result["detail"]


async def test_the_graph_api_version_is_a_setting(aiohttp_server, tmp_path):
    from .live import start_meta

    meta = await start_meta(aiohttp_server, tmp_path, platforms={"meta": {"api_version": "v24.0"}})
    try:
        await meta.accounts()
        journal = await meta.control("GET", "journal", params={"path": "/graph.facebook.com/*"})
        paths = [r["path"] for r in journal["requests"]]
        graph_calls = [p for p in paths if not p.endswith("/oauth/access_token")]
        assert graph_calls and all(p.startswith("/graph.facebook.com/v24.0/") for p in graph_calls)
    finally:
        await meta.http.close()
