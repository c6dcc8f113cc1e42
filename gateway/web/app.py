"""The aiohttp application factory: middlewares, routes, sandboxes and the gateway's lifecycle."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from aiohttp import web

from .. import eventloop
from ..host import Gateway
from ..plugins import _core_version
from ..sandbox import WebhookTargets
from . import headers, middlewares
from .keys import AUTH_FAILURES, GATEWAY, SPEC
from .lockout import FailedAuthentications
from .routes import (
    analytics,
    connections,
    dashboard,
    health,
    platform_webhooks,
    publish,
    system,
    webhooks,
)
from .spec import ApiSpec, Operation, json_response, path_param, problem

_PATH_VARS = re.compile(r"{(\w+)}")


def build_spec(gateway: Gateway) -> ApiSpec:
    spec = ApiSpec("Integration gateway", _core_version())
    system.install(spec)
    connections.install(spec)
    publish.install(spec)
    webhooks.install(spec, gateway)
    analytics.install(spec)
    platform_webhooks.install(spec)
    health.install(spec)
    for registration in gateway.routes.registrations():
        route = registration.value
        ok = (
            json_response(route.response, "Answered by the plugin")
            if route.response
            else {"description": "Answered by the plugin"}
        )
        responses = {200: ok, 404: problem("Not found")}
        body = None
        if route.body is not None:
            body = {"required": True, "content": {"application/json": {"schema": route.body}}}
            responses[422] = problem("Invalid for the platform")
        spec.add(
            Operation(
                route.method,
                route.path,
                route.handler,
                route.summary or f"{registration.plugin} plugin route",
                responses,
                auth=route.auth,
                tags=(f"plugin:{registration.plugin}",),
                parameters=tuple(path_param(name) for name in _PATH_VARS.findall(route.path)),
                request_body=body,
            )
        )
    return spec


def create_app(gateway: Gateway) -> web.Application:
    """The web app for ``gateway``; starting the app starts the gateway, cleanup stops it."""
    auth = gateway.settings.auth
    failures = FailedAuthentications(auth.failure_limit, auth.failure_window_seconds)
    app = web.Application(
        middlewares=middlewares.stack(gateway, failures),
        client_max_size=gateway.settings.server.max_body_bytes,
    )
    app[GATEWAY] = gateway
    app[AUTH_FAILURES] = failures
    spec = build_spec(gateway)
    app[SPEC] = spec
    spec.install(app)
    dashboard.install(app)
    if gateway.settings.sandbox_mode:
        options = gateway.settings.sandbox
        for name in gateway.sandboxes:
            sandbox = gateway.sandboxes.get(name)(
                auto_approve=options.auto_approve,
                control_token=options.control_token or None,
                # Its webhooks go to this gateway and nowhere else.
                webhook_targets=WebhookTargets.below(gateway.settings.base_url),
            )
            app.add_subapp(f"/sandbox/{name}", sandbox.build_app())
    app.on_response_prepare.append(headers.secure_headers)
    app.cleanup_ctx.append(_gateway_lifecycle)
    app.on_shutdown.append(_start_draining)
    return app


async def freeze_startup_objects(_app: web.Application) -> None:
    """An `on_startup` hook for a server process (see ``eventloop.freeze_startup_objects``)."""
    eventloop.freeze_startup_objects()


async def _gateway_lifecycle(app: web.Application) -> AsyncIterator[None]:
    gateway = app[GATEWAY]
    await gateway.start()
    yield
    await gateway.stop()


async def _start_draining(app: web.Application) -> None:
    # /readyz answers 503 from here on, so load balancers stop sending new work.
    app[GATEWAY].draining = True
