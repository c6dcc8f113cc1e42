"""Platform webhook events, stored once per platform event

Revision ID: 0007_platform_webhooks
Revises: 0006_processing_analytics
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.db.base import UTCDateTime

revision = "0007_platform_webhooks"
down_revision = "0006_processing_analytics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_webhook_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("handled_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_webhook_events")),
        sa.UniqueConstraint(
            "platform", "event_key", name=op.f("uq_platform_webhook_events_platform")
        ),
    )


def downgrade() -> None:
    op.drop_table("platform_webhook_events")
