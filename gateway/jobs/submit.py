"""Accepting a publish request: checked first, committed before the answer, idempotent.

The accept path does no database round trip of its own when it can help it: the connection's
owner and accounts come from a short-lived cache (``ownership``), and the Idempotency-Key and
ownership are settled inside the group commit (``inserter``), under the write lock.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..db.base import utcnow
from ..db.jobs import JobRepository
from ..errors import (
    ApiError,
    Conflict,
    FieldProblem,
    InvalidInput,
    ResourceNotFound,
    Unprocessable,
)
from ..ids import new_sortable_id
from ..timefmt import rfc3339
from ..types import AccountRef
from . import declared
from .batch import IDEMPOTENCY_WINDOW, PendingJob, Refused, Stored, pending_job
from .ownership import Target, ownership_of
from .targets import publish_request

if TYPE_CHECKING:
    from ..host import Gateway

__all__ = ["IDEMPOTENCY_WINDOW", "Stored", "request_hash", "submit"]

# A schedule this far in the past is a mistake, not a clock difference.
PAST_TOLERANCE = timedelta(minutes=1)
# A connection that changes under a request twice in a row is changing; the client retries.
ATTEMPTS = 2


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


async def submit(
    gateway: Gateway, *, tenant_id: str, body: dict[str, Any], idempotency_key: str | None
) -> Stored:
    """Check, then commit the job; only a committed job is ever acknowledged.

    A request whose Idempotency-Key was seen before answers with that job (same body) or 409
    (another body), whatever the request's target has become since.
    """
    digest = request_hash(body)
    for _ in range(ATTEMPTS):
        try:
            target = await ownership_of(gateway).resolve(
                tenant_id, body["connectionId"], body["accountId"]
            )
            job = _checked(gateway, tenant_id, body, idempotency_key, digest, target)
        except ApiError:
            if idempotency_key:
                previous = await _previous(gateway, tenant_id, idempotency_key, digest)
                if previous is not None:
                    return previous
            raise
        try:
            stored = await gateway.inserter.insert(job)
        except Refused:
            # The cached view was stale (revoked, reconnected, account gone): read it afresh,
            # which refuses with the right answer, or finds it publishable again.
            ownership_of(gateway).forget(body["connectionId"])
            continue
        if not stored.replayed and gateway.workers is not None:
            gateway.workers.wake()
        return stored
    raise Conflict(f"connection {body['connectionId']} is changing; try again")


def _checked(
    gateway: Gateway,
    tenant_id: str,
    body: dict[str, Any],
    idempotency_key: str | None,
    digest: str,
    target: Target,
) -> PendingJob:
    """The job row for a request its platform accepts; raises what the client must fix."""
    connector = gateway.connector(target.platform)
    if connector is None:
        raise ResourceNotFound(f"no plugin provides {target.platform!r}")
    account = target.accounts[body["accountId"]]
    _check_link(body.get("link"))
    now = utcnow()
    scheduled_at = _schedule(gateway, body.get("scheduledAt"), now)
    # A platform that schedules natively gets the post at once, to hold until its time.
    native = scheduled_at is not None and connector.capabilities.native_scheduling
    options = declared.platform_options(body, target.platform)
    request = publish_request(body, target.platform)
    if native:
        request = replace(request, scheduled_at=scheduled_at)
    ref = AccountRef(
        id=account.id,
        kind=account.kind,
        external_id=account.external_id,
        name=account.name,
        metadata=dict(account.metadata),
    )
    problems = declared.refusals(connector, request, ref, options)
    if problems:
        raise Unprocessable(
            f"{target.platform} would refuse this post; nothing was queued", errors=problems
        )
    return pending_job(
        job_id=new_sortable_id("job"),
        post_id=new_sortable_id("post"),
        tenant_id=tenant_id,
        connection_id=target.connection_id,
        account_id=account.id,
        platform=target.platform,
        status="scheduled" if scheduled_at else "queued",
        request_json=body,
        idempotency_key=idempotency_key,
        request_hash=digest,
        max_attempts=gateway.settings.jobs.max_attempts,
        scheduled_at=scheduled_at,
        next_attempt_at=now if native else (scheduled_at or now),
        now=now,
    )


async def _previous(gateway: Gateway, tenant_id: str, key: str, digest: str) -> Stored | None:
    """The job a key already names (a refused request may still be a replay)."""
    async with gateway.session() as session:
        previous = await JobRepository(session).by_idempotency_key(tenant_id, key)
    if previous is None or previous.created_at + IDEMPOTENCY_WINDOW < utcnow():
        return None
    if previous.request_hash != digest:
        raise Conflict("this Idempotency-Key was used with a different request body")
    return Stored(previous.id, previous.post_id, previous.status, replayed=True)


def _format_hint(now: datetime) -> str:
    # The example is built from the clock: a fixed date in a hint turns into a past time,
    # which the client would copy and see refused.
    example = rfc3339((now + timedelta(hours=1)).replace(microsecond=0))
    return f"use RFC 3339 with a time zone (Z or an offset), e.g. {example}"


def _check_link(link: str | None) -> None:
    """A post's link is shown to the platform's users as a link: a web address only, never
    ``javascript:``, ``file:`` or ``data:`` (a platform that renders it would run or open it)."""
    if link is None:
        return
    try:
        parts = urlsplit(link)
        web_address = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # a malformed port or IPv6 literal
        web_address = False
    if web_address:
        return
    raise InvalidInput(
        "link is not an http(s) URL",
        errors=[FieldProblem("link", "url", "send an http:// or https:// address with a host")],
    )


def _schedule(gateway: Gateway, raw: str | None, now: datetime) -> datetime | None:
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            "scheduledAt is not an RFC 3339 time",
            errors=[FieldProblem("scheduledAt", "format", _format_hint(now))],
        ) from None
    if when.tzinfo is None:
        raise InvalidInput(
            "scheduledAt needs a time zone",
            errors=[FieldProblem("scheduledAt", "format", _format_hint(now))],
        )
    if when < now - PAST_TOLERANCE:
        raise InvalidInput(
            "scheduledAt is in the past",
            errors=[
                FieldProblem(
                    "scheduledAt", "past", "send a future time, or leave it out to publish now"
                )
            ],
        )
    horizon = timedelta(days=gateway.settings.jobs.schedule_horizon_days)
    if when > now + horizon:
        raise InvalidInput(
            "scheduledAt is too far ahead",
            errors=[
                FieldProblem(
                    "scheduledAt", "too_far", f"schedule at most {horizon.days} days ahead"
                )
            ],
        )
    return when if when > now else None
