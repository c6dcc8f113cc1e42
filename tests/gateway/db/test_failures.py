"""Database errors become one typed line; other errors pass through as they are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.db.engine import create_engine
from gateway.db.failures import DatabaseFailure, database_errors, reason_of
from gateway.settings import DatabaseSettings


def test_a_directory_is_refused_before_sqlite_tries_to_open_it(tmp_path):
    with pytest.raises(DatabaseFailure) as failure:
        create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}"))
    assert failure.value.detail == f"database {tmp_path}: a directory, not a database file"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_directory_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(DatabaseFailure) as failure:
        create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{locked}/gateway.db"))
    assert failure.value.reason == f"cannot create it: permission denied on {locked}"


async def test_a_failed_statement_keeps_the_drivers_words_only(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/x.db"
    engine = create_engine(DatabaseSettings(url=url))
    try:
        with pytest.raises(DatabaseFailure) as failure, database_errors(url):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT * FROM nowhere"))
    finally:
        await engine.dispose()
    assert failure.value.reason == "no such table: nowhere"  # no SQL, no link


def test_a_sqlite_file_under_a_regular_file_says_which_directory(tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    with pytest.raises(DatabaseFailure) as failure:
        create_engine(DatabaseSettings(url=f"sqlite+aiosqlite:///{blocker}/gateway.db"))
    assert failure.value.reason.startswith("cannot create its directory: ")
    assert str(blocker) in failure.value.reason


def test_other_errors_pass_through():
    with pytest.raises(KeyError), database_errors("sqlite+aiosqlite://"):
        raise KeyError("not the database's")
    with pytest.raises(FileNotFoundError), database_errors("sqlite+aiosqlite://"):
        Path("/nonexistent/file").read_text()  # an OSError the database driver did not raise


def test_a_missing_driver_names_the_extra_to_install():
    url = "postgresql+asyncpg://db.example/gw"
    with pytest.raises(DatabaseFailure) as failure, database_errors(url):
        raise ModuleNotFoundError("No module named 'asyncpg'", name="asyncpg")
    assert failure.value.detail == (
        "database postgresql://db.example/gw: its driver asyncpg is not installed "
        "(pip install '.[postgres]')"
    )


def test_reason_of_an_os_error_names_its_file():
    assert reason_of(PermissionError(13, "Permission denied", "/srv/db")) == (
        "Permission denied: /srv/db"
    )
