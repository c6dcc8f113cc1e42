"""Frozen dataclasses of the unified model that connectors declare and exchange with the core."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any


class AuthKind(enum.StrEnum):
    OAUTH2 = "oauth2"
    API_KEY = "apiKey"


class PostKind(enum.StrEnum):
    TEXT = "text"
    LINK = "link"
    IMAGE = "image"
    MULTI_IMAGE = "multi_image"
    VIDEO = "video"
    CAROUSEL = "carousel"
    REEL = "reel"
    STORY = "story"
    EVENT = "event"
    OFFER = "offer"
    EMAIL_CAMPAIGN = "email_campaign"


@dataclass(frozen=True, slots=True)
class OAuth2Spec:
    """How a platform does OAuth 2.0; the shared flow reads this, the plugin adds quirks."""

    authorize_url: str
    token_url: str
    scopes: tuple[str, ...] = ()
    required_scopes: tuple[str, ...] = ()
    pkce: bool = False
    scope_separator: str = " "
    revoke_url: str | None = None
    # Lifetimes are read from the token response; these are only the fallback when it is silent.
    default_access_token_lifetime: timedelta | None = None
    default_refresh_token_lifetime: timedelta | None = None


@dataclass(frozen=True, slots=True)
class ApiKeySpec:
    """A platform whose connection is a key the user pastes; ``key_format`` is shown in docs."""

    key_format: str = ""


class RefreshKind(enum.StrEnum):
    REFRESH_TOKEN = "refresh_token"  # standard refresh_token grant, may rotate
    EXCHANGE = "exchange"  # re-exchange the current token for a new long-lived one (Meta)
    NONE = "none"  # nothing to refresh (API keys, non-expiring tokens)


@dataclass(frozen=True, slots=True)
class RefreshPolicy:
    """When and how the core renews a connection's credentials."""

    kind: RefreshKind = RefreshKind.NONE
    # Refresh when less than this much of the access token's life is left.
    refresh_ahead: timedelta = timedelta(minutes=5)
    # Or, for long-lived tokens, once this much of the life has passed (Meta: day 53 of 60).
    refresh_after: timedelta | None = None
    # Warn (connection health `warning`) this long before a token that cannot renew itself
    # expires; None: the operator's `connections.expiry_warning_days`.
    warn_before_expiry: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a platform can do, per account kind."""

    post_kinds: dict[str, tuple[PostKind, ...]] = field(default_factory=dict)
    delete: bool = False
    analytics: bool = False
    webhooks: bool = False
    native_scheduling: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "postKinds": {k: [str(p) for p in v] for k, v in self.post_kinds.items()},
            "delete": self.delete,
            "analytics": self.analytics,
            "webhooks": self.webhooks,
            "scheduling": self.native_scheduling,
        }


@dataclass(frozen=True, slots=True)
class Limits:
    """Content limits the core enforces before anything is queued (None: no limit).

    ``caption_length`` counts the post's text as published: the body alone where the platform
    has a title of its own (``title_length`` is set), else :attr:`PublishRequest.text`.
    ``media_types`` are MIME types, matched against what each media URL's extension says
    (a URL that says nothing is let through). ``media_max_bytes`` is declared for clients;
    sizes are not known before the media is fetched, so the core does not enforce it yet.
    """

    caption_length: int | None = None
    title_length: int | None = None
    media_count_min: int = 0
    media_count_max: int | None = None
    media_max_bytes: int | None = None
    media_types: tuple[str, ...] = ()
    hashtags_max: int | None = None
    mentions_max: int | None = None

    def for_kind(self, account_kind: str) -> Limits:
        """The same limits for every account kind (see :class:`LimitsByKind`)."""
        return self

    def as_json(self) -> dict[str, Any]:
        return {
            "captionLength": self.caption_length,
            "titleLength": self.title_length,
            "mediaCountMin": self.media_count_min,
            "mediaCountMax": self.media_count_max,
            "mediaMaxBytes": self.media_max_bytes,
            "mediaTypes": list(self.media_types),
            "hashtagsMax": self.hashtags_max,
            "mentionsMax": self.mentions_max,
        }


@dataclass(frozen=True, slots=True)
class LimitsByKind:
    """Limits that differ by account kind: a Facebook Page takes 63,206 characters where an
    Instagram account takes 2,200. ``kinds`` maps an account kind to its whole ``Limits``
    (nothing is inherited from ``default``); ``default`` is for any kind not listed."""

    kinds: Mapping[str, Limits]
    default: Limits = Limits()

    def for_kind(self, account_kind: str) -> Limits:
        return self.kinds.get(account_kind, self.default)


class RateLimitScope(enum.StrEnum):
    APP = "app"  # one budget for the whole gateway
    TOKEN = "token"  # one budget per access token (user or page)


@dataclass(frozen=True, slots=True)
class RateLimit:
    """``requests`` calls per ``per_seconds`` seconds, shared within ``scope``."""

    requests: int
    per_seconds: float
    scope: RateLimitScope = RateLimitScope.APP
    name: str = ""


@dataclass(frozen=True, slots=True)
class SettingSpec:
    """A key a connector accepts under ``[platforms.<name>]``; core keys are always accepted."""

    name: str
    kind: type = str
    required_in_production: bool = False
    secret: bool = False
    default: Any = None
    help: str = ""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling the API: a tenant's key, possibly with the admin scope."""

    tenant_id: str
    key_id: str
    scopes: frozenset[str] = frozenset()

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes


