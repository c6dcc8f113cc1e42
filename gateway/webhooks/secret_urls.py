"""Secret webhook URLs for platforms that do not sign their webhooks: one per connection."""

# Whoever can see a connection's platform account sees its URL (Mailchimp shows it in the
# audience's settings), so a URL must be good for that connection only: a random token per
# connection, never derived from a shared key. The database holds its SHA-256 (the lookup key:
# a 256-bit random token needs no slow hash and no HMAC key, so nothing about the lookup depends
# on the vault's keys) and the token sealed by the vault, re-sealed by rotations like every
# other secret, so rotating the vault's keys never changes a live URL.

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..db.models import ConnectionRow, WebhookUrlRow
from ..db.repositories import SecretRepository
from ..digest import lookup_hash
from ..errors import ResourceNotFound
from ..ids import new_id

if TYPE_CHECKING:
    from ..host import Gateway

PURPOSE = "webhook_url_token"
# Longer than any token we issue and shorter than the route's limit: anything else is no token.
_TOKEN_LENGTH = 43


async def webhook_url(gateway: Gateway, connection_id: str) -> str:
    """``<public url>/webhooks/<platform>/<token>``: where the connection's platform delivers.

    Made on first use and the same ever after (vault rotations included). Give it to the
    platform only, never to a client: it is the only proof a delivery has.

    :raises ResourceNotFound: for an unknown or revoked connection.
    """
    try:
        return await _url(gateway, connection_id)
    except IntegrityError:  # two first uses at once: the other's token is there now
        return await _url(gateway, connection_id)


async def _url(gateway: Gateway, connection_id: str) -> str:
    async with gateway.transaction() as session:
        connection = await session.get(ConnectionRow, connection_id)
        if connection is None or connection.status == "revoked":
            raise ResourceNotFound(f"no connection {connection_id}")
        platform = connection.platform
        token = await _token(session, gateway, connection)
    return f"{gateway.settings.base_url}/webhooks/{platform}/{token}"


async def _token(session: AsyncSession, gateway: Gateway, connection: ConnectionRow) -> str:
    vault = SecretRepository(session, gateway.vault)
    row = await session.scalar(
        select(WebhookUrlRow).where(WebhookUrlRow.connection_id == connection.id)
    )
    if row is not None and row.secret_id is not None:
        opened = await vault.open(row.secret_id)
        if opened is not None:
            return opened.reveal()
    token = secrets.token_urlsafe(32)
    sealed = await vault.store(token, purpose=PURPOSE, tenant_id=connection.tenant_id)
    if row is None:
        # Two first uses at once: the unique connection_id lets one win; the loser's
        # transaction fails and webhook_url reads the winner's token.
        session.add(
            WebhookUrlRow(
                id=new_id("whu"),
                connection_id=connection.id,
                tenant_id=connection.tenant_id,
                platform=connection.platform,
                lookup_hash=lookup_hash(token),
                secret_id=sealed.id,
            )
        )
    else:  # its sealed copy was lost: a new token (the old URL stops working)
        row.lookup_hash, row.secret_id = lookup_hash(token), sealed.id
    await session.flush()
    return token


async def connection_of(gateway: Gateway, platform: str, given: str) -> ConnectionRow | None:
    """The live connection of ``platform`` whose URL token is ``given``, else None.

    Every miss looks the same to the caller (wrong, forged, revoked, another platform's).
    """
    if len(given) != _TOKEN_LENGTH:
        return None
    digest = lookup_hash(given)
    async with gateway.session() as session:
        row = await session.scalar(select(WebhookUrlRow).where(WebhookUrlRow.lookup_hash == digest))
        # The index found the row by the hash; the comparison of what was found is constant-time.
        if row is None or not hmac.compare_digest(row.lookup_hash, digest):
            return None
        connection = await session.get(ConnectionRow, row.connection_id)
    if connection is None or connection.status == "revoked" or connection.platform != platform:
        return None
    return connection


async def forget(session: AsyncSession, gateway: Gateway, connection_id: str) -> None:
    """Erase a connection's URL and its sealed token (the connection is being revoked)."""
    row = await session.scalar(
        select(WebhookUrlRow).where(WebhookUrlRow.connection_id == connection_id)
    )
    if row is None:
        return
    secret_id = row.secret_id
    await session.execute(delete(WebhookUrlRow).where(WebhookUrlRow.id == row.id))
    if secret_id is not None:
        await SecretRepository(session, gateway.vault).delete(secret_id)
