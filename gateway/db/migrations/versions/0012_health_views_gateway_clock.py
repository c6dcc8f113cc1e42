"""The health views read the gateway's clock, not the database's

Revision ID: 0012_health_views_gateway_clock
Revises: 0011_health_views_pushdown
Create Date: 2026-12-07

Every decision the gateway takes reads one clock (``gateway.clock``), which a test can shift a
year ahead. The health views asked the database (``now()``, ``julianday('now')``) instead, so a
shifted gateway saw last year's 24-hour windows. Each view now reads ``gateway_now_ms()``:

- on SQLite, a function the gateway registers on every connection it opens (``db/engine.py``),
  answering its clock in milliseconds since the epoch;
- on PostgreSQL, a SQL function answering the transaction's ``gateway.now_ms`` setting, which
  the health report sets from the gateway's clock before it reads (``ops/health.py``); a read
  without it (an operator's ``psql``) falls back to the transaction's ``now()``.

The rows are 0011's.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0012_health_views_gateway_clock"
down_revision = "0011_health_views_pushdown"
branch_labels = None
depends_on = None

NOW_MS = "gateway_now_ms()"
POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION gateway_now_ms() RETURNS DOUBLE PRECISION
LANGUAGE sql STABLE AS $$
    SELECT COALESCE(
        CAST(NULLIF(current_setting('gateway.now_ms', true), '') AS DOUBLE PRECISION),
        CAST(EXTRACT(EPOCH FROM now()) AS DOUBLE PRECISION) * 1000.0)
$$
"""


@cache
def _0011() -> ModuleType:
    """The 0011 revision, for its view bodies (and, through it, 0010's and 0008's)."""
    path = Path(__file__).with_name("0011_health_views_pushdown.py")
    spec = importlib.util.spec_from_file_location("health_views_0011", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dialect(on_gateway_clock: bool):  # noqa: ANN202 - 0008's Dialect, loaded from its file
    base = _0011()._0010()._0008().Dialect

    class GatewayClock(base):
        @property
        def now(self) -> str:
            return NOW_MS

    return (GatewayClock if on_gateway_clock else base)(op.get_bind().dialect.name)


def _replace(d) -> None:  # noqa: ANN001 - 0008's Dialect
    """Every view that reads the time: 0008's token view and the seven built on top of it."""
    old = _0011()
    rebuilt = old._0010().REBUILT
    token_health = old._0010()._0008().views(d)["api_token_health"]
    for name in reversed(rebuilt):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.execute("DROP VIEW IF EXISTS api_token_health")
    op.execute(f"CREATE VIEW api_token_health AS {token_health}")
    bodies = old.views(d)
    for name in rebuilt:
        op.execute(f"CREATE VIEW {name} AS {bodies[name]}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_FUNCTION)
    _replace(_dialect(on_gateway_clock=True))


def downgrade() -> None:
    _replace(_dialect(on_gateway_clock=False))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS gateway_now_ms()")
