"""A periodic background pass: it runs at once and then on its interval, outlives a failed pass,
and stops."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from gateway.background import PeriodicPass


class Flaky(PeriodicPass):
    failed_event = "flaky.pass_failed"

    def __init__(self) -> None:
        super().__init__(0.01)
        self.runs = 0

    async def run_pass(self) -> None:
        self.runs += 1
        if self.runs == 1:
            raise KeyError("a bug in the first pass")


async def test_a_failed_pass_is_logged_and_the_next_one_runs_until_stopped():
    flaky = Flaky()
    with capture_logs() as logs:
        flaky.start()
        for _ in range(500):  # a deadline, not a speed assertion
            if flaky.runs >= 3:
                break
            await asyncio.sleep(0.01)
        await flaky.stop()
    assert flaky.runs >= 3
    [failed] = [entry for entry in logs if entry["event"] == "flaky.pass_failed"]
    assert failed["log_level"] == "error" and isinstance(failed["exc_info"], KeyError)
    runs = flaky.runs
    await asyncio.sleep(0.05)
    assert flaky.runs == runs  # stopped: no pass after stop() returned


class Hanging(PeriodicPass):
    def __init__(self) -> None:
        super().__init__(0.01)
        self.started = asyncio.Event()
        self.cancelled = False

    async def run_pass(self) -> None:
        self.started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_pass_that_outlasts_the_grace_is_cancelled_and_stop_returns():
    hanging = Hanging()
    hanging.start()
    await asyncio.wait_for(hanging.started.wait(), 5)
    await asyncio.wait_for(hanging.stop(grace_seconds=0.05), 5)
    assert hanging.cancelled
