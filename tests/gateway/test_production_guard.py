"""Production refuses sandbox-only settings: a platform's sandbox_url, a development vault key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.host import build_vault
from gateway.settings import load_settings, settings_from_mapping
from gateway.vault import dev_key_entry, generate_key

REAL_KEY = f"k1:{generate_key()}"


def production(**sections) -> dict:
    return {"core": {"mode": "production"}, "vault": {"keys": [REAL_KEY]}, **sections}


def refusal(raw: dict) -> str:
    with pytest.raises(ConfigError) as error:
        settings_from_mapping(raw)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_a_sandbox_url_is_refused_in_production_naming_it_and_kept_in_sandbox_mode():
    platforms = {"meta": {"sandbox_url": "http://127.0.0.1:8081"}}
    assert refusal(production(platforms=platforms)).startswith(
        "config: platforms.meta.sandbox_url: not allowed in production"
    )
    settings = settings_from_mapping({"platforms": platforms})
    assert settings.platform("meta").sandbox_url == "http://127.0.0.1:8081"


def test_a_disabled_platform_may_not_keep_one_either():
    raw = production(platforms={"meta": {"enabled": False, "sandbox_url": "http://x.test"}})
    assert refusal(raw).startswith("config: platforms.meta.sandbox_url:")


def test_the_emulator_test_setting_lets_production_use_a_sandbox_url(tmp_path: Path):
    config = tmp_path / "gateway.toml"
    config.write_text(f'[core]\nmode = "production"\n[vault]\nkeys = ["{REAL_KEY}"]\n')
    environ = {
        "GATEWAY_PLATFORMS_META_SANDBOX_URL": "http://127.0.0.1:8081",
        "GATEWAY_TESTING_PRODUCTION_AGAINST_EMULATORS": "true",
    }
    settings = load_settings(config, environ=environ)
    assert settings.platform("meta").sandbox_url == "http://127.0.0.1:8081"
    del environ["GATEWAY_TESTING_PRODUCTION_AGAINST_EMULATORS"]
    with pytest.raises(ConfigError, match=r"platforms\.meta\.sandbox_url"):
        load_settings(config, environ=environ)


def test_the_generated_development_key_is_refused_in_production(tmp_path: Path):
    entry, _ = dev_key_entry(tmp_path / "vault.key")
    for keys in ([entry], [REAL_KEY, entry]):
        message = refusal(production(vault={"keys": keys}))
        assert message.startswith("config: vault.keys: key 'dev' is a development key"), message
    assert refusal(production(vault={"keys": [f"dev-2:{generate_key()}"]})).startswith(
        "config: vault.keys:"
    )
    # A key id that merely starts with the letters is an operator's own.
    settings_from_mapping(production(vault={"keys": [f"devops1:{generate_key()}"]}))


def test_an_existing_development_key_file_works_in_sandbox_mode_only(tmp_path: Path):
    # As sandbox mode wrote it before keys were checked: `dev:<key>` and a newline.
    (tmp_path / "vault.key").write_text(f"dev:{generate_key()}\n")
    settings = settings_from_mapping({"core": {"data_dir": str(tmp_path)}})
    vault = build_vault(settings)
    assert vault.key_ids == ["dev"]
    sealed = vault.seal("token", bound_to="row-1")
    assert build_vault(settings).open(sealed, bound_to="row-1").reveal() == "token"
    entry = (tmp_path / "vault.key").read_text().strip()
    settings_from_mapping({"vault": {"keys": [entry]}})  # configured in sandbox mode: fine
    assert refusal(production(vault={"keys": [entry]})).startswith("config: vault.keys:")


@pytest.mark.parametrize("key_id", ["dev", "dev-2"])
def test_generate_key_will_not_make_a_key_production_refuses(key_id: str):
    from click.testing import CliRunner

    from gateway.cli import cli

    result = CliRunner().invoke(cli, ["vault", "generate-key", "--id", key_id])
    assert result.exit_code == 2
    assert f"key id {key_id!r} marks sandbox mode's development key" in result.output
