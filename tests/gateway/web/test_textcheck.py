"""A NUL (or another control character) in ids, filters, cursors, bodies and the sign-in form:
400 or 404 problem+json on both databases, and never a traceback in the logs."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from gateway.web.textcheck import refuse_control, refuse_nul

from ...conftest import auth
from ..jobs.test_pipeline import account_of

PROBLEM = "application/problem+json"


async def call(live, method, path, *, key=True, **kwargs):
    headers = {**(auth(live.key) if key else {}), **kwargs.pop("headers", {})}
    async with live.http.request(
        method, live.base + path, headers=headers, allow_redirects=False, **kwargs
    ) as response:
        return response.status, response.content_type, await response.text()


def no_tracebacks(logs) -> None:
    assert [entry for entry in logs if entry.get("exc_info") or entry["log_level"] == "error"] == []


async def test_nul_in_ids_filters_and_the_sign_in_form(live_db):
    live = live_db
    connection_id, account_id = await account_of(live)
    requests = [
        ("GET", "/api/jobs/job_%00x"),
        ("DELETE", "/api/jobs/job_%00x"),
        ("POST", "/api/dlq/job_%00x/replay"),
        ("GET", "/api/connections/conn%00"),
        ("GET", "/api/connections/conn%00/accounts"),
        ("GET", "/api/analytics/post_%00"),
        ("DELETE", "/api/posts/post_%00"),
        ("DELETE", "/api/webhook-endpoints/whk_%00"),
        ("GET", "/api/jobs?connectionId=conn_%00"),
        ("GET", "/api/jobs?platform=a%00b"),
        ("GET", "/api/connections?platform=a%00"),
        ("GET", "/api/jobs?status=queued&%00=1"),
        ("GET", "/webhooks/examplesocial%00"),
        ("POST", "/webhooks/examplesocial/s%00cret"),
    ]
    with capture_logs() as logs:
        for method, path in requests:
            status, kind, text = await call(live, method, path)
            assert status in (400, 404) and kind == PROBLEM, (method, path, status, text)
        for path, body in (
            (
                "/api/publish",
                {"connectionId": f"{connection_id}\x00", "accountId": account_id, "body": "x"},
            ),
            (
                "/api/publish",
                {"connectionId": connection_id, "accountId": "acct_\x00", "body": "x"},
            ),
            ("/api/oauth/examplesocial/start", {"returnUrl": "https://app.example.com/\x00"}),
            ("/api/oauth/examplesocial/start", {"connectionId": "conn_\x00"}),
            ("/api/connections", {"platform": "examplesocial", "apiKey": "k\x00"}),
        ):
            status, kind, text = await call(live, "POST", path, json=body)
            if "/oauth/" in path or "platform" in body:  # each refused for its NUL, nothing else
                assert "\\x00" in text or "u0000" in text, text
            assert status in (400, 404) and kind == PROBLEM, (body, status, text)
        status, kind, _ = await call(live, "GET", "/api/jobs/job_%00x", key=False)
        assert (status, kind) == (401, PROBLEM)  # without a key, nothing is looked at
        # No API key needed to reach this one.
        form = {"apiKey": "key_a\x00b.secret"}
        status, kind, text = await call(live, "POST", "/dashboard/login", key=False, data=form)
        assert (status, kind) == (400, PROBLEM), text
    no_tracebacks(logs)


def test_the_checks_name_each_field():
    from gateway.errors import BadRequest

    refuse_control([("jobId", "job_1"), ("q", "a b")])
    refuse_nul([("error_description", "line\nbreak")])
    with pytest.raises(BadRequest) as refused:
        refuse_control([("jobId", "job\x00"), ("postId", "ok"), ("x", "a\tb")])
    assert [p.field for p in refused.value.errors] == ["jobId", "x"]
    with pytest.raises(BadRequest) as refused:
        refuse_nul([("a\x00", "b")])
    assert refused.value.errors[0].field == "a\\x00"
