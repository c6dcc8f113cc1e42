"""Example Social's token and revocation endpoints: codes, PKCE, client auth, rotation, revoke."""

from __future__ import annotations

import base64

import pytest

from .flows import CLIENT, CLIENT_ID, CLIENT_SECRET, ME, REDIRECT_URI, Social, new_verifier

CODE_TTL = 600
ACCESS_TTL = 3600
REFRESH_TTL = 30 * 86400


async def advance(social: Social, seconds: float) -> None:
    reply = await social.control("POST", "clock", {"advanceSeconds": seconds})
    assert reply.status == 200, reply.body


def assert_oauth_error(reply, status: int, error: str) -> None:
    assert reply.status == status, reply.body
    assert reply.body["error"] == error, reply.body
    assert reply.headers["Cache-Control"] == "no-store"


async def test_the_code_exchange_answers_a_full_token_response(social: Social) -> None:
    verifier = new_verifier()
    reply = await social.exchange(await social.code(verifier), verifier)
    assert reply.status == 200, reply.body
    body = reply.body
    assert set(body) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "scope",
    }
    assert body["token_type"] == "Bearer"
    assert (body["expires_in"], body["refresh_expires_in"]) == (ACCESS_TTL, REFRESH_TTL)
    assert body["scope"] == "profile posts.write pages.read"
    assert body["access_token"] != body["refresh_token"]
    assert reply.headers["Cache-Control"] == "no-store" and reply.headers["Pragma"] == "no-cache"
    assert (await social.api(ME, body["access_token"])).status == 200


async def test_a_wrong_code_verifier_is_invalid_grant_and_spends_the_code(social: Social) -> None:
    verifier = new_verifier()
    code = await social.code(verifier)
    assert_oauth_error(await social.exchange(code, new_verifier()), 400, "invalid_grant")
    # A failed attempt uses the code up: the right verifier comes too late.
    assert_oauth_error(await social.exchange(code, verifier), 400, "invalid_grant")


async def test_a_reused_code_is_refused_and_revokes_what_it_was_exchanged_for(
    social: Social,
) -> None:
    verifier = new_verifier()
    code = await social.code(verifier)
    first = await social.exchange(code, verifier)
    assert first.status == 200
    again = await social.exchange(code, verifier)
    assert_oauth_error(again, 400, "invalid_grant")
    assert "already used" in again.body["error_description"]
    assert (await social.api(ME, first.body["access_token"])).status == 401
    assert_oauth_error(await social.refresh(first.body["refresh_token"]), 400, "invalid_grant")


async def test_a_code_lives_ten_minutes_on_the_sandbox_clock(social: Social) -> None:
    verifier = new_verifier()
    code = await social.code(verifier)
    await advance(social, CODE_TTL - 5)
    assert (await social.exchange(code, verifier)).status == 200
    late = await social.code(verifier)
    await advance(social, CODE_TTL + 1)
    reply = await social.exchange(late, verifier)
    assert_oauth_error(reply, 400, "invalid_grant")
    assert "expired" in reply.body["error_description"]


async def test_the_redirect_uri_must_match_the_authorization_request(social: Social) -> None:
    verifier = new_verifier()
    code = await social.code(verifier)
    reply = await social.exchange(code, verifier, redirect_uri=REDIRECT_URI + "/other")
    assert_oauth_error(reply, 400, "invalid_grant")


@pytest.mark.parametrize("missing", ["code", "redirect_uri", "code_verifier", "grant_type"])
async def test_a_missing_parameter_is_invalid_request(social: Social, missing: str) -> None:
    verifier = new_verifier()
    code = await social.code(verifier)
    assert_oauth_error(
        await social.exchange(code, verifier, **{missing: None}), 400, "invalid_request"
    )


async def test_a_missing_parameter_does_not_spend_the_code(social: Social) -> None:
    verifier = new_verifier()
    code = await social.code(verifier)
    assert_oauth_error(await social.exchange(code, None), 400, "invalid_request")
    assert (await social.exchange(code, verifier)).status == 200


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit"])
async def test_other_grants_are_unsupported(social: Social, grant_type: str) -> None:
    reply = await social.token({"grant_type": grant_type, **CLIENT})
    assert_oauth_error(reply, 400, "unsupported_grant_type")


async def test_a_json_body_is_invalid_request(social: Social) -> None:
    reply = await social.call(
        "POST", "/api.examplesocial.test/oauth/token", json={"grant_type": "refresh_token"}
    )
    assert_oauth_error(reply, 400, "invalid_request")


