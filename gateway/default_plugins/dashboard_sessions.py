"""`authenticate_request` for the dashboard: its session cookie, plus a CSRF token when unsafe."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..hookspecs import hookimpl
from ..web.sessions import COOKIE, CSRF_HEADER, SAFE_METHODS, csrf_matches, session_principal

if TYPE_CHECKING:
    from aiohttp import web

    from ..host import Gateway
    from ..types import Principal


@hookimpl
async def authenticate_request(gateway: Gateway, request: web.Request) -> Principal | None:
    token = request.cookies.get(COOKIE)
    if not token or "Authorization" in request.headers:
        return None  # an explicit API key always decides for itself
    if request.method not in SAFE_METHODS and not csrf_matches(
        token, request.headers.get(CSRF_HEADER)
    ):
        return None  # a cross-site form or script: no token, no principal
    return await session_principal(gateway, token)
