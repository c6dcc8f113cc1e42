"""Retries: which failures are retried, how long to wait, and what is raised at the end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web

from gateway import clock
from gateway.errors import OutcomeUnknown, Transient
from gateway.outbound import RetryPolicy, Timeouts, parse_retry_after

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("Fri, 01 May 2026 12:01:30 GMT", 90.0),
        ("Fri, 01 May 2026 11:00:00 GMT", 0.0),
        ("Fri, 01 May 2026 12:00:10 -0000", 10.0),
        ("soon", None),
        ("-1", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value, now=NOW) == expected


def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(backoff_base=0.5, backoff_max=3.0, jitter=lambda ceiling: ceiling)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(backoff_base=0.5, backoff_max=3.0)
    assert all(0.0 <= jittered.backoff(4) <= 3.0 for _ in range(50))


async def test_get_retried_after_503_then_succeeds(upstream, make_client, vtime):
    recorder, server = upstream
    recorder.then(503)
    client = await make_client()
    async with client.get(str(server.make_url("/x"))) as resp:
        assert resp.status == 200
    assert recorder.count == 2
    assert vtime.sleeps == [0.5]


async def test_status_returned_when_attempts_run_out(upstream, make_client, vtime):
    recorder, server = upstream
    recorder.default = lambda _: web.json_response({}, status=502)
    client = await make_client()
    async with client.get(str(server.make_url("/x"))) as resp:
        assert resp.status == 502
    assert recorder.count == 3
    assert vtime.sleeps == [0.5, 1.0]


async def test_retry_after_seconds_wins_over_backoff(upstream, make_client, vtime):
    recorder, server = upstream
    recorder.then(429, headers={"Retry-After": "2"})
    client = await make_client()
    async with client.get(str(server.make_url("/x"))) as resp:
        assert resp.status == 200
    assert vtime.sleeps[0] == 2.0
    assert recorder.count == 2


async def test_retry_after_http_date_is_honoured(upstream, make_client, vtime):
    recorder, server = upstream
    when = clock.now() + timedelta(seconds=20)
    recorder.then(503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    client = await make_client()
    async with client.get(str(server.make_url("/x"))) as resp:
        assert resp.status == 200
    # Whole seconds on the wire: the wait is the date minus now, not the 0.5 s back-off.
    assert 15.0 < vtime.sleeps[0] <= 20.0


async def test_long_retry_after_is_returned_unretried(upstream, make_client, vtime):
    recorder, server = upstream
    recorder.then(429, headers={"Retry-After": "3600"})
    client = await make_client()
    async with client.get(str(server.make_url("/x"))) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "3600"
    assert recorder.count == 1
    assert vtime.sleeps == []


async def test_post_is_not_retried_on_503(upstream, make_client, vtime):
    recorder, server = upstream
    recorder.then(503)
    client = await make_client()
    async with client.post(str(server.make_url("/x")), json={"a": 1}) as resp:
        assert resp.status == 503
    assert recorder.count == 1


async def test_idempotent_flag_overrides_the_method(upstream, make_client):
    recorder, server = upstream
    recorder.then(503)
    client = await make_client()
    async with client.post(str(server.make_url("/x")), json={"a": 1}, idempotent=True) as resp:
        assert resp.status == 200
    assert recorder.count == 2
    assert recorder.requests[1].body == b'{"a": 1}'
    recorder.then(503)
    async with client.get(str(server.make_url("/y")), idempotent=False) as resp:
        assert resp.status == 503
    assert recorder.count == 3


def _stalling(release: asyncio.Event):
    async def answer(_request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    return answer


async def test_post_timeout_is_outcome_unknown_and_not_retried(upstream, make_client):
    recorder, server = upstream
    release = asyncio.Event()
    recorder.default = _stalling(release)
    client = await make_client()
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            async with client.post(str(server.make_url("/publish")), json={}, timeout=0.2):
                pass
    finally:
        release.set()
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert recorder.count == 1


async def test_get_read_timeout_is_retried_then_transient(upstream, make_client, vtime):
    recorder, server = upstream
    release = asyncio.Event()
    recorder.default = _stalling(release)
    client = await make_client()
    try:
        with pytest.raises(Transient) as caught:
            async with client.get(str(server.make_url("/x")), timeout=Timeouts(sock_read=0.2)):
                pass
    finally:
        release.set()
    assert isinstance(caught.value.__cause__, aiohttp.ServerTimeoutError)
    assert recorder.count == 3


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_connection_refused_is_retried_then_transient(
    make_client, vtime, unused_tcp_port, method
):
    client = await make_client()
    url = f"http://127.0.0.1:{unused_tcp_port}/x"
    with pytest.raises(Transient) as caught:
        async with client.request(method, url):
            pass
    # Nothing was sent, so even a POST is safe to try again.
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    assert vtime.sleeps == [0.5, 1.0]
    assert "3 attempt(s)" in str(caught.value)
