"""Meta's usage headers as waits: slow down as usage nears 100 %, stop when Meta says so.

``X-App-Usage`` (and the older ``X-Page-Usage``) count against the app; the Business Use Case
header (``X-Business-Use-Case-Usage``) against one Page or Instagram account and carries
``estimated_time_to_regain_access`` in minutes. Throttling may start at 100 %: from
``SLOW_FROM`` % on, each call waits a little longer, so the limit is approached, not hit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

SLOW_FROM = 75
SLOWEST_SECONDS = 20.0  # the wait just below 100 %: still inside one request's patience
AT_LIMIT_SECONDS = 300.0  # at 100 % without a time to regain access


class Waits(NamedTuple):
    """How long to hold back calls of the whole app, and of the business object called."""

    app: float
    business: float


def _percent(entry: Any) -> float:
    if not isinstance(entry, dict):
        return 0.0
    values = [entry.get(k) for k in ("call_count", "total_time", "total_cputime")]
    return max([float(v) for v in values if isinstance(v, int | float)] or [0.0])


def _json(headers: Mapping[str, str], name: str) -> Any:
    try:
        return json.loads(headers.get(name) or "null")
    except ValueError:
        return None


def wait_for(percent: float, regain_minutes: float = 0.0) -> float:
    """The wait that a usage of ``percent`` calls for (0 well below the limit)."""
    if regain_minutes > 0:
        return regain_minutes * 60
    if percent >= 100:
        return AT_LIMIT_SECONDS
    if percent < SLOW_FROM:
        return 0.0
    return SLOWEST_SECONDS * (percent - SLOW_FROM) / (100 - SLOW_FROM)


def waits(headers: Mapping[str, str]) -> Waits:
    """The waits the usage headers of one answer ask for."""
    app = max(_percent(_json(headers, "X-App-Usage")), _percent(_json(headers, "X-Page-Usage")))
    business = 0.0
    buc = _json(headers, "X-Business-Use-Case-Usage")
    for entries in buc.values() if isinstance(buc, dict) else ():
        for entry in entries if isinstance(entries, list) else ():
            regain = (
                entry.get("estimated_time_to_regain_access", 0) if isinstance(entry, dict) else 0
            )
            regain = float(regain) if isinstance(regain, int | float) else 0.0
            business = max(business, wait_for(_percent(entry), regain))
    return Waits(wait_for(app), business)
