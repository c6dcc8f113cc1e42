"""Reading the access token a platform request presents."""

from __future__ import annotations

from aiohttp import hdrs, web


def bearer_token(request: web.Request, *, query_param: str | None = None) -> str | None:
    """The token of ``Authorization: Bearer …``, else of ``?<query_param>=`` where the platform
    accepts one there (Meta's ``access_token``); None when the request carries neither.
    """
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if query_param is not None:
        return request.query.get(query_param) or None
    return None
