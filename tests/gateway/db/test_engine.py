"""The engine's SQLite files: created readable by their owner only."""

from __future__ import annotations

import stat

from sqlalchemy import text

from gateway.db.engine import create_engine
from gateway.settings import DatabaseSettings


async def test_a_new_database_and_its_wal_are_private(tmp_path):
    path = tmp_path / "data" / "gateway.db"
    engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        async with engine.connect() as conn:  # WAL mode: -wal and -shm exist while it is open
            await conn.execute(text("SELECT x FROM t"))
            files = [path, path.with_name("gateway.db-wal"), path.with_name("gateway.db-shm")]
            for file in files:
                # Root reads anything, so the mode bits are what can be checked.
                assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        await engine.dispose()


async def test_an_existing_database_keeps_its_mode(tmp_path):
    path = tmp_path / "gateway.db"
    path.touch(mode=0o640)
    path.chmod(0o640)
    engine = create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{path}"))
    await engine.dispose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
