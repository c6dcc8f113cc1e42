"""Who owns a connection and which accounts it has, cached for the publish accept path.

Reading a connection and its accounts costs every publish two database round trips. Here a
connection's snapshot is kept for a few seconds, so repeated publishes need none. A stale
snapshot is safe: it only ever lets a request reach the group commit, which checks again,
in the write transaction, that the account is active on an active connection of that tenant
(see ``inserter``). A snapshot that would refuse a request is never trusted: the refusal
comes from a fresh read, so a connection that was just made or reconnected works at once.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..db.connections import AccountRepository, ConnectionRepository
from ..errors import Conflict, ResourceNotFound

if TYPE_CHECKING:
    from ..host import Gateway

# How long another process's change (a revoke, a reconnect) may go unseen by the fast path:
# the write re-checks ownership, so this bounds only stale account names and metadata.
TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    kind: str
    external_id: str
    name: str
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Target:
    """A connection as publishing sees it: owner, platform, status and active accounts."""

    connection_id: str
    tenant_id: str
    platform: str
    status: str
    accounts: dict[str, Account]


class Ownership:
    """Connection snapshots with a short expiry, one database read per miss however many wait."""

    def __init__(self, gateway: Gateway, ttl: float = TTL_SECONDS) -> None:
        self.gateway = gateway
        self.ttl = ttl
        self._entries: OrderedDict[str, tuple[float, Target | None]] = OrderedDict()
        self._loading: dict[str, asyncio.Future[Target | None]] = {}

    async def resolve(self, tenant_id: str, connection_id: str, account_id: str) -> Target:
        """The target of a publish, or the refusal a fresh read gives (404, or 409)."""
        cached = self.peek(connection_id)
        if cached is not None and _accepts(cached, tenant_id, account_id):
            return cached
        target = await self.load(connection_id)
        if target is None or target.tenant_id != tenant_id:
            raise ResourceNotFound(f"no connection {connection_id}")
        if account_id not in target.accounts:
            raise ResourceNotFound(f"no account {account_id} on connection {connection_id}")
        if target.status != "active":
            raise Conflict(f"connection {connection_id} is {target.status}; reconnect it first")
        return target

    def forget(self, connection_id: str) -> None:
        self._entries.pop(connection_id, None)

    def peek(self, connection_id: str) -> Target | None:
        """The unexpired snapshot, if any (no database read)."""
        entry = self._entries.get(connection_id)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._entries[connection_id]
            return None
        return entry[1]

    async def load(self, connection_id: str) -> Target | None:
        """Read the connection now (sharing a read already under way) and cache what it says."""
        loading = self._loading.get(connection_id)
        if loading is None:
            loading = self._loading[connection_id] = asyncio.ensure_future(
                self._refresh(connection_id)
            )
        # A caller that goes away must not cancel a read others wait for (nor stop aiosqlite
        # in the middle of a query).
        return await asyncio.shield(loading)

    async def _refresh(self, connection_id: str) -> Target | None:
        try:
            target = await self._read(connection_id)
        finally:
            self._loading.pop(connection_id, None)
        if target is None:
            self._entries.pop(connection_id, None)
            return None
        self._entries[connection_id] = (time.monotonic() + self.ttl, target)
        self._entries.move_to_end(connection_id)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
        return target

    async def _read(self, connection_id: str) -> Target | None:
        async with self.gateway.session() as session:
            row = await ConnectionRepository(session).get(connection_id)
            if row is None:
                return None
            accounts = await AccountRepository(session).for_connection(connection_id)
        return Target(
            connection_id=row.id,
            tenant_id=row.tenant_id,
            platform=row.platform,
            status=row.status,
            accounts={
                a.id: Account(a.id, a.kind, a.external_id, a.name, dict(a.metadata_json or {}))
                for a in accounts
            },
        )


def _accepts(target: Target, tenant_id: str, account_id: str) -> bool:
    return (
        target.tenant_id == tenant_id
        and target.status == "active"
        and account_id in target.accounts
    )


_instances: weakref.WeakKeyDictionary[Gateway, Ownership] = weakref.WeakKeyDictionary()


def ownership_of(gateway: Gateway) -> Ownership:
    """The gateway's cache (one per gateway, made on first use)."""
    found = _instances.get(gateway)
    if found is None:
        found = _instances[gateway] = Ownership(gateway)
    return found
