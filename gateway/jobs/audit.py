"""The DLQ audit: a summary of dead jobs by platform and reason, for people and for clients."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import func, select

from ..db.models import PublishJobRow
from ..ops.alerts import send_dlq_alert
from ..types import Event

if TYPE_CHECKING:
    from ..host import Gateway

log = structlog.get_logger("gateway.dlq")
# The (platform, reason) series of connector.dlq_size this process has set: the gauge is
# process-wide (one meter per process), and so is this.
_reported: set[tuple[str, str]] = set()


async def audit_dead_letters(gateway: Gateway) -> dict[str, Any]:
    """Count dead jobs per tenant, platform and reason; log it, tell each tenant's clients, and
    the operators' incoming webhook (``alerts.dlq_webhook_url``) when there are any."""
    async with gateway.session() as session:
        rows = (
            await session.execute(
                select(
                    PublishJobRow.tenant_id,
                    PublishJobRow.platform,
                    PublishJobRow.dead_reason,
                    func.count(),
                )
                .where(PublishJobRow.status == "dead")
                .group_by(
                    PublishJobRow.tenant_id, PublishJobRow.platform, PublishJobRow.dead_reason
                )
            )
        ).all()
    per_tenant: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for tenant_id, platform, reason, count in rows:
        per_tenant[tenant_id][platform][reason] = count
        totals[platform][reason] += count
    total = sum(sum(reasons.values()) for reasons in totals.values())
    summary = {"total": total, "byPlatform": {p: dict(r) for p, r in totals.items()}}
    log.info("dlq.audit", **summary)
    sizes = {
        (p, reason): count for p, reasons in totals.items() for reason, count in reasons.items()
    }
    # A gauge keeps its last value: one emptied since an earlier audit must say 0, not that.
    sizes.update((gone, 0) for gone in _reported - sizes.keys())
    for (platform, reason), count in sizes.items():
        gateway.telemetry.instruments.dlq_size.set(count, {"platform": platform, "reason": reason})
    _reported.update(sizes)
    for tenant_id, platforms in per_tenant.items():
        data = {
            "total": sum(sum(r.values()) for r in platforms.values()),
            "byPlatform": {p: dict(r) for p, r in platforms.items()},
        }
        await gateway.emit(Event("dlq.audit", tenant_id=tenant_id, data=data))
    await send_dlq_alert(gateway, summary)
    return summary
