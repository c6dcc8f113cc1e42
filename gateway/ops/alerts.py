"""The DLQ audit's alert: a Slack-compatible incoming webhook receives the summary as text."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import structlog

if TYPE_CHECKING:
    from ..host import Gateway

log = structlog.get_logger("gateway.alerts")
ATTEMPTS = 3


def where(url: str) -> str:
    """What a log may say about an incoming-webhook URL: its origin (the path is the secret)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


def dlq_text(summary: dict[str, Any]) -> str:
    """The audit as a few lines a person reads in a channel."""
    total = summary["total"]
    lines = [f"DLQ audit: {total} dead job{'s' if total != 1 else ''} need review"]
    for platform, reasons in sorted(summary["byPlatform"].items()):
        count = sum(reasons.values())
        detail = ", ".join(f"{reason} {n}" for reason, n in sorted(reasons.items()))
        lines.append(f"• {platform}: {count} ({detail})")
    lines.append("Replay or discard them with /api/dlq (or on /dashboard).")
    return "\n".join(lines)


async def send_dlq_alert(gateway: Gateway, summary: dict[str, Any]) -> bool:
    """POST the summary to ``alerts.dlq_webhook_url`` when there are dead jobs.

    Never raises: an alert that cannot be sent is logged (without the URL's secret path) and
    the audit carries on. Returns whether the receiver accepted it.
    """
    settings = gateway.settings.alerts
    url = settings.dlq_webhook_url
    if not url or not summary["total"]:
        return False
    timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
    payload = {"text": dlq_text(summary)}
    failure = ""
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with http.post(url, json=payload) as response:
                    if response.status < 300:
                        log.info("dlq.alert_sent", receiver=where(url), total=summary["total"])
                        return True
                    failure = f"HTTP {response.status}"
                    if response.status < 500 and response.status != 429:
                        break  # the receiver refuses this request; retrying will not help
            except (aiohttp.ClientError, TimeoutError) as err:
                failure = type(err).__name__
            if attempt < ATTEMPTS:
                await asyncio.sleep(0.5 * attempt)
    log.warning("dlq.alert_failed", receiver=where(url), error=failure)
    return False
