"""Usage headers slow the client before Meta's limit, and stop it when Meta says so."""

from __future__ import annotations

import json

import pytest

from gateway import OutboundClient, RateLimit, RateLimited, RateLimitScope
from plugins.meta.graph import GraphClient
from plugins.meta.usage import waits

from .conftest import start_graph


def buc(percent: int, regain: int = 0) -> dict[str, str]:
    entry = {
        "type": "pages",
        "call_count": percent,
        "total_time": 1,
        "total_cputime": 1,
        "estimated_time_to_regain_access": regain,
    }
    return {"X-Business-Use-Case-Usage": json.dumps({"1": [entry]})}


def test_the_wait_grows_as_usage_nears_the_limit():
    app = [waits({"X-App-Usage": json.dumps({"call_count": p})}).app for p in (10, 74, 80, 90, 99)]
    assert app[0] == app[1] == 0 and 0 < app[2] < app[3] < app[4] < 30
    assert waits({"X-App-Usage": json.dumps({"call_count": 100})}).app >= 300
    business = [waits(buc(p)).business for p in (50, 80, 95)]
    assert business[0] == 0 and 0 < business[1] < business[2]
    assert waits(buc(30, regain=5)).business == 300
    assert waits({}) == (0, 0) and waits({"X-App-Usage": "not json"}) == (0, 0)


@pytest.mark.parametrize("header", ["X-App-Usage", "X-Page-Usage"])
def test_total_time_counts_too(header):
    assert waits({header: json.dumps({"call_count": 1, "total_time": 95})}).app > 0


async def test_a_throttled_page_is_not_called_again_until_access_returns(aiohttp_server):
    graph = await start_graph(aiohttp_server, calls_per_hour=3)
    http = OutboundClient(
        "meta",
        sandbox_url=graph.root,
        rate_limits=(RateLimit(200, 3600, RateLimitScope.TOKEN),),
    )
    try:
        await http.start()
        client = GraphClient(http, "v25.0")
        _, page = await graph.page_tokens()
        for _ in range(2):  # up to 66 %: no wait
            await client.get(page["id"], page["access_token"], account=page["id"])
        # The third call reports 100 %: the client holds back before Meta refuses anything.
        await client.get(page["id"], page["access_token"], account=page["id"])
        calls = len(graph.sandbox.journal.find(path="*"))
        with pytest.raises(RateLimited):
            await client.get(page["id"], page["access_token"], account=page["id"])
        assert len(graph.sandbox.journal.find(path="*")) == calls
        refused = [e for e in graph.sandbox.journal.find(path="*") if e.status >= 400]
        assert refused == []
    finally:
        await http.close()
        await graph.http.close()
