"""Plugin discovery by entry point, registries, disabling, broken plugins, `gateway plugins`."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from gateway import ApiKeySpec, Connector, hookimpl
from gateway.errors import ConfigError, PluginError
from gateway.host import Gateway
from gateway.plugins import load_plugins

from ..conftest import settings_for
from ..support import without_gateway_settings


@pytest.fixture
def with_installed_example(installed_example, monkeypatch):
    """Put the installed distribution on sys.path (entry points are read from sys.path)."""
    monkeypatch.syspath_prepend(str(installed_example))
    importlib.invalidate_caches()
    return installed_example


def test_third_party_distribution_is_discovered_by_entry_point(with_installed_example, tmp_path):
    gateway = Gateway.from_settings(settings_for(tmp_path))
    info = gateway.plugins.infos["example"]
    assert (info.distribution, info.version) == ("gateway-example-plugin", "1.2.3")
    assert info.platforms == ["example", "examplesocial"]
    assert gateway.connectors.owner("example") == "example"
    assert {"register_connectors", "register_routes", "startup"} <= set(info.hooks)
    # The built-in plugins come through the very same entry-point group.
    for builtin in ("meta", "linkedin", "tiktok", "gbp", "mailchimp"):
        assert gateway.plugins.infos[builtin].distribution == "integration-gateway"


def test_gateway_plugins_command_lists_the_third_party_plugin(with_installed_example, tmp_path):
    env = {"PYTHONPATH": str(with_installed_example), "GATEWAY_CORE_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "plugins", "--json"],
        capture_output=True,
        text=True,
        env={**_base_env(), **env},
        check=True,
    )
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    example = plugins["example"]
    assert example["version"] == "1.2.3"
    assert example["distribution"] == "gateway-example-plugin"
    assert example["platforms"] == ["example", "examplesocial"]
    assert example["capabilities"]["example"]["postKinds"] == {"example_page": ["text", "image"]}
    table = subprocess.run(
        [sys.executable, "-m", "gateway", "plugins"],
        capture_output=True,
        text=True,
        env={**_base_env(), **env},
        check=True,
    ).stdout
    assert "gateway-example-plugin" in table and "example (image,text; delete)" in table
    # The plugin's own subcommand is there too.
    hello = subprocess.run(
        [sys.executable, "-m", "gateway", "example-hello"],
        capture_output=True,
        text=True,
        env={**_base_env(), **env},
        check=True,
    )
    assert hello.stdout.strip() == "hello from the example plugin"


def test_disabled_plugin_is_not_loaded(with_installed_example, tmp_path):
    gateway = Gateway.from_settings(
        settings_for(tmp_path, plugins={"disabled": ["example", "meta"]})
    )
    assert "example" not in gateway.plugins.infos and "meta" not in gateway.plugins.infos
    assert "example" not in gateway.connectors


def _base_env() -> dict[str, str]:

    return without_gateway_settings()


def _broken_distribution(tmp_path: Path) -> Path:
    """A distribution whose plugin module raises on import (an installed dist-info by hand)."""
    site = tmp_path / "broken-site"
    (site / "broken_plugin").mkdir(parents=True)
    (site / "broken_plugin" / "__init__.py").write_text(
        "raise ImportError('missing dependency foo')\n"
    )
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[gateway.plugins]\nbroken = broken_plugin\n")
    return site


def test_plugin_that_fails_to_import_stops_startup_naming_it(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(_broken_distribution(tmp_path)))
    with pytest.raises(PluginError) as err:
        load_plugins()
    assert "plugin 'broken'" in str(err.value)
    assert "broken-plugin" in str(err.value) and "missing dependency foo" in str(err.value)


def test_broken_plugin_is_skipped_and_logged_when_configured(tmp_path, monkeypatch):
    from structlog.testing import capture_logs

    monkeypatch.syspath_prepend(str(_broken_distribution(tmp_path)))
    with capture_logs() as logs:
        loaded = load_plugins(skip_broken=True)
    assert "broken" in loaded.skipped and "broken" not in loaded.infos
    assert any(e["event"] == "plugin.skipped" and e["plugin"] == "broken" for e in logs)
    assert "meta" in loaded.infos  # the others still load


def test_broken_plugin_cli_error_is_one_line_exit_2(tmp_path):
    site = _broken_distribution(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "plugins"],
        capture_output=True,
        text=True,
        env={**_base_env(), "PYTHONPATH": str(site), "GATEWAY_CORE_DATA_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: plugin 'broken': failed to load")
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


class OtherConnector(Connector):
    platform = "example"
    auth = ApiKeySpec()


def test_platform_registered_twice_names_both_plugins(make_gateway, example_plugin):
    rival = types.SimpleNamespace(
        register_connectors=hookimpl(lambda registry: registry.add(OtherConnector))
    )
    with pytest.raises(PluginError) as err:
        make_gateway((("example", example_plugin), ("rival", rival)))
    assert str(err.value) == "plugin 'rival': platform 'example' is already registered by 'example'"


@pytest.mark.parametrize(
    ("connector_attrs", "problem"),
    [
        ({"platform": "Bad Name", "auth": ApiKeySpec()}, "lowercase slug"),
        ({"platform": "nokind"}, "declares no auth"),
    ],
)
def test_invalid_connectors_are_refused(make_gateway, connector_attrs, problem):
    bad = type("BadConnector", (Connector,), connector_attrs)
    plugin = types.SimpleNamespace(register_connectors=hookimpl(lambda registry: registry.add(bad)))
    with pytest.raises(PluginError, match=problem):
        make_gateway((("bad", plugin),))


def test_unknown_hook_name_is_refused(make_gateway):
    plugin = types.SimpleNamespace(register_conectors=hookimpl(lambda registry: None))
    with pytest.raises(PluginError, match="register_conectors"):
        make_gateway((("typo", plugin),))


def test_platform_section_without_a_plugin_is_a_config_error(tmp_path):
    settings = settings_for(tmp_path, platforms={"nosuch": {"client_id": "x"}})
    with pytest.raises(
        ConfigError, match=re.escape("platforms.nosuch: no loaded plugin provides it")
    ):
        Gateway.from_settings(settings, entry_points=False)


def test_platform_keys_are_checked_against_the_connector(tmp_path, example_plugin):
    settings = settings_for(tmp_path, platforms={"example": {"regoin": "eu"}})
    with pytest.raises(ConfigError, match=re.escape("platforms.example.regoin: unknown key")):
        Gateway.from_settings(
            settings, extra_plugins=[("example", example_plugin)], entry_points=False
        )


def test_required_platform_secret_in_production(tmp_path, example_plugin):
    settings = settings_for(tmp_path, core={"mode": "production"})
    with pytest.raises(
        ConfigError, match=re.escape("platforms.example.region: required in production")
    ):
        Gateway.from_settings(
            settings, extra_plugins=[("example", example_plugin)], entry_points=False
        )
    ok = settings_for(
        tmp_path,
        core={"mode": "production"},
        platforms={
            "example": {"region": "eu"},
            "examplesocial": {"client_id": "app-1", "client_secret": "s3cret"},
        },
    )
    gateway = Gateway.from_settings(
        ok, extra_plugins=[("example", example_plugin)], entry_points=False
    )
    assert gateway.settings.platform("example").get("region") == "eu"


async def test_track_event_reaches_plugins_and_a_failing_observer_is_contained(
    make_gateway, example_plugin
):
    from gateway import Event

    def explode(gateway, event):
        raise RuntimeError("observer bug")

    faulty = types.SimpleNamespace(track_event=hookimpl(explode))
    gateway = make_gateway((("example", example_plugin), ("faulty", faulty)))
    from structlog.testing import capture_logs

    with capture_logs() as logs:
        await gateway.emit(Event("job.published", tenant_id="ten_1", data={"jobId": "job_1"}))
    assert example_plugin.EVENTS == ["job.published"]
    failures = [e for e in logs if e["event"] == "plugin.track_event_failed"]
    assert [(e["plugin"], e["event_name"]) for e in failures] == [("faulty", "job.published")]


async def test_authenticate_request_plugins_can_answer_first(
    aiohttp_client, make_gateway, example_plugin
):
    from gateway import Principal
    from gateway.web.app import create_app

    async def service_token(gateway, request):
        if request.headers.get("X-Service-Token") == "trusted":
            return Principal(tenant_id="ten_service", key_id="svc")
        return None

    plugin = types.SimpleNamespace(authenticate_request=hookimpl(service_token))
    client = await aiohttp_client(
        create_app(make_gateway((("example", example_plugin), ("svc", plugin))))
    )
    ok = await client.get("/api/plugins/example/whoami", headers={"X-Service-Token": "trusted"})
    assert await ok.json() == {"tenantId": "ten_service"}
    # An async implementation answering None must not stop the default API-key check.
    assert (
        await client.get("/api/plugins/example/whoami", headers={"X-Service-Token": "no"})
    ).status == 401
