"""Publish latency counts from when a job was due, the queue wait apart; errors seen when they happened

Revision ID: 0013_latency_from_due
Revises: 0012_health_views_gateway_clock
Create Date: 2026-12-07

A job that sat in the dead-letter queue before it was replayed counted its whole wait in its
publish latency (``published_at - COALESCE(scheduled_at, created_at)``): one replay after a
day showed a p95 of hours. Three columns of ``publish_jobs`` record what the figures need:

- ``due_at``: when a replay made the job due again (None: it was due at ``scheduled_at``, else
  at ``created_at``), so that latency is measured from when the job was due;
- ``started_at``: when a worker first took it since it became due, so that the queue wait
  (due → taken) is shown apart, as ``p95_queue_wait_ms`` and ``avg_queue_wait_ms``;
- ``error_at``: when its last error happened. The recent-errors view showed ``updated_at``,
  which moves on when the job is later replayed or discarded.

The views are 0012's with those three changes; rows written before this revision have none of
the new columns and are measured as before.
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

from gateway.db.base import UTCDateTime

revision = "0013_latency_from_due"
down_revision = "0012_health_views_gateway_clock"
branch_labels = None
depends_on = None

COLUMNS = ("due_at", "started_at", "error_at")
CHANGED = ("api_recent_errors", "api_publish_performance")


@cache
def _0012() -> ModuleType:
    """The 0012 revision, for its dialect and (through 0011) the view bodies."""
    path = Path(__file__).with_name("0012_health_views_gateway_clock.py")
    spec = importlib.util.spec_from_file_location("health_views_0012", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _swap(body: str, old: str, new: str, count: int) -> str:
    assert body.count(old) == count, (old, body.count(old))  # once in each arm
    return body.replace(old, new)


def errors(body: str) -> str:
    """The recent errors, each seen when it happened."""
    # Three mentions an arm: the row's seen_at, and the 7-day window's two.
    return _swap(body, "j.updated_at", "COALESCE(j.error_at, j.updated_at)", 6)


def performance(body: str, d) -> str:  # noqa: ANN001 - 0008's Dialect
    """Latency from when the job was due; the queue wait, due → first taken, beside it."""
    due = "COALESCE(j.due_at, j.scheduled_at, j.created_at)"
    body = _swap(body, "COALESCE(j.scheduled_at, j.created_at)", due, 2)
    started, due_ms = d.ms("j.started_at"), d.ms(due)
    # The same sample as the latency's (the jobs published in the last 24 h), one per arm; a
    # job the platform scheduled was taken before its time, and waited for no worker.
    body = _swap(
        body,
        " END AS latency_ms\n",
        f" END AS latency_ms,\n{' ' * 16}CASE WHEN j.published_at IS NOT NULL"
        f" AND {started} >= {due_ms} THEN ROUND({started} - {due_ms}) END AS queue_wait_ms\n",
        2,
    )
    # Its own nearest-rank p95, among the samples that have a wait (rows from before 0013
    # have none, and each database sorts NULLs to its own end).
    cume = re.compile(
        r"CUME_DIST\(\) OVER \(\n(\s*)PARTITION BY ([^\n]+)\n\s*ORDER BY w\.latency_ms\) AS cume"
    )
    assert len(cume.findall(body)) == 2
    body = cume.sub(
        lambda m: f"{m.group(0)},\n{m.group(1)}CUME_DIST() OVER (PARTITION BY {m.group(2)}, "
        "w.queue_wait_ms IS NULL ORDER BY w.queue_wait_ms) AS cume_wait",
        body,
    )
    sample = "{a}.published_24h = 1 AND {a}.queue_wait_ms IS NOT NULL"
    p95 = "MIN(CASE WHEN " + sample + " AND {a}.cume_wait >= 0.95 THEN {a}.queue_wait_ms END)"
    avg = "AVG(CASE WHEN " + sample + " THEN {a}.queue_wait_ms END)"
    round1 = _0012()._0011()._0010()._0008().round1
    # The tenant arm: windows over c, read out of a.
    body = _swap(
        body,
        " OVER g AS in_flight,\n",
        f" OVER g AS in_flight,\n{' ' * 11}{p95.format(a='c')} OVER g AS p95_queue_wait_ms,\n"
        f"{' ' * 11}{avg.format(a='c')} OVER g AS avg_queue_wait_ms,\n",
        1,
    )
    body = _swap(
        body,
        "a.published_total, a.in_flight\n",
        "a.published_total, a.in_flight, a.p95_queue_wait_ms,\n"
        f"{' ' * 7}{round1('a.avg_queue_wait_ms')} AS avg_queue_wait_ms\n",
        1,
    )
    # The roll-up arm: aggregates of a.
    return _swap(
        body,
        " END) AS in_flight\nFROM (",
        f" END) AS in_flight,\n{' ' * 7}{p95.format(a='a')} AS p95_queue_wait_ms,\n"
        f"{' ' * 7}{round1(avg.format(a='a'))} AS avg_queue_wait_ms\nFROM (",
        1,
    )


def views(d) -> dict[str, str]:  # noqa: ANN001 - 0008's Dialect
    bodies = _0012()._0011().views(d)
    return {
        "api_recent_errors": errors(bodies["api_recent_errors"]),
        "api_publish_performance": performance(bodies["api_publish_performance"], d),
    }


def _replace(bodies: dict[str, str]) -> None:
    for name in CHANGED:
        op.execute(f"DROP VIEW IF EXISTS {name}")
        op.execute(f"CREATE VIEW {name} AS {bodies[name]}")


def upgrade() -> None:
    with op.batch_alter_table("publish_jobs") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, UTCDateTime(), nullable=True))
    _replace(views(_0012()._dialect(on_gateway_clock=True)))


def downgrade() -> None:
    old = _0012()
    _replace({name: old._0011().views(old._dialect(on_gateway_clock=True))[name] for name in CHANGED})
    # ALTER TABLE … DROP COLUMN in place (SQLite 3.35+): a batch would rebuild the table under
    # a temporary name, which the other views that read publish_jobs do not allow.
    for name in COLUMNS:
        op.drop_column("publish_jobs", name)
