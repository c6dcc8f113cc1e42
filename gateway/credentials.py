"""What a connector gets to call its platform on behalf of a connection: opened tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .vault import Secret

if TYPE_CHECKING:
    from .outbound import TokenSource


@dataclass(frozen=True, slots=True)
class Credentials:
    """A connection's credentials, opened from the vault for one use.

    Pass ``token`` to the outbound client (``self.http.get(url, token=credentials.token)``): it
    sends the access token and, on a 401, refreshes once through the core and replays. The
    secrets are :class:`Secret` values; ``reveal()`` them only to put them on the wire.
    """

    connection_id: str
    platform: str
    access_token: Secret | None
    refresh_token: Secret | None = None
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    external_user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    token: TokenSource | None = None

    @property
    def api_key(self) -> Secret | None:
        """For API-key platforms the key is stored as the access token."""
        return self.access_token


class StaticToken:
    """A token source for a token that cannot be refreshed here (just issued, not yet stored)."""

    def __init__(self, access_token: str) -> None:
        self._access_token = access_token

    async def access_token(self) -> str:
        return self._access_token

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        return None
