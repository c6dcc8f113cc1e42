"""The Graph API client: the one request chokepoint where every Meta call and error goes through."""

from __future__ import annotations

from typing import Any

from gateway import OutboundClient, PlatformError, TokenSource

from . import usage
from .const import GRAPH_HOST
from .errors import graph_error

Token = str | TokenSource


class GraphClient:
    """Calls ``https://{host}/{version}/{path}`` with a user or Page token.

    ``account`` names the Page or Instagram account a call is counted against (Meta's Business
    Use Case limits are per object): its calls share one rate-limit scope, which the usage
    headers slow down. Calls without one (user-token calls) count against the app.
    """

    def __init__(self, http: OutboundClient, version: str) -> None:
        self.http = http
        self.version = version

    def url(self, path: str, host: str = GRAPH_HOST) -> str:
        return f"https://{host}/{self.version}/{path.lstrip('/')}"

    async def get(self, path: str, token: Token | None, **kwargs: Any) -> dict[str, Any]:
        return await self.call("GET", path, token, **kwargs)

    async def post(self, path: str, token: Token | None, **kwargs: Any) -> dict[str, Any]:
        # A POST that creates something is never retried blindly (timeouts: OutcomeUnknown).
        return await self.call("POST", path, token, **kwargs)

    async def call(
        self,
        method: str,
        path: str,
        token: Token | None,
        *,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        host: str = GRAPH_HOST,
        account: str | None = None,
        idempotent: bool | None = None,
    ) -> dict[str, Any]:
        rate_key = f"meta:{account}" if account else None
        async with self.http.request(
            method,
            self.url(path, host),
            token=token,
            params=params,
            data=data,
            idempotent=idempotent,
            rate_key=rate_key,
        ) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            waits = usage.waits(response.headers)
            self.http.slow_down(None, waits.app)
            if rate_key is not None:
                self.http.slow_down(rate_key, waits.business)
            if response.status >= 400 or (isinstance(body, dict) and "error" in body):
                raise graph_error(response.status, body, response.headers)
        if not isinstance(body, dict):
            raise PlatformError(
                f"{method} {path} answered without a JSON object",
                platform_code="invalid_response",
                http_status=response.status,
            )
        return body