def basic(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


async def test_http_basic_client_authentication_works(social: Social) -> None:
    tokens = await social.connect()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    reply = await social.token(form, headers=basic(CLIENT_ID, CLIENT_SECRET))
    assert reply.status == 200, reply.body


@pytest.mark.parametrize(
    ("client", "headers"),
    [
        ({"client_id": CLIENT_ID, "client_secret": "wrong"}, {}),
        ({"client_id": "other", "client_secret": CLIENT_SECRET}, {}),
        ({"client_id": CLIENT_ID}, {}),
        ({}, {}),
        ({}, basic(CLIENT_ID, "wrong")),
        ({}, {"Authorization": "Basic !!!not-base64"}),
        ({"client_id": "other"}, basic(CLIENT_ID, CLIENT_SECRET)),
    ],
    ids=["bad-secret", "bad-id", "no-secret", "none", "bad-basic", "garbled-basic", "id-clash"],
)
async def test_a_wrong_client_is_invalid_client(social: Social, client: dict, headers) -> None:
    tokens = await social.connect()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **client}
    reply = await social.token(form, headers=headers)
    assert_oauth_error(reply, 401, "invalid_client")
    if headers:
        assert reply.headers["WWW-Authenticate"].startswith("Basic")
    else:
        assert "WWW-Authenticate" not in reply.headers
    # Nothing was rotated by the refused request.
    assert (await social.refresh(tokens["refresh_token"])).status == 200


async def test_two_client_authentication_methods_at_once_are_refused(social: Social) -> None:
    tokens = await social.connect()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **CLIENT}
    reply = await social.token(form, headers=basic(CLIENT_ID, CLIENT_SECRET))
    assert_oauth_error(reply, 400, "invalid_request")


async def test_refresh_rotates_and_the_old_refresh_token_is_invalid_grant(social: Social) -> None:
    first = await social.connect()
    second = await social.refresh(first["refresh_token"])
    assert second.status == 200, second.body
    assert second.body["refresh_token"] != first["refresh_token"]
    assert second.body["access_token"] != first["access_token"]
    assert second.body["scope"] == first["scope"]
    assert second.body["expires_in"] == ACCESS_TTL
    assert (await social.api(ME, second.body["access_token"])).status == 200

    stale = await social.refresh(first["refresh_token"])
    assert_oauth_error(stale, 400, "invalid_grant")
    assert stale.body["error_description"]
    # The successor still works, and rotates again.
    third = await social.refresh(second.body["refresh_token"])
    assert third.status == 200
    assert_oauth_error(await social.refresh(second.body["refresh_token"]), 400, "invalid_grant")


async def test_an_unknown_or_missing_refresh_token_is_refused(social: Social) -> None:
    assert_oauth_error(await social.refresh("esr_made-up"), 400, "invalid_grant")
    reply = await social.token({"grant_type": "refresh_token", **CLIENT})
    assert_oauth_error(reply, 400, "invalid_request")


async def test_a_refresh_token_expires_after_thirty_days(social: Social) -> None:
    tokens = await social.connect()
    await advance(social, REFRESH_TTL + 1)
    reply = await social.refresh(tokens["refresh_token"])
    assert_oauth_error(reply, 400, "invalid_grant")
    assert "expired" in reply.body["error_description"]


async def test_a_rotated_refresh_token_lives_thirty_days_from_its_rotation(social: Social) -> None:
    tokens = await social.connect()
    await advance(social, REFRESH_TTL - 60)
    rotated = (await social.refresh(tokens["refresh_token"])).body
    await advance(social, 120)  # past the first token's life, well within the second's
    assert (await social.refresh(rotated["refresh_token"])).status == 200


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
async def test_revoking_either_token_ends_the_whole_grant(social: Social, which: str) -> None:
    tokens = await social.connect()
    other = await social.connect(login_as="bystander")
    reply = await social.revoke(tokens[which])
    assert reply.status == 200
    assert (await social.api(ME, tokens["access_token"])).status == 401
    assert_oauth_error(await social.refresh(tokens["refresh_token"]), 400, "invalid_grant")
    # Another grant is untouched.
    assert (await social.api(ME, other["access_token"])).status == 200
    state = (await social.control("GET", "state")).body
    statuses = {t["accessToken"]: (t["status"], t["refreshStatus"]) for t in state["tokens"]}
    assert statuses[tokens["access_token"]] == ("revoked", "revoked")
    assert statuses[other["access_token"]] == ("active", "active")


async def test_revoking_an_access_token_from_a_refresh_ends_the_grant(social: Social) -> None:
    tokens = await social.connect()
    refreshed = (await social.refresh(tokens["refresh_token"])).body
    assert (await social.revoke(refreshed["access_token"])).status == 200
    assert_oauth_error(await social.refresh(refreshed["refresh_token"]), 400, "invalid_grant")
    assert (await social.api(ME, tokens["access_token"])).status == 401


async def test_revoking_an_unknown_token_is_200(social: Social) -> None:
    assert (await social.revoke("never-issued")).status == 200


async def test_revocation_needs_the_client_and_a_token(social: Social) -> None:
    tokens = await social.connect()
    wrong = await social.revoke(tokens["access_token"], client_id=CLIENT_ID, client_secret="x")
    assert_oauth_error(wrong, 401, "invalid_client")
    missing = await social.call("POST", "/api.examplesocial.test/oauth/revoke", data=CLIENT)
    assert_oauth_error(missing, 400, "invalid_request")
    assert (await social.api(ME, tokens["access_token"])).status == 200
