"""The Example Social connector against its sandbox, mounted in a real gateway in sandbox mode."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from gateway_example_plugin.social_connector import ExampleSocialConnector
from gateway_example_plugin.social_sandbox import ExampleSocialSandbox

from gateway import (
    AccountInfo,
    InvalidRequest,
    NeedsReauth,
    NotFound,
    PermissionDenied,
    PlatformError,
    RateLimited,
    Secret,
    TokenSet,
    Transient,
    clock,
    route_url,
)

from .flows import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, new_verifier
from .running import PLATFORM, Running, credentials


class ScriptedSource:
    """A TokenSource that hands out ``current`` and, after a 401, ``fresh``."""

    def __init__(self, current: str, fresh: str | None) -> None:
        self.current, self.fresh = current, fresh
        self.rejected: list[str] = []

    async def access_token(self) -> str:
        return self.current

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        self.rejected.append(rejected)
        return self.fresh


async def test_the_plugin_registers_the_platform_and_its_mounted_sandbox(running: Running):
    gateway = running.gateway
    assert gateway.connectors.get(PLATFORM) is ExampleSocialConnector
    assert gateway.sandboxes.get(PLATFORM) is ExampleSocialSandbox
    assert gateway.connectors.owner(PLATFORM) == "example"
    assert running.social.root == f"{gateway.settings.base_url}/sandbox/{PLATFORM}"
    # Every URL the connector calls is on a host the sandbox serves.
    spec = ExampleSocialConnector.auth
    for url in (spec.authorize_url, spec.token_url, spec.revoke_url):
        assert url.split("/")[2] in ExampleSocialSandbox.hosts
    assert ExampleSocialConnector.hosts == ExampleSocialSandbox.hosts
    described = ExampleSocialConnector.describe("1.2.3")
    assert described["auth"] == "oauth2"
    assert described["capabilities"]["postKinds"] == {
        "examplesocial_page": ["text", "link", "image", "multi_image", "video"]
    }
    assert described["capabilities"]["delete"] is True
    page_limits = described["limits"]["byAccountKind"]["examplesocial_page"]
    assert (page_limits["captionLength"], page_limits["mediaCountMax"]) == (500, 4)
    # Declared for its one account kind: any other has no limits of its own.
    assert described["limits"]["default"]["captionLength"] is None


async def test_finish_authorization_names_the_user_behind_the_token(running: Running):
    tokens = await running.social.connect(login_as="alice")
    token = TokenSet(access_token=tokens["access_token"], refresh_token=tokens["refresh_token"])
    authorization = await running.connector.finish_authorization(token)
    assert (authorization.external_user_id, authorization.display_name) == ("alice", "Alice")
    assert authorization.token is token
    journal = await running.journal()
    assert journal[-1]["path"] == "/api.examplesocial.test/v1/me"
    assert journal[-1]["headers"]["authorization"].startswith("Bearer sha256:")


async def test_list_accounts_gives_the_users_pages(running: Running):
    tokens = await running.social.connect(login_as="bob")
    accounts = await running.connector.list_accounts(credentials(tokens["access_token"]))
    assert accounts == [
        AccountInfo(kind="examplesocial_page", external_id="page-bob-1", name="Bob Page 1"),
        AccountInfo(kind="examplesocial_page", external_id="page-bob-2", name="Bob Page 2"),
    ]


async def test_the_token_source_is_preferred_and_replayed_after_a_401(running: Running):
    first = await running.social.connect()
    renewed = (await running.social.refresh(first["refresh_token"])).body
    await running.social.revoke(first["access_token"])  # the grant is gone...
    fresh = await running.social.connect()  # ...and this is what the source refreshes to
    source = ScriptedSource(first["access_token"], fresh["access_token"])
    # The stored access token is stale too: only the source's fresh one can succeed.
    found = credentials(renewed["access_token"], token=source)
    result = await running.connector.health_check(found)
    assert result.ok and "User 1" in result.detail
    assert source.rejected == [first["access_token"]]
    accounts = await running.connector.list_accounts(credentials(None, token=source))
    assert len(accounts) == 2


async def test_health_check_is_ok_for_a_live_token(running: Running):
    tokens = await running.social.connect(login_as="carol")
    result = await running.connector.health_check(credentials(tokens["access_token"]))
    assert result.ok and result.detail == "signed in as Carol (carol)"


async def test_a_dead_token_is_needs_reauth(running: Running):
    tokens = await running.social.connect()
    await running.social.revoke(tokens["access_token"])
    for call in (running.connector.health_check, running.connector.list_accounts):
        with pytest.raises(NeedsReauth) as caught:
            await call(credentials(tokens["access_token"]))
        assert caught.value.platform_code == "invalid_token"
        assert caught.value.http_status == 401
        assert caught.value.detail == "the access token is revoked"
    with pytest.raises(NeedsReauth):
        await running.connector.finish_authorization(TokenSet(access_token="esa_unknown"))
    with pytest.raises(NeedsReauth, match="no access token"):
        await running.connector.health_check(credentials(None))


async def test_a_missing_scope_is_permission_denied_naming_it(running: Running):
    tokens = await running.social.connect(granted_scope=["profile", "posts.write"])
    with pytest.raises(PermissionDenied) as caught:
        await running.connector.list_accounts(credentials(tokens["access_token"]))
    assert caught.value.missing_scopes == ["pages.read"]
    assert (caught.value.platform_code, caught.value.http_status) == ("insufficient_scope", 403)


@pytest.mark.parametrize(
    ("fault", "category", "code", "detail"),
    [
        ({"status": 400}, InvalidRequest, "invalid_request", "sandbox fault: HTTP 400"),
        ({"status": 403}, PermissionDenied, "forbidden", "sandbox fault: HTTP 403"),
        ({"status": 404}, NotFound, "not_found", "sandbox fault: HTTP 404"),
        ({"status": 409}, InvalidRequest, "invalid_request", "sandbox fault: HTTP 409"),
        ({"status": 503}, Transient, "server_error", "sandbox fault: HTTP 503"),
        ({"status": 408}, Transient, "invalid_request", "sandbox fault: HTTP 408"),
        ({"status": 502, "body": "<html>Bad gateway</html>"}, Transient, None, "HTTP 502"),
        (
            {"status": 422, "body": {"error": {"code": "spam", "message": "Looks like spam"}}},
            InvalidRequest,
            "spam",
            "Looks like spam",
        ),
        (
            {"status": 400, "body": {"error": "invalid_request", "error_description": "No."}},
            InvalidRequest,
            "invalid_request",
            "No.",
        ),
    ],
    ids=["400", "403", "404", "409", "503", "408", "502-html", "422-custom", "400-oauth-shape"],
)
async def test_platform_errors_map_to_the_gateway_categories(
    running: Running, fault: dict, category: type, code: str | None, detail: str
):
    tokens = await running.social.connect()
    await running.fault(path="/api.examplesocial.test/v1/pages", **fault)
    with pytest.raises(PlatformError) as caught:
        await running.connector.list_accounts(credentials(tokens["access_token"]))
    error = caught.value
    assert type(error) is category
    assert (error.platform_code, error.http_status, error.detail) == (code, fault["status"], detail)


async def test_429_is_rate_limited_with_the_platforms_retry_after(running: Running):
    tokens = await running.social.connect()
    await running.fault(
        path="/api.examplesocial.test/v1/me", status=429, headers={"Retry-After": "120"}
    )
    with pytest.raises(RateLimited) as caught:
        await running.connector.health_check(credentials(tokens["access_token"]))
    assert caught.value.retry_after == 120.0
    assert (caught.value.platform_code, caught.value.http_status) == ("rate_limited", 429)


async def test_a_success_without_a_json_object_is_a_platform_error(running: Running):
    tokens = await running.social.connect()
    await running.fault(path="/api.examplesocial.test/v1/me", status=200, body="<html>hi</html>")
    with pytest.raises(PlatformError) as caught:
        await running.connector.health_check(credentials(tokens["access_token"]))
    assert caught.value.platform_code == "invalid_response"
    await running.fault(path="/api.examplesocial.test/v1/pages", status=200, body={"data": None})
    with pytest.raises(PlatformError, match="without data"):
        await running.connector.list_accounts(credentials(tokens["access_token"]))


def with_oauth(running: Running) -> ExampleSocialConnector:
    """The connector with an OAuth client: the core's once it builds one, else one made here."""
    connector = running.connector
    if connector.context.oauth is not None:
        return connector
    from gateway.oauth.client import OAuthClient

    oauth = OAuthClient(
        ExampleSocialConnector.auth,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        http=running.gateway.clients[PLATFORM],
        client_id_param=connector.oauth_client_id_param,
        basic_auth=connector.oauth_basic_auth,
    )
    return ExampleSocialConnector(dataclasses.replace(connector.context, oauth=oauth))


