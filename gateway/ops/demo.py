"""The guided demo: connect every sandbox, publish, watch the jobs, analytics, a DLQ replay."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ..types import OAuth2Spec
from .local import TERMINAL, ApiError, LocalGateway, publishes
from .progress import Progress
from .tables import render

FAILURE = {"method": "POST", "status": 400}  # the platform refuses the post: straight to the DLQ
SHOWN_METRICS = ("impressions", "reach", "views", "likes", "comments", "shares")


async def watch(local: LocalGateway, job_id: str, until: frozenset[str] = TERMINAL) -> list[str]:
    """The states a job passes through, as seen by polling it, until one of ``until``."""
    seen: list[str] = []
    for _ in range(600):
        job = await local.api("GET", f"/api/jobs/{job_id}")
        if not seen or seen[-1] != job["status"]:
            seen.append(job["status"])
        if job["status"] in until:
            return seen
        await asyncio.sleep(0.02)
    return seen


async def run_demo(
    local: LocalGateway, echo: Callable[[str], None], progress: Progress | None = None
) -> dict[str, Any]:
    """Walk through the product on ``local``, printing each step with ``echo``; a summary."""
    progress = progress or Progress(enabled=False)
    platforms = local.platforms()
    echo(
        f"A throw-away gateway at {local.base} with {len(platforms)} platform sandboxes: "
        "nothing here leaves this machine.\n"
    )
    # 1. Connect.
    connected: dict[str, tuple[str, dict]] = {}
    others: dict[str, list[dict]] = {}  # further accounts, should the first refuse the post
    rows = []
    for platform in platforms:
        progress.step(f"connecting {platform}")
        connector = local.connector(platform)
        auth = "OAuth 2.0" if isinstance(connector.auth, OAuth2Spec) else "API key"
        try:
            connection_id = await local.connect(platform)
        except Exception as err:  # one platform that cannot connect does not end the tour
            rows.append((platform, auth, "-", "-", f"not connected: {err}"))
            continue
        accounts = (await local.api("GET", f"/api/connections/{connection_id}/accounts"))["data"]
        kinds = connector.capabilities.post_kinds
        account = next(
            (a for a in accounts if a["kind"] in kinds), accounts[0] if accounts else None
        )
        if account is not None:
            connected[platform] = (connection_id, account)
            others[platform] = [a for a in accounts if a is not account and a["kind"] in kinds]
        name = f"{account['name']} ({account['kind']})" if account else "no accounts"
        check = await local.api("POST", f"/api/connections/{connection_id}/health-check")
        rows.append((platform, auth, connection_id, check["status"], name))
    progress.clear()
    echo("1. Connect every platform (OAuth consent or an API key, checked with the platform)")
    header = ("PLATFORM", "AUTH", "CONNECTION", "HEALTH", "ACCOUNT")
    echo(render(header, rows, indent="   ") + "\n")

    # 2. Publish one post to each, and watch the jobs.
    jobs: dict[str, dict] = {}
    rows = []
    for platform, (connection_id, account) in connected.items():
        if not publishes(local.connector(platform)):
            rows.append((platform, "-", "does not publish", "-"))
            continue
        progress.step(f"publishing to {platform}")
        try:
            accepted, taker = await local.publish_somewhere(
                connection_id,
                [account, *others[platform]],
                title="Hello",
                body=f"Hello from the gateway demo ({platform})",
            )
        except ApiError as refused:
            if refused.status != 422:
                raise
            rows.append((platform, "-", "refused by every account (422)", "-"))
            continue
        connected[platform] = (connection_id, taker)
        states = _from(accepted["status"], await watch(local, accepted["jobId"]))
        job = await local.api("GET", f"/api/jobs/{accepted['jobId']}")
        jobs[platform] = job
        rows.append((platform, job["jobId"], " → ".join(states), job["remotePostId"] or "-"))
    progress.clear()
    echo("2. Publish one post to each (POST /api/publish → 202, then a worker publishes it)")
    echo(render(("PLATFORM", "JOB", "STATES", "REMOTE POST"), rows, indent="   ") + "\n")

    # 3. Analytics.
    rows = []
    for platform, job in jobs.items():
        if job["status"] != "published" or not local.connector(platform).capabilities.analytics:
            continue
        progress.step(f"analytics for {platform}")
        figures = await local.api("GET", f"/api/analytics/{job['postId']}?refresh=true")
        metrics = figures["metrics"]
        rows.append((platform, *(_null(metrics.get(m)) for m in SHOWN_METRICS)))
    progress.clear()
    if rows:
        echo("3. Analytics (GET /api/analytics/{postId}; a metric the platform lacks is null)")
        echo(render(("PLATFORM", *SHOWN_METRICS), rows, indent="   ") + "\n")

    # 4. A job that fails into the DLQ, then is replayed.
    replayed = None
    target = next(iter(jobs), None)
    if target is not None:
        progress.step(f"a refused post on {target}")
        connection_id, account = connected[target]
        await local.sandbox(target, "POST", "faults", json=FAILURE)
        try:
            accepted = await local.publish(
                connection_id, account, title="Demo", body="This one will fail once"
            )
            states = _from(accepted["status"], await watch(local, accepted["jobId"]))
        finally:
            await local.sandbox(target, "DELETE", "faults")
        dlq = (await local.api("GET", "/api/dlq"))["data"]
        entry = next(d for d in dlq if d["jobId"] == accepted["jobId"])
        await local.api("POST", f"/api/dlq/{accepted['jobId']}/replay")
        after = await watch(local, accepted["jobId"])
        replayed = await local.api("GET", f"/api/jobs/{accepted['jobId']}")
        progress.clear()
        echo("4. A post the platform refuses goes to the dead-letter queue; replay it")
        rows = [
            ("failed", accepted["jobId"], " → ".join(states), entry["reasonCode"]),
            ("replayed", accepted["jobId"], " → ".join(after), replayed["remotePostId"] or "-"),
        ]
        echo(render(("STEP", "JOB", "STATES", "REASON / POST"), rows, indent="   ") + "\n")

    # 5. What an operator sees.
    health = await local.api("GET", "/api/health")
    rows = [
        (
            p["platform"],
            p["status"],
            p["connections"]["total"],
            _figure(p["publishing"]["successRate24h"], "%"),
            _figure(p["publishing"]["p95LatencyMs"], " ms"),
            p["dlq"]["size"],
        )
        for p in health["platforms"]
    ]
    echo("5. Health (GET /api/health, also at /dashboard)")
    echo(
        render(
            ("PLATFORM", "STATUS", "CONNECTIONS", "SUCCESS 24H", "P95", "DLQ"), rows, indent="   "
        )
    )
    return {
        "connected": sorted(connected),
        "published": {p: j["status"] for p, j in jobs.items()},
        "replayed": replayed["status"] if replayed else None,
    }


def _from(accepted: str, seen: list[str]) -> list[str]:
    """The states seen, from the one the 202 answered (the worker may be quicker than a poll)."""
    return seen if seen and seen[0] == accepted else [accepted, *seen]


def _null(value: Any) -> str:
    return "null" if value is None else str(value)


def _figure(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g}{unit}"
