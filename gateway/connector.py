"""The Connector base class: what a platform plugin declares as data and does as async methods."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import FieldProblem, UnsupportedCapability
from .posts import SHAPE_KINDS, shape_kind
from .types import (
    AccountInfo,
    AccountRef,
    Analytics,
    ApiKeySpec,
    AuthKind,
    Authorization,
    Capabilities,
    HealthResult,
    Limits,
    LimitsByKind,
    OAuth2Spec,
    PlatformEvent,
    PollPolicy,
    PostKind,
    PublishRequest,
    PublishResult,
    RateLimit,
    RefreshKind,
    RefreshPolicy,
    SettingSpec,
    TokenSet,
    WebhookDelivery,
)

if TYPE_CHECKING:
    import structlog

    from .credentials import Credentials
    from .oauth.client import OAuthClient
    from .outbound import OutboundClient
    from .settings import PlatformSettings
    from .webhooks.ingress import WebhookContext


@dataclass(frozen=True, slots=True)
class ConnectorContext:
    """What the core hands a connector: its HTTP client, its settings and a logger."""

    platform: str
    http: OutboundClient
    settings: PlatformSettings
    sandbox_mode: bool
    log: structlog.typing.FilteringBoundLogger
    oauth: OAuthClient | None = None


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
    # An OAuth platform that also takes keys the user pastes (Mailchimp): POST /api/connections
    # accepts them too, through ``verify_api_key``.
    api_key_auth: ClassVar[ApiKeySpec | None] = None
    refresh_policy: ClassVar[RefreshPolicy] = RefreshPolicy()
    capabilities: ClassVar[Capabilities] = Capabilities()
    # One `Limits` for every account kind, or a `LimitsByKind`; the core enforces them at
    # submit, before `check` (see `limits_for`).
    limits: ClassVar[Limits | LimitsByKind] = Limits()
    rate_limits: ClassVar[tuple[RateLimit, ...]] = ()
    settings: ClassVar[tuple[SettingSpec, ...]] = ()
    # Real host names the platform is reached at; each becomes a prefix under the sandbox root.
    hosts: ClassVar[tuple[str, ...]] = ()
    # Publish jobs for one account run one at a time (platforms that reject concurrent posts).
    one_at_a_time_per_account: ClassVar[bool] = False
    # Client-webhook events this platform's plugin emits (each named `<platform>.<what>`), which
    # clients may subscribe to beside the core's.
    client_events: ClassVar[tuple[str, ...]] = ()
    # The JSON Schema of this platform's `options.<platform>` entry of a publish request,
    # enforced at submit and shown in /api/platforms. An object whose undeclared keys are
    # refused unless the schema says otherwise; the default `{}` takes no options at all.
    options_schema: ClassVar[dict[str, Any]] = {}
    # Asynchronous publishing: how a `processing` result is polled until it is done.
    polling: ClassVar[PollPolicy] = PollPolicy()
    # How long after publishing the platform's figures settle; analytics collections
    # (+1 h, +6 h, +24 h, +72 h, +7 d) are shifted by it.
    analytics_delay: ClassVar[timedelta] = timedelta(0)
    # Platform webhooks that carry no signature (Mailchimp) are registered at
    # /webhooks/<platform>/<secret>: the core refuses deliveries without the secret.
    webhook_url_secret: ClassVar[bool] = False

    def __init__(self, context: ConnectorContext) -> None:
        self.context = context
        self.http = context.http
        self.log = context.log

    @classmethod
    def auth_kind(cls) -> AuthKind:
        return AuthKind.OAUTH2 if isinstance(cls.auth, OAuth2Spec) else AuthKind.API_KEY

    @classmethod
    def accepts_api_keys(cls) -> bool:
        return isinstance(cls.auth, ApiKeySpec) or cls.api_key_auth is not None

    @classmethod
    def auth_methods(cls) -> list[str]:
        """Every way a connection can be made: ``auth`` first, then an API key if also taken."""
        methods = [str(cls.auth_kind())]
        if cls.accepts_api_keys() and AuthKind.API_KEY not in methods:
            methods.append(str(AuthKind.API_KEY))
        return methods

    @classmethod
    def limits_for(cls, account_kind: str) -> Limits:
        """The limits of a post to an account of this kind."""
        return cls.limits.for_kind(account_kind)

    @classmethod
    def account_kinds(cls) -> list[str]:
        """Every account kind the connector declares post kinds or limits for."""
        kinds = set(cls.capabilities.post_kinds)
        if isinstance(cls.limits, LimitsByKind):
            kinds.update(cls.limits.kinds)
        return sorted(kinds)

    @classmethod
    def options_json_schema(cls) -> dict[str, Any]:
        """``options_schema`` as enforced: an object, with no undeclared keys unless it says."""
        return {"type": "object", "additionalProperties": False, **cls.options_schema}

    @classmethod
    def describe(cls, version: str) -> dict[str, Any]:
        """The platform's entry in ``GET /api/platforms``."""
        default = cls.limits.default if isinstance(cls.limits, LimitsByKind) else cls.limits
        return {
            "name": cls.platform,
            "displayName": cls.display_name or cls.platform,
            "auth": str(cls.auth_kind()),
            "authMethods": cls.auth_methods(),
            "capabilities": cls.capabilities.as_json(),
            "limits": {
                "default": default.as_json(),
                "byAccountKind": {
                    kind: cls.limits_for(kind).as_json() for kind in cls.account_kinds()
                },
            },
            "options": cls.options_json_schema(),
            "version": version,
        }

    def _unsupported(self, what: str) -> UnsupportedCapability:
        return UnsupportedCapability(
            f"{self.display_name or self.platform} does not support {what}"
        )

    # --- Connecting (OAuth quirks are data first, then these hooks) ---

    # TikTok calls its client id `client_key`; some platforms want HTTP Basic client auth.
    oauth_client_id_param: ClassVar[str] = "client_id"
    oauth_basic_auth: ClassVar[bool] = False

    @property
    def oauth(self) -> OAuthClient:
        """The shared OAuth client for this platform (OAuth connectors only)."""
        if self.context.oauth is None:
            raise self._unsupported("OAuth")
        return self.context.oauth

    def authorize_params(self) -> dict[str, str]:
        """Extra parameters for the consent URL (e.g. Google's ``access_type=offline``)."""
        return {}

    async def finish_authorization(self, token: TokenSet) -> Authorization:
        """After the code exchange: platform follow-ups (long-lived exchange, who the user is)."""
        raise self._unsupported("OAuth connections")

    async def verify_api_key(self, api_key: str) -> Authorization:
        """Check an API key with the platform before anything is stored.

        :raises InvalidRequest: or ``NeedsReauth``, with the platform's reason, for a bad key.
        """
        raise self._unsupported("API-key connections")

    async def refresh(self, credentials: Credentials) -> TokenSet:
        """Renew credentials as ``refresh_policy`` says; the core decides when and guards races.

        The default carries out the standard refresh_token grant.
        """
        if self.refresh_policy.kind is RefreshKind.REFRESH_TOKEN and credentials.refresh_token:
            previous = TokenSet(
                access_token="",
                refresh_expires_at=credentials.refresh_expires_at,
                scopes=credentials.scopes,
            )
            return await self.oauth.refresh(credentials.refresh_token.reveal(), previous=previous)
        raise self._unsupported("token refresh")

    async def revoke(self, credentials: Credentials) -> None:
        """Revoke the grant at the platform where it can be; the default uses RFC 7009.

        The refresh token goes first: revoking it ends the whole grant (RFC 7009 §2.1), while
        revoking only an access token need not.
        """
        if not (isinstance(self.auth, OAuth2Spec) and self.auth.revoke_url):
            return
        if credentials.refresh_token:
            await self.oauth.revoke(credentials.refresh_token.reveal(), hint="refresh_token")
        elif credentials.access_token:
            await self.oauth.revoke(credentials.access_token.reveal(), hint="access_token")

    async def list_accounts(self, credentials: Credentials) -> list[AccountInfo]:
        """The publishable accounts behind a connection."""
        raise self._unsupported("listing accounts")

    async def health_check(self, credentials: Credentials) -> HealthResult:
        """A cheap authenticated call that proves the connection works (the core times it)."""
        raise self._unsupported("health checks")

    # --- Publishing ---

    def post_kind(self, request: PublishRequest, account: AccountRef) -> PostKind | None:
        """The kind of post ``request`` makes on ``account``; the core refuses a kind that
        ``capabilities.post_kinds`` does not list for the account's kind.

        The default tells it by shape (text, link, one image or video, several images); a
        platform whose kinds depend on more (Instagram's ``mediaType``) overrides it. None: the
        kind cannot be told, and is not checked (the default's answer for an account kind that
        takes none of the shape kinds, such as an email audience).
        """
        declared = self.capabilities.post_kinds.get(account.kind, ())
        if declared and SHAPE_KINDS.isdisjoint(declared):
            return None
        return shape_kind(request)

    def check(self, request: PublishRequest, account: AccountRef) -> list[FieldProblem]:
        """Field-level problems with a publish request, found without the network.

        Runs before anything is queued, after the core has enforced what the connector
        declares (post kinds, ``limits``, ``options_schema``): it is called only for a
        declared account kind and options that match the schema, so it checks just what
        those cannot express. Every problem says which field and what to change.
        """
        return []

    async def publish(
        self,
        request: PublishRequest,
        account: AccountRef,
        credentials: Credentials,
        *,
        idempotency_key: str,
    ) -> PublishResult:
        """Publish once. ``idempotency_key`` is stable across retries of the same job: send it
        where the platform takes one, or put it where ``find_published`` can look for it."""
        raise self._unsupported("publishing")

    @property
    def reconciles(self) -> bool:
        """Whether it can tell, after an unknown outcome, if the post went out (it implements
        :meth:`find_published`)."""
        return type(self).find_published is not Connector.find_published

    async def find_published(
        self,
        request: PublishRequest,
        account: AccountRef,
        credentials: Credentials,
        *,
        idempotency_key: str,
    ) -> PublishResult | None:
        """After ``OutcomeUnknown``: did the post go out? The core retries only on ``None``.

        A connector that cannot tell leaves this unsupported, and such a job goes to the
        dead-letter queue rather than risk a duplicate.
        """
        raise self._unsupported("reconciling an unknown outcome")

    async def poll(
        self, handle: dict[str, Any], account: AccountRef, credentials: Credentials
    ) -> PublishResult:
        """For a ``processing`` result: ask again.

        Return ``processing=True`` (with an updated ``handle`` if it changed) while the platform
        is still busy, the final result once it is done, or raise a non-retryable
        ``PlatformError`` with the platform's reason when it failed (an Instagram container in
        ``ERROR``). A retryable error is polled again later; it never publishes again.
        """
        raise self._unsupported("asynchronous publishing")

    async def cancel_scheduled(
        self, remote_id: str, account: AccountRef, credentials: Credentials
    ) -> None:
        """Unschedule a post the platform's own scheduler holds (the job was cancelled)."""
        raise self._unsupported("cancelling a scheduled post")

    async def delete(self, remote_id: str, account: AccountRef, credentials: Credentials) -> None:
        """Delete a published post; raise ``NotFound`` if it is already gone."""
        raise self._unsupported("deleting posts")

    async def fetch_analytics(
        self, remote_id: str, account: AccountRef, credentials: Credentials
    ) -> Analytics:
        """The post's figures now, under the unified names of ``METRICS`` (raw answer kept)."""
        raise self._unsupported("analytics")

    # --- Platform webhooks (the core serves /webhooks/<platform>, stores, deduplicates) ---

    def webhook_handshake(self, query: Mapping[str, str]) -> str | None:
        """Answer a subscription handshake (a GET): the text to send back, or None to refuse.

        Meta sends ``hub.mode``, ``hub.verify_token`` and ``hub.challenge``; Mailchimp's
        validation GET carries nothing and wants a 200.
        """
        return None

    def verify_webhook(self, delivery: WebhookDelivery) -> bool:
        """Whether a delivery really comes from the platform, checked on the raw body before
        anything is parsed (compare signatures with ``hmac.compare_digest``)."""
        return False

    def parse_webhook(self, delivery: WebhookDelivery) -> list[PlatformEvent]:
        """The events of a verified delivery, each with a key stable across redeliveries.

        :raises gateway.BadRequest: for a body that cannot be understood.
        """
        return []

    async def handle_webhook(self, event: PlatformEvent, context: WebhookContext) -> None:
        """Act on one new event (each key is handed over once); ``context`` gives the core's
        services: the connections and posts it concerns, marking a connection for reconnecting,
        emitting events."""
