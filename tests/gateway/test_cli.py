"""The `gateway` command: help, exit codes 0/1/2, one-line errors, tenants, keys, vault."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from gateway.cli import cli
from gateway.clock import OFFSET_ENV
from gateway.db.migrate import head_revision
from gateway.vault import generate_key

from ..conftest import TEST_KEY
from ..support import free_port, without_gateway_settings


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Run the CLI in-process against a config file under ``tmp_path``."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[core]\ndata_dir = "{tmp_path}/var"\n'
        f'[database]\nurl = "sqlite+aiosqlite:///{tmp_path}/cli.db"\n'
        f'[vault]\nkeys = ["{TEST_KEY}"]\n'
    )
    for name in list(os.environ):
        if name.startswith("GATEWAY_") and name != OFFSET_ENV:
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAY_CONFIG", str(config))
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(cli, list(args), env=env, catch_exceptions=False)

    return invoke


def error_line(result) -> str:
    """The error, which is one line and the last one (log lines may come before it)."""
    return result.stderr.strip().splitlines()[-1]


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", list(all_commands(cli)), ids=" ".join)
def test_every_command_has_help(run, path):
    result = run(*path, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 3


def test_tenant_and_keys_lifecycle(run):
    created = run("tenants", "create", "acme", "--json")
    assert created.exit_code == 0
    tenant = json.loads(created.stdout)
    assert tenant["tenantId"].startswith("ten_") and tenant["apiKey"].startswith("key_")
    more = run("keys", "create", "--tenant", tenant["tenantId"], "--admin", "--json")
    assert more.exit_code == 0
    key_id = json.loads(more.stdout)["keyId"]
    assert run("keys", "revoke", key_id).exit_code == 0
    again = run("keys", "revoke", key_id)
    assert again.exit_code == 1
    assert error_line(again) == f"error: no active key {key_id}"


def test_keys_for_unknown_tenant_fail_with_one_line(run):
    result = run("keys", "create", "--tenant", "ten_missing")
    assert result.exit_code == 1
    assert error_line(result) == "error: no tenant ten_missing"


def test_usage_errors_exit_2(run):
    assert run("keys", "create").exit_code == 2  # --tenant missing
    assert run("tenants", "create", "").exit_code == 2
    assert run("serve", "--port", "99999").exit_code == 2
    assert run("no-such-command").exit_code == 2


def test_bad_config_exits_2_with_one_line(run, tmp_path):
    result = run("migrate", env={"GATEWAY_SERVER_PORT": "eighty"})
    assert result.exit_code == 2
    assert error_line(result) == "error: config: server.port: expected a whole number, got 'eighty'"


def test_migrate_reports_the_revision(run):
    result = run("migrate")
    assert (
        result.exit_code == 0 and result.stdout.strip() == f"database at revision {head_revision()}"
    )


def test_vault_rotate_reseals_under_the_new_key(run, tmp_path):
    import asyncio

    from gateway.db.repositories import SecretRepository
    from gateway.host import Gateway
    from gateway.settings import load_settings

    async def store():
        gateway = Gateway.from_settings(load_settings(), entry_points=False)
        await gateway.open_storage()
        async with gateway.session() as session, session.begin():
            await SecretRepository(session, gateway.vault).store("tok", purpose="p", tenant_id=None)
        await gateway.close_storage()

    asyncio.run(store())
    new = f"k2:{generate_key()}"
    result = run("vault", "rotate", env={"GATEWAY_VAULT_KEYS": f"{new},{TEST_KEY}"})
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "re-sealed 1 secrets under key 'k2'"
    nothing_left = run("vault", "rotate", env={"GATEWAY_VAULT_KEYS": f"{new},{TEST_KEY}"})
    assert nothing_left.stdout.strip() == "re-sealed 0 secrets under key 'k2'"


def test_generate_key_prints_a_usable_entry(run):
    from gateway.vault import Vault

    entry = run("vault", "generate-key", "--id", "prod1").stdout.strip()
    assert entry.startswith("prod1:")
    Vault.from_entries([entry])


def test_sandbox_for_unknown_platform_is_a_usage_error(run):
    result = run("sandbox", "nosuch")
    assert result.exit_code == 2
    assert error_line(result).startswith("error: no sandbox for platform 'nosuch'")


def test_console_script_has_no_traceback_on_bad_config(tmp_path):
    env = without_gateway_settings()
    env["GATEWAY_CONFIG"] = str(tmp_path / "missing.toml")
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "migrate"], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: config: {tmp_path / 'missing.toml'}: config file not found"
    )


@pytest.mark.parametrize(
    "args",
    [
        ("migrate",),
        ("status",),
        ("tenants", "create", "acme", "--json"),
        ("tenants", "list"),
        ("keys", "list", "--tenant", "ten_missing"),
        ("keys", "revoke", "key_missing"),
        ("dlq", "audit"),
        ("vault", "rotate"),
    ],
    ids=" ".join,
)
def test_commands_that_use_the_database_name_it_first_on_stderr(run, tmp_path, args):
    result = run(*args)
    assert result.stderr.splitlines()[0] == f"database: {tmp_path}/cli.db"
    assert f"database: {tmp_path}/cli.db\n" not in result.stdout  # stdout: the output only


def test_commands_that_do_not_use_the_database_do_not_name_one(run):
    assert "database:" not in run("plugins").stderr
    assert "database:" not in run("vault", "generate-key").stderr


def test_the_database_is_named_without_its_password(run):
    port = free_port()
    url = f"postgresql+asyncpg://gw:hunter2@127.0.0.1:{port}/gw"
    result = run("status", env={"GATEWAY_DATABASE_URL": url})
    assert result.exit_code == 0  # status reports the database it cannot reach
    assert result.stderr.splitlines()[0] == f"database: postgresql://gw:***@127.0.0.1:{port}/gw"
    assert "hunter2" not in result.stdout + result.stderr


def test_migrate_on_a_postgres_database_that_does_not_exist_is_one_line(run, postgres_url):
    missing = f"{postgres_url}_missing"
    result = run("migrate", env={"GATEWAY_DATABASE_URL": missing})
    assert result.exit_code == 1
    name = missing.rsplit("/", 1)[1]
    shown = missing.replace("+asyncpg", "")
    assert error_line(result) == f'error: database {shown}: database "{name}" does not exist'
    assert "sqlalche.me" not in result.stderr and "Traceback" not in result.stderr


def test_migrate_on_a_sqlite_path_that_cannot_be_written_is_one_line(run, tmp_path):
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    under_a_file = run(
        "migrate", env={"GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{blocker}/x.db"}
    )
    assert under_a_file.exit_code == 1
    assert error_line(under_a_file) == (
        f"error: database {blocker}/x.db: cannot create its directory: File exists: {blocker}"
    )
    a_directory = run("migrate", env={"GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}"})
    assert a_directory.exit_code == 1
    assert error_line(a_directory) == (
        f"error: database {tmp_path}: a directory, not a database file"
    )
    for result in (under_a_file, a_directory):
        assert len(result.stderr.strip().splitlines()) == 2  # the database, then the error
        assert "sqlalche.me" not in result.stderr and "Traceback" not in result.stderr


def test_tenants_and_keys_are_listed_without_secrets(run):
    acme = json.loads(run("tenants", "create", "acme", "--json").stdout)
    admin_key = json.loads(
        run("keys", "create", "--tenant", acme["tenantId"], "--admin", "--json").stdout
    )
    run("keys", "revoke", acme["keyId"])
    run("tenants", "create", "globex")

    tenants = json.loads(run("tenants", "list", "--json").stdout)["tenants"]
    assert [(t["name"], t["activeKeys"]) for t in tenants] == [("acme", 1), ("globex", 1)]
    assert tenants[0]["tenantId"] == acme["tenantId"]

    listed = run("keys", "list", "--tenant", acme["tenantId"], "--json")
    keys = json.loads(listed.stdout)["keys"]
    assert [(k["keyId"], k["admin"], k["revokedAt"] is not None) for k in keys] == [
        (acme["keyId"], False, True),
        (admin_key["keyId"], True, False),
    ]
    table = run("keys", "list", "--tenant", acme["tenantId"]).stdout
    assert table.splitlines()[0].split() == ["KEY", "ID", "CREATED", "REVOKED", "SCOPE"]
    for secret in (acme["apiKey"], admin_key["apiKey"]):
        _, random_part = secret.split(".", 1)
        assert random_part not in listed.stdout + table + run("tenants", "list").stdout


def test_keys_of_an_unknown_tenant_fail_with_one_line(run):
    result = run("keys", "list", "--tenant", "ten_missing")
    assert result.exit_code == 1
    assert error_line(result) == "error: no tenant ten_missing"


def test_no_tenants_yet(run):
    assert run("tenants", "list").stdout.strip() == "no tenants (gateway tenants create NAME)"
    assert json.loads(run("tenants", "list", "--json").stdout) == {"tenants": []}


def test_help_says_what_is_printed_and_when_a_revocation_takes_effect(run):
    assert '"keyId"' in run("tenants", "create", "--help").stdout
    revoke = " ".join(run("keys", "revoke", "--help").stdout.split())
    assert "within auth.key_cache_seconds (5 s by default)" in revoke
    assert "at once" not in revoke


def test_plugins_table_columns_line_up_whatever_the_name_lengths(run):
    lines = run("plugins").stdout.splitlines()
    header = lines[0]
    starts = [header.index(title) for title in ("VERSION", "DISTRIBUTION", "PLATFORMS")]
    assert max(len(line.split()[0]) for line in lines[1:]) > 36  # a long default plugin name
    for line in lines[1:]:
        for start in starts:
            assert line[start - 1] == " " and line[start] != " ", line


def test_status_reports_without_failing_when_nothing_runs(run, tmp_path):
    result = run("status", "--json", env={"GATEWAY_SERVER_PORT": str(free_port())})
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["database"]["location"] == f"{tmp_path}/cli.db"
    assert report["database"]["reachable"] is False
    assert report["server"]["answering"] is False
    assert report["config"]["chosenBy"] == "GATEWAY_CONFIG"
    assert report["config"]["environment"] == ["GATEWAY_SERVER_PORT"]
    run("migrate")
    human = run("status").stdout
    assert f"migrations: {head_revision()} (up to date)" in human


def test_sandbox_webhook_target_must_be_an_http_url(run):
    result = run("sandbox", "meta", "--webhook-target", "ftp://example.test/hook")
    assert result.exit_code == 2
    assert "--webhook-target" in result.output
    assert "must be an absolute http(s) URL" in result.output
