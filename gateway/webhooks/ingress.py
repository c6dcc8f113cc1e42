"""Platform webhooks coming in: each event stored once, then handed to its platform's plugin."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db.base import utcnow
from ..db.connections import ConnectionRepository
from ..db.models import ConnectionRow, PlatformWebhookEventRow, PublishJobRow
from ..ids import new_id

if TYPE_CHECKING:
    from ..connector import Connector
    from ..host import Gateway
    from ..types import Event, PlatformEvent, WebhookDelivery

log = structlog.get_logger("gateway.platform_webhooks")


@dataclass(frozen=True, slots=True)
class ConnectionInfo:
    """A connection an event concerns, as a plugin may see it."""

    id: str
    tenant_id: str
    platform: str
    status: str
    external_user_id: str | None


@dataclass(frozen=True, slots=True)
class PostInfo:
    """A post the gateway published, found by the platform's id for it."""

    job_id: str
    post_id: str
    tenant_id: str
    connection_id: str
    status: str


class WebhookContext:
    """The core's services for ``Connector.handle_webhook``, limited to one platform."""

    def __init__(self, gateway: Gateway, platform: str) -> None:
        self._gateway = gateway
        self.platform = platform

    async def connections(self, external_user_id: str) -> list[ConnectionInfo]:
        """The platform's connections of this platform user, in every tenant."""
        async with self._gateway.session() as session:
            rows = await session.scalars(
                select(ConnectionRow).where(
                    ConnectionRow.platform == self.platform,
                    ConnectionRow.external_user_id == external_user_id,
                )
            )
            return [
                ConnectionInfo(r.id, r.tenant_id, r.platform, r.status, r.external_user_id)
                for r in rows
            ]

    async def post(self, remote_id: str) -> PostInfo | None:
        """The published post the platform knows as ``remote_id``, if the gateway made it."""
        async with self._gateway.session() as session:
            row = await session.scalar(
                select(PublishJobRow).where(
                    PublishJobRow.platform == self.platform,
                    PublishJobRow.remote_post_id == remote_id,
                )
            )
        if row is None:
            return None
        return PostInfo(row.id, row.post_id, row.tenant_id, row.connection_id, row.status)

    async def mark_needs_reconnect(self, connection_id: str, reason: str) -> None:
        """The user must reconnect (permissions removed at the platform): status, event."""
        async with self._gateway.session() as session:
            row = await ConnectionRepository(session).get(connection_id)
        if row is not None and row.platform == self.platform and row.status == "active":
            await self._gateway.tokens.mark_needs_reconnect(row, reason)

    async def emit(self, event: Event) -> None:
        await self._gateway.emit(event)


def url_secret(gateway: Gateway, platform: str) -> str:
    """The secret path segment of ``/webhooks/<platform>/<secret>`` (unsigned platforms)."""
    return gateway.vault.derive(f"platform-webhook:{platform}")


def secret_url(gateway: Gateway, platform: str) -> str:
    """Where an unsigned platform is told to deliver: ``<public url>/webhooks/<platform>/<secret>``.

    For the plugin that registers it at the platform; never shown to a client, since the
    secret is the platform's, shared by every tenant.
    """
    return f"{gateway.settings.base_url}/webhooks/{platform}/{url_secret(gateway, platform)}"


def secret_matches(gateway: Gateway, platform: str, given: str) -> bool:
    return hmac.compare_digest(given.encode(), url_secret(gateway, platform).encode())


@dataclass(frozen=True, slots=True)
class Received:
    new: int
    duplicates: int


async def receive(gateway: Gateway, connector: Connector, delivery: WebhookDelivery) -> Received:
    """Store the delivery's events (each key once) and hand the new ones to the plugin.

    A plugin that fails on an event is logged and its error kept on the row; the platform is
    still answered 200, since redelivering the same event would not fix it.
    """
    events = connector.parse_webhook(delivery)
    fresh: list[tuple[str, PlatformEvent]] = []
    for event in events:
        row_id = await _store_once(gateway, delivery.platform, event)
        if row_id is not None:
            fresh.append((row_id, event))
    context = WebhookContext(gateway, delivery.platform)
    for row_id, event in fresh:
        error = None
        try:
            await connector.handle_webhook(event, context)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning(
                "platform_webhook.failed",
                platform=delivery.platform,
                kind=event.kind,
                error=error,
            )
        async with gateway.transaction() as session:
            row = await session.get(PlatformWebhookEventRow, row_id)
            if row is not None:
                row.handled_at, row.error = utcnow(), error
    log.info(
        "platform_webhook.received",
        platform=delivery.platform,
        new=len(fresh),
        duplicates=len(events) - len(fresh),
    )
    return Received(len(fresh), len(events) - len(fresh))


async def _store_once(gateway: Gateway, platform: str, event: PlatformEvent) -> str | None:
    """The new row's id, or None when this event was stored before (a redelivery)."""
    row_id = new_id("pwe")
    try:
        async with gateway.transaction() as session:
            seen = await session.scalar(
                select(PlatformWebhookEventRow.id).where(
                    PlatformWebhookEventRow.platform == platform,
                    PlatformWebhookEventRow.event_key == event.key,
                )
            )
            if seen is not None:
                return None
            session.add(
                PlatformWebhookEventRow(
                    id=row_id,
                    platform=platform,
                    event_key=event.key,
                    kind=event.kind,
                    external_id=event.external_id,
                    payload=event.data,
                )
            )
    except IntegrityError:
        return None  # a concurrent delivery of the same event stored it first
    return row_id
