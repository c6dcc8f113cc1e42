"""Helpers of the fault tests: many connections, many jobs, and what the sandbox made of them."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from gateway.db.models import PublishJobRow

from ...support import gateway_env, spawn_gateway, wait_for_output
from .test_pipeline import POSTS, posts

TERMINAL = ("published", "dead", "cancelled")
# The sandbox allows 100 calls a minute per token (and the connector waits for that budget), so
# large runs spread their jobs over several users' connections, at most this many per token.
JOBS_PER_TOKEN = 50


async def connect_users(live, count: int, prefix: str) -> list[tuple[str, str]]:
    """``count`` users connect through OAuth: their (connection id, first page) pairs."""
    pairs = []
    for n in range(count):
        status, body, _ = await live.connect(login_as=f"{prefix}-{n}")
        assert status == 200, body
        connection_id = body["connectionId"]
        status, accounts = await live.api("GET", f"/api/connections/{connection_id}/accounts")
        assert status == 200, accounts
        pairs.append((connection_id, accounts["data"][0]["id"]))
    return pairs


async def queue_many(live, accounts: list[tuple[str, str]], count: int) -> list[str]:
    """``count`` publish requests spread over ``accounts``; the job ids of the 202s."""
    gate = asyncio.Semaphore(20)

    async def one(n: int) -> str:
        connection_id, account_id = accounts[n % len(accounts)]
        body = {"connectionId": connection_id, "accountId": account_id, "body": f"post {n}"}
        async with gate:
            status, accepted = await live.api("POST", "/api/publish", json=body)
        assert status == 202, accepted
        return accepted["jobId"]

    return list(await asyncio.gather(*(one(n) for n in range(count))))


async def job_states(live) -> Counter:
    async with live.gateway.session() as session:
        rows = await session.execute(
            select(PublishJobRow.status, func.count()).group_by(PublishJobRow.status)
        )
        return Counter(dict(rows.all()))


async def job_rows(live) -> dict[str, PublishJobRow]:
    async with live.gateway.session() as session:
        return {row.id: row for row in (await session.execute(select(PublishJobRow))).scalars()}


async def wait_until_settled(live, total: int, *, processes=(), polls: int = 3000) -> Counter:
    """Poll until every job is in a final state; the last counts either way.

    A deadline, not a speed assertion: it only stops a broken run from hanging the suite.
    """
    states = Counter()
    for _ in range(polls):
        states = await job_states(live)
        if sum(states[s] for s in TERMINAL) == total:
            return states
        if any(p.returncode is not None for p in processes):
            break  # a worker died on its own: report the states as they are
        await asyncio.sleep(0.1)
    return states


async def check_each_published_once(live, job_ids: list[str]) -> dict[str, PublishJobRow]:
    """Every job is published with exactly one post at the platform, or dead with a reason
    and no post; the sandbox's state and its journal of successful POSTs agree."""
    rows = await job_rows(live)
    assert sorted(rows) == sorted(job_ids), "a job was lost or appeared from nowhere"
    made = Counter(post["clientReference"] for post in await posts(live))
    created = Counter(
        entry["body"]["client_reference"]
        for entry in await live.journal(POSTS)
        if entry["method"] == "POST" and entry["status"] == 201
    )
    assert made == created  # the journal and the platform's state tell the same story
    duplicates = {ref: n for ref, n in made.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} jobs published more than once: {duplicates}"
    by_reference = {post["clientReference"]: post for post in await posts(live)}
    for job_id, row in rows.items():
        if row.status == "published":
            assert made[job_id] == 1, f"{job_id} is published but the platform has no post"
            assert row.remote_post_id == by_reference[job_id]["id"]
        else:
            assert row.status == "dead", f"{job_id} ended {row.status}"
            assert row.dead_reason, f"{job_id} is dead without a reason"
            assert made[job_id] == 0, f"{job_id} is dead but its post went out"
    return rows


async def start_workers(
    live, tmp_path, site, names, *, database_url: str, concurrency: int, **settings: str
) -> list[tuple[Any, Path]]:
    """`gateway worker` processes (one per name) on ``database_url``, publishing to ``live``'s
    sandbox with only their workers running, each ready: (process, its log file) pairs."""
    workers = []
    for name in names:
        env = gateway_env(
            tmp_path / f"worker-{name}",
            site,
            database_url=database_url,
            jobs_poll_seconds="0.1",
            connections_background="false",
            webhooks_background="false",
            platforms_examplesocial_sandbox_url=live.sandbox(""),
            **settings,
        )
        log_file = tmp_path / f"worker-{name}.log"
        process = await spawn_gateway(
            "worker", "--concurrency", str(concurrency), env=env, log_file=log_file
        )
        workers.append((process, log_file))
    try:
        for process, log_file in workers:
            await wait_for_output(log_file, "gateway worker:", process)
    except BaseException:
        await kill_workers(workers)
        raise
    return workers


async def kill_workers(workers: list[tuple[Any, Path]]) -> None:
    """Whatever a failed test left running."""
    for process, _ in workers:
        if process.returncode is None:
            process.kill()
            await process.wait()
