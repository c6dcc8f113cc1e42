"""Repositories for the core tables: statements in, rows out; they flush and never commit."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from ..ids import new_id
from ..vault import Sealed, Secret, Vault
from .base import utcnow
from .models import ApiKeyRow, SealedSecretRow, TenantRow


class TenantRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str) -> TenantRow:
        row = TenantRow(id=new_id("ten"), name=name)
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, tenant_id: str) -> TenantRow | None:
        return await self.session.get(TenantRow, tenant_id)

    async def count(self) -> int:
        statement = select(func.count()).select_from(TenantRow)
        return (await self.session.execute(statement)).scalar_one()

    async def listing(self, limit: int | None = None) -> list[tuple[TenantRow, int]]:
        """Tenants, oldest first, each with its number of unrevoked API keys."""
        active_keys = (
            select(func.count())
            .where(ApiKeyRow.tenant_id == TenantRow.id, ApiKeyRow.revoked_at.is_(None))
            .correlate(TenantRow)
            .scalar_subquery()
        )
        statement = (
            select(TenantRow, active_keys).order_by(TenantRow.created_at, TenantRow.id).limit(limit)
        )
        return [(row, keys) for row, keys in await self.session.execute(statement)]


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key_id: str, tenant_id: str, secret_hash: str, scopes: str) -> ApiKeyRow:
        row = ApiKeyRow(id=key_id, tenant_id=tenant_id, secret_hash=secret_hash, scopes=scopes)
        self.session.add(row)
        await self.session.flush()
        return row

    async def revoke(self, key_id: str) -> bool:
        result = await self.session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return result.rowcount == 1

    async def of_tenant(self, tenant_id: str) -> list[ApiKeyRow]:
        """Every key of a tenant, revoked ones too, oldest first."""
        statement = (
            select(ApiKeyRow)
            .where(ApiKeyRow.tenant_id == tenant_id)
            .order_by(ApiKeyRow.created_at, ApiKeyRow.id)
        )
        return list(await self.session.scalars(statement))


async def find_active_key(engine: AsyncEngine, key_id: str) -> tuple[str, str, str] | None:
    """(tenant id, secret hash, scopes) of an unrevoked key: the API's authentication lookup.

    Read-only and outside any unit of work, so it takes a bare connection, not a session.
    """
    statement = select(ApiKeyRow.tenant_id, ApiKeyRow.secret_hash, ApiKeyRow.scopes).where(
        ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None)
    )
    async with engine.connect() as connection:
        row = (await connection.execute(statement)).first()
    return tuple(row) if row else None


class SecretRepository:
    """Seals on the way in and opens on the way out; the plaintext never reaches a column."""

    def __init__(self, session: AsyncSession, vault: Vault) -> None:
        self.session = session
        self.vault = vault

    async def store(
        self, plaintext: str, *, purpose: str, tenant_id: str | None
    ) -> SealedSecretRow:
        row = SealedSecretRow(id=new_id("sec"), tenant_id=tenant_id, purpose=purpose)
        sealed = self.vault.seal(plaintext, bound_to=row.associated_data())
        row.key_id, row.ciphertext = sealed.key_id, sealed.ciphertext
        self.session.add(row)
        await self.session.flush()
        return row

    async def open(self, secret_id: str) -> Secret | None:
        row = await self.session.get(SealedSecretRow, secret_id, populate_existing=True)
        if row is None:
            return None
        return self.vault.open(Sealed(row.key_id, row.ciphertext), bound_to=row.associated_data())

    async def replace(self, secret_id: str, plaintext: str, *, expected_version: int) -> bool:
        """Compare-and-set: write only if nobody wrote since ``expected_version`` was read."""
        row = await self.session.get(SealedSecretRow, secret_id)
        if row is None:
            return False
        sealed = self.vault.seal(plaintext, bound_to=row.associated_data())
        return await self._swap(row, sealed, expected_version)

    async def overwrite(self, secret_id: str, plaintext: str) -> None:
        """Replace a secret whose owner is already locked by the caller (a refresh lease).

        Only a vault rotation can write it meanwhile, and it writes the same plaintext, so
        losing the compare-and-set just means reading the new version and trying again.
        """
        for _ in range(5):
            row = await self.session.get(SealedSecretRow, secret_id, populate_existing=True)
            if row is None:
                return
            if await self.replace(secret_id, plaintext, expected_version=row.version):
                return
        raise RuntimeError(f"sealed secret {secret_id} keeps changing under a lease")

    async def reseal(self, row: SealedSecretRow) -> bool:
        """Re-seal one row under the active key, unless a concurrent writer got there first."""
        sealed = self.vault.reseal(
            Sealed(row.key_id, row.ciphertext), bound_to=row.associated_data()
        )
        return await self._swap(row, sealed, row.version)

    async def _swap(self, row: SealedSecretRow, sealed: Sealed, expected_version: int) -> bool:
        result = await self.session.execute(
            update(SealedSecretRow)
            .where(SealedSecretRow.id == row.id, SealedSecretRow.version == expected_version)
            .values(
                key_id=sealed.key_id,
                ciphertext=sealed.ciphertext,
                version=expected_version + 1,
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def stale_batch(self, limit: int = 100) -> list[SealedSecretRow]:
        """Rows sealed under a key other than the active one."""
        result = await self.session.execute(
            select(SealedSecretRow)
            .where(SealedSecretRow.key_id != self.vault.active_key_id)
            .order_by(SealedSecretRow.id)
            .limit(limit)
        )
        return list(result.scalars())

    async def delete(self, secret_id: str) -> None:
        row = await self.session.get(SealedSecretRow, secret_id)
        if row is not None:
            await self.session.delete(row)
            await self.session.flush()
