"""Health checks: one cheap authenticated call, timed, classified, stored, announced on change."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import structlog

from ..db.base import utcnow
from ..db.models import ConnectionRow
from ..errors import GatewayError, NeedsReauth, PermissionDenied, PlatformError
from ..timefmt import rfc3339
from ..types import RefreshKind
from .health_log import health_log

if TYPE_CHECKING:
    from ..host import Gateway

log = structlog.get_logger("gateway.health")


@dataclass(frozen=True, slots=True)
class CheckResult:
    connection_id: str
    status: str  # healthy | warning | critical
    ok: bool
    latency_ms: float
    checked_at: datetime
    error_code: str | None
    detail: str

    def as_json(self) -> dict:
        return {
            "connectionId": self.connection_id,
            "status": self.status,
            "ok": self.ok,
            "latencyMs": round(self.latency_ms, 1),
            "checkedAt": rfc3339(self.checked_at),
            "errorCode": self.error_code,
            "detail": self.detail,
        }


async def check_connection(gateway: Gateway, row: ConnectionRow) -> CheckResult:
    """Run one health check now and record it; never raises for a platform's failure."""
    connector = gateway.connector(row.platform)
    started = time.perf_counter()
    ok, status, error_code, detail = False, "critical", None, ""
    try:
        if connector is None:
            raise PlatformError(f"no plugin provides {row.platform!r}", platform_code="no_plugin")
        credentials = await gateway.tokens.credentials(row.id)
        found = await connector.health_check(credentials)
        ok, detail, error_code = found.ok, found.detail, found.error_code
        status = "healthy" if ok else "warning"
    except NeedsReauth as err:
        status, error_code, detail = "critical", err.code, err.detail
        await gateway.tokens.mark_needs_reconnect(row, err.detail)
    except PermissionDenied as err:
        status, error_code, detail = "critical", err.code, err.detail
    except GatewayError as err:
        # Transient, rate limited, unknown outcome: the platform is having a moment.
        status, error_code, detail = "warning", err.code, err.detail
    latency_ms = (time.perf_counter() - started) * 1000
    checked_at = utcnow()
    if status == "healthy":
        reason = _warning_reason(gateway, row, latency_ms, checked_at)
        if reason:
            status, detail = "warning", reason
    result = CheckResult(row.id, status, ok, latency_ms, checked_at, error_code, detail[:1000])
    await _record(gateway, row, result)
    return result


def _warning_reason(
    gateway: Gateway, row: ConnectionRow, latency_ms: float, now: datetime
) -> str | None:
    settings = gateway.settings.connections
    if latency_ms > settings.slow_check_ms:
        return f"slow answer ({latency_ms:.0f} ms)"
    window = timedelta(days=settings.expiry_warning_days)
    connector = gateway.connectors.get(row.platform)
    if connector is not None and connector.refresh_policy.warn_before_expiry is not None:
        # A platform may ask for its own warning time (Meta's 60-day logins: ten days ahead).
        window = connector.refresh_policy.warn_before_expiry
    renews_itself = connector is not None and connector.refresh_policy.kind is not RefreshKind.NONE
    # A token that renews itself is fine close to expiry; one that cannot must be reconnected.
    if not renews_itself and row.token_expires_at and row.token_expires_at - now < window:
        return f"token expires {row.token_expires_at.isoformat()}; reconnect before then"
    if row.refresh_expires_at and row.refresh_expires_at - now < window:
        return f"refresh token expires {row.refresh_expires_at.isoformat()}; reconnect before then"
    return None


async def _record(gateway: Gateway, row: ConnectionRow, result: CheckResult) -> None:
    changed = await health_log(gateway).record(row, result)
    gateway.telemetry.instruments.health_check.record(
        result.latency_ms, {"platform": row.platform, "status": result.status}
    )
    log.info(
        "connection.health_checked",
        connection_id=row.id,
        platform=row.platform,
        status=result.status,
        latency_ms=round(result.latency_ms, 1),
        error=result.error_code,
    )
    if changed is not None:
        await gateway.emit(changed)
