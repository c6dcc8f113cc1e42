"""Claiming a cluster-wide periodic run: of all the processes, one wins each slot."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from .models import PeriodicTaskRow


async def claim_run(session: AsyncSession, name: str, now: datetime, next_run: datetime) -> bool:
    """True for exactly one caller per due slot; the slot moves to ``next_run``."""
    result = await session.execute(
        update(PeriodicTaskRow)
        .where(PeriodicTaskRow.name == name, PeriodicTaskRow.next_run_at <= now)
        .values(next_run_at=next_run)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:
        return True
    if await session.get(PeriodicTaskRow, name) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(PeriodicTaskRow(name=name, next_run_at=next_run))
    except IntegrityError:
        return False  # another process created it first, and so ran it
    return True
