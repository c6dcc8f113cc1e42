"""Connector validation against each platform's sandbox or the live platform: a report, a table."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from .. import clock
from ..timefmt import rfc3339
from ..types import OAuth2Spec
from .local import ApiError, LocalGateway, ServedGateway, publishes
from .progress import Progress
from .tables import render

DEFAULT_OUTPUT = Path("logs/connector_test_results.json")
CHECKS = (
    "connect",
    "health_check",
    "accounts",
    "publish",
    "delete",
    "queue",
    "retry",
    "error_classification",
)
# The design's error table: what a platform's answer must become (the job's error code).
# 429 last: the outbound client then holds the platform's calls until Retry-After has passed.
ERROR_TABLE = (
    (503, "transient"),
    (400, "invalid_request"),
    (403, "permission_denied"),
    (404, "not_found"),
    (429, "rate_limited"),
)
STATUSES = ("pass", "fail", "skip")
SETTLED = frozenset({"published", "dead", "cancelled", "failed"})


class CheckFailed(Exception):
    """A check's failure, in words an operator acts on."""


class Skipped(Exception):
    """A check that does not apply (no capability, nothing published to delete...)."""


@dataclass
class CheckResult:
    name: str
    status: str
    latency_ms: float
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "latencyMs": round(self.latency_ms, 1),
            "detail": self.detail,
        }


@dataclass
class PlatformRun:
    """What one platform's checks share: the connection, an account, the post made."""

    platform: str
    connection_id: str | None = None
    account: dict[str, Any] | None = None
    accounts: list[dict[str, Any]] = field(default_factory=list)  # the others of usable kinds
    published: dict[str, Any] | None = None
    results: list[CheckResult] = field(default_factory=list)
    # In a live run, this platform on its sandbox, for the checks that inject faults.
    on_sandbox: PlatformRun | None = None


async def validate(
    local: ServedGateway,
    platforms: list[str],
    *,
    publish: bool = True,
    progress: Progress | None = None,
    sandboxes: LocalGateway | None = None,
) -> dict[str, Any]:
    """Run the checks for ``platforms`` on ``local``; the report in the documented shape.

    Per platform: connect, health check, accounts, a publish and delete round trip, queue
    behaviour (scheduled, idempotent, cancelled), a retried 503, and error classification.
    A live platform cannot be made to fail on purpose: in a live run (``local.live``) the
    last two run on the platform's sandbox in ``sandboxes``, and say so.
    """
    progress = progress or Progress(enabled=False)
    progress.total = len(platforms) * len(CHECKS)
    report = []
    for platform in platforms:
        run = PlatformRun(platform)
        steps: dict[str, Callable[[], Awaitable[str]]] = {
            "connect": lambda run=run: _connect(local, run),
            "health_check": lambda run=run: _health(local, run),
            "accounts": lambda run=run: _accounts(local, run),
            "publish": lambda run=run: _publish(local, run, publish),
            "delete": lambda run=run: _delete(local, run),
            "queue": lambda run=run: _queue(local, run, publish),
            "retry": lambda run=run: _faulted(_retry, local, run, publish, sandboxes),
            "error_classification": lambda run=run: _faulted(
                _errors, local, run, publish, sandboxes
            ),
        }
        for name in CHECKS:
            progress.step(f"{platform}: {name}")
            run.results.append(await _timed(name, steps[name]))
            progress.advance()
        report.append({"platform": platform, "checks": [r.as_json() for r in run.results]})
    progress.clear()
    return {"generatedAt": rfc3339(clock.now()), "platforms": report}


async def _timed(name: str, step: Callable[[], Awaitable[str]]) -> CheckResult:
    started = time.perf_counter()
    try:
        detail, status = await step(), "pass"
    except Skipped as skip:
        detail, status = str(skip), "skip"
    except CheckFailed as failure:
        detail, status = str(failure), "fail"
    except ApiError as err:
        detail, status = _api_detail(err), "fail"
    except Exception as err:  # a check that breaks is a failed check, named, not a traceback
        detail, status = f"{type(err).__name__}: {err}", "fail"
    return CheckResult(name, status, (time.perf_counter() - started) * 1000, detail[:500])


def _api_detail(err: ApiError) -> str:
    body = err.body if isinstance(err.body, dict) else {}
    problems = "; ".join(f"{p['field']}: {p['message']}" for p in body.get("errors") or [])
    return f"HTTP {err.status}: {body.get('detail') or err.body}" + (
        f" ({problems})" if problems else ""
    )


def _needs(run: PlatformRun, *what: str) -> None:
    for item in what:
        if getattr(run, item) is None:
            raise Skipped(f"no {item.replace('_', ' ')} (an earlier check failed)")


