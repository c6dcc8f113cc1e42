"""Workers: claim due jobs with a lease, publish or poll through the connector, record the outcome.

Every write after the claim is fenced on the attempt number, and a lease that runs out lets
another worker take the job over, so a crashed worker never loses a job and a slow one never
overwrites the attempt that replaced it. A job taken over from a worker that died mid-call is
reconciled first (the connector looks for the post), so that the takeover never publishes twice.
Asynchronous publishes (`processing`) are polled on a schedule, each poll a short claim, so a
video that takes ten minutes to process holds no worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from ..db.base import utcnow
from ..db.connections import ConnectionRepository
from ..db.jobs import JobRepository
from ..db.models import PublishJobRow
from ..db.outage import log_failed_pass, outage_of
from ..errors import (
    GatewayError,
    NeedsReauth,
    OutcomeUnknown,
    PlatformError,
    RateLimited,
    UnsupportedCapability,
)
from ..types import PublishResult
from .analytics import first_collection
from .backoff import next_attempt
from .claims import Claimer, outcome_in_doubt
from .dispatch import Dispatcher, Handout, Outcome
from .events import announce
from .leases import LeaseChecks
from .targets import Target, load_target

if TYPE_CHECKING:
    from ..host import Gateway

log = structlog.get_logger("gateway.jobs")


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
    """``concurrency`` worker tasks in this process, sharing the queue with any other process.

    A worker's write of its job's outcome and its claim of the next job are one turn at the
    database, and the turns of all the workers of the process share transactions (the
    :class:`Dispatcher`). A claim also takes jobs for the idle workers of the process; they
    wait in a local buffer, and a worker is woken for each. Idle workers sleep until woken: by
    a new job in this process, by such a claim, or by the ticker that has one of them look for
    due work (retries, scheduled posts, other processes' jobs) every ``poll_seconds``.
    """

    def __init__(self, gateway: Gateway, concurrency: int) -> None:
        self.gateway = gateway
        self.settings = gateway.settings.jobs
        self.concurrency = concurrency
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.claimer = Claimer(gateway, self.owner)
        self.dispatcher = Dispatcher(gateway, self.claimer, self._spare, self._hand_out)
        self.lease_checks = LeaseChecks(gateway)
        self._tasks: list[asyncio.Task] = []
        self._ticker: asyncio.Task | None = None
        self._stopping = asyncio.Event()
        # Idle workers, each waiting on its own future: a new job wakes one, not all of them.
        self._idle: collections.deque[asyncio.Future] = collections.deque()
        # A wake that found every worker busy: the next to rest looks once more first, as its
        # claim may have read the queue before the woken-for job was committed.
        self._missed_wake = False

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(), name=f"publish-worker-{i}")
            for i in range(self.concurrency)
        ]
        self._ticker = asyncio.create_task(self._tick(), name="publish-worker-ticker")

    def wake(self) -> None:
        """A job was queued: one idle worker looks now."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._missed_wake = True

    def _spare(self) -> int:
        """Workers that could start a job now: the idle ones."""
        return 0 if self._stopping.is_set() else len(self._idle)

    def _hand_out(self, waiting: int, full: bool) -> None:
        """``waiting`` jobs were claimed for idle workers: wake one for each (and one more to
        claim again when the claim took all it asked for, as more may be due)."""
        for _ in range(waiting + full):
            self.wake()

    async def _tick(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.poll_seconds)
            if not self._stopping.is_set() and not self.dispatcher.busy:
                self.wake()

    async def _rest(self) -> None:
        if self._missed_wake:
            self._missed_wake = False
            return
        waiter = asyncio.get_running_loop().create_future()
        self._idle.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._idle.remove(waiter)

    async def stop(self, grace_seconds: float = 30.0) -> None:
        """Finish the jobs in hand (their leases would hand them over anyway), then stop."""
        self._stopping.set()
        for waiter in self._idle:
            if not waiter.done():
                waiter.set_result(None)
        if self._ticker is not None:
            await self._ticker
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._give_back()

    async def _give_back(self) -> None:
        """Jobs claimed but not started go back to the queue, so that nobody waits for their
        leases to run out (then they would be taken over as unknown outcomes)."""
        ready = self.dispatcher.ready
        unstarted = [ready.popleft() for _ in range(len(ready))]
        if not unstarted:
            return
        try:
            async with self.gateway.transaction() as session:
                repo = JobRepository(session)
                for handout in unstarted:
                    await repo.fenced_update(
                        handout.job.id,
                        handout.job.attempts,
                        status=handout.was,
                        lease_owner=None,
                        lease_until=None,
                    )
        except Exception as err:  # their leases run out and they are taken over: nothing is lost
            log_failed_pass(log, "worker.give_back_failed", err, jobs=len(unstarted))

    async def _loop(self) -> None:
        handout: Handout | None = None
        while True:
            if handout is None:
                if self._stopping.is_set():
                    return
                try:
                    handout = await self._next()
                except Exception as err:  # a bad pass must not end the worker
                    log_failed_pass(log, "worker.pass_failed", err)
                if handout is None:
                    if not self._stopping.is_set():
                        await self._rest()
                    continue
            try:
                # The job's outcome and the claim of the next one share a transaction.
                handout = await self.execute(
                    handout.job, handout.target, then_claim=not self._stopping.is_set()
                )
            except Exception as err:
                log_failed_pass(log, "worker.pass_failed", err)
                handout = None

    async def run_once(self) -> bool:
        """Claim and run one job; False when nothing was due."""
        handout = await self._next()
        if handout is None:
            return False
        await self.execute(handout.job, handout.target)
        return True

    async def claim(self) -> PublishJobRow | None:
        """The next job for this worker (claimed fairly across tenants), if one is due."""
        handout = await self._next()
        return None if handout is None else handout.job

    async def _next(self) -> Handout | None:
        if self.dispatcher.ready:
            return self.dispatcher.ready.popleft()
        return (await self.dispatcher.turn(None, wants_job=True)).handout

    async def execute(
        self,
        job: PublishJobRow,
        target: Target | GatewayError | None = None,
        *,
        then_claim: bool = False,
    ) -> Handout | None:
        """Run ``job``'s attempt and record its outcome; with ``then_claim``, claim the next
        job with that write and return it."""
        fence = job.attempts
        lease = Lease(self.gateway, self.lease_checks, job.id, fence)
        lease.start()
        try:
            if isinstance(target, GatewayError):
                raise target
            if target is None:
                target = await load_target(self.gateway, job)
            if job.poll_handle is not None:
                result = await self._poll(job, target)
            else:
                result = await self._publish(job, target, lease)
        except LeaseLost:
            log.warning("job.fence_lost", job_id=job.id, attempt=fence)
            return None
        except GatewayError as err:
            return await self._failed(job, fence, err, then_claim)
        except Exception as err:
            if outage_of(err) is not None:
                raise  # the database, not the job: nothing can be recorded; the lease hands it on
            # A bug (the connector's or the core's), not a platform's answer: logged once with
            # its traceback, and an attempt spent like any other, so a job that crashes every
            # time reaches the DLQ instead of holding a worker for a lease each time.
            log.exception(
                "job.attempt_crashed",
                job_id=job.id,
                platform=job.platform,
                attempt=fence,
                error=type(err).__name__,
            )
            return await self._failed(job, fence, AttemptCrashed.of(err), then_claim)
        else:
            if result.processing:
                return await self._processing(job, fence, result, then_claim)
            return await self._published(job, fence, result, then_claim)
        finally:
            await lease.stop()

    async def _publish(self, job: PublishJobRow, target: Target, lease: Lease) -> PublishResult:
        connector, account, request = target.connector, target.account, target.request
        can_look = connector.reconciles
        if outcome_in_doubt(job):
            # The last attempt may have published (the call timed out after sending, or its
            # worker stopped mid-call): look first, so that this attempt cannot post twice.
            if not can_look:
                raise OutcomeUnknown(
                    "the last attempt stopped mid-call and the platform cannot be asked "
                    "whether the post went out, so it is not retried (replay it from the DLQ "
                    "after checking)"
                )
            found = await connector.find_published(
                request, account, target.credentials, idempotency_key=job.id
            )
            if found is not None:
                return found
            job.error_json = None  # the last attempt did not publish: its outcome is known now
        now = utcnow()
        if (
            connector.capabilities.native_scheduling
            and job.scheduled_at is not None
            and job.scheduled_at > now + timedelta(minutes=1)
        ):
            request = replace(request, scheduled_at=job.scheduled_at)
        # A worker held up (by a busy database, say) past its lease has been replaced: it
        # must not post as well. Checked last thing before the request goes out.
        await lease.confirm()
        try:
            return await connector.publish(
                request, account, target.credentials, idempotency_key=job.id
            )
        except UnsupportedCapability as refused:
            if request.scheduled_at is None:
                raise
            raise NativeSchedulingRefused(refused.detail) from refused
        except OutcomeUnknown as unknown:
            if not can_look:
                raise OutcomeUnknown(
                    f"{unknown.detail}; the platform cannot be asked whether the post went out, "
                    "so it is not retried (replay it from the DLQ after checking)",
                    platform_code=unknown.platform_code,
                ) from unknown
            raise RetryableUnknown(unknown.detail) from unknown

    async def _poll(self, job: PublishJobRow, target: Target) -> PublishResult:
        policy = target.connector.polling
        since = job.processing_since
        if job.status == "processing" and since is not None and utcnow() - since > policy.timeout:
            raise ProcessingTimedOut(
                f"the platform was still processing the post after {policy.timeout}"
            )
        return await target.connector.poll(job.poll_handle, target.account, target.credentials)

    async def _processing(
        self, job: PublishJobRow, fence: int, result: PublishResult, then_claim: bool
    ) -> Handout | None:
        """The platform is still working on it: poll later, without holding a worker."""
        now = utcnow()
        connector = self.gateway.connector(job.platform)
        policy = connector.polling
        polls = job.polls + 1 if job.poll_handle is not None else 0
        wait = min(policy.first * (policy.factor**polls), policy.longest)
        natively_scheduled = job.scheduled_at is not None and job.scheduled_at > now
        turn = await self.dispatcher.turn(
            Outcome(
                job,
                fence,
                {
                    "status": "scheduled" if natively_scheduled else "processing",
                    "poll_handle": dict(result.handle),
                    "processing_since": job.processing_since or result.poll_at or now,
                    "polls": polls,
                    "next_attempt_at": result.poll_at or now + wait,
                    "remote_post_id": result.remote_id,
                    "remote_url": result.url,
                    "notes": _with_notes(job, result.notes),
                    "lease_owner": None,
                    "lease_until": None,
                    "error_json": None,
                },
            ),
            wants_job=then_claim,
        )
        if not turn.written:
            log.warning("job.fence_lost", job_id=job.id, attempt=fence)
            return turn.handout
        log.info("job.processing", job_id=job.id, platform=job.platform, polls=polls)
        return turn.handout

    async def _published(
        self, job: PublishJobRow, fence: int, result: PublishResult, then_claim: bool
    ) -> Handout | None:
        now = utcnow()
        analytics_at = first_collection(self.gateway, job.platform, now)
        job.remote_post_id, job.remote_url = result.remote_id, result.url
        job.error_json = None  # job.published carries no error from an earlier attempt
        turn = await self.dispatcher.turn(
            Outcome(
                job,
                fence,
                {
                    "status": "published",
                    "remote_post_id": result.remote_id,
                    "remote_url": result.url,
                    "published_at": now,
                    "notes": _with_notes(job, result.notes),
                    "analytics_next_at": analytics_at,
                    "analytics_step": 0,
                    "lease_owner": None,
                    "lease_until": None,
                    "error_json": None,
                },
                "job.published",
            ),
            wants_job=then_claim,
        )
        if not turn.written:
            log.warning("job.fence_lost", job_id=job.id, attempt=fence)
            return turn.handout
        self.gateway.telemetry.instruments.publish_success.add(1, {"platform": job.platform})
        latency = (now - job.due_since).total_seconds() * 1000
        self.gateway.telemetry.instruments.publish_latency.record(
            latency, {"platform": job.platform}
        )
        log.info("job.published", job_id=job.id, platform=job.platform, remote_id=result.remote_id)
        await announce(self.gateway, [turn.event])
        return turn.handout

    async def _failed(
        self, job: PublishJobRow, fence: int, err: GatewayError, then_claim: bool
    ) -> Handout | None:
        now = utcnow()
        self.gateway.telemetry.instruments.publish_error.add(
            1, {"platform": job.platform, "code": err.code}
        )
        polling = job.poll_handle is not None
        failures = job.failures
        values: dict[str, Any] = {
            "error_json": error_json(err),
            "lease_owner": None,
            "lease_until": None,
        }
        if isinstance(err, NativeSchedulingRefused):
            # The platform cannot hold this one: the gateway's own scheduler publishes it.
            values.update(
                status="scheduled",
                next_attempt_at=job.scheduled_at,
                error_json=None,
                notes=_with_notes(
                    job, (f"scheduled by the gateway, not the platform: {err.detail}",)
                ),
            )
        elif isinstance(err, NeedsReauth):
            values.update(status="dead", dead_reason="auth", dead_at=now)
            await self._reconnect_needed(job, err)
        elif isinstance(err, RateLimited):
            # The platform's limit: wait as long as it says, without spending an attempt.
            values.update(
                status=job.status if polling else "failed",
                next_attempt_at=next_attempt(self.settings, failures, now, err.retry_after or 1.0),
            )
        elif polling and isinstance(err, PlatformError) and err.retryable:
            # Asking again is harmless; the processing timeout bounds how long it goes on.
            failures += 1
            values.update(
                status=job.status,
                failures=failures,
                next_attempt_at=next_attempt(self.settings, failures, now),
            )
        elif isinstance(err, AttemptCrashed):
            failures += 1
            values["failures"] = failures
            if failures >= job.max_attempts:
                values.update(status="dead", dead_reason="max_attempts", dead_at=now)
            else:
                # Retryable: the cause may pass (an error a library raised that the connector
                # does not map, an answer it did not expect), and max_attempts bounds the cost.
                # Not before a request that may still be running has finished (as below).
                timeout = self.gateway.settings.outbound.total_timeout_seconds
                retry_at = next_attempt(self.settings, failures, now)
                values.update(
                    status=job.status if polling else "failed",
                    next_attempt_at=retry_at
                    if polling
                    else max(retry_at, now + timedelta(seconds=timeout + 1)),
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
        if values["status"] == "failed" and outcome_in_doubt(job):
            # This attempt stopped before it learnt whether the last one published (say the
            # look itself was rate limited): the next attempt must still look first.
            values["error_json"] = {
                **values["error_json"],
                "code": "outcome_unknown",
                "message": "the post is looked for before any new attempt "
                f"(the last look failed: {err.detail})",
                "retryable": True,
            }
        if values["error_json"] is not None:
            values["error_at"] = now
        job.error_json = values["error_json"]
        name = {"dead": "job.dead", "failed": "job.failed"}.get(values["status"])
        turn = await self.dispatcher.turn(Outcome(job, fence, values, name), wants_job=then_claim)
        if not turn.written:
            log.warning("job.fence_lost", job_id=job.id, attempt=fence)
            return turn.handout
        log.info(
            "job.attempt_failed",
            job_id=job.id,
            platform=job.platform,
            error=err.code,
            status=values["status"],
        )
        await announce(self.gateway, [turn.event] if turn.event is not None else [])
        return turn.handout

    async def _reconnect_needed(self, job: PublishJobRow, err: NeedsReauth) -> None:
        async with self.gateway.session() as session:
            connection = await ConnectionRepository(session).get(job.connection_id)
        if connection is not None and connection.status == "active":
            await self.gateway.tokens.mark_needs_reconnect(connection, err.detail)


class LeaseLost(Exception):
    """Another worker took the job over: this attempt stops without a word to the database."""


class Lease:
    """Keeps a claim's lease while a long platform call runs (a third of the lease at a time).

    It stops through an event, never by cancelling: a task cancelled in the middle of a query
    can break the database connection under it.
    """

    def __init__(self, gateway: Gateway, checks: LeaseChecks, job_id: str, fence: int) -> None:
        self.gateway = gateway
        self.checks = checks
        self.job_id = job_id
        self.fence = fence
        self.seconds = gateway.settings.jobs.lease_seconds
        self.lost = False
        self._done = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        # Most calls end long before a third of the lease: only a timer until then, and a
        # renewing task only for a call that lasts longer.
        self._timer = asyncio.get_running_loop().call_later(self.seconds / 3, self._renewing)

    def _renewing(self) -> None:
        self._timer = None
        self._task = asyncio.create_task(self._renew(), name=f"lease-{self.job_id}")

    async def stop(self) -> None:
        self._done.set()
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            await self._task

    async def confirm(self) -> None:
        """:raises LeaseLost: the job is no longer this attempt's."""
        if self.lost:
            raise LeaseLost
        if not await self.checks.held(self.job_id, self.fence):
            self.lost = True
            raise LeaseLost

    async def _renew(self) -> None:
        """From a third of the lease on: renew it, then again every third, until stopped."""
        while not self._done.is_set():
            async with self.gateway.transaction() as session:
                kept = await JobRepository(session).fenced_update(
                    self.job_id, self.fence, lease_until=utcnow() + timedelta(seconds=self.seconds)
                )
            if not kept:
                self.lost = True
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), self.seconds / 3)
                return


