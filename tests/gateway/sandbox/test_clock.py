"""The sandbox clock: real time plus an offset that only moves forward."""

from __future__ import annotations

import time
from datetime import UTC

import pytest

from gateway.sandbox import SandboxClock, rfc3339


def test_advance_moves_now_and_timestamp_and_reset_returns_to_real_time() -> None:
    clock = SandboxClock()
    assert clock.timestamp() == pytest.approx(time.time(), abs=1)
    new = clock.advance(3600)
    assert new == pytest.approx(time.time() + 3600, abs=1)
    assert clock.offset == 3600
    assert clock.now().tzinfo is UTC
    assert clock.now().timestamp() == pytest.approx(time.time() + 3600, abs=1)
    with pytest.raises(ValueError):
        clock.advance(-1)
    clock.reset()
    assert clock.offset == 0
    assert clock.timestamp() == pytest.approx(time.time(), abs=1)


def test_rfc3339_is_utc_with_z() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_800_000_000.25) == "2027-01-15T08:00:00.250Z"
