"""The Connector base class: what a platform plugin declares as data and does as async methods."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import FieldProblem, UnsupportedCapability
from .types import (
    ApiKeySpec,
    AuthKind,
    Capabilities,
    HealthResult,
    Limits,
    OAuth2Spec,
    RateLimit,
    RefreshPolicy,
    SettingSpec,
)

if TYPE_CHECKING:
    import structlog

    from .outbound import OutboundClient
    from .settings import PlatformSettings


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the core hands a connector: its HTTP client, its settings and a logger."""

    platform: str
    http: OutboundClient
    settings: PlatformSettings
    sandbox_mode: bool
    log: structlog.typing.FilteringBoundLogger


class Connector:
    """Base of every platform connector.

    Subclasses declare the class attributes below as data; the core reads them to build the
    outbound client, the OAuth flow, the refresh schedule, ``/api/platforms`` and the checks.
    Methods a platform does not support keep the default, which raises
    :class:`gateway.UnsupportedCapability`.
    """

    platform: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    auth: ClassVar[OAuth2Spec | ApiKeySpec | None] = None
    refresh_policy: ClassVar[RefreshPolicy] = RefreshPolicy()
    capabilities: ClassVar[Capabilities] = Capabilities()
    limits: ClassVar[Limits] = Limits()
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    settings: ClassVar[tuple[SettingSpec, ...]] = ()
    # Real host names the platform is reached at; each becomes a prefix under the sandbox root.
    hosts: ClassVar[tuple[str, ...]] = ()
    # Per-platform `options` the publish request accepts, documented in /api/platforms.
    options_schema: ClassVar[dict[str, Any]] = {}

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context
        self.http = context.http
        self.log = context.log

    @classmethod
    def auth_kind(cls) -> AuthKind:
        return AuthKind.OAUTH2 if isinstance(cls.auth, OAuth2Spec) else AuthKind.API_KEY

    @classmethod
    def describe(cls, version: str) -> dict[str, Any]:
        """The platform's entry in ``GET /api/platforms``."""
        return {
            "name": cls.platform,
            "displayName": cls.display_name or cls.platform,
            "auth": str(cls.auth_kind()),
            "capabilities": cls.capabilities.as_json(),
            "limits": cls.limits.as_json(),
            "options": cls.options_schema,
            "version": version,
        }

    def _unsupported(self, what: str) -> UnsupportedCapability:
        return UnsupportedCapability(
            f"{self.display_name or self.platform} does not support {what}"
        )

    # --- Connecting ---

    async def verify_api_key(self, api_key: str) -> dict[str, Any]:
        """Check an API key with the platform; returns what the connection stores about it."""
        raise self._unsupported("API-key connections")

    async def finish_authorization(self, token: dict[str, Any]) -> dict[str, Any]:
        """Platform follow-up after the code exchange (long-lived token, user id, data centre)."""
        return token

    async def refresh(self, credentials: dict[str, Any]) -> dict[str, Any]:
        """Renew credentials according to ``refresh_policy``; returns the new token response."""
        raise self._unsupported("token refresh")

    async def list_accounts(self, credentials: dict[str, Any]) -> list[dict[str, Any]]:
        """The publishable accounts behind a connection."""
        raise self._unsupported("listing accounts")

    async def health_check(self, credentials: dict[str, Any]) -> HealthResult:
        """A cheap authenticated call that proves the connection works."""
        raise self._unsupported("health checks")

    # --- Publishing ---

    def check(self, request: dict[str, Any], account: dict[str, Any]) -> list[FieldProblem]:
        """Field-level problems with a publish request, found without the network."""
        return []

    async def publish(self, request: dict[str, Any], account: dict[str, Any]) -> dict[str, Any]:
        raise self._unsupported("publishing")

    async def poll(self, handle: dict[str, Any], account: dict[str, Any]) -> dict[str, Any]:
        raise self._unsupported("asynchronous publishing")

    async def delete(self, remote_id: str, account: dict[str, Any]) -> None:
        raise self._unsupported("deleting posts")

    async def fetch_analytics(self, remote_id: str, account: dict[str, Any]) -> dict[str, Any]:
        raise self._unsupported("analytics")
