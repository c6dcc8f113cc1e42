"""What one group commit decides for each request: its job, a replay, a conflict or a refusal.

Pure functions and plain data, shared by the SQLite and the PostgreSQL ways of writing a batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..errors import Conflict

IDEMPOTENCY_WINDOW = timedelta(hours=24)


class Refused(Exception):
    """The write found the account gone, inactive, or not the tenant's: nothing was stored."""


@dataclass(frozen=True, slots=True)
class Stored:
    """The job a request ends with: its own, just committed, or the one its key names."""

    job_id: str
    post_id: str
    status: str
    replayed: bool = False


@dataclass(slots=True)
class PendingJob:
    """A checked publish request waiting for the next group commit."""

    values: dict[str, Any]  # the publish_jobs row
    future: asyncio.Future[Stored] | None = field(default=None, repr=False)

    @property
    def idempotency(self) -> tuple[str, str] | None:
        key = self.values["idempotency_key"]
        return None if key is None else (self.values["tenant_id"], key)

    def stored(self, replayed: bool = False) -> Stored:
        v = self.values
        return Stored(v["id"], v["post_id"], v["status"], replayed)


def pending_job(
    *,
    job_id: str,
    post_id: str,
    tenant_id: str,
    connection_id: str,
    account_id: str,
    platform: str,
    status: str,
    request_json: dict[str, Any],
    idempotency_key: str | None,
    request_hash: str,
    max_attempts: int,
    scheduled_at: datetime | None,
    next_attempt_at: datetime,
    now: datetime,
) -> PendingJob:
    return PendingJob(
        {
            "id": job_id,
            "post_id": post_id,
            "tenant_id": tenant_id,
            "connection_id": connection_id,
            "account_id": account_id,
            "platform": platform,
            "status": status,
            "request_json": request_json,
            "idempotency_key": idempotency_key,
            "request_hash": request_hash,
            "attempts": 0,
            "failures": 0,
            "max_attempts": max_attempts,
            "scheduled_at": scheduled_at,
            "next_attempt_at": next_attempt_at,
            "created_at": now,
            "updated_at": now,
        }
    )


def settle(
    batch: list[PendingJob], owned: set[tuple[str, str, str]], previous: list[tuple], now: datetime
) -> tuple[list[Stored | Exception], list[dict[str, Any]], list[str]]:
    """Each request's outcome, the rows to insert, and the jobs whose keys are freed.

    ``owned``: (tenant, connection, account) that may be published to; ``previous``: the jobs
    holding the batch's keys, as (id, post id, status, tenant, key, request hash, created at).
    """
    oldest = now - IDEMPOTENCY_WINDOW
    seen: dict[tuple[str, str], tuple[Stored, str]] = {}
    freed: list[str] = []
    for job_id, post_id, status, tenant, key, digest, created_at in previous:
        if created_at < oldest:
            freed.append(job_id)  # the key is free again after 24 hours
        else:
            seen[(tenant, key)] = (Stored(job_id, post_id, status, True), digest)
    outcomes: list[Stored | Exception] = []
    rows: list[dict[str, Any]] = []
    for job in batch:
        v = job.values
        key = job.idempotency
        first = seen.get(key) if key else None
        if first is not None:
            stored, digest = first
            if digest == v["request_hash"]:
                outcomes.append(stored)
            else:
                outcomes.append(
                    Conflict("this Idempotency-Key was used with a different request body")
                )
            continue
        if (v["tenant_id"], v["connection_id"], v["account_id"]) not in owned:
            outcomes.append(Refused(v["connection_id"]))
            continue
        if key:  # a later request of this batch with the same key gets this job
            seen[key] = (job.stored(replayed=True), v["request_hash"])
        rows.append(v)
        outcomes.append(job.stored())
    return outcomes, rows, freed
