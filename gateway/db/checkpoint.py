"""SQLite: WAL checkpoints in the background, off the commit path."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass

import structlog

from .outage import log_failed_pass

log = structlog.get_logger("gateway.db")

# Left to itself, SQLite checkpoints inside the commit that grows the WAL past 1,000 pages: that
# commit (a publish request's, a worker's claim) then copies the WAL into the database file and
# syncs it, a stall of hundreds of milliseconds on a database of a million jobs. The gateway's
# connections checkpoint only past this many pages, a backstop for when no checkpointer runs
# (a CLI command, say); the checkpointer keeps the WAL far below it.
BACKSTOP_PAGES = 16384
# How often the checkpointer copies what was committed since its last pass.
INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Pass:
    """What one checkpoint did: the WAL's frames, and how many are in the database file now."""

    busy: bool
    wal_frames: int
    checkpointed: int


class Checkpointer:
    """Runs a passive checkpoint every ``interval`` seconds on a connection of its own, in a
    thread: it waits for no reader or writer, and none waits for it."""

    def __init__(self, path: str, interval: float = INTERVAL_SECONDS) -> None:
        self.path = path
        self.interval = interval
        self.passes = 0
        self._connection: sqlite3.Connection | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sqlite-checkpoint")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._connection is not None:
            await asyncio.to_thread(self._connection.close)
            self._connection = None

    async def checkpoint(self) -> Pass:
        """One passive checkpoint, now."""
        found = await asyncio.to_thread(self._checkpoint)
        self.passes += 1
        return found

    def _checkpoint(self) -> Pass:
        if self._connection is None:
            # Used from the executor's threads one call at a time (the loop awaits each).
            self._connection = sqlite3.connect(self.path, check_same_thread=False)
        busy, frames, done = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return Pass(bool(busy), frames, done)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.interval)
            try:
                await self.checkpoint()
            except Exception as err:  # a failed pass is tried again at the next
                log_failed_pass(log, "database.checkpoint_failed", err)
