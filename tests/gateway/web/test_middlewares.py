"""The access log and api_requests_total carry each answer's real status, and every answer its
X-Request-Id: redirects and 404s raised as exceptions included, sandboxes included."""

from __future__ import annotations

import re

from structlog.testing import capture_logs

from ..connections.conftest import RETURN_URL

PROBLEM = "application/problem+json"


def counted(live) -> dict[str, float]:
    text = live.gateway.telemetry.prometheus_text()
    text = text.decode() if isinstance(text, bytes) else text
    return {
        status: float(value)
        for status, value in re.findall(
            r'api_requests_total\{[^}]*status="(\d+)"[^}]*\} (\S+)', text
        )
    }


async def fetch(live, method, path, **kwargs):
    async with live.http.request(
        method, live.base + path, allow_redirects=False, **kwargs
    ) as response:
        await response.read()
        return response.status, response.content_type, response.headers


async def test_redirects_and_sandbox_404s_are_counted_with_their_status(live):
    before = counted(live)
    with capture_logs() as logs:
        status, _, location = await live.connect(return_url=RETURN_URL)  # the callback: 302
        assert status == 302 and location.startswith(RETURN_URL)
        answers = [
            await fetch(live, "POST", "/dashboard/login", data={"apiKey": live.key.api_key}),
            await fetch(live, "POST", "/dashboard/logout", data={}),
            await fetch(live, "GET", "/sandbox/nosuchplatform/x"),
            await fetch(live, "GET", "/sandbox/"),
            await fetch(live, "GET", "/sandbox/examplesocial/_control/nosuchroute"),
            await fetch(live, "GET", "/sandbox/examplesocial/_control/faults"),
            await fetch(live, "GET", "/sandbox/examplesocial/api.examplesocial.test/v9/nothing"),
        ]
    statuses = [status for status, _, _ in answers]
    assert statuses == [303, 303, 404, 404, 404, 405, 404]
    assert all(headers.get("X-Request-Id") for _, _, headers in answers)
    # The gateway's own answers are problem+json; a platform's path keeps its platform's format.
    assert [kind for _, kind, _ in answers[2:6]] == [PROBLEM] * 4
    assert answers[6][1] == "application/json"
    after = counted(live)
    assert after.get("500", 0) == before.get("500", 0)
    assert after["303"] - before.get("303", 0) == 2
    assert after["404"] - before.get("404", 0) == 4
    logged = [e["status"] for e in logs if e["event"] == "http.request"]
    assert 500 not in logged and logged.count(302) >= 1 and logged.count(303) == 2
