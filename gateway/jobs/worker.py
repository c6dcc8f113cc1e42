"""Workers: claim due jobs with a lease, publish through the connector, record the outcome.

Every write after the claim is fenced on the attempt number, and a lease that runs out lets
another worker take the job over, so a crashed worker never loses a job and a slow one never
overwrites the attempt that replaced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from ..connector import Connector
from ..db.base import utcnow
from ..db.connections import AccountRepository, ConnectionRepository
from ..db.jobs import JobRepository
from ..db.models import PublishJobRow
from ..db.repositories import SecretRepository
from ..errors import (
    GatewayError,
    NeedsReauth,
    OutcomeUnknown,
    PlatformError,
    RateLimited,
    UnsupportedCapability,
)
from ..types import AccountRef, Event, PublishRequest, PublishResult
from .backoff import next_attempt

if TYPE_CHECKING:
    from ..host import Gateway

log = structlog.get_logger("gateway.jobs")


def publish_request(body: dict[str, Any], platform: str) -> PublishRequest:
    options = body.get("options") or {}
    return PublishRequest(
        title=body.get("title"),
        body=body.get("body"),
        media_urls=tuple(body.get("mediaUrls") or ()),
        link=body.get("link"),
        options=dict(options.get(platform) or {}),
    )


def error_json(error: GatewayError) -> dict[str, Any]:
    return {
        "code": error.code,
        "message": error.detail,
        "retryable": bool(getattr(error, "retryable", False)),
        "platformCode": None
        if getattr(error, "platform_code", None) is None
        else str(error.platform_code),
        "httpStatus": getattr(error, "http_status", None),
    }


class Workers:
    """``concurrency`` worker tasks in this process, sharing the queue with any other process."""

    def __init__(self, gateway: Gateway, concurrency: int) -> None:
        self.gateway = gateway
        self.settings = gateway.settings.jobs
        self.concurrency = concurrency
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tasks: list[asyncio.Task] = []
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"publish-worker-{i}")
            for i in range(self.concurrency)
        ]

    def wake(self) -> None:
        """A job was queued: look now rather than at the next poll."""
        self._wake.set()

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Finish the jobs in hand (their leases would hand them over anyway), then stop."""
        self._stopping.set()
        self._wake.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                worked = await self.run_once()
            except Exception:  # a bad pass must not end the worker
                log.exception("worker.pass_failed")
                worked = False
            if not worked:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_seconds)

    async def run_once(self) -> bool:
        """Claim and run one job; False when nothing was due."""
        claimed = await self.claim()
        if claimed is None:
            return False
        await self.execute(claimed)
        return True

    async def claim(self) -> PublishJobRow | None:
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.lease_seconds)
        max_age = timedelta(days=self.settings.max_age_days)
        async with self.gateway.transaction() as session:
            repo = JobRepository(session)
            candidates = await repo.claimable(now, 20, skip_locked=not self.gateway.uses_sqlite)
            for job in candidates:
                connector = self.gateway.connectors.get(job.platform)
                serial = connector is not None and connector.one_at_a_time_per_account
                if serial and await repo.account_busy(job.account_id, job.id, now):
                    continue  # its account is busy: it waits its turn, others go ahead
                if job.status == "running" and job.attempts >= job.max_attempts:
                    # It keeps taking its worker down with it: stop trying.
                    await self._bury(
                        session,
                        job,
                        "max_attempts",
                        {
                            "code": "worker_lost",
                            "message": "the job's worker stopped mid-attempt too often",
                            "retryable": False,
                            "platformCode": None,
                            "httpStatus": None,
                        },
                    )
                    continue
                if job.created_at + max_age < now and job.status != "running":
                    await self._bury(
                        session,
                        job,
                        "expired",
                        {
                            "code": "expired",
                            "message": "the job waited more than the queue's maximum age",
                            "retryable": False,
                            "platformCode": None,
                            "httpStatus": None,
                        },
                    )
                    continue
                job.status = "running"
                job.attempts += 1
                job.lease_owner = self.owner
                job.lease_until = lease
                job.updated_at = now
                await session.flush()
                return job
        return None

    async def _bury(self, session, job: PublishJobRow, reason: str, error: dict) -> None:
        job.status, job.dead_reason, job.dead_at, job.error_json = "dead", reason, utcnow(), error
        job.lease_owner = job.lease_until = None
        await session.flush()
        await self._announce(job, "job.dead")

    async def execute(self, job: PublishJobRow) -> None:
        fence = job.attempts
        renewer = asyncio.create_task(self._renew_lease(job.id, fence))
        try:
            result = await self._publish(job)
        except GatewayError as err:
            await self._failed(job, fence, err)
        else:
            await self._published(job, fence, result)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer

    async def _publish(self, job: PublishJobRow) -> PublishResult:
        gateway = self.gateway
        connector = gateway.connector(job.platform)
        if connector is None:
            raise UnsupportedCapability(f"no plugin provides {job.platform!r} any more")
        async with gateway.session() as session:
            connection = await ConnectionRepository(session).get(job.connection_id)
            accounts = await AccountRepository(session).for_connection(job.connection_id)
            account_row = next((a for a in accounts if a.id == job.account_id), None)
            account_token = None
            if account_row is not None and account_row.token_secret_id:
                account_token = await SecretRepository(session, gateway.vault).open(
                    account_row.token_secret_id
                )
        if connection is None or connection.status != "active":
            raise NeedsReauth("the connection needs reconnecting")
        if account_row is None:
            raise UnsupportedCapability(f"account {job.account_id} is no longer available")
        account = AccountRef(
            id=account_row.id,
            kind=account_row.kind,
            external_id=account_row.external_id,
            name=account_row.name,
            metadata=dict(account_row.metadata_json or {}),
            token=account_token,
        )
        request = publish_request(job.request_json, job.platform)
        credentials = await gateway.tokens.credentials(job.connection_id)
        if (job.error_json or {}).get("code") == "outcome_unknown":
            # The last attempt may have published: look first. Enough time has passed for
            # that request to have finished at the platform (see _failed).
            found = await connector.find_published(
                request, account, credentials, idempotency_key=job.id
            )
            if found is not None:
                return found
        try:
            return await connector.publish(request, account, credentials, idempotency_key=job.id)
        except OutcomeUnknown as unknown:
            if type(connector).find_published is Connector.find_published:
                raise OutcomeUnknown(
                    f"{unknown.detail}; the platform cannot be asked whether the post went out, "
                    "so it is not retried (replay it from the DLQ after checking)",
                    platform_code=unknown.platform_code,
                ) from unknown
            raise RetryableUnknown(unknown.detail) from unknown

    async def _published(self, job: PublishJobRow, fence: int, result: PublishResult) -> None:
        now = utcnow()
        async with self.gateway.transaction() as session:
            written = await JobRepository(session).fenced_update(
                job.id,
                fence,
                status="published",
                remote_post_id=result.remote_id,
                remote_url=result.url,
                published_at=now,
                lease_owner=None,
                lease_until=None,
                error_json=None,
            )
        if not written:
            log.warning("job.fence_lost", job_id=job.id, attempt=fence)
            return
        self.gateway.telemetry.instruments.publish_success.add(1, {"platform": job.platform})
        latency = (now - (job.scheduled_at or job.created_at)).total_seconds() * 1000
        self.gateway.telemetry.instruments.publish_latency.record(
            latency, {"platform": job.platform}
        )
        log.info("job.published", job_id=job.id, platform=job.platform, remote_id=result.remote_id)
        job.remote_post_id, job.remote_url = result.remote_id, result.url
        await self._announce(job, "job.published")

    async def _failed(self, job: PublishJobRow, fence: int, err: GatewayError) -> None:
        now = utcnow()
        self.gateway.telemetry.instruments.publish_error.add(
            1, {"platform": job.platform, "code": err.code}
        )
        failures = job.failures
        values: dict[str, Any] = {
            "error_json": error_json(err),
            "lease_owner": None,
            "lease_until": None,
        }
        if isinstance(err, NeedsReauth):
            values.update(status="dead", dead_reason="auth", dead_at=now)
            await self._reconnect_needed(job, err)
        elif isinstance(err, RateLimited):
            # The platform's limit: wait as long as it says, without spending an attempt.
            values.update(
                status="failed",
                next_attempt_at=next_attempt(self.settings, failures, now, err.retry_after or 1.0),
            )
        elif isinstance(err, RetryableUnknown) or (
            isinstance(err, PlatformError) and err.retryable
        ):
            failures += 1
            values["failures"] = failures
            retry_at = next_attempt(self.settings, failures, now)
            if isinstance(err, RetryableUnknown):
                # The request may still be running at the platform: look only once it must
                # have finished, or the lookup could miss a post that is about to appear.
                timeout = self.gateway.settings.outbound.total_timeout_seconds
                retry_at = max(retry_at, now + timedelta(seconds=timeout + 1))
            if failures >= job.max_attempts:
                values.update(status="dead", dead_reason="max_attempts", dead_at=now)
            else:
                values.update(status="failed", next_attempt_at=retry_at)
        else:
            values.update(
                status="dead", dead_reason="non_retryable", dead_at=now, failures=failures + 1
            )
        async with self.gateway.transaction() as session:
            written = await JobRepository(session).fenced_update(job.id, fence, **values)
        if not written:
            log.warning("job.fence_lost", job_id=job.id, attempt=fence)
            return
        log.info(
            "job.attempt_failed",
            job_id=job.id,
            platform=job.platform,
            error=err.code,
            status=values["status"],
        )
        job.error_json = values["error_json"]
        await self._announce(job, "job.dead" if values["status"] == "dead" else "job.failed")

    async def _reconnect_needed(self, job: PublishJobRow, err: NeedsReauth) -> None:
        async with self.gateway.session() as session:
            connection = await ConnectionRepository(session).get(job.connection_id)
        if connection is not None and connection.status == "active":
            await self.gateway.tokens.mark_needs_reconnect(connection, err.detail)

    async def _renew_lease(self, job_id: str, fence: int) -> None:
        """Keep the lease while a long platform call runs (a third of the lease at a time)."""
        period = self.settings.lease_seconds / 3
        while True:
            await asyncio.sleep(period)
            async with self.gateway.transaction() as session:
                kept = await JobRepository(session).fenced_update(
                    job_id,
                    fence,
                    lease_until=utcnow() + timedelta(seconds=self.settings.lease_seconds),
                )
            if not kept:
                return

    async def _announce(self, job: PublishJobRow, name: str) -> None:
        await self.gateway.emit(
            Event(
                name,
                tenant_id=job.tenant_id,
                data={
                    "jobId": job.id,
                    "postId": job.post_id,
                    "platform": job.platform,
                    "remotePostId": job.remote_post_id,
                    "error": job.error_json,
                },
            )
        )


class RetryableUnknown(PlatformError):
    """The outcome is unknown; the next attempt looks for the post before publishing."""

    code = "outcome_unknown"
    retryable = True
