"""Sealing a connection's tokens, opening them as Credentials, and the schedule they imply."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..credentials import Credentials
from ..db.models import ConnectionRow, SealedSecretRow
from ..db.repositories import SecretRepository
from ..types import RefreshKind, RefreshPolicy, TokenSet
from ..vault import Secret

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from ..outbound import TokenSource
    from ..vault import Vault

CREDENTIALS_PURPOSE = "connection_credentials"
ACCOUNT_TOKEN_PURPOSE = "account_token"


def token_blob(token: TokenSet) -> str:
    """The secret part of a token set, as the plaintext the vault seals."""
    return json.dumps({"access_token": token.access_token, "refresh_token": token.refresh_token})


def token_columns(token: TokenSet, policy: RefreshPolicy, now: datetime) -> dict[str, Any]:
    """The connection's non-secret token facts and the refresh schedule they imply."""
    next_refresh, reconnect_by = schedule(token.expires_at, policy, now)
    values: dict[str, Any] = {
        "token_expires_at": token.expires_at,
        "refresh_expires_at": token.refresh_expires_at,
        "next_refresh_at": next_refresh,
        "reconnect_by": reconnect_by,
        "last_refresh_at": now,
        "refresh_failures": 0,
        "refresh_blocked_until": None,
        "last_error": None,
    }
    if token.scopes is not None:
        values["scopes"] = " ".join(token.scopes)
    return values


def schedule(
    expires_at: datetime | None, policy: RefreshPolicy, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """(when to refresh, when the user must reconnect by) for a token issued ``now``."""
    if expires_at is None:
        return None, None
    if policy.kind is RefreshKind.NONE:
        return None, expires_at
    if policy.kind is RefreshKind.EXCHANGE and policy.refresh_after is not None:
        return min(now + policy.refresh_after, expires_at - policy.refresh_ahead), None
    return expires_at - policy.refresh_ahead, None


def health_offset(connection_id: str, interval: timedelta) -> timedelta:
    """A stable place in the interval for a connection, so that checks spread out evenly."""
    digest = int.from_bytes(hashlib.sha256(connection_id.encode()).digest()[:8], "big")
    return timedelta(seconds=(digest % max(int(interval.total_seconds()), 1)))


async def seal_token(
    session: AsyncSession, vault: Vault, token: TokenSet, tenant_id: str
) -> SealedSecretRow:
    repo = SecretRepository(session, vault)
    return await repo.store(token_blob(token), purpose=CREDENTIALS_PURPOSE, tenant_id=tenant_id)


async def open_credentials(
    session: AsyncSession, vault: Vault, row: ConnectionRow, token: TokenSource | None = None
) -> Credentials:
    secret = None
    if row.credentials_secret_id:
        secret = await SecretRepository(session, vault).open(row.credentials_secret_id)
    return credentials_of(row, secret, token)


def token_pair(secret: Secret | None) -> tuple[Secret | None, Secret | None]:
    """The access and refresh tokens in an opened token secret (None: no tokens)."""
    if secret is None:
        return None, None
    fields = json.loads(secret.reveal())
    access = Secret(fields["access_token"]) if fields.get("access_token") else None
    refresh = Secret(fields["refresh_token"]) if fields.get("refresh_token") else None
    return access, refresh


def credentials_of(
    row: ConnectionRow, secret: Secret | None, token: TokenSource | None = None
) -> Credentials:
    """The connection's credentials from its row and its opened token secret (None: no tokens)."""
    return credentials_with(row, *token_pair(secret), token)


def credentials_with(
    row: ConnectionRow,
    access: Secret | None,
    refresh: Secret | None,
    token: TokenSource | None = None,
) -> Credentials:
    """The connection's credentials from its row and its tokens."""
    return Credentials(
        connection_id=row.id,
        platform=row.platform,
        access_token=access,
        refresh_token=refresh,
        expires_at=row.token_expires_at,
        refresh_expires_at=row.refresh_expires_at,
        scopes=tuple(row.scopes.split()),
        external_user_id=row.external_user_id,
        metadata=dict(row.metadata_json or {}),
        token=token,
    )


def merged_with_stored(new: TokenSet, stored: Credentials | None) -> TokenSet:
    """A new token set that keeps the stored refresh token when the platform sent none."""
    if new.refresh_token or stored is None or stored.refresh_token is None:
        return new
    return TokenSet(
        access_token=new.access_token,
        refresh_token=stored.refresh_token.reveal(),
        expires_at=new.expires_at,
        refresh_expires_at=new.refresh_expires_at or stored.refresh_expires_at,
        scopes=new.scopes,
        token_type=new.token_type,
        extra=new.extra,
    )
