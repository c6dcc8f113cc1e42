"""The OAuth 2.0 authorization code flow every OAuth platform shares: start, go link, callback."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit, urlunsplit

import structlog

from ..db.base import utcnow
from ..db.connections import ConnectionRepository, OAuthStateRepository
from ..db.models import OAuthStateRow
from ..db.repositories import SecretRepository
from ..digest import lookup_hash
from ..errors import (
    ApiError,
    Conflict,
    GatewayError,
    NeedsReauth,
    PermissionDenied,
    PlatformError,
    ResourceNotFound,
    UnsupportedCapability,
)
from ..host import Gateway
from ..outbound import route_url
from ..types import OAuth2Spec
from . import oauth_binding as binding
from .return_urls import check_return_url
from .service import Saved, save_connection

log = structlog.get_logger("gateway.oauth")
VERIFIER_PURPOSE = "pkce_verifier"


@dataclass(frozen=True, slots=True)
class Started:
    authorization_url: str
    state: str
    expires_at: datetime


class CallbackRefused(GatewayError):
    """The callback cannot complete; ``code`` is what the client's returnUrl receives as error."""

    status = 400
    title = "Authorization refused"

    def __init__(self, code: str, detail: str, *, return_url: str | None, status: int = 400):
        super().__init__(detail)
        self.code = code
        self.status = status
        self.return_url = return_url


class LinkRefused(GatewayError):
    """The go link cannot be followed (unknown, already followed, expired): start again."""

    status = 410
    title = "Authorization link refused"

    def __init__(self, code: str, detail: str, *, status: int = 410):
        super().__init__(detail)
        self.code = code
        self.status = status


def state_hash(state: str) -> str:
    return lookup_hash(state)


def callback_url(gateway: Gateway, platform: str) -> str:
    """One callback path per platform (no mix-up between authorization servers)."""
    return f"{gateway.settings.base_url}/api/oauth/{platform}/callback"


async def start(
    gateway: Gateway,
    *,
    tenant_id: str,
    platform: str,
    return_url: str | None,
    connection_id: str | None,
) -> Started:
    connector = gateway.connector(platform)
    if connector is None:
        raise ResourceNotFound(f"no platform {platform!r}")
    spec = type(connector).auth
    if not isinstance(spec, OAuth2Spec):
        raise UnsupportedCapability(
            f"{platform} connects with an API key: POST /api/connections instead"
        )
    return_url = check_return_url(gateway.settings, return_url)
    if connection_id is not None:
        async with gateway.session() as session:
            existing = await ConnectionRepository(session).get(connection_id, tenant_id=tenant_id)
        if existing is None or existing.platform != platform:
            raise ResourceNotFound(f"no {platform} connection {connection_id}")
    link_id = binding.new_link_id()
    state = binding.state_for(gateway.vault, link_id)
    verifier = secrets.token_urlsafe(64) if spec.pkce else None
    now = utcnow()
    expires_at = now + timedelta(seconds=gateway.settings.oauth.state_ttl_seconds)
    async with gateway.transaction() as session:
        verifier_id = None
        if verifier is not None:
            sealed = await SecretRepository(session, gateway.vault).store(
                verifier, purpose=VERIFIER_PURPOSE, tenant_id=tenant_id
            )
            verifier_id = sealed.id
        session.add(
            OAuthStateRow(
                state_hash=state_hash(state),
                tenant_id=tenant_id,
                platform=platform,
                return_url=return_url,
                connection_id=connection_id,
                verifier_secret_id=verifier_id,
                expires_at=expires_at,
                go_hash=binding.digest(link_id),
            )
        )
    # The client gets the gateway's go link, never the platform's URL: the browser that follows
    # it is the one the state is bound to.
    url = binding.go_url(gateway.settings.base_url, platform, link_id)
    return Started(url, state, expires_at)


async def follow(
    gateway: Gateway, platform: str, link_id: str
) -> tuple[str, binding.BindingCookie]:
    """Bind the state to the browser following its go link, once; the platform's consent URL.

    :raises LinkRefused: unknown link, already followed, or expired.
    """
    now = utcnow()
    async with gateway.transaction() as session:
        repo = OAuthStateRepository(session)
        record = await repo.by_link(binding.digest(link_id))
        state = binding.state_for(gateway.vault, link_id)
        if record is None or record.platform != platform or record.state_hash != state_hash(state):
            raise LinkRefused(
                "unknown_link", "no such authorization link: start connecting again", status=404
            )
        if record.followed_at is not None or record.used_at is not None:
            # A second browser must not take over a flow the first one is in.
            raise LinkRefused(
                "link_used",
                "this authorization link was already opened; it works once: start connecting "
                "again from the application",
            )
        if record.expires_at <= now:
            raise LinkRefused(
                "link_expired", "this authorization link has expired: start connecting again"
            )
        cookie = binding.new_cookie(
            record.state_hash,
            callback=callback_url(gateway, platform),
            expires_at=record.expires_at,
            now=now,
        )
        if not await repo.follow(record.state_hash, binding.digest(cookie.value), now):
            raise LinkRefused(
                "link_used", "this authorization link was already opened; it works once"
            )
        verifier = None
        if record.verifier_secret_id:
            opened = await SecretRepository(session, gateway.vault).open(record.verifier_secret_id)
            verifier = opened.reveal() if opened else None
    return platform_url(gateway, platform, state, verifier), cookie


