"""Crafted cursors name no position: 400 when malformed, 404 when not given for this list."""

from __future__ import annotations

import base64

from structlog.testing import capture_logs

from gateway import admin

from ..jobs.test_pipeline import account_of, another_tenant_publishes, queue


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_crafted_cursors_are_refused_on_both_databases(live_db):
    live = live_db
    connection_id, account_id = await account_of(live)
    for _ in range(3):
        assert (await queue(live, connection_id, account_id))[0] == 202
    other_key, other_job = await another_tenant_publishes(live, "globex", "theirs")
    status, page = await live.api("GET", "/api/jobs?limit=1")
    assert status == 200 and page["nextCursor"]
    status, rest = await live.api("GET", f"/api/jobs?limit=1&cursor={page['nextCursor']}")
    assert status == 200 and rest["data"][0]["jobId"] != page["data"][0]["jobId"]
    _, theirs = await live.api("GET", "/api/jobs?limit=1", key=other_key)
    status, _ = await live.api("GET", "/api/connections?limit=1")
    cases = {
        "garbage": ("!!!!", 400),
        "base64 of garbage": (b64(b"\x00\xff\xfe garbage \x00"), 404),
        "base64 of a NUL": (b64(b"job_\x00"), 404),
        "another tenant's id": (b64(other_job["jobId"].encode()), 404),
        "my own id, unsigned": (b64(page["data"][0]["jobId"].encode()), 404),
        "a jobs cursor on the DLQ": (page["nextCursor"], 404),
    }
    with capture_logs() as logs:
        for name, (cursor, expected) in cases.items():
            path = "/api/dlq" if name.endswith("DLQ") else "/api/jobs"
            status, problem = await live.api("GET", f"{path}?cursor={cursor}")
            assert status == expected, (name, problem)
            assert problem["errors"][0]["field"] == "cursor"
        for path in ("/api/connections", "/api/platforms"):
            status, _ = await live.api("GET", f"{path}?cursor={b64(b'x' + bytes([0]))}")
            assert status == 404, path
        other = await admin.create_tenant(live.gateway, "initech")
        status, _ = await live.api("GET", f"/api/jobs?cursor={page['nextCursor']}", key=other)
        assert status == 404
    assert theirs["nextCursor"] is None
    assert [entry for entry in logs if entry.get("exc_info")] == []
