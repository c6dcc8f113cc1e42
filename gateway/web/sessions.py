"""Dashboard sessions: an API key signs in once and becomes an HTTP-only cookie."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, or_, select, update

from ..apikeys import NO_KEY_HASH, secret_matches, split_api_key
from ..db.base import utcnow
from ..db.models import DashboardSessionRow
from ..db.repositories import find_active_key
from ..digest import lookup_hash
from ..types import Principal

if TYPE_CHECKING:
    from ..host import Gateway

# The cookie carries a random token; the database keeps only its SHA-256, the tenant and the key
# it came from, so revoking the key ends the session too, and signing out ends it everywhere.
# Unsafe requests made with the cookie must also carry the CSRF token, which only a page served
# to the session can know (it is derived from the cookie, which scripts cannot read).
COOKIE = "gateway_session"
CSRF_HEADER = "X-CSRF-Token"
LIFETIME = timedelta(hours=12)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(token: str) -> str:
    """The session's CSRF token: derived from the cookie, so it needs no storage."""
    return hmac.new(token.encode(), b"gateway-dashboard-csrf", hashlib.sha256).hexdigest()


def csrf_matches(token: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(token), presented)


async def verify_api_key(gateway: Gateway, presented: str) -> Principal | None:
    """The principal of an active API key, or None (the same check as the Bearer header's)."""
    parts = split_api_key(presented.strip())
    if parts is None:
        return None
    key_id, secret = parts
    found = await find_active_key(gateway.engine, key_id)
    # An unknown id compares the secret all the same, so it answers as fast as a wrong secret.
    if not secret_matches(secret, found[1] if found else NO_KEY_HASH) or found is None:
        return None
    return Principal(tenant_id=found[0], key_id=key_id, scopes=frozenset(found[2].split()))


async def open_session(gateway: Gateway, principal: Principal) -> str:
    """A new session for ``principal``; the cookie's value (shown only to the browser)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with gateway.transaction() as session:
        # Sign-ins are rare: a good moment to forget the sessions that can no longer be used.
        await session.execute(
            delete(DashboardSessionRow).where(
                or_(
                    DashboardSessionRow.expires_at < now,
                    DashboardSessionRow.ended_at.is_not(None),
                )
            )
        )
        session.add(
            DashboardSessionRow(
                id_hash=lookup_hash(token),
                tenant_id=principal.tenant_id,
                key_id=principal.key_id,
                expires_at=now + LIFETIME,
            )
        )
    return token


async def session_principal(gateway: Gateway, token: str) -> Principal | None:
    """Who a live session belongs to; None once it ended, expired, or its key was revoked."""
    async with gateway.session() as session:
        row = (
            await session.execute(
                select(DashboardSessionRow).where(DashboardSessionRow.id_hash == lookup_hash(token))
            )
        ).scalar_one_or_none()
    if row is None or row.ended_at is not None or row.expires_at <= utcnow():
        return None
    found = await find_active_key(gateway.engine, row.key_id)
    if found is None:
        return None
    return Principal(tenant_id=found[0], key_id=row.key_id, scopes=frozenset(found[2].split()))


async def end_session(gateway: Gateway, token: str) -> None:
    async with gateway.transaction() as session:
        await session.execute(
            update(DashboardSessionRow)
            .where(DashboardSessionRow.id_hash == lookup_hash(token))
            .values(ended_at=utcnow())
        )
