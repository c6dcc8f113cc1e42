"""The OAuth client's pure parts: consent URLs, token responses, token endpoint errors."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway import NeedsReauth, PermissionDenied, RateLimited, Transient, clock
from gateway.oauth.client import (
    InvalidGrant,
    OAuthClient,
    TokenEndpointError,
    _token_error,
    parse_token_response,
    pkce_challenge,
)
from gateway.types import OAuth2Spec

SPEC = OAuth2Spec(
    authorize_url="https://www.platform.test/oauth/authorize",
    token_url="https://api.platform.test/oauth/token",
    scopes=("a", "b"),
    default_access_token_lifetime=timedelta(hours=2),
)


def client(**kwargs) -> OAuthClient:
    return OAuthClient(SPEC, client_id="app", client_secret="s", http=None, **kwargs)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_authorization_url_carries_pkce_state_and_scopes():
    url = client().authorization_url(
        redirect_uri="https://gw.test/api/oauth/x/callback",
        state="st",
        code_verifier="v" * 64,
        scopes=("a", "b"),
        extra={"access_type": "offline"},
    )
    params = query(url)
    assert url.startswith(SPEC.authorize_url + "?")
    assert params == {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": "https://gw.test/api/oauth/x/callback",
        "scope": "a b",
        "state": "st",
        "code_challenge": pkce_challenge("v" * 64),
        "code_challenge_method": "S256",
        "access_type": "offline",
    }


def test_a_renamed_client_id_parameter():
    url = client(client_id_param="client_key").authorization_url(
        redirect_uri="https://gw.test/cb", state="s", code_verifier=None, scopes=()
    )
    params = query(url)
    assert params["client_key"] == "app" and "client_id" not in params
    assert "code_challenge" not in params


def test_token_response_lifetimes_come_from_the_platform():
    before = clock.now()
    token = parse_token_response(
        {
            "access_token": "AT-SECRET",
            "refresh_token": "RT-SECRET",
            "expires_in": 60,
            "refresh_expires_in": 120,
            "scope": "a,b c",
            "open_id": "u1",
        },
        SPEC,
    )
    assert token.access_token == "AT-SECRET" and token.refresh_token == "RT-SECRET"
    assert timedelta(seconds=55) < token.expires_at - before <= timedelta(seconds=61)
    assert timedelta(seconds=115) < token.refresh_expires_at - before <= timedelta(seconds=121)
    assert token.scopes == ("a", "b", "c")
    assert token.extra == {"open_id": "u1"}
    assert "SECRET" not in repr(token)


def test_silent_lifetime_falls_back_to_the_spec_and_missing_scope_is_unknown():
    token = parse_token_response({"access_token": "at"}, SPEC)
    assert token.scopes is None
    assert timedelta(hours=1, minutes=59) < token.expires_at - clock.now() <= timedelta(hours=2)


def test_a_response_without_an_access_token_is_an_error():
    with pytest.raises(TokenEndpointError):
        parse_token_response({"token_type": "bearer"}, SPEC)


@pytest.mark.parametrize(
    ("status", "payload", "retry_after", "expected"),
    [
        (400, {"error": "invalid_grant"}, None, InvalidGrant),
        (400, {"error": "invalid_client"}, None, PermissionDenied),
        (401, {"error": "unauthorized_client"}, None, PermissionDenied),
        (429, {"error": "slow_down"}, "7", RateLimited),
        (503, {}, None, Transient),
        (400, {"error": "invalid_request"}, None, TokenEndpointError),
        (500, {"error": {"code": "boom", "message": "upstream"}}, None, Transient),
    ],
)
def test_token_endpoint_errors_are_categorised(status, payload, retry_after, expected):
    error = _token_error(status, payload, retry_after)
    assert type(error) is expected
    if expected is RateLimited:
        assert error.retry_after == 7
    if expected is InvalidGrant:
        assert isinstance(error, NeedsReauth) and error.platform_code == "invalid_grant"
    assert isinstance(error.platform_code, str)
