"""The sandbox clock: the gateway's clock plus an offset that only moves forward."""

from __future__ import annotations

from datetime import UTC

import pytest

from gateway import clock
from gateway.sandbox import SandboxClock, rfc3339


def test_advance_moves_now_and_timestamp_and_reset_returns_to_the_gateway_clock() -> None:
    sandbox = SandboxClock()
    assert sandbox.timestamp() == pytest.approx(clock.timestamp(), abs=1)
    new = sandbox.advance(3600)
    assert new == pytest.approx(clock.timestamp() + 3600, abs=1)
    assert sandbox.offset == 3600
    assert sandbox.now().tzinfo is UTC
    assert sandbox.now().timestamp() == pytest.approx(clock.timestamp() + 3600, abs=1)
    with pytest.raises(ValueError):
        sandbox.advance(-1)
    sandbox.reset()
    assert sandbox.offset == 0
    assert sandbox.timestamp() == pytest.approx(clock.timestamp(), abs=1)


def test_the_sandbox_reads_the_gateway_clock_a_year_ahead_too() -> None:
    sandbox = SandboxClock()
    year = 365 * 86400
    with clock.use(clock.Clock(offset=clock.current().offset + year)):
        assert sandbox.timestamp() == pytest.approx(clock.timestamp(), abs=1)
        ahead = sandbox.timestamp()
    assert ahead - sandbox.timestamp() == pytest.approx(year, abs=1)


def test_rfc3339_is_utc_with_z() -> None:
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1_800_000_000.25) == "2027-01-15T08:00:00.250Z"
