"""Every hook a plugin can implement, typed and documented, grouped by phase."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from aiohttp import web

    from .host import Gateway
    from .registry import ConnectorRegistry, RouteRegistry, SandboxRegistry
    from .types import Event, Principal

PROJECT = "gateway"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- Registration: called once at start-up, synchronously; they only register things. ---


@hookspec
def register_connectors(registry: ConnectorRegistry) -> None:
    """Register :class:`gateway.Connector` subclasses, one per platform id.

    :param registry: call ``registry.add(ConnectorClass)``; a platform registered twice stops
        start-up naming both plugins.
    Called when: the plugin manager has loaded every plugin, before the web app is built.
    """


@hookspec
def register_sandboxes(registry: SandboxRegistry) -> None:
    """Register :class:`gateway.sandbox.Sandbox` subclasses, the emulators of platform APIs.

    :param registry: call ``registry.add(SandboxClass)``; keyed by the sandbox's ``platform``.
    Called when: at start-up; in sandbox mode each one is mounted under ``/sandbox/<platform>/``
    and ``gateway sandbox PLATFORM`` serves one on its own.
    """


@hookspec
def register_routes(registry: RouteRegistry) -> None:
    """Register extra inbound HTTP routes a plugin serves.

    :param registry: ``registry.add(method, path, handler, auth=True)``. Authenticated routes are
        mounted under ``/api/plugins/<plugin>/`` (tenant API-key auth, problem+json errors);
        ``auth=False`` routes under ``/plugins/<plugin>/``. Handlers reach the gateway with
        ``gateway.current_gateway(request)`` and the caller with ``gateway.current_principal``.
    Called when: the web app is built.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``gateway`` command line.

    :param cli: the top-level click group; use ``@cli.command()``.
    Called when: the ``gateway`` command starts, before it parses arguments.
    """


@hookspec
def extra_client_middlewares(gateway: Gateway, platform: str) -> list[Any] | None:
    """Extra aiohttp client middlewares for one platform's outbound session.

    :param gateway: the running gateway.
    :param platform: the platform whose session is being built.
    :returns: a list of middlewares (e.g. request signing), run inside the core's own ones.
    Called when: each platform's outbound client is created at start-up.
    """


# --- Lifecycle: may return an awaitable, which the core awaits. ---


@hookspec
def startup(gateway: Gateway) -> Any:
    """The gateway is ready: database, vault, registries and outbound clients are set up.

    :param gateway: the running gateway.
    :returns: ``None`` or an awaitable.
    Called when: once per process, after start-up and before requests are served.
    """


@hookspec
def shutdown(gateway: Gateway) -> Any:
    """The gateway is stopping; release what ``startup`` took.

    :param gateway: the running gateway.
    :returns: ``None`` or an awaitable.
    Called when: once per process, before outbound clients close and the engine is disposed.
    """


# --- Requests and events. ---


@hookspec(firstresult=True)
def authenticate_request(gateway: Gateway, request: web.Request) -> Principal | Any | None:
    """Identify the caller of an ``/api/*`` route. Stops at the first non-None result.

    :param gateway: the running gateway.
    :param request: the incoming request (headers only; do not read the body).
    :returns: a :class:`gateway.Principal`, ``None`` to let another plugin decide, or an
        awaitable of either. The default implementation checks ``Authorization: Bearer`` API keys.
    Called when: before every ``/api/*`` handler; no principal means ``401``.
    """


@hookspec
def track_event(gateway: Gateway, event: Event) -> Any:
    """Observe a domain event (``job.published``, ``connection.needs_reconnect``, ...).

    :param gateway: the running gateway.
    :param event: the event; never carries a secret.
    :returns: ``None`` or an awaitable. Errors are logged and do not affect the caller.
    Called when: the core records the event, after its transaction has committed.
    """
