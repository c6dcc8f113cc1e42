"""Example Social's authorization endpoint: request validation, consent, Deny, scopes, users."""

from __future__ import annotations

import pytest
from gateway_example_plugin.social_sandbox import ExampleSocialSandbox
from yarl import URL

from .flows import (
    AUTHORIZE,
    ME,
    PAGES,
    REDIRECT_URI,
    Social,
    authorize_params,
    new_verifier,
)

VERIFIER = new_verifier()


def redirect_base(location: URL) -> str:
    return str(location.with_query(None))


async def test_get_shows_the_consent_page_with_the_requested_scopes(social: Social) -> None:
    reply = await social.call("GET", AUTHORIZE, params=authorize_params(VERIFIER))
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert "<li>profile</li><li>posts.write</li><li>pages.read</li>" in reply.body
    assert 'value="allow"' in reply.body and 'value="deny"' in reply.body


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": None},
        {"client_id": "someone-else"},
        {"redirect_uri": None},
        {"redirect_uri": "/relative/callback"},
        {"redirect_uri": "ftp://client.test/cb"},
        {"redirect_uri": "https://client.test/cb#fragment"},
    ],
    ids=["no-client", "unknown-client", "no-redirect", "relative", "ftp", "fragment"],
)
async def test_an_unknown_client_or_bad_redirect_uri_is_never_redirected(
    social: Social, overrides: dict
) -> None:
    for method in ("GET", "POST"):
        reply = await social.call(
            method, AUTHORIZE, params=authorize_params(VERIFIER, **overrides), data={}
        )
        assert reply.status == 400, (method, reply.body)
        assert "Location" not in reply.headers


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": None}, "invalid_scope"),
        ({"scope": "profile admin"}, "invalid_scope"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
    ],
    ids=[
        "no-response-type",
        "implicit",
        "no-scope",
        "unknown-scope",
        "no-pkce",
        "no-pkce-method",
        "plain-pkce",
        "bad-challenge",
    ],
)
async def test_a_bad_request_from_a_known_client_is_redirected_with_the_error(
    social: Social, overrides: dict, error: str
) -> None:
    reply = await social.call("GET", AUTHORIZE, params=authorize_params(VERIFIER, **overrides))
    assert reply.status == 302
    location = reply.location
    assert redirect_base(location) == REDIRECT_URI
    assert location.query["error"] == error
    assert location.query["error_description"]
    assert location.query["state"] == "state 1/+?=&"  # passed back untouched
    assert "code" not in location.query


async def test_a_repeated_parameter_is_invalid_request(social: Social) -> None:
    params = [*authorize_params(VERIFIER).items(), ("scope", "profile")]
    reply = await social.call("GET", AUTHORIZE, params=params)
    assert reply.status == 302 and reply.location.query["error"] == "invalid_request"


async def test_deny_redirects_with_access_denied_and_the_state(social: Social) -> None:
    reply = await social.authorize(authorize_params(VERIFIER), decision="deny")
    assert reply.status == 302
    assert redirect_base(reply.location) == REDIRECT_URI
    assert reply.location.query["error"] == "access_denied"
    assert reply.location.query["state"] == "state 1/+?=&"
    assert "code" not in reply.location.query


async def test_allow_keeps_the_redirect_uri_query_and_adds_code_and_state(social: Social) -> None:
    redirect = "http://localhost:9000/cb?tenant=7"
    reply = await social.authorize(authorize_params(VERIFIER, redirect_uri=redirect))
    assert reply.status == 302
    location = reply.location
    assert (location.host, location.port, location.path) == ("localhost", 9000, "/cb")
    assert location.query["tenant"] == "7"
    assert location.query["state"] == "state 1/+?=&"
    assert len(location.query["code"]) >= 20


async def test_unticked_scopes_are_not_granted(social: Social) -> None:
    tokens = await social.connect(granted_scope=["profile", "posts.write"])
    assert tokens["scope"] == "profile posts.write"
    assert (await social.api(ME, tokens["access_token"])).status == 200
    pages = await social.api(PAGES, tokens["access_token"])
    assert pages.status == 403
    assert pages.body["error"]["code"] == "insufficient_scope"
    assert pages.body["error"]["scope"] == "pages.read"
    challenge = pages.headers["WWW-Authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="pages.read"' in challenge


async def test_a_granted_scope_that_was_not_requested_is_ignored(social: Social) -> None:
    verifier = new_verifier()
    code = await social.code(verifier, granted_scope=["profile", "admin"])
    tokens = (await social.exchange(code, verifier)).body
    assert tokens["scope"] == "profile"


async def test_without_granted_scope_fields_all_requested_scopes_are_granted(
    social: Social,
) -> None:
    tokens = await social.connect()
    assert tokens["scope"] == "profile posts.write pages.read"


async def test_login_as_signs_in_another_user(social: Social) -> None:
    first = await social.connect()
    second = await social.connect(login_as="alice")
    assert (await social.api(ME, first["access_token"])).body == {"id": "user-1", "name": "User 1"}
    assert (await social.api(ME, second["access_token"])).body == {"id": "alice", "name": "Alice"}
    pages = (await social.api(PAGES, second["access_token"])).body["data"]
    assert [p["id"] for p in pages] == ["page-alice-1", "page-alice-2"]
    state = (await social.control("GET", "state")).body
    assert {a["owner"] for a in state["accounts"]} == {"user-1", "alice"}


async def test_login_as_in_the_query_works_too(social: Social) -> None:
    verifier = new_verifier()
    reply = await social.authorize(authorize_params(verifier, login_as="bob.smith"))
    tokens = (await social.exchange(reply.location.query["code"], verifier)).body
    assert (await social.api(ME, tokens["access_token"])).body["id"] == "bob.smith"


async def test_a_bad_login_as_is_refused(social: Social) -> None:
    reply = await social.authorize(authorize_params(VERIFIER), login_as="<script>")
    assert reply.status == 400


@pytest.mark.parametrize("sandbox", [ExampleSocialSandbox(auto_approve=True)])
async def test_auto_approve_grants_everything_on_get(social: Social) -> None:
    verifier = new_verifier()
    reply = await social.call("GET", AUTHORIZE, params=authorize_params(verifier))
    assert reply.status == 302 and reply.location.query["state"] == "state 1/+?=&"
    tokens = (await social.exchange(reply.location.query["code"], verifier)).body
    assert tokens["scope"] == "profile posts.write pages.read"
    assert (await social.api(ME, tokens["access_token"])).body["id"] == "user-1"

    reply = await social.call("GET", AUTHORIZE, params=authorize_params(verifier, login_as="carol"))
    tokens = (await social.exchange(reply.location.query["code"], verifier)).body
    assert (await social.api(ME, tokens["access_token"])).body["id"] == "carol"
