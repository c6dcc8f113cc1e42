"""The token lifecycle: refresh ahead of expiry, exactly once across processes, never twice.

Within a process, concurrent callers share one refresh (single-flight). Across processes, a
refresh lease on the connection row lets exactly one process call the platform, and every write
is a compare-and-set on the credential version, so a rotating refresh token is never used twice.
The new tokens are committed the moment the platform answers, before anything else happens.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from ..db.base import utcnow
from ..db.connections import ConnectionRepository
from ..db.models import ConnectionRow
from ..db.repositories import SecretRepository
from ..errors import NeedsReauth, PlatformError, RateLimited, ResourceNotFound, Transient
from ..oauth.client import InvalidGrant
from ..types import Event, RefreshKind
from .reader import ConnectionReader
from .store import merged_with_stored, token_blob, token_columns

if TYPE_CHECKING:
    from ..credentials import Credentials
    from ..host import Gateway

log = structlog.get_logger("gateway.tokens")
# Treat a token this close to expiry as expired: clocks differ and requests take time.
CLOCK_SKEW = timedelta(seconds=30)
LEASE_POLL_SECONDS = 0.05


class ConnectionTokenSource:
    """The outbound client's view of a connection: its access token, and one refresh on a 401."""

    def __init__(self, manager: TokenManager, connection_id: str, access_token: str | None):
        self.manager = manager
        self.connection_id = connection_id
        self._access_token = access_token

    async def access_token(self) -> str:
        if self._access_token is None:
            raise NeedsReauth("the connection has no access token")
        return self._access_token

    async def refresh_after_unauthorized(self, rejected: str) -> str | None:
        try:
            fresh = await self.manager.refresh(self.connection_id, rejected=rejected)
        except PlatformError:
            return None  # the 401 stands; the caller's error mapping takes it from there
        token = fresh.access_token.reveal() if fresh.access_token else None
        if token is None or token == rejected:
            return None
        self._access_token = token
        return token


