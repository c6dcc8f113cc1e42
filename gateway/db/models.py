"""ORM rows: tenants, API keys, sealed secrets, connections, accounts, OAuth states, checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow

# None is SQL NULL, not the JSON text 'null': "IS NULL" in queries and views then means "none".
NULLABLE_JSON = JSON(none_as_null=True)


class TenantRow(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    # SHA-256 of the key's random part: keys are high-entropy, so a slow hash buys nothing.
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class SealedSecretRow(Base):
    """Every secret the gateway keeps (tokens, API keys of platforms), sealed by the vault.

    One table for all of them, so that `gateway vault rotate` has one place to walk.
    """

    __tablename__ = "sealed_secrets"
    __table_args__ = (Index("ix_sealed_secrets_key_id", "key_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), index=True, default=None
    )
    purpose: Mapped[str] = mapped_column(String(60))
    key_id: Mapped[str] = mapped_column(String(32))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # Bumped on every write: rotation and refresh compare-and-set on it.
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    def associated_data(self) -> str:
        """What the ciphertext is bound to: this row and what it is for."""
        return f"sealed_secrets:{self.id}:{self.purpose}"


class ConnectionRow(Base):
    """A tenant's link to one platform user; its tokens live sealed in ``sealed_secrets``.

    ``credential_version`` is bumped on every credential write: refreshes compare-and-set on it,
    and the refresh lease (``refresh_lease_*``) lets exactly one process call the platform.
    """

    __tablename__ = "connections"
    __table_args__ = (
        UniqueConstraint("tenant_id", "platform", "external_user_id"),
        Index("ix_connections_next_refresh_at", "next_refresh_at"),
        Index("ix_connections_next_health_check_at", "next_health_check_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default="active")
    health: Mapped[str] = mapped_column(String(20), default="unknown")
    display_name: Mapped[str] = mapped_column(String(300), default="")
    external_user_id: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(Text, default="")
    metadata_json: Mapped[dict] = mapped_column(JSON, default=dict)
    credentials_secret_id: Mapped[str | None] = mapped_column(
        ForeignKey("sealed_secrets.id", ondelete="SET NULL"), default=None
    )
    credential_version: Mapped[int] = mapped_column(default=1)
    token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    refresh_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    next_refresh_at: Mapped[datetime | None] = mapped_column(default=None)
    reconnect_by: Mapped[datetime | None] = mapped_column(default=None)
    refresh_lease_owner: Mapped[str | None] = mapped_column(String(60), default=None)
    refresh_lease_until: Mapped[datetime | None] = mapped_column(default=None)
    refresh_failures: Mapped[int] = mapped_column(default=0)
    refresh_blocked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_refresh_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    last_health_check_at: Mapped[datetime | None] = mapped_column(default=None)
    next_health_check_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AccountRow(Base):
    """A publishable account behind a connection (Page, audience, location...)."""

    __tablename__ = "accounts"
    __table_args__ = (UniqueConstraint("connection_id", "kind", "external_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(40))
    external_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300), default="")
    metadata_json: Mapped[dict] = mapped_column(JSON, default=dict)
    token_secret_id: Mapped[str | None] = mapped_column(
        ForeignKey("sealed_secrets.id", ondelete="SET NULL"), default=None
    )
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class OAuthStateRow(Base):
    """A pending authorization: keyed by the SHA-256 of its state, single use, short-lived."""

    __tablename__ = "oauth_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    return_url: Mapped[str | None] = mapped_column(Text, default=None)
    connection_id: Mapped[str | None] = mapped_column(String(40), default=None)
    verifier_secret_id: Mapped[str | None] = mapped_column(
        ForeignKey("sealed_secrets.id", ondelete="SET NULL"), default=None
    )
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The one-time go link (``/oauth/{platform}/go/{id}``) and the browser it bound the state
    # to: hashes only, so a database read gives neither the link nor the cookie.
    go_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True, default=None)
    followed_at: Mapped[datetime | None] = mapped_column(default=None)
    binding_hash: Mapped[str | None] = mapped_column(String(64), default=None)


class HealthCheckRow(Base):
    """One health check of one connection, kept for the dashboard's trends."""

    __tablename__ = "connection_health_checks"
    __table_args__ = (
        Index("ix_connection_health_checks_checked_at", "checked_at"),
        Index("ix_connection_health_checks_tenant_checked", "tenant_id", "checked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(32))
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(20))
    ok: Mapped[bool] = mapped_column()
    latency_ms: Mapped[float] = mapped_column()
    error_code: Mapped[str | None] = mapped_column(String(60), default=None)
    detail: Mapped[str] = mapped_column(Text, default="")


class PublishJobRow(Base):
    """One publish request and its whole life: queue, attempts, result or dead letter.

    ``attempts`` counts claims and is the fencing token: every write of a worker is conditional
    on it, so a worker whose lease ran out cannot overwrite the attempt that replaced it.
    ``failures`` counts the failed attempts that go against ``max_attempts``.
    """

    __tablename__ = "publish_jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index("ix_publish_jobs_due", "status", "next_attempt_at"),
        Index("ix_publish_jobs_analytics_due", "analytics_next_at"),
        Index("ix_publish_jobs_tenant_due", "tenant_id", "status", "next_attempt_at"),
        Index("ix_publish_jobs_lease", "status", "lease_until"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    post_id: Mapped[str] = mapped_column(String(40), unique=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    account_id: Mapped[str] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20))
    request_json: Mapped[dict] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), default=None)
    request_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(default=0)
    failures: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=4)
    scheduled_at: Mapped[datetime | None] = mapped_column(default=None)
    next_attempt_at: Mapped[datetime] = mapped_column()
    lease_owner: Mapped[str | None] = mapped_column(String(60), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    remote_post_id: Mapped[str | None] = mapped_column(String(200), default=None)
    remote_url: Mapped[str | None] = mapped_column(Text, default=None)
    error_json: Mapped[dict | None] = mapped_column(NULLABLE_JSON, default=None)
    dead_reason: Mapped[str | None] = mapped_column(String(30), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    dead_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    # What the health figures measure from: when the job was due (a replay makes it due again;
    # None: its scheduled_at, else created_at), when a worker first took it since, and when its
    # last error happened (updated_at moves on when the job is replayed or discarded).
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    error_at: Mapped[datetime | None] = mapped_column(default=None)
    # Asynchronous platforms: what to poll, since when, and how often it was polled.
    poll_handle: Mapped[dict | None] = mapped_column(NULLABLE_JSON, default=None)
    processing_since: Mapped[datetime | None] = mapped_column(default=None)
    polls: Mapped[int] = mapped_column(default=0, server_default="0")
    # The next analytics collection (+1 h, +6 h ... after publishing) and how many were made.
    analytics_next_at: Mapped[datetime | None] = mapped_column(default=None)
    analytics_step: Mapped[int] = mapped_column(default=0, server_default="0")
    # What the client should know about how the post was made (PublishResult.notes).
    notes: Mapped[list | None] = mapped_column(NULLABLE_JSON, default=None)

    @property
    def due_since(self) -> datetime:
        """When the job became due: publish latency and queue wait are measured from here."""
        return self.due_at or self.scheduled_at or self.created_at


class PublishJobAnalyticsRow(Base):
    """One analytics collection of a published post: the time series behind /api/analytics."""

    __tablename__ = "publish_job_analytics"
    __table_args__ = (Index("ix_publish_job_analytics_job_collected", "job_id", "collected_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("publish_jobs.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(40))
    platform: Mapped[str] = mapped_column(String(32))
    collected_at: Mapped[datetime] = mapped_column(default=utcnow)
    trigger: Mapped[str] = mapped_column(String(20))  # "scheduled" or "refresh"
    metrics: Mapped[dict] = mapped_column(JSON)
    raw: Mapped[dict] = mapped_column(JSON)


class WebhookEndpointRow(Base):
    """A client's subscription: where to send which events, and the secret that signs them."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list] = mapped_column(JSON)
    secret_id: Mapped[str] = mapped_column(ForeignKey("sealed_secrets.id", ondelete="CASCADE"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDeliveryRow(Base):
    """The outbox: one event for one endpoint, kept until delivered or given up on."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), index=True
    )
    tenant_id: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_status: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


class PeriodicTaskRow(Base):
    """When a cluster-wide periodic task (the daily DLQ audit) runs next; claimed with CAS."""

    __tablename__ = "periodic_tasks"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    next_run_at: Mapped[datetime] = mapped_column()


class PlatformWebhookEventRow(Base):
    """An event a platform sent us, stored once per (platform, key): redeliveries are no-ops."""

    __tablename__ = "platform_webhook_events"
    __table_args__ = (UniqueConstraint("platform", "event_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    event_key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(100))
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    payload: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class WebhookUrlRow(Base):
    """A connection's secret webhook URL (platforms that do not sign their webhooks).

    ``lookup_hash`` is the SHA-256 of the URL's token, which finds the connection; the token
    itself is kept sealed (``secret_id``) only so that the URL can be given to the platform again.
    """

    __tablename__ = "webhook_urls"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), unique=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    lookup_hash: Mapped[str] = mapped_column(String(64), unique=True)
    secret_id: Mapped[str | None] = mapped_column(
        ForeignKey("sealed_secrets.id", ondelete="SET NULL"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DashboardSessionRow(Base):
    """A signed-in dashboard: the SHA-256 of its cookie, the API key it came from, its end."""

    __tablename__ = "dashboard_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column(default=None)