def _with_notes(job: PublishJobRow, notes: tuple[str, ...]) -> list[str] | None:
    merged = list(job.notes or [])
    merged += [note for note in notes if note not in merged]
    return merged or None


class RetryableUnknown(PlatformError):
    """The outcome is unknown; the next attempt looks for the post before publishing."""

    code = "outcome_unknown"
    retryable = True


class AttemptCrashed(PlatformError):
    """An attempt raised something that is no :class:`GatewayError` (a bug).

    It may have happened after the request left, so its code is one of the outcomes in doubt
    (``claims.OUTCOME_IN_DOUBT``): the next attempt looks for the post first where the
    platform can be asked, and where it cannot the job goes to the DLQ rather than risk a
    second post.
    """

    code = "internal_error"
    retryable = True

    @classmethod
    def of(cls, err: Exception) -> AttemptCrashed:
        return cls(
            f"the attempt failed on an unexpected {type(err).__name__} (a bug: the logs have "
            "its traceback under job.attempt_crashed)"
        )


class ProcessingTimedOut(PlatformError):
    """The platform kept processing the post past the connector's polling timeout."""

    code = "processing_timeout"


class NativeSchedulingRefused(PlatformError):
    """The platform's own scheduler cannot take this post; the gateway's scheduler will."""

    code = "native_scheduling_refused"
