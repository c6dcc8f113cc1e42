"""Bearer authentication of outbound requests, with one refresh-and-replay after a 401."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from aiohttp import ClientHandlerType, ClientRequest, ClientResponse, hdrs

from gateway.outbound.call import current_call


@runtime_checkable
class TokenSource(Protocol):
    """Where a request's access token comes from; the token lifecycle implements it.

    Locking, storage and deciding that a connection needs reconnecting are the source's job;
    the client only asks for the current token and, once per request, for a better one.
    """

    async def access_token(self) -> str:
        """The token to send now."""
        ...

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        """The platform refused ``rejected``: a new token to replay with, or None to give up."""
        ...


class AuthMiddleware:
    """Sets ``Authorization: Bearer …``; after a 401 refreshes once and replays once."""

    async def __call__(self, req: ClientRequest, handler: ClientHandlerType) -> ClientResponse:
        call = current_call()
        source = call.token
        if source is None or (call.origin is not None and req.url.origin() != call.origin):
            # No token, or a redirect to another origin: the credential stays with its platform.
            return await handler(req)
        token = source if isinstance(source, str) else await source.access_token()
        req.headers[hdrs.AUTHORIZATION] = f"Bearer {token}"
        resp = await handler(req)
        if resp.status != 401 or isinstance(source, str) or call.refreshed:
            return resp
        call.refreshed = True
        try:
            fresh = await source.refresh_after_unauthorized(token)
        except BaseException:
            resp.release()
            raise
        if fresh is None:
            return resp
        resp.release()
        req.headers[hdrs.AUTHORIZATION] = f"Bearer {fresh}"
        return await handler(req)
