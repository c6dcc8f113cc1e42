"""The job queue's SQL: idempotent insert, claims with a lease, fenced updates, the DLQ."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from .base import utcnow
from .models import PublishJobRow

WAITING = ("scheduled", "queued", "failed")


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, job_id: str, *, tenant_id: str | None = None) -> PublishJobRow | None:
        row = await self.session.get(PublishJobRow, job_id, populate_existing=True)
        if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
            return None
        return row

    async def by_post(self, post_id: str, tenant_id: str) -> PublishJobRow | None:
        result = await self.session.execute(
            select(PublishJobRow).where(
                PublishJobRow.post_id == post_id, PublishJobRow.tenant_id == tenant_id
            )
        )
        return result.scalar_one_or_none()

    async def by_idempotency_key(self, tenant_id: str, key: str) -> PublishJobRow | None:
        result = await self.session.execute(
            select(PublishJobRow).where(
                PublishJobRow.tenant_id == tenant_id, PublishJobRow.idempotency_key == key
            )
        )
        return result.scalar_one_or_none()

    async def page(
        self,
        tenant_id: str,
        *,
        limit: int,
        after: str | None,
        status: str | None = None,
        connection_id: str | None = None,
        platform: str | None = None,
    ) -> list[PublishJobRow]:
        query = select(PublishJobRow).where(PublishJobRow.tenant_id == tenant_id)
        for column, value in (
            (PublishJobRow.status, status),
            (PublishJobRow.connection_id, connection_id),
            (PublishJobRow.platform, platform),
        ):
            if value:
                query = query.where(column == value)
        if after:
            query = query.where(PublishJobRow.id > after)
        result = await self.session.execute(query.order_by(PublishJobRow.id).limit(limit))
        return list(result.scalars())

    async def claimable(
        self, now: datetime, limit: int, *, skip_locked: bool
    ) -> list[PublishJobRow]:
        """Due jobs, and running ones whose lease ran out (their worker died)."""
        query = (
            select(PublishJobRow)
            .where(
                or_(
                    (PublishJobRow.status.in_(WAITING)) & (PublishJobRow.next_attempt_at <= now),
                    (PublishJobRow.status == "running") & (PublishJobRow.lease_until < now),
                )
            )
            .order_by(PublishJobRow.next_attempt_at)
            .limit(limit)
        )
        if skip_locked:
            # PostgreSQL: several workers on several machines take different rows.
            query = query.with_for_update(skip_locked=True)
        result = await self.session.execute(query)
        return list(result.scalars())

    async def account_busy(self, account_id: str, job_id: str, now: datetime) -> bool:
        """Another job for this account holds a live lease."""
        result = await self.session.execute(
            select(PublishJobRow.id)
            .where(
                PublishJobRow.account_id == account_id,
                PublishJobRow.id != job_id,
                PublishJobRow.status.in_(("running", "processing")),
                PublishJobRow.lease_until >= now,
            )
            .limit(1)
        )
        return result.first() is not None

    async def fenced_update(self, job_id: str, fence: int, **values: object) -> bool:
        """Write only if this worker's attempt is still the job's current one."""
        result = await self.session.execute(
            update(PublishJobRow)
            .where(
                PublishJobRow.id == job_id,
                PublishJobRow.attempts == fence,
                PublishJobRow.status.in_(("running", "processing")),
            )
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def cancel_waiting(self, job_id: str) -> bool:
        result = await self.session.execute(
            update(PublishJobRow)
            .where(PublishJobRow.id == job_id, PublishJobRow.status.in_(WAITING))
            .values(status="cancelled", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1

    async def cancel_for_connection(self, connection_id: str) -> int:
        result = await self.session.execute(
            update(PublishJobRow)
            .where(PublishJobRow.connection_id == connection_id, PublishJobRow.status.in_(WAITING))
            .values(status="cancelled", updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount

    async def dead_page(
        self, tenant_id: str, *, limit: int, after: str | None
    ) -> list[PublishJobRow]:
        query = select(PublishJobRow).where(
            PublishJobRow.tenant_id == tenant_id, PublishJobRow.status == "dead"
        )
        if after:
            query = query.where(PublishJobRow.id > after)
        result = await self.session.execute(query.order_by(PublishJobRow.id).limit(limit))
        return list(result.scalars())

    async def set_dead_status(self, job_id: str, status: str, **values: object) -> bool:
        """Replay or discard a dead job (only while it is dead)."""
        result = await self.session.execute(
            update(PublishJobRow)
            .where(PublishJobRow.id == job_id, PublishJobRow.status == "dead")
            .values(status=status, updated_at=utcnow(), **values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1
