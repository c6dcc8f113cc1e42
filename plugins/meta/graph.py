"""The Graph API client: the one request chokepoint where every Meta call and error goes through."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gateway import (
    OutboundClient,
    OutcomeUnknown,
    PlatformError,
    PublishRequest,
    TokenSource,
    clock,
)

from . import usage
from .const import CLOCK_SKEW, GRAPH_HOST, LOOKBACK_HOURS, LOOKUP_MAX_PAGES, LOOKUP_PAGE_SIZE
from .errors import graph_error

Token = str | TokenSource
Row = dict[str, Any]


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

    async def find(
        self,
        path: str,
        token: Token,
        *,
        params: dict[str, str],
        account: str,
        match: Callable[[Row], bool],
        since: datetime,
        time_field: str,
        page_size: int = LOOKUP_PAGE_SIZE,
        max_pages: int = LOOKUP_MAX_PAGES,
    ) -> Row | None:
        """The first row of a listing (``{"data": [...], "paging": {...}}``, newest first)
        that ``match`` accepts, reading no row whose ``time_field`` is before ``since`` and no
        more than ``max_pages`` pages (``paging.next`` is followed with its own parameters).

        :raises OutcomeUnknown: the pages ran out before ``since`` was reached, so whether
            the row is there cannot be told.
        """
        params = {**params, "limit": str(page_size)}
        for _ in range(max_pages):
            answer = await self.get(path, token, params=params, account=account)
            for row in answer.get("data") or []:
                if not isinstance(row, dict) or graph_time(row.get(time_field)) < since:
                    return None
                if match(row):
                    return row
            following = (answer.get("paging") or {}).get("next")
            if not isinstance(following, str) or not following:
                return None
            # The token stays in the Authorization header, never in a query string.
            query = parse_qsl(urlsplit(following).query)
            params = {name: value for name, value in query if name != "access_token"}
        raise OutcomeUnknown(
            f"Meta lists more than {page_size * max_pages} entries under {path} since "
            f"{since.isoformat(timespec='seconds')}; whether this one went out cannot be told, "
            "so it is not published again (check the account, then replay it from the DLQ)"
        )


def graph_time(value: object) -> datetime:
    """A Graph API time (``2019-01-02T18:31:28+0000``); an unreadable one counts as now, so
    a look goes on past it."""
    try:
        return datetime.strptime(str(value or ""), "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return clock.now()


def lookback_start(request: PublishRequest) -> datetime:
    """Where a look for the post an unknown outcome may have made starts: when its job was
    queued, less ``CLOCK_SKEW`` (``LOOKBACK_HOURS`` ago for a request that does not say)."""
    if request.queued_at is not None:
        return request.queued_at - CLOCK_SKEW
    return clock.now() - timedelta(hours=LOOKBACK_HOURS)
