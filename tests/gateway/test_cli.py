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
from ..support import without_gateway_settings


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
