"""Build the plugin manager: entry points (group "gateway.plugins"), disabled names, tracing."""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy
import structlog

from . import hookspecs
from .errors import PluginError

ENTRY_POINT_GROUP = "gateway.plugins"
CORE_DISTRIBUTION = "integration-gateway"
# Core behaviour shipped as plugins through the same hooks as everyone else's.
DEFAULT_PLUGINS = (
    "gateway.default_plugins.api_keys",
    "gateway.default_plugins.audit_log",
    "gateway.default_plugins.client_webhooks",
    "gateway.default_plugins.dashboard_sessions",
)

log = structlog.get_logger("gateway.plugins")


@dataclass(slots=True)
class PluginInfo:
    """What `gateway plugins` shows about one loaded plugin."""

    name: str
    module: str
    distribution: str
    version: str
    default: bool = False
    platforms: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)


@dataclass(slots=True)
class LoadedPlugins:
    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    skipped: dict[str, str]


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = ep.dist
    if dist is None:
        return "<unknown>", "0"
    return dist.metadata["Name"], dist.version


def _core_version() -> str:
    try:
        return metadata.version(CORE_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


def load_plugins(
    *,
    disabled: Iterable[str] = (),
    skip_broken: bool = False,
    trace: bool = False,
    entry_points: bool = True,
    extra: Iterable[tuple[str, Any]] = (),
    quiet: bool = False,
) -> LoadedPlugins:
    """A fresh plugin manager with the default plugins, the installed ones and ``extra``.

    :param disabled: plugin names not to load (`plugins.disabled`).
    :param skip_broken: log and skip a plugin that fails to import instead of stopping.
    :param entry_points: False in tests that want only ``extra``.
    :param extra: ``(name, plugin object)`` pairs registered after the others (tests).
    :param quiet: do not log skipped plugins (the CLI's early look for extra commands).
    :raises PluginError: naming the plugin that failed.
    """
    manager = new_manager()
    disabled = set(disabled)
    infos: dict[str, PluginInfo] = {}
    skipped: dict[str, str] = {}
    for name in disabled:
        manager.set_blocked(name)

    for module_name in DEFAULT_PLUGINS:
        if module_name in disabled:
            continue
        module = importlib.import_module(module_name)
        manager.register(module, name=module_name)
        infos[module_name] = PluginInfo(
            module_name, module_name, CORE_DISTRIBUTION, _core_version(), default=True
        )

    if entry_points:
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in disabled or ep.name in infos:
                continue
            dist, version = _dist_of(ep)
            try:
                plugin = ep.load()
                manager.register(plugin, name=ep.name)
            except Exception as err:  # any import-time failure of third-party code
                problem = f"failed to load from {dist} ({type(err).__name__}: {err})"
                if not skip_broken:
                    raise PluginError(ep.name, problem) from err
                skipped[ep.name] = problem
                if not quiet:
                    log.error("plugin.skipped", plugin=ep.name, distribution=dist, reason=problem)
                continue
            infos[ep.name] = PluginInfo(ep.name, ep.value, dist, version)

    for name, plugin in extra:
        manager.register(plugin, name=name)
        module = inspect.getmodule(plugin)
        infos[name] = PluginInfo(name, getattr(module, "__name__", name), "<test>", "0")

    try:
        manager.check_pending()
    except pluggy.PluginValidationError as err:
        raise PluginError(getattr(err, "plugin_name", "?") or "?", str(err)) from err
    for name, info in infos.items():
        plugin = manager.get_plugin(name)
        if plugin is not None:
            info.hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
    if trace:
        _enable_tracing(manager)
    return LoadedPlugins(manager, infos, skipped)


def call_registration(manager: pluggy.PluginManager, hook_name: str, registry: Any) -> None:
    """Call one register_* hook plugin by plugin, so each registration records its owner."""
    caller = getattr(manager.hook, hook_name)
    for impl in caller.get_hookimpls():  # registration order: the first plugin claims first
        registry.owned_by(impl.plugin_name)
        try:
            # An implementation may take a subset of the spec's arguments, as in pluggy.
            impl.function(*(registry for _ in impl.argnames))
        except PluginError:
            raise
        except Exception as err:
            raise PluginError(impl.plugin_name, f"{hook_name} failed: {err}") from err


def _enable_tracing(manager: pluggy.PluginManager) -> None:
    """Print every hook call (like DATASETTE_TRACE_PLUGINS): arguments, implementations, results."""

    def before(hook_name: str, impls: list[pluggy.HookImpl], kwargs: dict[str, Any]) -> None:
        names = ", ".join(impl.plugin_name for impl in impls)
        print(f"[plugins] {hook_name}({', '.join(kwargs)}) -> [{names}]", file=sys.stderr)

    def after(outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        print(f"[plugins] {hook_name} returned {outcome.get_result()!r}", file=sys.stderr)

    manager.add_hookcall_monitoring(before, after)
