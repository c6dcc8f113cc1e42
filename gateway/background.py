"""A pass run in the background every few seconds until stopped; a failed pass is run again."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from .db.outage import log_failed_pass


class PeriodicPass:
    """Runs :meth:`run_pass` at once, then every ``interval`` seconds, until :meth:`stop`.

    A pass that fails is logged (one line when the database is unavailable, the traceback
    otherwise) and the loop goes on: the next pass tries again.
    """

    # The task's name, and the event logged when a pass fails.
    name = "periodic"
    failed_event = "periodic.pass_failed"
    logger = "gateway"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def run_pass(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Let the current pass finish (cancelling mid-query strands database work), then end;
        a pass still running after ``grace_seconds`` is cancelled."""
        self._stopping.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_pass()
            except Exception as err:  # a bad pass must not end the loop
                log_failed_pass(structlog.get_logger(self.logger), self.failed_event, err)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
