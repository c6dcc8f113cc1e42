"""The accept path's own refusals: their hints, and whose verdict each 422 says it is."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from gateway.db.base import utcnow

from .test_pipeline import account_of, jobs_count, queue

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)")


async def test_a_malformed_schedule_hints_at_a_time_that_is_accepted(live):
    connection_id, account_id = await account_of(live)
    no_zone = (utcnow() + timedelta(days=1)).replace(tzinfo=None).isoformat(timespec="seconds")
    for malformed in ("tomorrow", no_zone):
        status, problem = await queue(live, connection_id, account_id, scheduledAt=malformed)
        assert status == 422, problem
        [field] = problem["errors"]
        assert field["field"] == "scheduledAt" and field["code"] == "format"
        # The hint's example is a time ahead of now, so copying it works whatever the date.
        [example] = RFC3339.findall(field["message"])
        assert datetime.fromisoformat(example.replace("Z", "+00:00")) > utcnow()
    status, accepted = await queue(live, connection_id, account_id, scheduledAt=example)
    assert status == 202 and accepted["status"] == "scheduled", accepted


async def test_the_gateways_rules_are_not_called_the_platforms_verdict(live):
    connection_id, account_id = await account_of(live)
    past = (utcnow() - timedelta(days=1)).isoformat()
    for when in ("tomorrow", past):
        status, problem = await queue(live, connection_id, account_id, scheduledAt=when)
        assert status == 422
        assert problem["type"] == "urn:gateway:problem:invalid_input", problem
        assert problem["title"] == "Request is invalid"
    # The example platform takes at most 500 characters: its connector's check says no.
    status, problem = await queue(live, connection_id, account_id, body="x" * 501)
    assert status == 422
    assert problem["type"] == "urn:gateway:problem:unprocessable", problem
    assert problem["title"] == "Request is invalid for the target platform"
    assert await jobs_count(live) == 0


async def test_a_link_is_a_web_address_or_nothing_is_queued(live):
    connection_id, account_id = await account_of(live)
    for link in (
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "file:///etc/passwd",
        "data:text/html,<script>alert(1)</script>",
        "https://",
        "//example.com/",
        "example.com",
        "http://[::1",
    ):
        status, problem = await queue(live, connection_id, account_id, link=link)
        assert status == 422, (link, problem)
        assert problem["type"] == "urn:gateway:problem:invalid_input", problem
        assert problem["errors"] == [
            {"field": "link", "code": "url", "message": problem["errors"][0]["message"]}
        ]
    assert await jobs_count(live) == 0
    for link in ("https://example.com/a?b=c", "HTTP://example.com"):
        status, accepted = await queue(live, connection_id, account_id, link=link)
        assert status == 202, (link, accepted)
