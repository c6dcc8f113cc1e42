"""Repositories for connections, their accounts, OAuth states and health checks."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .base import utcnow
from .models import AccountRow, ConnectionRow, HealthCheckRow, OAuthStateRow


class ConnectionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(
        self, connection_id: str, *, tenant_id: str | None = None
    ) -> ConnectionRow | None:
        """The row, or None when it does not exist or belongs to another tenant."""
        row = await self.session.get(ConnectionRow, connection_id, populate_existing=True)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            return None
        return row

    async def by_external_user(
        self, tenant_id: str, platform: str, external_user_id: str
    ) -> ConnectionRow | None:
        result = await self.session.execute(
            select(ConnectionRow).where(
                ConnectionRow.tenant_id == tenant_id,
                ConnectionRow.platform == platform,
                ConnectionRow.external_user_id == external_user_id,
            )
        )
        return result.scalar_one_or_none()

    async def page(
        self,
        tenant_id: str,
        *,
        limit: int,
        after: str | None,
        platform: str | None = None,
        status: str | None = None,
    ) -> list[ConnectionRow]:
        query = select(ConnectionRow).where(ConnectionRow.tenant_id == tenant_id)
        if after:
            query = query.where(ConnectionRow.id > after)
        if platform:
            query = query.where(ConnectionRow.platform == platform)
        if status:
            query = query.where(ConnectionRow.status == status)
        result = await self.session.execute(query.order_by(ConnectionRow.id).limit(limit))
        return list(result.scalars())

    async def claim_refresh(
        self, connection_id: str, version: int, owner: str, until: datetime
    ) -> bool:
        """Take the refresh lease if the credentials are at ``version`` and nobody holds it."""
        now = utcnow()
        result = await self.session.execute(
            update(ConnectionRow)
            .where(
                ConnectionRow.id == connection_id,
                ConnectionRow.credential_version == version,
                or_(
                    ConnectionRow.refresh_lease_until.is_(None),
                    ConnectionRow.refresh_lease_until < now,
                ),
            )
            .values(refresh_lease_owner=owner, refresh_lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def finish_refresh(
        self, connection_id: str, version: int, owner: str, **values: object
    ) -> bool:
        """Write new credentials (bumping the version) only while holding the lease."""
        result = await self.session.execute(
            update(ConnectionRow)
            .where(
                ConnectionRow.id == connection_id,
                ConnectionRow.credential_version == version,
                ConnectionRow.refresh_lease_owner == owner,
            )
            .values(
                credential_version=version + 1,
                refresh_lease_owner=None,
                refresh_lease_until=None,
                updated_at=utcnow(),
                **values,
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def release_refresh(self, connection_id: str, owner: str, **values: object) -> None:
        await self.session.execute(
            update(ConnectionRow)
            .where(ConnectionRow.id == connection_id, ConnectionRow.refresh_lease_owner == owner)
            .values(refresh_lease_owner=None, refresh_lease_until=None, **values)
            .execution_options(synchronize_session=False)
        )

    async def set_fields(self, connection_id: str, **values: object) -> None:
        await self.session.execute(
            update(ConnectionRow)
            .where(ConnectionRow.id == connection_id)
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )

    async def due_for_refresh(self, now: datetime, limit: int) -> list[str]:
        result = await self.session.execute(
            select(ConnectionRow.id)
            .where(
                ConnectionRow.status == "active",
                ConnectionRow.next_refresh_at <= now,
                or_(
                    ConnectionRow.refresh_blocked_until.is_(None),
                    ConnectionRow.refresh_blocked_until <= now,
                ),
            )
            .order_by(ConnectionRow.next_refresh_at)
            .limit(limit)
        )
        return list(result.scalars())

    async def due_for_health_check(self, now: datetime, limit: int) -> list[tuple[str, datetime]]:
        result = await self.session.execute(
            select(ConnectionRow.id, ConnectionRow.next_health_check_at)
            .where(ConnectionRow.status != "revoked", ConnectionRow.next_health_check_at <= now)
            .order_by(ConnectionRow.next_health_check_at)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in result]

    async def claim_health_check(
        self, connection_id: str, seen_next: datetime, new_next: datetime
    ) -> bool:
        """Move a due check to its next slot; only the process that moves it runs it."""
        result = await self.session.execute(
            update(ConnectionRow)
            .where(
                ConnectionRow.id == connection_id,
                ConnectionRow.next_health_check_at == seen_next,
            )
            .values(next_health_check_at=new_next)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


class AccountRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_connection(
        self, connection_id: str, *, active_only: bool = True
    ) -> list[AccountRow]:
        query = select(AccountRow).where(AccountRow.connection_id == connection_id)
        if active_only:
            query = query.where(AccountRow.active.is_(True))
        result = await self.session.execute(
            query.order_by(AccountRow.kind, AccountRow.name, AccountRow.id)
        )
        return list(result.scalars())


class OAuthStateRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, state_hash: str) -> OAuthStateRow | None:
        return await self.session.get(OAuthStateRow, state_hash, populate_existing=True)

    async def consume(self, state_hash: str, now: datetime) -> bool:
        """Mark a state used, once: of two concurrent callbacks with one state, one wins."""
        result = await self.session.execute(
            update(OAuthStateRow)
            .where(and_(OAuthStateRow.state_hash == state_hash, OAuthStateRow.used_at.is_(None)))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def by_link(self, go_hash: str) -> OAuthStateRow | None:
        result = await self.session.execute(
            select(OAuthStateRow)
            .where(OAuthStateRow.go_hash == go_hash)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def follow(self, state_hash: str, binding_hash: str, now: datetime) -> bool:
        """Bind a state to a browser, once: of two follows of one go link, one wins."""
        result = await self.session.execute(
            update(OAuthStateRow)
            .where(
                and_(
                    OAuthStateRow.state_hash == state_hash,
                    OAuthStateRow.followed_at.is_(None),
                    OAuthStateRow.used_at.is_(None),
                )
            )
            .values(followed_at=now, binding_hash=binding_hash)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


class HealthCheckRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, row: HealthCheckRow) -> None:
        self.session.add(row)
        await self.session.flush()