def platform_url(gateway: Gateway, platform: str, state: str, verifier: str | None) -> str:
    """The platform's consent URL for this state (its sandbox's, in sandbox mode)."""
    connector = gateway.connector(platform)
    spec = type(connector).auth
    url = connector.oauth.authorization_url(
        redirect_uri=callback_url(gateway, platform),
        state=state,
        code_verifier=verifier,
        scopes=spec.scopes,
        extra=connector.authorize_params(),
    )
    # The browser must reach the sandbox's consent page in sandbox mode.
    return route_url(url, gateway.sandbox_url(platform))


async def finish(
    gateway: Gateway, platform: str, query: Mapping[str, str], cookies: Mapping[str, str]
) -> tuple[Saved, str | None]:
    """Complete an authorization from the platform's redirect; refusals create nothing.

    Only the browser that followed the state's go link completes it (``cookies`` carries the
    binding); any other is refused before the code is looked at.

    :raises CallbackRefused: with the error code for the client's returnUrl.
    """
    state = query.get("state")
    if not state:
        raise CallbackRefused("invalid_state", "the callback has no state", return_url=None)
    now = utcnow()
    refusal: CallbackRefused | None = None
    # Whatever the outcome, the state is spent in a transaction of its own that commits
    # before any refusal is raised: a refused state must stay refused.
    async with gateway.transaction() as session:
        repo = OAuthStateRepository(session)
        record = await repo.get(state_hash(state))
        if record is None:
            raise CallbackRefused("invalid_state", "unknown state", return_url=None)
        return_url = record.return_url
        if record.platform != platform:
            # A state replayed at the wrong platform is an attack, not a typo.
            refusal = CallbackRefused(
                "invalid_state", "this state was issued for another platform", return_url=None
            )
        elif record.used_at is not None:
            refusal = CallbackRefused(
                "invalid_state", "this state was already used", return_url=None
            )
        elif record.expires_at <= now:
            refusal = CallbackRefused(
                "invalid_state", "this state has expired", return_url=return_url
            )
        elif not binding.is_bound(record, cookies):
            # Another browser than the one that opened the link (a consent URL or state passed
            # on, or a forged callback): its returnUrl is not this browser's to be sent to.
            refusal = CallbackRefused(
                "browser_mismatch",
                "this authorization was started in another browser, or its cookie expired: "
                "start connecting again",
                return_url=None,
            )
        if not await repo.consume(record.state_hash, now) and refusal is None:
            refusal = CallbackRefused(
                "invalid_state", "this state was already used", return_url=None
            )
        verifier = None
        if record.verifier_secret_id:
            secrets_repo = SecretRepository(session, gateway.vault)
            opened = await secrets_repo.open(record.verifier_secret_id)
            verifier = opened.reveal() if opened else None
            record.verifier_secret_id, verifier_id = None, record.verifier_secret_id
            await session.flush()
            await secrets_repo.delete(verifier_id)
        tenant_id, reconnect_id = record.tenant_id, record.connection_id
    if refusal is not None:
        raise refusal
    if "error" in query:
        code = query["error"][:60] or "access_denied"
        reason = query.get("error_description") or code
        raise CallbackRefused(
            code, f"the user or platform refused: {reason}", return_url=return_url
        )
    code = query.get("code")
    if not code:
        raise CallbackRefused("invalid_request", "the callback has no code", return_url=return_url)
    connector = gateway.connector(platform)
    spec = type(connector).auth
    try:
        token = await connector.oauth.exchange_code(
            code, redirect_uri=callback_url(gateway, platform), code_verifier=verifier
        )
        granted = set(token.scopes) if token.scopes is not None else set(spec.scopes)
        missing = [scope for scope in spec.required_scopes if scope not in granted]
        if missing:
            raise CallbackRefused(
                "missing_scopes",
                f"the connection needs these permissions, which were not granted: "
                f"{', '.join(missing)}",
                return_url=return_url,
                status=422,
            )
        authorization = await connector.finish_authorization(token)
        accounts = await connector.list_accounts(_fresh_credentials(platform, authorization))
    except CallbackRefused:
        raise
    except PermissionDenied as err:
        # A connector that checks the grant itself (Meta's /me/permissions) names what is missing.
        code = "missing_scopes" if err.missing_scopes else err.code
        raise CallbackRefused(code, err.detail, return_url=return_url, status=422) from err
    except NeedsReauth as err:
        raise CallbackRefused("code_rejected", err.detail, return_url=return_url) from err
    except PlatformError as err:
        raise CallbackRefused(
            err.code, f"the platform refused: {err.detail}", return_url=return_url, status=502
        ) from err
    try:
        saved = await save_connection(
            gateway,
            tenant_id=tenant_id,
            platform=platform,
            authorization=authorization,
            accounts=accounts,
            reconnect_id=reconnect_id,
        )
    except Conflict as err:
        raise CallbackRefused(
            "different_account", err.detail, return_url=return_url, status=409
        ) from err
    except ApiError as err:
        raise CallbackRefused(
            err.code, err.detail, return_url=return_url, status=err.status
        ) from err
    return saved, return_url


def _fresh_credentials(platform: str, authorization):
    """Credentials for the just-issued token, before anything is stored."""
    from ..credentials import Credentials, StaticToken
    from ..vault import Secret

    token = authorization.token
    return Credentials(
        connection_id="",
        platform=platform,
        access_token=Secret(token.access_token),
        refresh_token=Secret(token.refresh_token) if token.refresh_token else None,
        expires_at=token.expires_at,
        scopes=tuple(token.scopes or ()),
        external_user_id=authorization.external_user_id,
        metadata=dict(authorization.metadata),
        token=StaticToken(token.access_token),
    )


def redirect_target(return_url: str, params: dict[str, str]) -> str:
    """``return_url`` with ``params`` added to its query (before any fragment)."""
    parts = urlsplit(return_url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit(parts._replace(query=query))
