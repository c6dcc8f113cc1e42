"""SQLite: commits no longer stop to checkpoint the WAL; the background checkpointer does."""

from __future__ import annotations

import asyncio
import os

from gateway.db.checkpoint import Checkpointer
from gateway.db.engine import create_engine
from gateway.settings import DatabaseSettings

from ..connections.conftest import start_live

BLOB = 400_000  # about a hundred pages a commit
COMMITS = 20  # twice what SQLite would let the WAL grow to before a commit checkpointed it


def wal_size(path) -> int:
    return os.stat(f"{path}-wal").st_size


async def write(engine, commits: int) -> None:
    for _ in range(commits):
        async with engine.begin() as connection:
            await connection.exec_driver_sql(f"INSERT INTO scratch VALUES (randomblob({BLOB}))")


async def test_commits_leave_the_checkpoint_to_the_checkpointer(tmp_path):
    path = tmp_path / "gateway.db"
    engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
    checkpointer = Checkpointer(str(path))
    try:
        async with engine.begin() as connection:
            await connection.exec_driver_sql("CREATE TABLE scratch (data BLOB)")
        await write(engine, COMMITS)
        wal = wal_size(path)
        # No commit copied the WAL back (SQLite's default would have, at 1,000 pages: 4 MB).
        assert wal > COMMITS * BLOB

        done = await checkpointer.checkpoint()
        assert not done.busy and done.wal_frames > 1000 and done.checkpointed == done.wal_frames
        # Checkpointed, the WAL is written from its start again: it grows no more.
        await write(engine, 2)
        assert wal_size(path) == wal
    finally:
        await checkpointer.stop()
        await engine.dispose()


async def test_a_gateway_on_sqlite_checkpoints_in_the_background(aiohttp_server, tmp_path):
    live = await start_live(aiohttp_server, tmp_path)
    try:
        checkpointer = live.gateway.checkpointer
        assert checkpointer is not None and checkpointer.path.endswith(".db")
        checkpointer.interval = 0.05
        for _ in range(200):  # a deadline, not a speed assertion
            if checkpointer.passes >= 2:
                break
            await asyncio.sleep(0.05)
        assert checkpointer.passes >= 2
    finally:
        await live.http.close()