async def test_the_standard_grants_of_the_base_class_work_against_the_sandbox(running: Running):
    connector = with_oauth(running)
    verifier = new_verifier()
    url = connector.oauth.authorization_url(
        redirect_uri=REDIRECT_URI,
        state="state-9",
        code_verifier=verifier,
        scopes=connector.auth.scopes,
        extra=connector.authorize_params(),
    )
    consent = await running.social.call(
        "POST", route_url(url, running.social.root), data={"decision": "allow"}
    )
    assert consent.status == 302, consent.body
    assert consent.location.query["state"] == "state-9"
    token = await connector.oauth.exchange_code(
        consent.location.query["code"], redirect_uri=REDIRECT_URI, code_verifier=verifier
    )
    assert token.scopes == ("profile", "posts.write", "pages.read")
    hour = clock.now() + timedelta(hours=1)
    assert token.expires_at is not None and abs(token.expires_at - hour) < timedelta(minutes=1)
    assert (await connector.finish_authorization(token)).external_user_id == "user-1"

    stored = credentials(
        token.access_token,
        refresh_token=Secret(token.refresh_token),
        refresh_expires_at=token.refresh_expires_at,
        scopes=token.scopes,
    )
    renewed = await connector.refresh(stored)
    assert renewed.refresh_token not in (None, token.refresh_token)
    assert renewed.scopes == token.scopes
    with pytest.raises(NeedsReauth) as caught:  # the rotated-away refresh token
        await connector.refresh(stored)
    assert caught.value.platform_code == "invalid_grant"

    current = credentials(renewed.access_token, refresh_token=Secret(renewed.refresh_token))
    assert (await connector.health_check(current)).ok
    await connector.revoke(current)
    with pytest.raises(NeedsReauth):
        await connector.health_check(current)
    with pytest.raises(NeedsReauth):
        await connector.refresh(current)
    paths = [(r["method"], r["path"], r["status"]) for r in await running.journal()]
    assert ("POST", "/api.examplesocial.test/oauth/revoke", 200) in paths
    assert paths.count(("POST", "/api.examplesocial.test/oauth/token", 400)) == 2
