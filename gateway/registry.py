"""Typed registries that the register_* hooks fill; they reject duplicates and record owners."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

from .errors import PluginError

if TYPE_CHECKING:
    from aiohttp import web

    from .connector import Connector
    from .sandbox import Sandbox

T = TypeVar("T")
PLATFORM_ID = re.compile(r"^[a-z][a-z0-9]{1,31}$")


@dataclass(frozen=True, slots=True)
class Registration(Generic[T]):
    """One registered object and the plugin that registered it."""

    key: str
    value: T
    plugin: str


class _Registry(Generic[T]):
    kind = "item"

    def __init__(self) -> None:
        self._items: dict[str, Registration[T]] = {}
        self._owner = "<unknown>"

    def owned_by(self, plugin: str) -> _Registry[T]:
        """Attribute the next registrations to ``plugin`` (the core calls this per hook impl)."""
        self._owner = plugin
        return self

    def _put(self, key: str, value: T) -> None:
        if key in self._items:
            first = self._items[key].plugin
            raise PluginError(
                self._owner, f"{self.kind} {key!r} is already registered by {first!r}"
            )
        self._items[key] = Registration(key, value, self._owner)

    def get(self, key: str) -> T | None:
        found = self._items.get(key)
        return found.value if found else None

    def owner(self, key: str) -> str | None:
        found = self._items.get(key)
        return found.plugin if found else None

    def registrations(self) -> list[Registration[T]]:
        return list(self._items.values())

    def by_plugin(self, plugin: str) -> list[str]:
        return [r.key for r in self._items.values() if r.plugin == plugin]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)


class ConnectorRegistry(_Registry["type[Connector]"]):
    """Connector classes by platform id."""

    kind = "platform"

    def add(self, connector: type[Connector]) -> None:
        from .connector import Connector

        if not (isinstance(connector, type) and issubclass(connector, Connector)):
            raise PluginError(self._owner, f"{connector!r} is not a gateway.Connector subclass")
        platform = getattr(connector, "platform", "")
        if not PLATFORM_ID.match(platform or ""):
            raise PluginError(
                self._owner,
                f"{connector.__name__}.platform must be a lowercase slug like 'meta', "
                f"got {platform!r}",
            )
        if not getattr(connector, "auth", None):
            raise PluginError(self._owner, f"{connector.__name__} declares no auth")
        self._put(platform, connector)


class SandboxRegistry(_Registry["type[Sandbox]"]):
    """Platform emulators by platform id."""

    kind = "sandbox"

    def add(self, sandbox: type[Sandbox]) -> None:
        platform = getattr(sandbox, "platform", "")
        if not PLATFORM_ID.match(platform or ""):
            raise PluginError(self._owner, f"sandbox {sandbox!r} has no valid platform id")
        self._put(platform, sandbox)


Handler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


@dataclass(frozen=True, slots=True)
class PluginRoute:
    method: str
    path: str
    handler: Handler
    auth: bool
    summary: str
    # JSON Schemas for /openapi.json: the request body (validate it with gateway.read_json)
    # and the 200 answer.
    body: dict | None = None
    response: dict | None = None


class RouteRegistry(_Registry[PluginRoute]):
    """Extra inbound routes plugins serve, mounted under their plugin's prefix."""

    kind = "route"

    def add(
        self,
        method: str,
        path: str,
        handler: Handler,
        *,
        auth: bool = True,
        summary: str = "",
        body: dict | None = None,
        response: dict | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise PluginError(self._owner, f"route path {path!r} must start with '/'")
        method = method.upper()
        prefix = "/api/plugins" if auth else "/plugins"
        full = f"{prefix}/{self._owner}{path}"
        route = PluginRoute(method, full, handler, auth, summary, body, response)
        self._put(f"{method} {full}", route)