class TokenManager:
    """Hands out fresh credentials and carries out each connector's refresh policy."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.settings = gateway.settings.connections
        # Who holds a refresh lease: unique per process and per manager.
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._inflight: dict[str, asyncio.Future[Credentials]] = {}
        # Connection reads batched across concurrent callers (the web's too, see service.py).
        self.reader = ConnectionReader(gateway)

    async def credentials(self, connection_id: str) -> Credentials:
        """Usable credentials, refreshed first when they are due (or expired)."""
        row, credentials = await self._read(connection_id)
        if row.status != "active":
            raise NeedsReauth(f"connection {connection_id} needs reconnecting ({row.status})")
        if self._refreshable(row) and self._due(row, utcnow()):
            try:
                return await self.refresh(connection_id)
            except Transient:
                if not self._expired(row, utcnow()):
                    return credentials  # still valid: a failed early refresh is no outage
                raise
        return credentials

    async def refresh(
        self, connection_id: str, *, force: bool = False, rejected: str | None = None
    ) -> Credentials:
        """Refresh now if needed (``force``: regardless); concurrent callers share one refresh."""
        running = self._inflight.get(connection_id)
        if running is None:
            running = asyncio.ensure_future(self._refresh(connection_id, force, rejected))
            self._inflight[connection_id] = running
            running.add_done_callback(lambda _: self._inflight.pop(connection_id, None))
        # Shield: one caller giving up must not cancel the refresh the others wait for.
        return await asyncio.shield(running)

    async def _refresh(self, connection_id: str, force: bool, rejected: str | None) -> Credentials:
        while True:
            row, credentials = await self._read(connection_id)
            now = utcnow()
            if row.status != "active":
                raise NeedsReauth(f"connection {connection_id} needs reconnecting ({row.status})")
            current = credentials.access_token.reveal() if credentials.access_token else None
            if rejected is not None and current != rejected:
                return credentials  # a peer refreshed since that token was sent
            if not (force or rejected is not None or self._due(row, now)):
                return credentials
            if not self._refreshable(row):
                raise NeedsReauth(
                    f"{row.platform} tokens cannot be refreshed; reconnect the account",
                    platform_code="not_refreshable",
                )
            if row.refresh_blocked_until and row.refresh_blocked_until > now and not force:
                wait = (row.refresh_blocked_until - now).total_seconds()
                raise RateLimited(
                    f"refresh is cooling down after a failure ({row.last_error})",
                    retry_after=wait,
                )
            until = now + timedelta(seconds=self.settings.refresh_lease_seconds)
            async with self.gateway.transaction() as session:
                claimed = await ConnectionRepository(session).claim_refresh(
                    row.id, row.credential_version, self.owner, until
                )
            if claimed:
                return await self._refresh_holding_lease(row, credentials)
            await self._wait_for_peer(row)

    async def _refresh_holding_lease(
        self, row: ConnectionRow, credentials: Credentials
    ) -> Credentials:
        connector = self.gateway.connector(row.platform)
        if connector is None:
            await self._release(row, {})
            raise ResourceNotFound(f"no plugin provides platform {row.platform!r}")
        self.gateway.telemetry.instruments.token_refresh_scheduled.add(
            1, {"platform": row.platform}
        )
        try:
            token = await connector.refresh(credentials)
        except InvalidGrant as err:
            return await self._on_invalid_grant(row, err)
        except PlatformError as err:
            await self._record_failure(row, err)
            raise
        except BaseException:
            await self._release(row, {})
            raise
        token = merged_with_stored(token, credentials)
        now = utcnow()
        policy = type(connector).refresh_policy
        async with self.gateway.transaction() as session:
            written = await ConnectionRepository(session).finish_refresh(
                row.id, row.credential_version, self.owner, **token_columns(token, policy, now)
            )
            if written and row.credentials_secret_id:
                secrets = SecretRepository(session, self.gateway.vault)
                await secrets.overwrite(row.credentials_secret_id, token_blob(token))
        if not written:
            # The lease expired and a peer wrote newer credentials; theirs win.
            log.warning("token.refresh_lost_lease", connection_id=row.id, platform=row.platform)
        else:
            log.info("token.refreshed", connection_id=row.id, platform=row.platform)
        _, fresh = await self._read(row.id)
        return fresh

    async def _on_invalid_grant(self, row: ConnectionRow, err: InvalidGrant) -> Credentials:
        # Believe invalid_grant only after a re-read: a peer may just have rotated the token.
        latest, credentials = await self._read(row.id)
        if latest.credential_version != row.credential_version:
            await self._release(row, {})
            return credentials
        await self.mark_needs_reconnect(row, f"the platform refused the refresh: {err.detail}")
        raise NeedsReauth(err.detail, platform_code=err.platform_code, http_status=err.http_status)

    async def _record_failure(self, row: ConnectionRow, err: PlatformError) -> None:
        failures = row.refresh_failures + 1
        backoff = min(
            self.settings.refresh_cooldown_seconds * 2 ** (failures - 1),
            self.settings.refresh_cooldown_max_seconds,
        )
        if isinstance(err, RateLimited) and err.retry_after:
            backoff = max(backoff, err.retry_after)
        await self._release(
            row,
            {
                "refresh_failures": failures,
                "refresh_blocked_until": utcnow() + timedelta(seconds=backoff),
                "last_error": f"{err.code}: {err.detail}"[:500],
            },
        )
        log.warning(
            "token.refresh_failed",
            connection_id=row.id,
            platform=row.platform,
            error=err.code,
            failures=failures,
            cooldown_seconds=backoff,
        )

    async def mark_needs_reconnect(self, row: ConnectionRow, reason: str) -> None:
        """The user must reconnect: mark it, say so once (event), stop refreshing."""
        async with self.gateway.transaction() as session:
            repo = ConnectionRepository(session)
            current = await repo.get(row.id)
            already = current is not None and current.status == "needs_reconnect"
            await repo.set_fields(
                row.id,
                status="needs_reconnect",
                health="critical",
                next_refresh_at=None,
                refresh_lease_owner=None,
                refresh_lease_until=None,
                last_error=reason[:500],
            )
        if not already:
            await self.gateway.emit(
                Event(
                    "connection.needs_reconnect",
                    tenant_id=row.tenant_id,
                    data={"connectionId": row.id, "platform": row.platform, "reason": reason},
                )
            )

    async def _release(self, row: ConnectionRow, values: dict) -> None:
        async with self.gateway.transaction() as session:
            await ConnectionRepository(session).release_refresh(row.id, self.owner, **values)

    async def _wait_for_peer(self, row: ConnectionRow) -> None:
        """Another process holds the lease: wait until it writes, or its lease runs out."""
        deadline = utcnow() + timedelta(seconds=self.settings.refresh_lease_seconds + 1)
        while utcnow() < deadline:
            await asyncio.sleep(LEASE_POLL_SECONDS)
            async with self.gateway.session() as session:
                latest = await ConnectionRepository(session).get(row.id)
            if latest is None:
                raise ResourceNotFound(f"no connection {row.id}")
            if latest.credential_version != row.credential_version or latest.status != "active":
                return
            if latest.refresh_lease_until is None or latest.refresh_lease_until < utcnow():
                return  # released (failed) or expired: the caller's loop decides again

    async def _read(self, connection_id: str) -> tuple[ConnectionRow, Credentials]:
        row, credentials = await self.reader.credentials(connection_id)
        access = None
        if credentials.access_token is not None:
            access = credentials.access_token.reveal()
        source = ConnectionTokenSource(self, connection_id, access)
        return row, _with_token(credentials, source)

    def _refreshable(self, row: ConnectionRow) -> bool:
        connector = self.gateway.connectors.get(row.platform)
        return connector is not None and connector.refresh_policy.kind is not RefreshKind.NONE

    @staticmethod
    def _due(row: ConnectionRow, now: datetime) -> bool:
        if row.next_refresh_at is not None and row.next_refresh_at <= now:
            return True
        return TokenManager._expired(row, now)

    @staticmethod
    def _expired(row: ConnectionRow, now: datetime) -> bool:
        return row.token_expires_at is not None and row.token_expires_at <= now + CLOCK_SKEW


def _with_token(credentials: Credentials, source: ConnectionTokenSource) -> Credentials:
    from dataclasses import replace

    return replace(credentials, token=source)
