"""Example Social's API: bearer errors (RFC 6750), profile and pages, rate limit, faults, state."""

from __future__ import annotations

import pytest

from .flows import ME, PAGES, Social

ACCESS_TTL = 3600


async def advance(social: Social, seconds: float) -> None:
    assert (await social.control("POST", "clock", {"advanceSeconds": seconds})).status == 200


async def test_me_and_pages_answer_for_the_signed_in_user(social: Social) -> None:
    tokens = await social.connect()
    me = await social.api(ME, tokens["access_token"])
    assert (me.status, me.body) == (200, {"id": "user-1", "name": "User 1"})
    pages = await social.api(PAGES, tokens["access_token"])
    assert pages.status == 200
    assert pages.body == {
        "data": [
            {"id": "page-user-1-1", "name": "User 1 Page 1"},
            {"id": "page-user-1-2", "name": "User 1 Page 2"},
        ]
    }


@pytest.mark.parametrize("path", [ME, PAGES])
async def test_no_token_is_401_with_a_bare_bearer_challenge(social: Social, path: str) -> None:
    reply = await social.api(path, None)
    assert reply.status == 401
    # RFC 6750 §3.1: no error code when the request carried no credentials at all.
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="examplesocial"'
    assert reply.body["error"]["code"] == "invalid_token"


async def test_a_basic_credential_is_not_a_bearer_token(social: Social) -> None:
    reply = await social.call("GET", ME, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert reply.status == 401
    assert reply.headers["WWW-Authenticate"] == 'Bearer realm="examplesocial"'


@pytest.mark.parametrize("path", [ME, PAGES])
async def test_an_unknown_token_is_401_invalid_token(social: Social, path: str) -> None:
    reply = await social.api(path, "esa_made-up")
    assert reply.status == 401
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    assert reply.body["error"] == {
        "code": "invalid_token",
        "message": "the access token is unknown",
    }


async def test_an_access_token_expires_after_an_hour_on_the_sandbox_clock(social: Social) -> None:
    tokens = await social.connect()
    await advance(social, ACCESS_TTL - 5)
    assert (await social.api(ME, tokens["access_token"])).status == 200
    await advance(social, 10)
    reply = await social.api(ME, tokens["access_token"])
    assert reply.status == 401
    assert 'error="invalid_token"' in reply.headers["WWW-Authenticate"]
    assert "expired" in reply.body["error"]["message"]
    # The refresh token outlives it.
    refreshed = await social.refresh(tokens["refresh_token"])
    assert (await social.api(ME, refreshed.body["access_token"])).status == 200


async def test_the_101st_call_in_a_minute_is_429_with_retry_after(social: Social) -> None:
    tokens = await social.connect()
    other = await social.connect(login_as="other")
    for n in range(100):
        reply = await social.api(ME if n % 2 else PAGES, tokens["access_token"])
        assert reply.status == 200, n
    limited = await social.api(ME, tokens["access_token"])
    assert limited.status == 429
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.body["error"]["code"] == "rate_limited"
    assert (await social.api(PAGES, tokens["access_token"])).status == 429
    # The budget is per access token.
    assert (await social.api(ME, other["access_token"])).status == 200
    await advance(social, int(limited.headers["Retry-After"]))
    assert (await social.api(ME, tokens["access_token"])).status == 200


async def test_a_fault_without_a_body_answers_in_the_platform_error_shape(social: Social) -> None:
    tokens = await social.connect()
    for status, code in ((503, "server_error"), (429, "rate_limited"), (403, "forbidden")):
        fault = {"path": "/api.examplesocial.test/v1/*", "status": status}
        assert (await social.control("POST", "faults", fault)).status == 201
        reply = await social.api(PAGES, tokens["access_token"])
        assert reply.status == status
        assert reply.body["error"]["code"] == code
        assert reply.body["error"]["message"]


async def test_state_lists_tokens_users_and_accounts(social: Social) -> None:
    tokens = await social.connect(login_as="dana")
    await social.refresh(tokens["refresh_token"])
    state = (await social.control("GET", "state")).body
    assert {u["id"] for u in state["users"]} == {"user-1", "dana"}
    assert {"id": "page-dana-1", "name": "Dana Page 1", "owner": "dana"} in state["accounts"]
    listed = {t["accessToken"]: t for t in state["tokens"]}
    first = listed[tokens["access_token"]]
    assert (first["subject"], first["status"], first["refreshStatus"]) == (
        "dana",
        "active",
        "revoked",  # rotated away
    )
    assert len(state["tokens"]) == 2
    assert all(t["accessToken"].startswith("esa_") for t in state["tokens"])
    assert all(t["refreshToken"].startswith("esr_") for t in state["tokens"])

    assert (await social.control("POST", "reset")).status == 200
    state = (await social.control("GET", "state")).body
    assert state["tokens"] == [] and [u["id"] for u in state["users"]] == ["user-1"]
    assert (await social.api(ME, tokens["access_token"])).status == 401
