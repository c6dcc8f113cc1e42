"""The database locked or out of reach: 503 with Retry-After, never a 500, nothing accepted lost."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from gateway.db.models import PublishJobRow

from ...conftest import auth
from ..connections.conftest import start_live
from ..jobs.test_pipeline import account_of

BUSY_TIMEOUT_MS = 200  # how long a writer waits for SQLite's lock before giving up


async def publish(live, connection_id: str, account_id: str, n: int):
    """POST /api/publish: (status, headers, body)."""
    body = {"connectionId": connection_id, "accountId": account_id, "body": f"post {n}"}
    async with live.http.post(
        f"{live.base}/api/publish", json=body, headers=auth(live.key)
    ) as response:
        return response.status, response.headers, await response.json(content_type=None)


async def readiness(live):
    async with live.http.get(f"{live.base}/readyz") as response:
        return response.status, response.headers, await response.json()


def assert_unavailable(status, headers, problem) -> None:
    assert status == 503, problem
    assert headers["Content-Type"].startswith("application/problem+json")
    assert problem["type"] == "urn:gateway:problem:database_unavailable"
    assert problem["status"] == 503
    assert int(headers["Retry-After"]) >= 1


async def stored_job_ids(live) -> set[str]:
    async with live.gateway.session() as session:
        return set((await session.execute(select(PublishJobRow.id))).scalars())


async def test_sqlite_locked_by_another_writer_answers_503_then_recovers(aiohttp_server, tmp_path):
    live = await start_live(aiohttp_server, tmp_path, database={"busy_timeout_ms": BUSY_TIMEOUT_MS})
    # Another program (a backup, a migration, a stuck script) holds SQLite's write lock.
    database = make_url(live.gateway.settings.database.url).database
    holder = sqlite3.connect(database, timeout=10, isolation_level=None, check_same_thread=False)
    try:
        connection_id, account_id = await account_of(live)
        accepted = set()
        status, _, body = await publish(live, connection_id, account_id, 0)
        assert status == 202, body
        accepted.add(body["jobId"])

        await asyncio.to_thread(holder.execute, "BEGIN EXCLUSIVE")
        answers = await asyncio.gather(
            *(publish(live, connection_id, account_id, n) for n in range(1, 11))
        )
        for answer in answers:
            assert_unavailable(*answer)
        status, headers, ready = await readiness(live)
        assert status == 503 and int(headers["Retry-After"]) >= 1
        assert ready["checks"]["database"].startswith("locked"), ready
        # Readers are not blocked by a writer (WAL): what was accepted can still be looked at.
        status, job = await live.api("GET", f"/api/jobs/{next(iter(accepted))}")
        assert status == 200, job

        # Requests keep coming while the lock is let go: each gets a 202 or a 503, and the
        # database ends up holding exactly the jobs that were answered 202.
        async def release_soon() -> None:
            await asyncio.sleep(BUSY_TIMEOUT_MS / 1000 * 2)
            await asyncio.to_thread(holder.execute, "ROLLBACK")

        release = asyncio.create_task(release_soon())
        racing = await asyncio.gather(
            *(publish(live, connection_id, account_id, n) for n in range(11, 41))
        )
        await release
        for status, headers, body in racing:
            if status == 202:
                accepted.add(body["jobId"])
            else:
                assert_unavailable(status, headers, body)

        status, _, body = await publish(live, connection_id, account_id, 41)
        assert status == 202, body
        accepted.add(body["jobId"])
        status, _, ready = await readiness(live)
        assert status == 200, ready
        assert await stored_job_ids(live) == accepted
    finally:
        holder.close()
        await live.http.close()


@pytest.mark.postgres
async def test_postgres_unreachable_answers_503_then_recovers(
    aiohttp_server, tmp_path, postgres_behind_proxy
):
    url, proxy = postgres_behind_proxy
    live = await start_live(aiohttp_server, tmp_path, url)
    try:
        connection_id, account_id = await account_of(live)
        accepted = set()
        for n in range(3):
            status, _, body = await publish(live, connection_id, account_id, n)
            assert status == 202, body
            accepted.add(body["jobId"])

        await proxy.cut()  # open connections are reset, new ones refused
        for n in range(3, 8):
            assert_unavailable(*await publish(live, connection_id, account_id, n))
        async with live.http.get(
            f"{live.base}/api/jobs/{next(iter(accepted))}", headers=auth(live.key)
        ) as response:
            assert_unavailable(response.status, response.headers, await response.json())
        status, headers, ready = await readiness(live)
        assert status == 503 and int(headers["Retry-After"]) >= 1
        assert ready["checks"]["database"].startswith("unreachable"), ready

        await proxy.restore()
        for n in range(8, 11):
            status, _, body = await publish(live, connection_id, account_id, n)
            assert status == 202, body
            accepted.add(body["jobId"])
        status, _, ready = await readiness(live)
        assert status == 200, ready
        assert await stored_job_ids(live) == accepted
    finally:
        await live.http.close()


def test_only_an_unavailable_database_is_a_503():
    from sqlalchemy import exc

    from gateway.db.outage import LOCKED, SATURATED, UNREACHABLE, outage_of

    def wrapped(message: str) -> exc.OperationalError:
        return exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))

    assert outage_of(wrapped("database is locked")) is LOCKED
    assert outage_of(wrapped("unable to open database file")) is UNREACHABLE
    assert outage_of(exc.TimeoutError("QueuePool limit reached")) is SATURATED
    # A bug stays a bug (500): a bad query, or a network error that is not the database's.
    assert outage_of(wrapped("no such column: nope")) is None
    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except OSError as err:
        assert outage_of(err) is None


def test_a_failed_background_pass_logs_an_outage_in_one_line_and_a_bug_in_full():
    import structlog
    from sqlalchemy import exc
    from structlog.testing import capture_logs

    from gateway.db.outage import log_failed_pass

    log = structlog.get_logger("test")
    locked = exc.OperationalError("UPDATE", {}, sqlite3.OperationalError("database is locked"))
    with capture_logs() as logs:
        log_failed_pass(log, "worker.pass_failed", locked, jobs=3)
        try:
            raise KeyError("a bug")
        except KeyError as bug:
            log_failed_pass(log, "worker.pass_failed", bug)
    outage, failure = logs
    assert outage["log_level"] == "warning" and outage["database"] == "locked"
    assert outage["error"] == "OperationalError" and outage["jobs"] == 3
    assert "exc_info" not in outage
    assert failure["log_level"] == "error" and isinstance(failure["exc_info"], KeyError)
