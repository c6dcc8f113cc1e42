"""Accepting a publish request: checked first, committed before the answer, idempotent."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from ..db.base import utcnow
from ..db.connections import AccountRepository, ConnectionRepository
from ..db.jobs import JobRepository
from ..db.models import PublishJobRow
from ..errors import Conflict, FieldProblem, ResourceNotFound, Unprocessable
from ..ids import new_id
from ..types import AccountRef
from .targets import publish_request

if TYPE_CHECKING:
    from ..host import Gateway

IDEMPOTENCY_WINDOW = timedelta(hours=24)
# A schedule this far in the past is a mistake, not a clock difference.
PAST_TOLERANCE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Accepted:
    job: PublishJobRow
    replayed: bool  # the same Idempotency-Key and body were seen before


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


async def submit(
    gateway: Gateway, *, tenant_id: str, body: dict[str, Any], idempotency_key: str | None
) -> Accepted:
    """Check, then commit the job; only a committed job is ever acknowledged."""
    digest = request_hash(body)
    if idempotency_key:
        previous = await _previous(gateway, tenant_id, idempotency_key, digest)
        if previous is not None:
            return Accepted(previous, True)
    async with gateway.session() as session:
        connection = await ConnectionRepository(session).get(
            body["connectionId"], tenant_id=tenant_id
        )
        if connection is None:
            raise ResourceNotFound(f"no connection {body['connectionId']}")
        accounts = await AccountRepository(session).for_connection(connection.id)
    account = next((a for a in accounts if a.id == body["accountId"]), None)
    if account is None:
        raise ResourceNotFound(f"no account {body['accountId']} on connection {connection.id}")
    if connection.status != "active":
        raise Conflict(f"connection {connection.id} is {connection.status}; reconnect it first")
    connector = gateway.connector(connection.platform)
    if connector is None:
        raise ResourceNotFound(f"no plugin provides {connection.platform!r}")
    now = utcnow()
    scheduled_at = _schedule(gateway, body.get("scheduledAt"), now)
    # A platform that schedules natively gets the post at once, to hold until its time.
    native = scheduled_at is not None and connector.capabilities.native_scheduling
    request = publish_request(body, connection.platform)
    if native:
        request = replace(request, scheduled_at=scheduled_at)
    problems = connector.check(
        request,
        AccountRef(
            id=account.id,
            kind=account.kind,
            external_id=account.external_id,
            name=account.name,
            metadata=dict(account.metadata_json or {}),
        ),
    )
    if problems:
        raise Unprocessable(
            f"{connection.platform} would refuse this post; nothing was queued", errors=problems
        )
    job = PublishJobRow(
        id=new_id("job"),
        post_id=new_id("post"),
        tenant_id=tenant_id,
        connection_id=connection.id,
        account_id=account.id,
        platform=connection.platform,
        status="scheduled" if scheduled_at else "queued",
        request_json=body,
        idempotency_key=idempotency_key,
        request_hash=digest,
        max_attempts=gateway.settings.jobs.max_attempts,
        scheduled_at=scheduled_at,
        next_attempt_at=now if native else (scheduled_at or now),
    )
    try:
        await gateway.inserter.insert(job)
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer with its job.
        previous = (
            await _previous(gateway, tenant_id, idempotency_key, digest)
            if idempotency_key
            else None
        )
        if previous is None:
            raise
        return Accepted(previous, True)
    if gateway.workers is not None:
        gateway.workers.wake()
    return Accepted(job, False)


async def _previous(
    gateway: Gateway, tenant_id: str, key: str, digest: str
) -> PublishJobRow | None:
    async with gateway.transaction() as session:
        repo = JobRepository(session)
        previous = await repo.by_idempotency_key(tenant_id, key)
        if previous is None:
            return None
        if previous.created_at + IDEMPOTENCY_WINDOW < utcnow():
            previous.idempotency_key = None  # the key is free again after 24 hours
            await session.flush()
            return None
    if previous.request_hash != digest:
        raise Conflict("this Idempotency-Key was used with a different request body")
    return previous


def _schedule(gateway: Gateway, raw: str | None, now: datetime) -> datetime | None:
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable(
            "scheduledAt is not an RFC 3339 time",
            errors=[FieldProblem("scheduledAt", "format", "use e.g. 2026-12-01T09:00:00Z")],
        ) from None
    if when.tzinfo is None:
        raise Unprocessable(
            "scheduledAt needs a time zone",
            errors=[FieldProblem("scheduledAt", "format", "add Z or an offset")],
        )
    if when < now - PAST_TOLERANCE:
        raise Unprocessable(
            "scheduledAt is in the past",
            errors=[
                FieldProblem(
                    "scheduledAt", "past", "send a future time, or leave it out to publish now"
                )
            ],
        )
    horizon = timedelta(days=gateway.settings.jobs.schedule_horizon_days)
    if when > now + horizon:
        raise Unprocessable(
            "scheduledAt is too far ahead",
            errors=[
                FieldProblem(
                    "scheduledAt", "too_far", f"schedule at most {horizon.days} days ahead"
                )
            ],
        )
    return when if when > now else None