async def _connect(local: ServedGateway, run: PlatformRun) -> str:
    try:
        run.connection_id = await local.connect(run.platform)
    except LookupError as err:
        raise Skipped(f"cannot connect: {err}") from None
    kind = "OAuth" if isinstance(local.connector(run.platform).auth, OAuth2Spec) else "API-key"
    made = "existing" if run.platform in local.reused else "new"
    where = "live" if local.live else "sandbox"
    return f"{made} {kind} connection {run.connection_id} ({where})"


async def _faulted(
    check: Callable[[ServedGateway, PlatformRun, bool], Awaitable[str]],
    local: ServedGateway,
    run: PlatformRun,
    publish: bool,
    sandboxes: LocalGateway | None,
) -> str:
    """A check that injects faults: in a live run, on the platform's sandbox instead."""
    if not local.live:
        return await check(local, run, publish)
    if sandboxes is None or run.platform not in sandboxes.gateway.sandboxes:
        raise Skipped("faults cannot be injected on the live platform, and it has no sandbox")
    if run.on_sandbox is None:
        run.on_sandbox = PlatformRun(run.platform)
        await _connect(sandboxes, run.on_sandbox)
        await _accounts(sandboxes, run.on_sandbox)
    # Only the sandbox is posted to: --no-publish guards real accounts, not this.
    return f"{await check(sandboxes, run.on_sandbox, True)} (on the sandbox)"


async def _health(local: ServedGateway, run: PlatformRun) -> str:
    _needs(run, "connection_id")
    result = await local.api("POST", f"/api/connections/{run.connection_id}/health-check")
    if result["status"] != "healthy":
        raise CheckFailed(
            f"{result['status']}: {result.get('errorCode') or ''} {result.get('detail') or ''}"
        )
    return f"healthy in {result['latencyMs']} ms"


async def _accounts(local: ServedGateway, run: PlatformRun) -> str:
    _needs(run, "connection_id")
    accounts = (await local.api("GET", f"/api/connections/{run.connection_id}/accounts"))["data"]
    if not accounts:
        raise CheckFailed("the platform returned no publishable account")
    post_kinds = local.connector(run.platform).capabilities.post_kinds
    run.account = next((a for a in accounts if a["kind"] in post_kinds), accounts[0])
    run.accounts = [a for a in accounts if a is not run.account and a["kind"] in post_kinds]
    return ", ".join(sorted({f"{a['kind']} ({a['name']})" for a in accounts}))[:300]


def _can_publish(local: ServedGateway, run: PlatformRun, publish: bool) -> None:
    if not publish:
        raise Skipped("--no-publish")
    connector = local.connector(run.platform)
    if not publishes(connector):
        raise Skipped("the connector does not publish")
    _needs(run, "account")
    if run.account["kind"] not in connector.capabilities.post_kinds:
        raise Skipped(f"no post kinds for {run.account['kind']}")


def _stamped_body() -> str:
    # Stamped so that a real platform does not refuse a repeat of an earlier run's text.
    return f"Connector validation {clock.now():%Y-%m-%d %H:%M:%S}"


async def _submit(
    local: ServedGateway, run: PlatformRun, body: str | None = None, **fields: Any
) -> dict:
    """A titled text post, or one with an image when the platform needs media, to the first
    account that takes it (an audience without a default sender refuses it: its 422 says so).
    """
    accepted, run.account = await local.publish_somewhere(
        run.connection_id,
        [run.account, *run.accounts],
        variants=({}, {"mediaUrls": ["https://cdn.example.com/validation.jpg"]}),
        title="Connector validation",
        body=body or _stamped_body(),
        **fields,
    )
    return accepted


async def _publish(local: ServedGateway, run: PlatformRun, publish: bool) -> str:
    _can_publish(local, run, publish)
    accepted = await _submit(local, run)
    job = await local.wait_job(accepted["jobId"])
    if job["status"] != "published":
        raise CheckFailed(f"job {job['jobId']} is {job['status']}: {_error(job)}")
    run.published = job
    return f"published {job['remotePostId']} after {job['attempts']} attempt(s)"


async def _delete(local: ServedGateway, run: PlatformRun) -> str:
    if not local.connector(run.platform).capabilities.delete:
        raise Skipped("the platform cannot delete posts")
    if run.published is None:
        raise Skipped("nothing was published to delete")
    try:
        await local.api("DELETE", f"/api/posts/{run.published['postId']}")
    except ApiError as err:
        if err.status != 422:
            raise
        # The platform's own rule (a sent email campaign stays sent): not a fault.
        raise Skipped(f"the platform keeps what it published: {_api_detail(err)}") from err
    return f"deleted {run.published['remotePostId']}"


