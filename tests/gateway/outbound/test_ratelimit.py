"""Rate limits: the (N+1)th request in a window waits, scopes keep separate budgets, 429 pauses."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import RateLimited
from gateway.outbound import OutboundClient, RateLimiter, RetryPolicy
from gateway.types import RateLimit, RateLimitScope

TOKEN = RateLimitScope.TOKEN


def _limiter(vtime, *limits: RateLimit, max_pause: float = 30.0) -> RateLimiter:
    return RateLimiter(limits, max_pause=max_pause, clock=vtime, sleep=vtime.sleep)


async def test_request_beyond_the_window_budget_waits_for_the_oldest_slot(vtime):
    limiter = _limiter(vtime, RateLimit(2, 10.0))
    await limiter.acquire()
    vtime.now = 4.0
    await limiter.acquire()
    assert vtime.sleeps == []
    await limiter.acquire()
    # The first slot frees at t=10; the third request goes then, not at t=14.
    assert vtime.sleeps == [6.0]
    assert vtime.now == 10.0


async def test_concurrent_requests_are_spread_over_windows(vtime):
    limiter = _limiter(vtime, RateLimit(2, 10.0))
    started: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        started.append(vtime.now)

    await asyncio.gather(*(one() for _ in range(5)))
    assert started == [0.0, 0.0, 10.0, 10.0, 20.0]


async def test_token_scope_keeps_a_budget_per_key(vtime):
    limiter = _limiter(vtime, RateLimit(1, 60.0, TOKEN))
    await limiter.acquire("a")
    await limiter.acquire("b")
    await limiter.acquire(None)  # no token, no per-token budget
    assert vtime.sleeps == []
    await limiter.acquire("a")
    assert vtime.sleeps == [60.0]


async def test_app_and_token_limits_both_apply(vtime):
    limiter = _limiter(vtime, RateLimit(2, 60.0), RateLimit(5, 60.0, TOKEN))
    await limiter.acquire("a")
    await limiter.acquire("b")
    await limiter.acquire("c")
    assert vtime.sleeps == [60.0]


async def test_pause_holds_the_scope_back(vtime):
    limiter = _limiter(vtime, RateLimit(100, 1.0))
    limiter.pause(None, 5.0)
    await limiter.acquire("anyone")
    assert vtime.sleeps == [5.0]


async def test_pause_with_token_limits_holds_back_only_that_token(vtime):
    limiter = _limiter(vtime, RateLimit(100, 1.0, TOKEN))
    limiter.pause("a", 5.0)
    await limiter.acquire("b")
    assert vtime.sleeps == []
    await limiter.acquire("a")
    assert vtime.sleeps == [5.0]


async def test_pause_longer_than_max_is_left_to_the_job_queue(vtime):
    limiter = _limiter(vtime, max_pause=30.0)
    limiter.pause(None, 600.0)
    with pytest.raises(RateLimited) as caught:
        await limiter.acquire()
    assert caught.value.retry_after == 600.0
    assert vtime.sleeps == []


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError, match="per_seconds"):
        RateLimiter([RateLimit(0, 10.0)])


async def test_client_makes_the_extra_request_wait(upstream, make_client, vtime):
    recorder, server = upstream
    client = await make_client(rate_limiter=_limiter(vtime, RateLimit(2, 60.0)))
    for _ in range(3):
        async with client.get(str(server.make_url("/x"))) as resp:
            assert resp.status == 200
    assert recorder.count == 3
    assert vtime.sleeps == [60.0]


async def test_client_keys_token_budgets_on_the_bearer_or_rate_key(upstream, make_client, vtime):
    recorder, server = upstream
    client = await make_client(rate_limiter=_limiter(vtime, RateLimit(1, 60.0, TOKEN)))
    url = str(server.make_url("/x"))
    for token in ("token-a", "token-b"):
        async with client.get(url, token=token):
            pass
    async with client.get(url, token="token-c", rate_key="page-1"):
        pass
    assert vtime.sleeps == []
    # Same rate_key, different token: the same budget.
    async with client.get(url, token="token-z", rate_key="page-1"):
        pass
    assert vtime.sleeps == [60.0]
    # Same token twice in the (new) window: the second waits.
    for _ in range(2):
        async with client.get(url, token="token-a"):
            pass
    assert vtime.sleeps == [60.0, 60.0]
    assert recorder.count == 6


async def test_429_pauses_the_scope_for_its_retry_after(upstream, make_client, vtime):
    recorder, server = upstream
    recorder.then(429, headers={"Retry-After": "7"})
    client = await make_client(rate_limiter=_limiter(vtime))
    async with client.post(str(server.make_url("/x")), json={}) as resp:
        assert resp.status == 429  # a POST is not retried, but the scope still pauses
    async with client.get(str(server.make_url("/x"))) as resp:
        assert resp.status == 200
    assert vtime.sleeps == [7.0]


async def test_long_429_pause_makes_later_requests_raise_without_sending(
    upstream, make_client, vtime
):
    recorder, server = upstream
    recorder.then(429, headers={"Retry-After": "3600"})
    client = await make_client(rate_limiter=_limiter(vtime, max_pause=30.0))
    async with client.get(str(server.make_url("/x"))) as resp:
        assert resp.status == 429
    with pytest.raises(RateLimited) as caught:
        async with client.get(str(server.make_url("/x"))):
            pass
    assert caught.value.retry_after == 3600.0
    assert recorder.count == 1
    assert vtime.sleeps == []


def test_client_pause_limit_follows_the_retry_policy():
    client = OutboundClient("meta", retry=RetryPolicy(max_retry_after=12.0))
    assert client.rate_limiter.max_pause == 12.0
