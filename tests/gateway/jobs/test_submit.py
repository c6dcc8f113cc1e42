"""The accept path's own refusals and their hints."""

from __future__ import annotations

import re
from datetime import datetime

from gateway.db.base import utcnow

from .test_pipeline import account_of, queue

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)")


async def test_a_malformed_schedule_hints_at_a_time_that_is_accepted(live):
    connection_id, account_id = await account_of(live)
    for malformed in ("tomorrow", "2030-01-01T09:00:00"):  # no time at all; no time zone
        status, problem = await queue(live, connection_id, account_id, scheduledAt=malformed)
        assert status == 422, problem
        [field] = problem["errors"]
        assert field["field"] == "scheduledAt" and field["code"] == "format"
        # The hint's example is a time ahead of now, so copying it works whatever the date.
        [example] = RFC3339.findall(field["message"])
        assert datetime.fromisoformat(example.replace("Z", "+00:00")) > utcnow()
    status, accepted = await queue(live, connection_id, account_id, scheduledAt=example)
    assert status == 202 and accepted["status"] == "scheduled", accepted
