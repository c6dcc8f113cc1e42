"""Every typed application and request key the web layer uses."""

from __future__ import annotations

from aiohttp import web

from ..host import Gateway
from ..types import Principal
from .lockout import FailedAuthentications
from .spec import ApiSpec

GATEWAY = web.AppKey("gateway", Gateway)
SPEC = web.AppKey("spec", ApiSpec)
AUTH_FAILURES = web.AppKey("auth_failures", FailedAuthentications)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)


def principal_of(request: web.Request) -> Principal:
    """The authenticated caller of an `/api/*` route (the auth middleware guarantees one)."""
    return request[PRINCIPAL]


def gateway_of(request: web.Request) -> Gateway:
    return request.config_dict[GATEWAY]
