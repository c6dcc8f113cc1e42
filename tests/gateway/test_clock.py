"""The gateway's one clock: an offset from the environment, injected in a block, read everywhere."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from gateway import clock


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("365d", 365 * 86400),
        ("-2h", -7200),
        ("90m", 5400),
        ("30s", 30),
        ("1w", 604800),
        ("12.5", 12.5),
        (" +1d ", 86400),
    ],
)
def test_an_offset_is_a_number_with_a_unit(text, seconds):
    assert clock.parse_offset(text) == seconds


@pytest.mark.parametrize("text", ["a year", "1y", "d", "", "1 d 2 h"])
def test_an_offset_that_is_not_one_is_refused_naming_the_variable(text):
    with pytest.raises(ValueError, match=clock.OFFSET_ENV):
        clock.parse_offset(text)


def test_a_process_started_with_the_offset_lives_that_far_ahead():
    code = "from gateway import clock; print(clock.now().isoformat())"
    env = {"GATEWAY_CLOCK_OFFSET": "400d", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    ahead = datetime.fromisoformat(out.strip()) - datetime.now(UTC)
    assert 399 < ahead.total_seconds() / 86400 < 401


def test_use_puts_a_clock_in_force_for_the_block_only():
    before = clock.current()
    frozen = clock.Clock(offset=before.offset + 3600)
    with clock.use(frozen) as used:
        assert used is frozen and clock.current() is frozen
        assert clock.timestamp() - before.timestamp() == pytest.approx(3600, abs=1)
        assert clock.now().tzinfo is UTC
    assert clock.current() is before