@dataclass(frozen=True, slots=True)
class Event:
    """A domain event observed by ``track_event`` hooks (published, failed, reconnect...)."""

    name: str
    tenant_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
    # True once the core wrote its client-webhook deliveries in the transaction that made the
    # change (the outbox), so that observers do not queue them again.
    outboxed: bool = False


@dataclass(frozen=True, slots=True)
class HealthResult:
    """What a connector's health check found; the core times the call and adds the rest."""

    ok: bool
    detail: str = ""
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What a token endpoint (or an API key) gave us. Lifetimes come from the platform's answer.

    ``extra`` holds the response's other, non-secret fields (``open_id``, ``dc``...).
    """

    access_token: str
    refresh_token: str | None = None
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    scopes: tuple[str, ...] | None = None  # None: the platform did not say
    token_type: str = "Bearer"
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # the tokens never reach a log through a repr
        return f"TokenSet(expires_at={self.expires_at!r}, scopes={self.scopes!r}, ***)"


@dataclass(frozen=True, slots=True)
class Authorization:
    """Who connected: the platform user behind a new token, as a connector establishes it."""

    external_user_id: str
    display_name: str
    token: TokenSet
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """One publishable account behind a connection (a Page, an audience, a location...).

    ``token`` is the account's own credential where the platform issues one (Meta Page tokens);
    it is sealed in the vault like every other token.
    """

    kind: str
    external_id: str
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    token: str | None = None

    def __repr__(self) -> str:
        return (
            f"AccountInfo(kind={self.kind!r}, external_id={self.external_id!r}, name={self.name!r})"
        )


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """What a client asked to publish, as every connector sees it (the unified model)."""

    title: str | None = None
    body: str | None = None
    media_urls: tuple[str, ...] = ()
    link: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # this platform's `options` entry
    # Set only for connectors with `native_scheduling`: publish at this time on the platform's
    # own scheduler. A connector that cannot schedule this one raises UnsupportedCapability,
    # and the core falls back to its own scheduler (recording why in the job's notes).
    scheduled_at: datetime | None = None
    # When the job was accepted: set on the requests of jobs the workers run (None when a
    # request is only being checked). Every attempt came after it, so ``find_published`` can
    # look for a lost post from then on, however long ago that was.
    queued_at: datetime | None = None

    @property
    def text(self) -> str | None:
        """The post's text where the platform has no title of its own: ``title``, a blank line,
        ``body``; blank parts are left out (None when both are)."""
        parts = [part for part in (self.title, self.body) if part and part.strip()]
        return "\n\n".join(parts) if parts else None


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The account a job publishes to, with its own credential where it has one."""

    id: str
    kind: str
    external_id: str
    name: str
    metadata: dict[str, Any] = field(default_factory=dict)
    token: Any = None  # a Secret (Meta Page tokens), else None

    @classmethod
    def of(cls, row: Any, token: Any = None) -> AccountRef:
        """The account as a connector sees it, from its stored row (and its opened token)."""
        return cls(
            id=row.id,
            kind=row.kind,
            external_id=row.external_id,
            name=row.name,
            metadata=dict(row.metadata_json or {}),
            token=token,
        )


@dataclass(frozen=True, slots=True)
class PublishResult:
    """Where the post ended up; ``processing`` means the platform is still working on it."""

    remote_id: str
    url: str | None = None
    processing: bool = False
    handle: dict[str, Any] = field(default_factory=dict)
    # For `processing`: when to poll first, if not by the connector's PollPolicy (a campaign
    # scheduled on the platform is polled at its send time).
    poll_at: datetime | None = None
    # Things the client should know about how the post was made ("send time rounded up to
    # 10:15 UTC"), shown in the job's `notes`.
    notes: tuple[str, ...] = ()


# The unified analytics metrics every connector maps its platform's figures onto.
METRICS = (
    "impressions",
    "reach",
    "views",
    "likes",
    "comments",
    "shares",
    "saves",
    "clicks",
    "engagement",
)


@dataclass(frozen=True, slots=True)
class Analytics:
    """One collection of a post's figures.

    ``metrics`` uses the names in :data:`METRICS`; a metric the platform does not give is left
    out or ``None`` (never 0), and the core fills the rest with ``None``. ``raw`` is the
    platform's own answer, kept beside the unified figures.
    """

    metrics: dict[str, int | float | None]
    raw: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How the core polls a ``processing`` publish (an Instagram container, a TikTok upload).

    The first poll comes ``first`` after the publish call, each next one ``factor`` times later
    (at most ``longest``); a publish still processing after ``timeout`` fails the job.
    """

    first: timedelta = timedelta(seconds=5)
    factor: float = 2.0
    longest: timedelta = timedelta(minutes=1)
    timeout: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One inbound platform webhook request, exactly as received (the body is not parsed yet).

    ``headers`` are case-insensitive; ``url_secret`` is the secret path segment of platforms
    registered with a secret URL (Mailchimp), already checked by the core, and
    ``connection_id`` the connection that URL belongs to (the only one its events may reach).
    """

    platform: str
    method: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    url_secret: str | None = None
    connection_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlatformEvent:
    """One event a platform told us about, parsed from a verified delivery.

    ``key`` is stable across redeliveries of the same event and unique per platform (the
    platform's event id, else a digest of the event's content): the core stores each key once
    and hands only new events to ``Connector.handle_webhook``. ``external_id`` is the platform
    user, page or account the event is about.
    """

    key: str
    kind: str
    external_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None
