"""Periodic tasks (the daily DLQ audit).

Revision ID: 0005_periodic_tasks
Revises: 0004_client_webhooks
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.db.base import UTCDateTime

revision = "0005_periodic_tasks"
down_revision = "0004_client_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "periodic_tasks",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("next_run_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_periodic_tasks")),
    )


def downgrade() -> None:
    op.drop_table("periodic_tasks")