async def _queue(local: ServedGateway, run: PlatformRun, publish: bool) -> str:
    _can_publish(local, run, publish)
    later = (clock.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    key = f"validation-{clock.timestamp():.6f}"
    # One body for both: a stamp taken afresh could cross a second and make them differ.
    same = {"body": _stamped_body(), "scheduledAt": later, "idempotency_key": key}
    first = await _submit(local, run, **same)
    try:
        again = await _submit(local, run, **same)
        if again["jobId"] != first["jobId"]:
            raise CheckFailed("the same Idempotency-Key made a second job")
        if first["status"] != "scheduled":
            raise CheckFailed(f"a post for later is {first['status']}, not scheduled")
        if local.connector(run.platform).capabilities.native_scheduling:
            # The platform's own scheduler takes it: cancel once it holds it, so that
            # cancelling also takes it back there (a cancel before that would be the gateway's).
            held = await local.wait_job(first["jobId"], done=lambda job: job["remotePostId"])
            if not held["remotePostId"]:
                raise CheckFailed(f"the platform did not take the scheduled post: {_error(held)}")
    except BaseException:
        # A failed check must not leave a post due on the platform an hour from now.
        with contextlib.suppress(Exception):
            await _cancel(local, first["jobId"])
        raise
    job = await _cancel(local, first["jobId"])
    if job["status"] != "cancelled":
        raise CheckFailed(f"a cancelled job is {job['status']}")
    return "scheduled, idempotent, cancelled"


async def _cancel(local: ServedGateway, job_id: str) -> dict:
    """Cancel the job (waiting out a worker that is checking it with the platform); the job."""
    for _ in range(100):
        try:
            await local.api("DELETE", f"/api/jobs/{job_id}")
            break
        except ApiError as err:
            if err.status != 409:
                raise
            await asyncio.sleep(0.05)
    return await local.api("GET", f"/api/jobs/{job_id}")


async def _retry(local: ServedGateway, run: PlatformRun, publish: bool) -> str:
    _can_publish(local, run, publish)
    await local.sandbox(run.platform, "POST", "faults", json={"method": "POST", "status": 503})
    try:
        accepted = await _submit(local, run)
        # However quickly the retry comes, the outcome shows it: published on the 2nd attempt.
        job = await local.wait_job(accepted["jobId"])
    finally:
        await local.sandbox(run.platform, "DELETE", "faults")
    if job["status"] != "published" or job["attempts"] != 2:
        raise CheckFailed(
            f"after one 503 the job is {job['status']} after {job['attempts']} attempt(s): "
            f"{_error(job)}"
        )
    return "503, retried, published on attempt 2"


async def _errors(local: ServedGateway, run: PlatformRun, publish: bool) -> str:
    _can_publish(local, run, publish)
    wrong = []
    for status, expected in ERROR_TABLE:
        # Every try fails while the job is watched, so a quick retry cannot hide the answer.
        fault = {"method": "POST", "status": status, "count": 100}
        if status == 429:
            # Longer than the outbound client waits in-process: the queue must take it over.
            wait = local.gateway.settings.outbound.max_retry_after_seconds + 60
            fault["headers"] = {"Retry-After": str(int(wait))}
        await local.sandbox(run.platform, "POST", "faults", json=fault)
        try:
            accepted = await _submit(local, run)
            job = await local.wait_job(accepted["jobId"], SETTLED)
        finally:
            await local.sandbox(run.platform, "DELETE", "faults")
        got = (job["error"] or {}).get("code")
        if got != expected:
            wrong.append(f"{status} became {got or job['status']} (expected {expected})")
        if job["status"] == "failed":
            # A retry would publish it for real; this check only wanted the classification.
            await local.api("DELETE", f"/api/jobs/{job['jobId']}", ok=(200, 204, 409))
    if wrong:
        raise CheckFailed("; ".join(wrong))
    return ", ".join(f"{s}→{c}" for s, c in ERROR_TABLE)


def _error(job: dict) -> str:
    error = job.get("error") or {}
    return f"{error.get('code')}: {error.get('message')}" if error else "no error recorded"


def write_report(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def table(report: dict[str, Any]) -> str:
    """The report as a table a person scans: one line per check, then the totals."""
    rows = [
        (
            platform["platform"],
            check["name"],
            check["status"].upper(),
            f"{check['latencyMs']:.0f}",
            check["detail"][:90],
        )
        for platform in report["platforms"]
        for check in platform["checks"]
    ]
    counts = {status: sum(1 for r in rows if r[2] == status.upper()) for status in STATUSES}
    totals = f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped"
    return render(("PLATFORM", "CHECK", "STATUS", "MS", "DETAIL"), rows) + "\n\n" + totals


def failed(report: dict[str, Any]) -> list[str]:
    return [
        f"{p['platform']}.{c['name']}"
        for p in report["platforms"]
        for c in p["checks"]
        if c["status"] == "fail"
    ]
