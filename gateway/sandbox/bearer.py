"""Reading the access token a platform request presents."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import hdrs, web


def bearer_token(
    request: web.Request,
    *,
    schemes: tuple[str, ...] = ("bearer",),
    param: str | None = None,
    params: Mapping[str, str] | None = None,
) -> str | None:
    """The token of ``Authorization: <scheme> …`` for the platform's ``schemes`` (Meta takes
    ``Bearer`` and ``OAuth``), else of the parameter ``param`` where the platform accepts one
    (Meta's ``access_token``): looked up in ``params`` (a request's parameters, body included,
    from ``read_params``), else in the query. None when the request carries neither.
    """
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() in schemes and token.strip():
        return token.strip()
    if param is not None:
        return (request.query if params is None else params).get(param) or None
    return None
