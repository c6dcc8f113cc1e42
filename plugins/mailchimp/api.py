"""The Marketing API client: one request chokepoint, at most 10 connections per key."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import Any

from aiohttp import encode_basic_auth

from gateway import Credentials, NeedsReauth, OutboundClient, PlatformError

from .const import API_KEY, MAX_CONNECTIONS, api_base
from .errors import platform_error


@dataclass(frozen=True, slots=True)
class Target:
    """Where and as whom to call: the account's API base URL and its Authorization header."""

    base: str
    authorization: str

    def __repr__(self) -> str:  # the header holds the key: never in a log line
        return f"Target(base={self.base!r})"

    @property
    def key(self) -> str:
        """Whose budget of simultaneous connections a call counts against."""
        return hashlib.sha256(self.authorization.encode()).hexdigest()[:16]


def key_target(api_key: str) -> Target:
    """An API key: the data centre is its suffix; HTTP Basic with any user name."""
    match = API_KEY.match(api_key)
    if match is None:
        raise ValueError("not a Mailchimp API key")
    return Target(api_base(match["dc"]), encode_basic_auth("gateway", api_key))


def token_target(access_token: str, api_endpoint: str) -> Target:
    """An OAuth token: the base URL is the metadata's ``api_endpoint``."""
    return Target(f"{api_endpoint.rstrip('/')}/3.0", f"Bearer {access_token}")


def target_of(credentials: Credentials) -> Target:
    """The target of a stored connection (``metadata.auth`` says which kind it is)."""
    if credentials.access_token is None:
        raise NeedsReauth("the connection has no Mailchimp credential")
    secret = credentials.access_token.reveal()
    metadata = credentials.metadata
    if metadata.get("auth") == "oauth2":
        return token_target(secret, str(metadata["apiEndpoint"]))
    return key_target(secret)


class MailchimpApi:
    """Every Marketing API call goes through :meth:`call`, which maps every error.

    A semaphore per credential keeps this process at Mailchimp's 10 simultaneous connections,
    so the 429 that the 11th would get does not happen in normal running.
    """

    def __init__(self, http: OutboundClient) -> None:
        self.http = http
        self._slots: dict[str, asyncio.Semaphore] = {}

    def _slot(self, target: Target) -> asyncio.Semaphore:
        slot = self._slots.get(target.key)
        if slot is None:
            slot = self._slots[target.key] = asyncio.Semaphore(MAX_CONNECTIONS)
        return slot

    async def call(
        self,
        target: Target,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """The answer's JSON (None for 204); any error status raises its category."""
        headers = {"Authorization": target.authorization, "Accept": "application/json"}
        async with (
            self._slot(target),
            self.http.request(
                method,
                target.base + path,
                json=json,
                params=params,
                headers=headers,
                idempotent=idempotent,
            ) as response,
        ):
            if response.status == 204:
                return None
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            if response.status >= 400:
                raise platform_error(response.status, body, response.headers.get("Retry-After"))
        if body is None:
            raise PlatformError(
                f"{method} {path} answered {response.status} without JSON",
                platform_code="invalid_response",
                http_status=response.status,
            )
        return body
