"""Storage on both databases: migrations, pragmas, repositories, compare-and-set, sealed rows."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError

from gateway import admin, clock
from gateway.db import migrate
from gateway.db.engine import create_engine, create_sessionmaker
from gateway.db.models import SealedSecretRow, TenantRow
from gateway.db.repositories import (
    ApiKeyRepository,
    SecretRepository,
    TenantRepository,
    find_active_key,
)
from gateway.host import Gateway
from gateway.settings import DatabaseSettings
from gateway.vault import Vault, VaultError, generate_key

from ..conftest import settings_for


@pytest.fixture
async def engine(database_url):
    engine = create_engine(DatabaseSettings(url=database_url))
    await migrate.upgrade(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine):
    return create_sessionmaker(engine)


async def test_migrations_reach_head_and_are_idempotent(engine):
    assert await migrate.current_revision(engine) == migrate.head_revision()
    assert await migrate.is_current(engine)
    await migrate.upgrade(engine)  # a second run changes nothing and does not fail
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(sync.dialect.get_table_names(sync)))
    assert {"tenants", "api_keys", "sealed_secrets", "alembic_version"} <= tables


async def test_fresh_database_reports_migrations_behind(database_url):
    engine = create_engine(DatabaseSettings(url=database_url))
    try:
        assert not await migrate.is_current(engine)
    finally:
        await engine.dispose()


async def test_sqlite_runs_with_wal_busy_timeout_and_foreign_keys(tmp_path):
    engine = create_engine(
        DatabaseSettings(url=f"sqlite+aiosqlite:///{tmp_path}/p.db", busy_timeout_ms=4321)
    )
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 4321
            # FULL: a commit, and so a 202, survives a power cut, not only a process crash.
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == 2
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
    finally:
        await engine.dispose()


async def test_foreign_keys_are_enforced(sessions):
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        async with sessions() as session, session.begin():
            await ApiKeyRepository(session).add("key_x", "ten_missing", "0" * 64, "")


async def test_timestamps_come_back_timezone_aware(sessions):
    async with sessions() as session, session.begin():
        tenant = await TenantRepository(session).create("acme")
    async with sessions() as session:
        row = await session.get(TenantRow, tenant.id)
    assert row.created_at.tzinfo is not None
    assert abs((clock.now() - row.created_at).total_seconds()) < 60


async def test_naive_datetimes_are_refused(sessions):
    with pytest.raises(StatementError, match="naive"):
        async with sessions() as session, session.begin():
            session.add(TenantRow(id="ten_naive", name="x", created_at=datetime(2026, 1, 1)))


async def test_api_key_revocation(engine, sessions):
    async with sessions() as session, session.begin():
        tenant = await TenantRepository(session).create("acme")
        await ApiKeyRepository(session).add("key_1", tenant.id, "0" * 64, "admin")
    assert await find_active_key(engine, "key_1") == (tenant.id, "0" * 64, "admin")
    async with sessions() as session, session.begin():
        assert await ApiKeyRepository(session).revoke("key_1")
        assert not await ApiKeyRepository(session).revoke("key_1")
    assert await find_active_key(engine, "key_1") is None


async def test_secrets_are_sealed_at_rest_and_compare_and_set(sessions):
    vault = Vault.from_entries([f"k1:{generate_key()}"])
    async with sessions() as session, session.begin():
        row = await SecretRepository(session, vault).store(
            "refresh-ABC", purpose="refresh_token", tenant_id=None
        )
    async with sessions() as session:
        stored = (
            await session.execute(text("SELECT ciphertext, key_id FROM sealed_secrets"))
        ).one()
        assert b"refresh-ABC" not in bytes(stored[0]) and stored[1] == "k1"
        assert (await SecretRepository(session, vault).open(row.id)).reveal() == "refresh-ABC"
    async with sessions() as session, session.begin():
        repo = SecretRepository(session, vault)
        assert await repo.replace(row.id, "refresh-DEF", expected_version=1)
        # A writer that read version 1 too must not overwrite the newer value.
        assert not await repo.replace(row.id, "refresh-STALE", expected_version=1)
    async with sessions() as session:
        assert (await SecretRepository(session, vault).open(row.id)).reveal() == "refresh-DEF"


async def test_ciphertext_copied_to_another_row_does_not_open(sessions):
    vault = Vault.from_entries([f"k1:{generate_key()}"])
    async with sessions() as session, session.begin():
        repo = SecretRepository(session, vault)
        a = await repo.store("token-A", purpose="access_token", tenant_id=None)
        b = await repo.store("token-B", purpose="access_token", tenant_id=None)
    async with sessions() as session, session.begin():
        await session.execute(
            text("UPDATE sealed_secrets SET ciphertext = :c WHERE id = :id"),
            {"c": a.ciphertext, "id": b.id},
        )
    async with sessions() as session:
        with pytest.raises(VaultError):
            await SecretRepository(session, vault).open(b.id)


async def test_vault_rotation_reseals_everything_and_keeps_concurrent_writes(
    tmp_path, database_url
):
    old_key = f"old:{generate_key()}"
    new_key = f"new:{generate_key()}"
    before = Gateway.from_settings(
        settings_for(tmp_path, database_url, vault={"keys": [old_key]}), entry_points=False
    )
    await before.open_storage()
    try:
        async with before.session() as session, session.begin():
            repo = SecretRepository(session, before.vault)
            ids = [
                (await repo.store(f"tok-{i}", purpose="access_token", tenant_id=None)).id
                for i in range(7)
            ]
    finally:
        await before.close_storage()

    after = Gateway.from_settings(
        settings_for(tmp_path, database_url, vault={"keys": [new_key, old_key]}), entry_points=False
    )
    await after.open_storage()
    try:
        report = await admin.rotate_vault(after, batch_size=3)
        assert (report.resealed, report.remaining, report.active_key_id) == (7, 0, "new")
        async with after.session() as session:
            key_ids = (
                (await session.execute(text("SELECT DISTINCT key_id FROM sealed_secrets")))
                .scalars()
                .all()
            )
            assert key_ids == ["new"]
            values = [(await SecretRepository(session, after.vault).open(i)).reveal() for i in ids]
        assert values == [f"tok-{i}" for i in range(7)]
        # Once rotated, the old key can be dropped from the ring.
        only_new = Vault.from_entries([new_key])
        async with after.session() as session:
            assert (await SecretRepository(session, only_new).open(ids[0])).reveal() == "tok-0"
    finally:
        await after.close_storage()


async def test_rotation_skips_a_row_written_meanwhile(sessions):
    old = f"old:{generate_key()}"
    vault_old = Vault.from_entries([old])
    vault_new = Vault.from_entries([f"new:{generate_key()}", old])
    async with sessions() as session, session.begin():
        row = await SecretRepository(session, vault_old).store("v1", purpose="p", tenant_id=None)
    async with sessions() as session, session.begin():
        stale = (await SecretRepository(session, vault_new).stale_batch())[0]
    # A refresh lands between the rotation's read and its write.
    async with sessions() as session, session.begin():
        assert await SecretRepository(session, vault_new).replace(row.id, "v2", expected_version=1)
    async with sessions() as session, session.begin():
        assert not await SecretRepository(session, vault_new).reseal(stale)
    async with sessions() as session:
        assert (await SecretRepository(session, vault_new).open(row.id)).reveal() == "v2"


async def test_row_associated_data_names_row_and_purpose():
    row = SealedSecretRow(id="sec_1", purpose="access_token")
    assert row.associated_data() == "sealed_secrets:sec_1:access_token"


async def test_migration_0009_turns_json_null_into_sql_null(engine, sessions):
    """Rows written before 0009 kept a cleared error as JSON 'null'; after it, that is NULL."""
    from alembic import command
    from sqlalchemy import JSON, column, table, update

    from gateway.db.models import ConnectionRow, PublishJobRow

    async with sessions.begin() as session:
        session.add(TenantRow(id="ten_1", name="t"))
        await session.flush()
        session.add(
            ConnectionRow(id="conn_1", tenant_id="ten_1", platform="p", external_user_id="u")
        )
        await session.flush()
        session.add(
            PublishJobRow(
                id="job_1",
                post_id="post_1",
                tenant_id="ten_1",
                connection_id="conn_1",
                account_id="acct",
                platform="p",
                status="published",
                request_json={},
                request_hash="0" * 64,
                next_attempt_at=clock.now(),
                error_json=None,
            )
        )
    stored = "SELECT COUNT(*) FROM publish_jobs WHERE error_json IS NULL AND notes IS NULL"
    async with engine.begin() as connection:
        assert (await connection.execute(text(stored))).scalar_one() == 1
        # What the columns wrote before: None as the JSON text 'null'.
        jobs = table("publish_jobs", column("error_json", JSON()), column("notes", JSON()))
        await connection.execute(update(jobs).values(error_json=None, notes=None))
        assert (await connection.execute(text(stored))).scalar_one() == 0

    def back_to_0008(sync_connection) -> None:
        config = migrate.alembic_config()
        config.attributes["connection"] = sync_connection
        command.downgrade(config, "0008_health_views")

    async with engine.begin() as connection:
        await connection.run_sync(back_to_0008)
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        assert (await connection.execute(text(stored))).scalar_one() == 1
