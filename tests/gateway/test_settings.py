"""Config files, environment overrides and the one-line errors that stop start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.settings import load_settings, settings_from_mapping

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_embedded_default_is_sqlite_sandbox_on_8080():
    settings = load_settings(ROOT / "config" / "gateway.toml", environ={})
    assert settings.sandbox_mode
    assert settings.database.url.startswith("sqlite+aiosqlite:///var/")
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8080)
    assert settings.database.migrate_on_start


def test_production_example_reads_secrets_from_the_environment():
    environ = {
        "PUBLIC_URL": "https://gw.example.com",
        "PGUSER": "gw",
        "PGPASSWORD": "pw",
        "GATEWAY_VAULT_KEYS": "k1:" + "A" * 43 + "=",
    }
    settings = load_settings(ROOT / "config" / "production.example.toml", environ=environ)
    assert not settings.sandbox_mode
    assert settings.database.url == "postgresql+asyncpg://gw:pw@127.0.0.1:5432/gateway"
    assert settings.vault.keys == ("k1:" + "A" * 43 + "=",)
    assert settings.telemetry.otlp_endpoint == ""


def test_production_example_without_its_secret_names_the_key_and_variable():
    with pytest.raises(ConfigError) as err:
        load_settings(ROOT / "config" / "production.example.toml", environ={})
    assert str(err.value) == "config: server.public_url: environment variable PUBLIC_URL is not set"


def test_gateway_config_variable_names_the_file(tmp_path):
    path = write(tmp_path, "[server]\nport = 9999\n")
    assert load_settings(environ={"GATEWAY_CONFIG": str(path)}).server.port == 9999


def test_environment_overrides_are_typed(tmp_path):
    path = write(tmp_path, "[server]\nport = 9000\n")
    settings = load_settings(
        path,
        environ={
            "GATEWAY_SERVER_PORT": "9100",
            "GATEWAY_DATABASE_MIGRATE_ON_START": "false",
            "GATEWAY_DATABASE_URL": "postgresql+asyncpg://x@h/db",
            "GATEWAY_PLUGINS_DISABLED": "tiktok, gbp",
            "GATEWAY_OUTBOUND_TOTAL_TIMEOUT_SECONDS": "12.5",
        },
    )
    assert settings.server.port == 9100
    assert settings.database.migrate_on_start is False
    assert settings.database.url == "postgresql+asyncpg://x@h/db"
    assert settings.plugins.disabled == ("tiktok", "gbp")
    assert settings.outbound.total_timeout_seconds == 12.5


def test_platform_sections_from_the_environment(tmp_path):
    settings = load_settings(
        write(tmp_path, ""), environ={"GATEWAY_PLATFORMS_META_SANDBOX_URL": "http://127.0.0.1:9/"}
    )
    assert settings.platform("meta").sandbox_url == "http://127.0.0.1:9/"


@pytest.mark.parametrize(
    ("toml", "environ", "message"),
    [
        ("[server]\nprot = 1\n", {}, "config: server.prot: unknown key"),
        ("[servr]\nport = 1\n", {}, "config: servr: unknown section"),
        (
            '[server]\nport = "eighty"\n',
            {},
            "config: server.port: expected a whole number, got 'eighty'",
        ),
        ("[server]\nport = 70000\n", {}, "config: server.port: must be between 1 and 65535"),
        ("[server]\nport = 80.5\n", {}, "config: server.port: expected a whole number, got 80.5"),
        ("[server]\nport = true\n", {}, "config: server.port: expected a whole number, got True"),
        ("[database]\nmigrate_on_start = 1\n", {}, "expected true or false, got 1"),
        ('[core]\nmode = "staging"\n', {}, "config: core.mode: must be 'sandbox' or 'production'"),
        ('[core]\nmode = "production"\n', {}, "config: vault.keys: required outside sandbox mode"),
        ('[database]\nurl = "mysql://x"\n', {}, "config: database.url: must start with"),
        (
            '[database]\nsqlite_synchronous = "off"\n',
            {},
            "config: database.sqlite_synchronous: must be 'normal', 'full' or 'extra'",
        ),
        ("", {"GATEWAY_SERVER_PORT": "x"}, "config: server.port: expected a whole number, got 'x'"),
        ("", {"GATEWAY_NOPE_KEY": "1"}, "config: GATEWAY_NOPE_KEY: unknown setting"),
        (
            '[database]\nurl = "${DB_URL}"\n',
            {},
            "config: database.url: environment variable DB_URL is not set",
        ),
        ("[server\n", {}, "not valid TOML"),
        ('[oauth]\nallowed_return_urls = ["javascript:x"]\n', {}, "is not an http(s) URL"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, toml, environ, message):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, toml), environ=environ)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_interpolation_default_is_used_when_variable_missing(tmp_path):
    path = write(tmp_path, '[database]\nurl = "${DB_URL:-sqlite+aiosqlite:///x.db}"\n')
    assert load_settings(path, environ={}).database.url == "sqlite+aiosqlite:///x.db"


def test_missing_named_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_security_settings_default_by_mode_and_are_checked():
    assert settings_from_mapping({}).allow_private_targets  # sandbox mode
    production = {"core": {"mode": "production"}, "vault": {"keys": ["k:" + "A" * 43 + "="]}}
    assert not settings_from_mapping(production).allow_private_targets
    assert settings_from_mapping(
        {**production, "security": {"allow_private_targets": True}}
    ).allow_private_targets
    settings = load_settings(
        ROOT / "config" / "gateway.toml",
        environ={
            "GATEWAY_SECURITY_ALLOW_PRIVATE_TARGETS": "false",
            "GATEWAY_SECURITY_ALLOWED_HOSTS": "hooks.corp.example,10.20.0.0/16,*.svc.internal",
        },
    )
    assert not settings.allow_private_targets
    assert settings.security.allowed_hosts == (
        "hooks.corp.example",
        "10.20.0.0/16",
        "*.svc.internal",
    )
    for bad in (["a..b"], ["10.0.0.0/33"], ["http://x.example/"]):
        with pytest.raises(ConfigError, match=r"security\.allowed_hosts"):
            settings_from_mapping({"security": {"allowed_hosts": bad}})
    with pytest.raises(ConfigError, match=r"security\.allow_private_targets"):
        settings_from_mapping({"security": {"allow_private_targets": "sometimes"}})
    with pytest.raises(ConfigError, match=r"webhooks\.max_endpoints_per_tenant"):
        settings_from_mapping({"webhooks": {"max_endpoints_per_tenant": 0}})
