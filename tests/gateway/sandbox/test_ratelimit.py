"""Rate limits on the sandbox clock: 429 with Retry-After, then allowed once time has passed."""

from __future__ import annotations

import pytest

from gateway.sandbox import RateLimitWindow, SandboxClock

from .flows import Served, login, me


async def test_429_with_retry_after_then_allowed_after_the_clock_moves(served: Served) -> None:
    token = (await login(served))["access_token"]
    other = (await login(served))["access_token"]
    for _ in range(5):
        assert (await me(served, token)).status == 200
    limited = await me(served, token)
    assert limited.status == 429
    assert limited.headers["Retry-After"] == "60"
    assert (await limited.json())["error"]["code"] == "rate_limited"
    # The limit is per token.
    assert (await me(served, other)).status == 200
    await served.control("POST", "clock", {"advanceSeconds": 60})
    assert (await me(served, token)).status == 200


def test_sliding_window_counts_only_recent_allowed_calls() -> None:
    clock = SandboxClock()
    window = RateLimitWindow(2, 60, clock)
    assert window.hit("k") == (True, 0.0)
    clock.advance(30)
    assert window.hit("k").allowed
    clock.advance(29)
    allowed, retry_after = window.hit("k")
    assert not allowed
    assert retry_after == pytest.approx(1, abs=0.05)
    assert window.used("k") == 2
    assert window.hit("other").allowed  # keys are counted apart
    clock.advance(1)
    # The first call left the window; the refused one never counted.
    assert window.hit("k").allowed
    assert not window.hit("k").allowed
    window.reset()
    assert window.used("k") == 0 and window.hit("k").allowed


def test_a_window_needs_a_sensible_limit() -> None:
    with pytest.raises(ValueError):
        RateLimitWindow(0, 60, SandboxClock())
    with pytest.raises(ValueError):
        RateLimitWindow(1, 0, SandboxClock())
