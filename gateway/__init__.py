"""The integration gateway's public plugin API: everything a plugin may import is here."""

from __future__ import annotations

from . import clock, sandbox
from .connector import Connector, ConnectorContext
from .credentials import Credentials
from .errors import (
    ApiError,
    BadRequest,
    Conflict,
    FieldProblem,
    Forbidden,
    GatewayError,
    InvalidInput,
    InvalidRequest,
    NeedsReauth,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    PlatformError,
    RateLimited,
    ResourceNotFound,
    Transient,
    Unprocessable,
    UnsupportedCapability,
)
from .hookspecs import hookimpl
from .outbound import OutboundClient, TokenSource, parse_retry_after, route_url
from .posts import media_type_of, shape_kind
from .redaction import redact_url
from .registry import ConnectorRegistry, RouteRegistry, SandboxRegistry
from .sandbox import Sandbox
from .types import (
    METRICS,
    AccountInfo,
    AccountRef,
    Analytics,
    ApiKeySpec,
    AuthKind,
    Authorization,
    Capabilities,
    Event,
    HealthResult,
    Limits,
    LimitsByKind,
    OAuth2Spec,
    PlatformEvent,
    PollPolicy,
    PostKind,
    Principal,
    PublishRequest,
    PublishResult,
    RateLimit,
    RateLimitScope,
    RefreshKind,
    RefreshPolicy,
    SettingSpec,
    TokenSet,
    WebhookDelivery,
)
from .vault import Secret
from .webhooks.ingress import ConnectionInfo, PostInfo, WebhookContext
from .webhooks.secret_urls import webhook_url as platform_webhook_url


def current_gateway(request):
    """The running :class:`Gateway` behind an aiohttp request (for plugin route handlers)."""
    from .web.keys import gateway_of

    return gateway_of(request)


def require_admin(request) -> None:
    """Raise ``Forbidden`` unless the caller of a plugin route has the admin scope."""
    from .web.access import require_admin as check

    check(request)


def ensure_owned(request, owner_tenant_id: str | None, what: str) -> None:
    """Raise ``ResourceNotFound`` unless the resource belongs to the caller's tenant."""
    from .web.access import ensure_owned as check

    check(request, owner_tenant_id, what)


async def owned_account(request, account_id: str) -> tuple[AccountRef, Credentials]:
    """The caller's own active account (``ResourceNotFound`` otherwise) and its credentials."""
    from .web.access import owned_account as resolve

    return await resolve(request, account_id)


async def read_json(request, schema: dict) -> dict:
    """A plugin route's JSON body checked against ``schema`` (``BadRequest`` names each field)."""
    from .web.spec import json_body

    return await json_body(request, schema)


def current_principal(request) -> Principal:
    """The authenticated caller of a plugin's `/api/plugins/...` route."""
    from .web.keys import principal_of

    return principal_of(request)


__all__ = [
    "METRICS",
    "AccountInfo",
    "AccountRef",
    "Analytics",
    "ApiError",
    "ApiKeySpec",
    "AuthKind",
    "Authorization",
    "BadRequest",
    "Capabilities",
    "Conflict",
    "ConnectionInfo",
    "Connector",
    "ConnectorContext",
    "ConnectorRegistry",
    "Credentials",
    "Event",
    "FieldProblem",
    "Forbidden",
    "GatewayError",
    "HealthResult",
    "InvalidInput",
    "InvalidRequest",
    "Limits",
    "LimitsByKind",
    "NeedsReauth",
    "NotFound",
    "OAuth2Spec",
    "OutboundClient",
    "OutcomeUnknown",
    "PermissionDenied",
    "PlatformError",
    "PlatformEvent",
    "PollPolicy",
    "PostInfo",
    "PostKind",
    "Principal",
    "PublishRequest",
    "PublishResult",
    "RateLimit",
    "RateLimitScope",
    "RateLimited",
    "RefreshKind",
    "RefreshPolicy",
    "ResourceNotFound",
    "RouteRegistry",
    "Sandbox",
    "SandboxRegistry",
    "Secret",
    "SettingSpec",
    "TokenSet",
    "TokenSource",
    "Transient",
    "Unprocessable",
    "UnsupportedCapability",
    "WebhookContext",
    "WebhookDelivery",
    "clock",
    "current_gateway",
    "current_principal",
    "ensure_owned",
    "hookimpl",
    "media_type_of",
    "owned_account",
    "parse_retry_after",
    "platform_webhook_url",
    "read_json",
    "redact_url",
    "require_admin",
    "route_url",
    "sandbox",
    "shape_kind",
]
