"""When to try a failed job again: the configured steps with jitter, or the platform's word."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from ..settings import JobSettings


def next_attempt(
    settings: JobSettings, failures: int, now: datetime, retry_after: float | None = None
) -> datetime:
    """After ``failures`` failed attempts: 1 s, 3 s, 9 s, 27 s... with jitter; Retry-After wins."""
    if retry_after is not None and retry_after >= 0:
        return now + timedelta(seconds=retry_after)
    steps = settings.backoff_seconds
    base = steps[min(max(failures, 1), len(steps)) - 1]
    # Jitter spreads retries of jobs that failed together, so they do not return together.
    spread = base * settings.backoff_jitter
    return now + timedelta(seconds=max(0.0, base + random.uniform(-spread, spread)))  # noqa: S311
