"""Platform webhooks coming in: each event stored once, then handed to its platform's plugin."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from ..db.base import utcnow
from ..db.connections import ConnectionRepository
from ..db.models import AccountRow, ConnectionRow, PlatformWebhookEventRow, PublishJobRow
from ..errors import Forbidden
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

    @classmethod
    def of(cls, row: ConnectionRow) -> ConnectionInfo:
        return cls(row.id, row.tenant_id, row.platform, row.status, row.external_user_id)


@dataclass(frozen=True, slots=True)
class PostInfo:
    """A post the gateway published, found by the platform's id for it."""

    job_id: str
    post_id: str
    tenant_id: str
    connection_id: str
    status: str


class WebhookContext:
    """The core's services for ``Connector.handle_webhook``, limited to one platform.

    ``connection`` is the connection whose secret URL the delivery came to (platforms with
    ``webhook_url_secret``): the only one its events may reach, so every lookup below is then
    limited to it. None for signed platforms, whose events speak for the platform itself.
    """

    def __init__(
        self, gateway: Gateway, platform: str, connection: ConnectionInfo | None = None
    ) -> None:
        self._gateway = gateway
        self.platform = platform
        self.connection = connection

    async def connections(self, external_user_id: str) -> list[ConnectionInfo]:
        """The platform's connections of this platform user, in every tenant."""
        if self.connection is not None:
            own = self.connection.external_user_id == external_user_id
            return [self.connection] if own else []
        async with self._gateway.session() as session:
            rows = await session.scalars(
                select(ConnectionRow).where(
                    ConnectionRow.platform == self.platform,
                    ConnectionRow.external_user_id == external_user_id,
                )
            )
            return [ConnectionInfo.of(r) for r in rows]

    async def post(self, remote_id: str) -> PostInfo | None:
        """The published post the platform knows as ``remote_id``, if the gateway made it."""
        async with self._gateway.session() as session:
            row = await session.scalar(
                select(PublishJobRow).where(
                    PublishJobRow.platform == self.platform,
                    PublishJobRow.remote_post_id == remote_id,
                )
            )
        if row is None or (self.connection and row.connection_id != self.connection.id):
            return None
        return PostInfo(row.id, row.post_id, row.tenant_id, row.connection_id, row.status)

    async def mark_needs_reconnect(self, connection_id: str, reason: str) -> None:
        """The user must reconnect (permissions removed at the platform): status, event."""
        if self.connection is not None and connection_id != self.connection.id:
            return
        async with self._gateway.session() as session:
            row = await ConnectionRepository(session).get(connection_id)
        if row is not None and row.platform == self.platform and row.status == "active":
            await self._gateway.tokens.mark_needs_reconnect(row, reason)

    async def emit(self, event: Event) -> None:
        """Hand ``event`` to observers and client webhooks.

        :raises ForeignAccount: on a secret URL, for an event not for the URL's tenant (a
            plugin bug the core stops rather than trusts: the error is kept on the event's row).
        """
        if self.connection is not None and event.tenant_id != self.connection.tenant_id:
            raise ForeignAccount("a secret URL's events go to its connection's tenant only")
        await self._gateway.emit(event)


@dataclass(frozen=True, slots=True)
class Received:
    new: int
    duplicates: int


class ForeignAccount(Forbidden):
    """A secret-URL delivery names an account that is not its connection's: nothing is stored."""

    code = "webhook_foreign_account"


async def receive(
    gateway: Gateway,
    connector: Connector,
    delivery: WebhookDelivery,
    connection: ConnectionInfo | None = None,
) -> Received:
    """Store the delivery's events (each key once) and hand the new ones to the plugin.

    ``connection`` owns the secret URL the delivery came to: every event must be about it
    (:raises ForeignAccount: otherwise, before anything is stored), and events are counted once
    per connection, since two tenants' URLs may each get the same event of a shared account.
    A plugin that fails on an event is logged and its error kept on the row; the platform is
    still answered 200, since redelivering the same event would not fix it.
    """
    events = connector.parse_webhook(delivery)
    if connection is not None:
        await _ensure_own(gateway, connection, events)
    fresh: list[tuple[str, PlatformEvent]] = []
    for event in events:
        row_id = await _store_once(gateway, delivery.platform, event, connection)
        if row_id is not None:
            fresh.append((row_id, event))
    context = WebhookContext(gateway, delivery.platform, connection)
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


async def _ensure_own(
    gateway: Gateway, connection: ConnectionInfo, events: list[PlatformEvent]
) -> None:
    """Each event names the connection's platform user or one of its accounts.

    The same refusal whether the named account is another connection's or nobody's, so a URL
    holder learns nothing about what else the gateway serves.
    """
    named = {event.external_id for event in events}
    if not named:
        return
    async with gateway.session() as session:
        owned = set(
            await session.scalars(
                select(AccountRow.external_id).where(
                    AccountRow.connection_id == connection.id,
                    AccountRow.external_id.in_([n for n in named if n]),
                )
            )
        )
    owned.add(connection.external_user_id)
    if not named <= owned:
        raise ForeignAccount("this webhook URL takes events about its connection's accounts only")


def _scoped_key(event: PlatformEvent, connection: ConnectionInfo | None) -> str:
    if connection is None:
        return event.key
    key = f"{connection.id}:{event.key}"
    if len(key) > 200:  # the column's width: a long plugin key is kept as its digest
        key = f"{connection.id}:sha256:{hashlib.sha256(event.key.encode()).hexdigest()}"
    return key


async def _store_once(
    gateway: Gateway, platform: str, event: PlatformEvent, connection: ConnectionInfo | None
) -> str | None:
    """The new row's id, or None when this event was stored before (a redelivery)."""
    row_id = new_id("pwe")
    event_key = _scoped_key(event, connection)
    try:
        async with gateway.transaction() as session:
            seen = await session.scalar(
                select(PlatformWebhookEventRow.id).where(
                    PlatformWebhookEventRow.platform == platform,
                    PlatformWebhookEventRow.event_key == event_key,
                )
            )
            if seen is not None:
                return None
            session.add(
                PlatformWebhookEventRow(
                    id=row_id,
                    platform=platform,
                    event_key=event_key,
                    kind=event.kind,
                    external_id=event.external_id,
                    payload=event.data,
                )
            )
    except IntegrityError:
        return None  # a concurrent delivery of the same event stored it first
    return row_id
