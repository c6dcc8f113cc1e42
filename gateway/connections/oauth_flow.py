"""The OAuth 2.0 authorization code flow every OAuth platform shares: start, then callback."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import structlog

from ..db.base import utcnow
from ..db.connections import ConnectionRepository, OAuthStateRepository
from ..db.models import OAuthStateRow
from ..db.repositories import SecretRepository
from ..errors import (
    ApiError,
    BadRequest,
    Conflict,
    FieldProblem,
    GatewayError,
    InvalidInput,
    NeedsReauth,
    PermissionDenied,
    PlatformError,
    ResourceNotFound,
    UnsupportedCapability,
)
from ..host import Gateway
from ..outbound import route_url
from ..settings import Settings
from ..types import OAuth2Spec
from .service import Saved, save_connection

log = structlog.get_logger("gateway.oauth")
VERIFIER_PURPOSE = "pkce_verifier"
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "0.0.0.0"})  # noqa: S104 (compared, not bound)


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


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def callback_url(gateway: Gateway, platform: str) -> str:
    """One callback path per platform (no mix-up between authorization servers)."""
    return f"{gateway.settings.base_url}/api/oauth/{platform}/callback"


def check_return_url(gateway: Gateway, return_url: str | None) -> None:
    """Only allow-listed return URLs: the callback must never be an open redirect."""
    if return_url is None:
        return
    parts = urlsplit(return_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest(
            "returnUrl must be an absolute http(s) URL",
            errors=[FieldProblem("returnUrl", "invalid", "use an absolute http(s) URL")],
        )
    if not any(_under(return_url, prefix) for prefix in allowed_return_urls(gateway.settings)):
        raise InvalidInput(
            "returnUrl is neither under the gateway's own URL nor in oauth.allowed_return_urls",
            errors=[FieldProblem("returnUrl", "not_allowed", "ask the operator to allow it")],
        )


def allowed_return_urls(settings: Settings) -> tuple[str, ...]:
    """The configured prefixes, and always the gateway's own base URL.

    The gateway's own pages are no open redirect, and listing them in the config tied the list
    to one port: after ``GATEWAY_SERVER_PORT=8090`` the natural returnUrl was refused.
    """
    own = [f"{settings.base_url}/"]
    if not settings.server.public_url and settings.server.host in _LOCAL_HOSTS:
        # A browser on this machine reaches a loopback or all-interfaces listener by either name.
        port = settings.server.port
        own += [f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"]
    return (*settings.oauth.allowed_return_urls, *own)


def _under(url: str, prefix: str) -> bool:
    # Compare origins exactly, then paths by prefix: "https://app.example" must not allow
    # "https://app.example.evil.com".
    a, b = urlsplit(url), urlsplit(prefix)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc) and a.path.startswith(b.path or "/")


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
    check_return_url(gateway, return_url)
    if connection_id is not None:
        async with gateway.session() as session:
            existing = await ConnectionRepository(session).get(connection_id, tenant_id=tenant_id)
        if existing is None or existing.platform != platform:
            raise ResourceNotFound(f"no {platform} connection {connection_id}")
    state = secrets.token_urlsafe(32)  # 256 bits
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
            )
        )
    url = connector.oauth.authorization_url(
        redirect_uri=callback_url(gateway, platform),
        state=state,
        code_verifier=verifier,
        scopes=spec.scopes,
        extra=connector.authorize_params(),
    )
    # The browser must reach the sandbox's consent page in sandbox mode.
    return Started(route_url(url, gateway.sandbox_url(platform)), state, expires_at)


async def finish(
    gateway: Gateway, platform: str, query: dict[str, str]
) -> tuple[Saved, str | None]:
    """Complete an authorization from the platform's redirect; refusals create nothing.

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
    separator = "&" if urlsplit(return_url).query else "?"
    return f"{return_url}{separator}{urlencode(params)}"
