"""Turning domain events into outbox rows, and delivering them with retries for up to 3 days."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING

import aiohttp
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.base import utcnow
from ..db.models import WebhookDeliveryRow, WebhookEndpointRow
from ..db.repositories import SecretRepository
from ..ids import new_id
from ..timefmt import rfc3339
from .signing import sign

if TYPE_CHECKING:
    from ..host import Gateway
    from ..types import Event

log = structlog.get_logger("gateway.webhooks")
EVENTS = frozenset(
    {
        "job.published",
        "job.failed",
        "job.dead",
        "connection.needs_reconnect",
        "connection.health_changed",
        "dlq.audit",
    }
)
# Waits after the 1st, 2nd... failed delivery; the last repeats until the event is 3 days old.
RETRY_STEPS = (10, 60, 300, 1800, 7200, 21600)
# Set in a session's ``info`` when deliveries were added to it: the gateway's transaction wakes
# the deliverer once it commits (a transaction that staged none wakes nobody).
STAGED = "outbox_staged"
GIVE_UP_AFTER = timedelta(days=3)


async def enqueue(gateway: Gateway, event: Event) -> int:
    """One outbox row per subscribed endpoint of the event's tenant, in a transaction of its own.

    For events that report a change in the database, prefer :func:`stage` inside the change's
    own transaction: then the change and its notification commit together or not at all.
    """
    if event.name not in gateway.client_events or event.tenant_id is None:
        return 0
    if gateway.sessionmaker is None:
        return 0
    async with gateway.session() as session:
        if not await _subscribers(session, event):
            return 0  # the common case costs a read, not the write lock
    async with gateway.transaction() as session:
        return await stage(session, event)


async def stage(session: AsyncSession, event: Event) -> int:
    """Add the event's outbox rows to the caller's transaction; the caller commits."""
    if event.tenant_id is None:
        return 0
    targets = await _subscribers(session, event)
    _add_deliveries(session, event, targets)
    return len(targets)


def _add_deliveries(session: AsyncSession, event: Event, targets: list[WebhookEndpointRow]) -> None:
    if not targets:
        return
    session.info[STAGED] = True
    occurred = rfc3339(event.occurred_at or utcnow())
    for endpoint in targets:
        delivery_id = new_id("evt")
        session.add(
            WebhookDeliveryRow(
                id=delivery_id,
                endpoint_id=endpoint.id,
                tenant_id=event.tenant_id,
                event=event.name,
                payload={
                    "id": delivery_id,
                    "type": event.name,
                    "createdAt": occurred,
                    "data": event.data,
                },
            )
        )


async def stage_many(session: AsyncSession, events: list[Event]) -> int:
    """:func:`stage` for several events, with one read of their tenants' endpoints."""
    tenants = {event.tenant_id for event in events if event.tenant_id is not None}
    if not tenants:
        return 0
    found = await session.execute(
        select(WebhookEndpointRow).where(
            WebhookEndpointRow.tenant_id.in_(tenants), WebhookEndpointRow.active.is_(True)
        )
    )
    endpoints = list(found.scalars())
    written = 0
    for event in events:
        targets = [
            e for e in endpoints if e.tenant_id == event.tenant_id and event.name in e.events
        ]
        _add_deliveries(session, event, targets)
        written += len(targets)
    return written


async def _subscribers(session: AsyncSession, event: Event) -> list[WebhookEndpointRow]:
    endpoints = await session.execute(
        select(WebhookEndpointRow).where(
            WebhookEndpointRow.tenant_id == event.tenant_id,
            WebhookEndpointRow.active.is_(True),
        )
    )
    return [e for e in endpoints.scalars() if event.name in e.events]


class Deliverer:
    """Sends due deliveries; a failed one is tried again later, one older than 3 days is dropped."""

    def __init__(self, gateway: Gateway, poll_seconds: float = 1.0) -> None:
        self.gateway = gateway
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._http: aiohttp.ClientSession | None = None
        self.passes = 0  # background passes made (each reads the due deliveries)

    def start(self) -> None:
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._task = asyncio.create_task(self._run(), name="webhook-deliverer")

    async def __aenter__(self) -> Deliverer:
        """Deliver by hand (tests, a one-off drain) without the background loop."""
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._http.close()

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self.passes += 1
            try:
                await self.deliver_due()
            except Exception:  # a bad pass must not end the loop
                log.exception("webhooks.pass_failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def deliver_due(self, limit: int = 50) -> int:
        now = utcnow()
        async with self.gateway.session() as session:
            rows = (
                await session.execute(
                    select(WebhookDeliveryRow, WebhookEndpointRow)
                    .join(
                        WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id
                    )
                    .where(
                        WebhookDeliveryRow.status == "pending",
                        WebhookDeliveryRow.next_attempt_at <= now,
                    )
                    .order_by(WebhookDeliveryRow.next_attempt_at)
                    .limit(limit)
                )
            ).all()
            secrets = {}
            for _, endpoint in rows:
                if endpoint.id not in secrets:
                    opened = await SecretRepository(session, self.gateway.vault).open(
                        endpoint.secret_id
                    )
                    secrets[endpoint.id] = opened.reveal() if opened else ""
        for delivery, endpoint in rows:
            await self._send(delivery, endpoint, secrets[endpoint.id])
        return len(rows)

    async def _send(
        self, delivery: WebhookDeliveryRow, endpoint: WebhookEndpointRow, secret: str
    ) -> None:
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Gateway-Signature": sign(secret, body),
            "Gateway-Event": delivery.event,
            "Gateway-Delivery": delivery.id,
        }
        status, error = None, None
        try:
            async with self._http.post(endpoint.url, data=body, headers=headers) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            error = type(err).__name__
        now = utcnow()
        async with self.gateway.transaction() as session:
            row = await session.get(WebhookDeliveryRow, delivery.id)
            if row is None or row.status != "pending":
                return
            row.attempts += 1
            row.last_status, row.last_error = status, error
            if status is not None and 200 <= status < 300:
                row.status, row.delivered_at = "delivered", now
            elif now - row.created_at > GIVE_UP_AFTER:
                row.status = "failed"
            else:
                step = RETRY_STEPS[min(row.attempts, len(RETRY_STEPS)) - 1]
                row.next_attempt_at = now + timedelta(seconds=step)
        log.info(
            "webhooks.delivery",
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            event_type=delivery.event,
            status=status,
            error=error,
        )
