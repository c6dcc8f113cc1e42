"""Operator actions shared by the CLI and tests: tenants, API keys, vault rotation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from .apikeys import new_api_key
from .db.repositories import ApiKeyRepository, SecretRepository, TenantRepository
from .errors import ResourceNotFound
from .host import Gateway
from .types import Event

log = structlog.get_logger("gateway.admin")


@dataclass(frozen=True, slots=True)
class IssuedKey:
    tenant_id: str
    key_id: str
    api_key: str  # shown once; only its hash is stored


async def create_tenant(gateway: Gateway, name: str, *, admin: bool = False) -> IssuedKey:
    """A tenant and its first API key, in one transaction."""
    async with gateway.transaction() as session:
        tenant = await TenantRepository(session).create(name)
        return await _add_key(session, tenant.id, admin)


async def create_key(gateway: Gateway, tenant_id: str, *, admin: bool = False) -> IssuedKey:
    async with gateway.transaction() as session:
        if await TenantRepository(session).get(tenant_id) is None:
            raise ResourceNotFound(f"no tenant {tenant_id}")
        return await _add_key(session, tenant_id, admin)


async def _add_key(session, tenant_id: str, admin: bool) -> IssuedKey:
    key_id, api_key, secret_hash = new_api_key()
    await ApiKeyRepository(session).add(key_id, tenant_id, secret_hash, "admin" if admin else "")
    return IssuedKey(tenant_id, key_id, api_key)


@dataclass(frozen=True, slots=True)
class TenantSummary:
    tenant_id: str
    name: str
    created_at: datetime
    active_keys: int


@dataclass(frozen=True, slots=True)
class KeySummary:
    """What can be said about a key after it was issued: never its secret, nor its hash."""

    key_id: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None


async def list_tenants(gateway: Gateway) -> list[TenantSummary]:
    async with gateway.session() as session:
        listing = await TenantRepository(session).listing()
    return [TenantSummary(row.id, row.name, row.created_at, keys) for row, keys in listing]


async def list_keys(gateway: Gateway, tenant_id: str) -> list[KeySummary]:
    async with gateway.session() as session:
        if await TenantRepository(session).get(tenant_id) is None:
            raise ResourceNotFound(f"no tenant {tenant_id}")
        rows = await ApiKeyRepository(session).of_tenant(tenant_id)
    return [
        KeySummary(row.id, "admin" in row.scopes.split(), row.created_at, row.revoked_at)
        for row in rows
    ]


async def revoke_key(gateway: Gateway, key_id: str) -> None:
    """Revoke a key; this process stops accepting it at once (others within their cache time)."""
    async with gateway.transaction() as session:
        if not await ApiKeyRepository(session).revoke(key_id):
            raise ResourceNotFound(f"no active key {key_id}")
    await gateway.emit(Event("api_key.revoked", data={"keyId": key_id}))


@dataclass(frozen=True, slots=True)
class RotationReport:
    resealed: int
    remaining: int
    active_key_id: str


async def rotate_vault(
    gateway: Gateway, *, batch_size: int = 100, on_batch: Callable[[int], None] | None = None
) -> RotationReport:
    """Re-seal every secret under the active key, a batch per transaction, beside live writers.

    Each row is swapped only if its version is still the one read (compare-and-set), so a token
    refreshed meanwhile is never overwritten with an older value; such a row is simply read again
    in the next pass. The loop ends when a pass changes nothing.
    """
    resealed = 0
    while True:
        async with gateway.transaction() as session:
            repo = SecretRepository(session, gateway.vault)
            batch = await repo.stale_batch(batch_size)
            swapped = [await repo.reseal(row) for row in batch]
        resealed += sum(swapped)
        if on_batch is not None:
            on_batch(resealed)  # progress for the command line
        if not batch or not any(swapped):
            break
    async with gateway.session() as session:
        remaining = len(await SecretRepository(session, gateway.vault).stale_batch(10_000))
    log.info(
        "vault.rotated", resealed=resealed, remaining=remaining, key_id=gateway.vault.active_key_id
    )
    return RotationReport(resealed, remaining, gateway.vault.active_key_id)
