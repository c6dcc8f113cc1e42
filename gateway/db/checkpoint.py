"""SQLite: WAL checkpoints in the background, off the commit path."""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass

from ..background import PeriodicPass

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


class Checkpointer(PeriodicPass):
    """Runs a passive checkpoint every ``interval`` seconds on a connection of its own, in a
    thread: it waits for no reader or writer, and none waits for it."""

    name = "sqlite-checkpoint"
    failed_event = "database.checkpoint_failed"
    logger = "gateway.db"

    def __init__(self, path: str, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(interval)
        self.path = path
        self.passes = 0
        self._connection: sqlite3.Connection | None = None

    async def run_pass(self) -> None:
        await self.checkpoint()

    async def stop(self) -> None:
        await super().stop()
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
