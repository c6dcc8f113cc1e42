"""Turning domain events into outbox rows, and delivering them with retries for up to 3 days."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

import aiohttp
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from yarl import URL

from ..db import sqlite_hop
from ..db.base import utcnow
from ..db.models import WebhookDeliveryRow, WebhookEndpointRow
from ..db.outage import log_failed_pass
from ..db.repositories import SecretRepository
from ..ids import new_id
from ..netguard import GuardedSession, TargetRefused
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
# A receiver that has not answered within this many seconds: a failed attempt.
SEND_TIMEOUT_SECONDS = 10
# A claimed delivery's next_attempt_at is pushed this far ahead, so that no other process sends
# it meanwhile: far longer than one send (SEND_TIMEOUT_SECONDS) and the write of its outcome.
# If this process dies mid-send, the delivery is due again when the lease runs out (sent at
# least once: receivers dedupe on the Gateway-Delivery header).
LEASE = timedelta(seconds=60)
# An endpoint's deliveries go out one after another, so the last of a slow endpoint's may wait
# longer than a lease: before each send, a lease with less than this left is renewed.
RENEW_BELOW = timedelta(seconds=30)
# Sends in flight at once in one process (each endpoint has at most one): a receiver that hangs
# until the timeout holds up its own deliveries, not every other tenant's.
CONCURRENCY = 10
# Deliveries claimed at a time.
BATCH = 50


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
    connection = await session.connection()
    if sqlite_hop.available(connection):
        # Most tenants of a busy queue have no endpoint: on SQLite a prepared read of those
        # that do costs one trip, far less than the ORM read below.
        tenants = await _subscribed_tenants(connection, tenants)
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


async def _subscribed_tenants(connection, tenants: set[str]) -> set[str]:
    """Those of ``tenants`` with an active endpoint (SQLite)."""
    values = {"tenants": json.dumps(sorted(tenants))}
    column = WebhookEndpointRow.__table__.c.tenant_id
    prepared = _subscribed_sql(connection.dialect)
    found = await sqlite_hop.fetch(connection, prepared, [column], values)
    return {row[0] for row in found}


@lru_cache(maxsize=4)
def _subscribed_sql(dialect) -> sqlite_hop.Prepared:
    """The read of :func:`_subscribed_tenants`, compiled once for any number of tenants (a
    batch's read otherwise cost more to compile than to run)."""
    return sqlite_hop.Prepared(
        dialect,
        select(WebhookEndpointRow.tenant_id)
        .where(
            WebhookEndpointRow.tenant_id.in_(sqlite_hop.each_value("tenants")),
            WebhookEndpointRow.active.is_(True),
        )
        .distinct(),
    )


async def _subscribers(session: AsyncSession, event: Event) -> list[WebhookEndpointRow]:
    endpoints = await session.execute(
        select(WebhookEndpointRow).where(
            WebhookEndpointRow.tenant_id == event.tenant_id,
            WebhookEndpointRow.active.is_(True),
        )
    )
    return [e for e in endpoints.scalars() if event.name in e.events]


@dataclass(slots=True)
class _Claimed:
    """A delivery this process claimed, and the lease (its ``next_attempt_at``) it holds."""

    delivery: WebhookDeliveryRow
    lease: datetime


@dataclass(slots=True)
class _Lane:
    """One endpoint's claimed deliveries, sent one after another in the order they were created."""

    endpoint: WebhookEndpointRow
    secret: str
    claimed: list[_Claimed]
    claim_number: int  # of the claim that took them


class Deliverer:
    """Sends due deliveries; a failed one is tried again later, one older than 3 days is dropped.

    A delivery is claimed before it is sent (a lease: its ``next_attempt_at`` pushed ahead, in a
    short transaction of its own), so processes sharing the database never send it at the same
    time, and every outcome is written only if the lease is still this process's. Endpoints are
    sent to at once; one endpoint's deliveries go out one at a time, oldest first, and the
    background loop leaves an endpoint it is still sending to out of its next claims.
    """

    def __init__(self, gateway: Gateway, poll_seconds: float = 1.0) -> None:
        self.gateway = gateway
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._http: GuardedSession | None = None
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._busy: set[str] = set()  # endpoints this process has claimed deliveries for
        self._lanes: set[asyncio.Task] = set()  # the background loop's lanes still sending
        self._held_back = False  # the loop skipped a claim: every lane was busy
        self._claims = 0
        self.passes = 0  # background passes made (each claims the due deliveries)

    def start(self) -> None:
        self._http = self._client()
        self._task = asyncio.create_task(self._run(), name="webhook-deliverer")

    async def __aenter__(self) -> Deliverer:
        """Deliver by hand (tests, a one-off drain) without the background loop."""
        self._http = self._client()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._http.close()

    def _client(self) -> GuardedSession:
        # Never a redirect: a 307 would re-send the signed body to wherever it points.
        timeout = SEND_TIMEOUT_SECONDS
        return self.gateway.guard.session(
            max_redirects=0, total_timeout=timeout, connect_timeout=timeout
        )

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Stop claiming; lanes finish the send in hand, the rest keep their lease until it
        runs out (then this or another process sends them)."""
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*self._lanes, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            # Cleared before the claim: a delivery committed after it wakes the next one.
            self._wake.clear()
            self._held_back = len(self._lanes) >= CONCURRENCY
            if not self._held_back:
                self.passes += 1
                try:
                    lanes = await self._claim(BATCH)
                except Exception as err:  # a bad pass must not end the loop
                    log_failed_pass(log, "webhooks.pass_failed", err)
                    lanes = []
                # The lanes run on: a slow endpoint holds up its own deliveries, not the next
                # claim (which leaves that endpoint out).
                for lane in lanes:
                    task = asyncio.create_task(self._background_lane(lane), name="webhook-lane")
                    self._lanes.add(task)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)

    async def _background_lane(self, lane: _Lane) -> None:
        try:
            await self._send_lane(lane)
        except Exception as err:
            log_failed_pass(log, "webhooks.lane_failed", err, endpoint_id=lane.endpoint.id)
        finally:
            self._busy.discard(lane.endpoint.id)
            self._lanes.discard(asyncio.current_task())
            # A claim since this lane's left its endpoint out, or none was made: claim again.
            if self._held_back or self._claims > lane.claim_number:
                self._wake.set()

    async def deliver_due(self, limit: int = BATCH) -> int:
        """Claim up to ``limit`` due deliveries and send them; how many were claimed."""
        lanes = await self._claim(limit)
        try:
            await asyncio.gather(*(self._send_lane(lane) for lane in lanes))
        finally:
            self._busy.difference_update(lane.endpoint.id for lane in lanes)
        return sum(len(lane.claimed) for lane in lanes)

    async def _claim(self, limit: int) -> list[_Lane]:
        """Lease the oldest due deliveries, grouped by endpoint (each endpoint's by creation)."""
        now = utcnow()
        lease = now + LEASE
        query = due_query(now, limit, busy=self._busy, skip_locked=not self.gateway.uses_sqlite)
        async with self.gateway.transaction() as session:
            rows = (await session.execute(query)).all()
            if rows:
                await session.execute(
                    update(WebhookDeliveryRow)
                    .where(WebhookDeliveryRow.id.in_([delivery.id for delivery, _ in rows]))
                    .values(next_attempt_at=lease)
                    .execution_options(synchronize_session=False)
                )
        self._claims += 1
        lanes: dict[str, _Lane] = {}
        for delivery, endpoint in rows:
            lane = lanes.setdefault(endpoint.id, _Lane(endpoint, "", [], self._claims))
            lane.claimed.append(_Claimed(delivery, lease))
        self._busy.update(lanes)
        try:
            async with self.gateway.session() as session:
                for lane in lanes.values():
                    opened = await SecretRepository(session, self.gateway.vault).open(
                        lane.endpoint.secret_id
                    )
                    lane.secret = opened.reveal() if opened else ""
        except BaseException:
            self._busy.difference_update(lanes)  # the leases run out; sent again then
            raise
        for lane in lanes.values():
            lane.claimed.sort(key=lambda c: (c.delivery.created_at, c.delivery.id))
        return list(lanes.values())

    async def _send_lane(self, lane: _Lane) -> None:
        for claimed in lane.claimed:
            if self._stopping.is_set():
                return  # the rest keep their lease: due again when it runs out
            async with self._slots:
                if claimed.lease - utcnow() < RENEW_BELOW and not await self._renew(claimed):
                    continue  # the lease ran out and another process took it over
                await self._send(claimed, lane.endpoint, lane.secret)

    async def _renew(self, claimed: _Claimed) -> bool:
        lease = utcnow() + LEASE
        async with self.gateway.transaction() as session:
            renewed = await _fenced_update(session, claimed, next_attempt_at=lease)
        if renewed:
            claimed.lease = lease
        return renewed

    async def _send(self, claimed: _Claimed, endpoint: WebhookEndpointRow, secret: str) -> None:
        delivery = claimed.delivery
        body = json.dumps(delivery.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Gateway-Signature": sign(secret, body),
            "Gateway-Event": delivery.event,
            "Gateway-Delivery": delivery.id,
        }
        status, error, refused = None, None, None
        try:
            request = self._http.request("POST", endpoint.url, data=body, headers=headers)
            async with request as response:
                status = response.status
        except TargetRefused as err:
            # The guard refused the URL or what it resolved to: sending again would be refused
            # again, so the delivery fails now rather than after 3 days of retries.
            refused = err
            error = f"target_refused: {err.detail}"
        except (aiohttp.ClientError, TimeoutError) as err:
            error = type(err).__name__
        now = utcnow()
        attempts = delivery.attempts + 1  # the claimed row is unchanged while the lease holds
        outcome: dict = {"attempts": attempts, "last_status": status, "last_error": error}
        if status is not None and 200 <= status < 300:
            outcome.update(status="delivered", delivered_at=now)
        elif refused is not None:
            outcome.update(status="failed")
            log.warning(
                "webhooks.delivery_refused",
                delivery_id=delivery.id,
                endpoint_id=endpoint.id,
                # The host only: an endpoint's path or query may carry the client's own secret.
                host=URL(endpoint.url).host,
                reason=refused.kind,
                detail=refused.detail,
            )
        elif now - delivery.created_at > GIVE_UP_AFTER:
            outcome.update(status="failed")
        else:
            step = RETRY_STEPS[min(attempts, len(RETRY_STEPS)) - 1]
            outcome.update(next_attempt_at=now + timedelta(seconds=step))
        async with self.gateway.transaction() as session:
            recorded = await _fenced_update(session, claimed, **outcome)
        log.info(
            "webhooks.delivery",
            delivery_id=delivery.id,
            endpoint_id=endpoint.id,
            event_type=delivery.event,
            status=status,
            error=error,
            # False: this process's lease ran out mid-send and another took the delivery over.
            recorded=recorded,
        )


def due_query(now: datetime, limit: int, *, busy: set[str] = frozenset(), skip_locked: bool):
    """The oldest due deliveries with their endpoints, leaving out the ``busy`` endpoints';
    ``skip_locked`` (PostgreSQL): processes claiming at once take different rows."""
    query = (
        select(WebhookDeliveryRow, WebhookEndpointRow)
        .join(WebhookEndpointRow, WebhookEndpointRow.id == WebhookDeliveryRow.endpoint_id)
        .where(WebhookDeliveryRow.status == "pending", WebhookDeliveryRow.next_attempt_at <= now)
        .order_by(WebhookDeliveryRow.next_attempt_at)
        .limit(limit)
    )
    if busy:
        query = query.where(WebhookDeliveryRow.endpoint_id.not_in(busy))
    if skip_locked:
        query = query.with_for_update(skip_locked=True, of=WebhookDeliveryRow)
    return query


async def _fenced_update(session: AsyncSession, claimed: _Claimed, **values: object) -> bool:
    """Write only if the delivery is still pending under this process's lease."""
    result = await session.execute(
        update(WebhookDeliveryRow)
        .where(
            WebhookDeliveryRow.id == claimed.delivery.id,
            WebhookDeliveryRow.status == "pending",
            WebhookDeliveryRow.next_attempt_at == claimed.lease,
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1
