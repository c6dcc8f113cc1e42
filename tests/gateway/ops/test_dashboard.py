"""The dashboard's sign-in: an HTTP-only, SameSite=Strict cookie; CSRF-checked; logout ends it."""

from __future__ import annotations

import pytest

from gateway import admin
from gateway.host import Gateway
from gateway.web.app import create_app

from ...conftest import auth, settings_for
from .seed import seed


@pytest.fixture
async def site(aiohttp_client, tmp_path, example_plugin):
    gateway = Gateway.from_settings(
        settings_for(tmp_path, connections={"background": False}),
        extra_plugins=[("example", example_plugin)],
        entry_points=False,
    )
    client = await aiohttp_client(create_app(gateway))
    return client, gateway, await seed(gateway)


async def sign_in(client, api_key: str):
    return await client.post("/dashboard/login", data={"apiKey": api_key}, allow_redirects=False)


def csrf_of(html: str) -> str:
    return html.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


async def test_without_a_session_the_page_asks_for_a_key(site):
    client, _, _ = site
    response = await client.get("/dashboard")
    assert response.status == 200
    html = await response.text()
    assert 'action="/dashboard/login"' in html and "Gateway health" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_the_favicon_is_served_without_signing_in(site):
    client, _, _ = site
    response = await client.get("/favicon.ico")
    assert response.status == 200
    assert response.content_type == "image/x-icon"
    icon = await response.read()
    # An ICO directory (reserved 0, type 1, one image) holding a PNG.
    assert icon[:6] == b"\x00\x00\x01\x00\x01\x00" and b"\x89PNG" in icon


async def test_a_bad_key_is_refused_and_sets_no_cookie(site):
    client, _, _ = site
    response = await sign_in(client, "key_nope.secret")
    assert response.status == 401 and "set-cookie" not in response.headers
    assert "not valid" in await response.text()


async def test_signing_in_gives_an_http_only_strict_cookie_and_the_figures(site):
    client, _, data = site
    response = await sign_in(client, data.key_a.api_key)
    assert response.status == 303 and response.headers["Location"] == "/dashboard"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert data.key_a.api_key not in cookie  # the key itself never becomes the cookie
    html = await (await client.get("/dashboard")).text()
    assert f"tenant {data.key_a.tenant_id}" in html
    row = html.split('<tr data-platform="examplesocial">', 1)[1].split("</tr>", 1)[0]
    assert '<td data-field="p95">1900 ms</td>' in row
    assert '<td data-field="dlq">3</td>' in row
    assert all(f'data-replay="{job_id}"' in html for job_id in data.dead_ids)
    # The cookie also authenticates the API for the page's script (safe methods).
    assert (await client.get("/api/health")).status == 200


async def test_unsafe_api_calls_with_the_cookie_need_the_csrf_token(site):
    client, _, data = site
    await sign_in(client, data.key_a.api_key)
    csrf = csrf_of(await (await client.get("/dashboard")).text())
    job_id = data.dead_ids[0]
    forged = await client.post(f"/api/dlq/{job_id}/replay")
    assert forged.status == 401
    wrong = await client.post(f"/api/dlq/{job_id}/replay", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status == 401
    replayed = await client.post(f"/api/dlq/{job_id}/replay", headers={"X-CSRF-Token": csrf})
    assert replayed.status == 200 and (await replayed.json())["status"] == "queued"


async def test_a_cross_site_login_is_refused(site):
    client, _, data = site
    response = await client.post(
        "/dashboard/login",
        data={"apiKey": data.key_a.api_key},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403 and "set-cookie" not in response.headers


async def test_logging_out_ends_the_session_everywhere(site):
    client, _, data = site
    signed_in = await sign_in(client, data.key_a.api_key)
    cookie = signed_in.cookies["gateway_session"].value
    csrf = csrf_of(await (await client.get("/dashboard")).text())
    out = await client.post("/dashboard/logout", data={"csrf": csrf}, allow_redirects=False)
    assert out.status == 303
    # Even a copy of the old cookie no longer works.
    stale = {"Cookie": f"gateway_session={cookie}"}
    assert (await client.get("/api/health", headers=stale)).status == 401
    assert (
        'action="/dashboard/login"' in await (await client.get("/dashboard", headers=stale)).text()
    )


async def test_revoking_the_key_ends_its_sessions(site):
    client, gateway, data = site
    await sign_in(client, data.key_a.api_key)
    assert (await client.get("/api/health")).status == 200
    await admin.revoke_key(gateway, data.key_a.key_id)
    assert (await client.get("/api/health")).status == 401


async def test_an_explicit_api_key_wins_over_the_cookie(site):
    client, _, data = site
    await sign_in(client, data.key_a.api_key)
    report = await (await client.get("/api/health", headers=auth(data.key_b))).json()
    assert report["dlq"]["total"] == 0  # tenant B's figures, not the signed-in tenant A's
