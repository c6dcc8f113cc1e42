"""Naming a database for a person: the file or the server and database, never a password."""

from __future__ import annotations

import os

from gateway.db.location import describe


def test_a_server_url_keeps_user_host_port_and_database_and_masks_the_password():
    shown = describe("postgresql+asyncpg://gw:s3cr%40t@db.example:5433/gateway")
    assert shown == "postgresql://gw:***@db.example:5433/gateway"
    assert "s3cr" not in shown


def test_a_password_in_the_query_string_is_masked_too():
    shown = describe("postgresql+asyncpg://db.example/gw?ssl=require&password=hunter2")
    assert shown == "postgresql://db.example/gw?ssl=require&password=***"


def test_a_relative_sqlite_file_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert describe("sqlite+aiosqlite:///var/gateway.db") == os.path.join(
        tmp_path, "var", "gateway.db"
    )
    assert describe(f"sqlite+aiosqlite:///{tmp_path}/x.db") == f"{tmp_path}/x.db"


def test_sqlite_in_memory():
    assert describe("sqlite+aiosqlite://") == "sqlite in memory"
