"""Asynchronous publishing (processing and polling) and analytics collections

Revision ID: 0006_processing_analytics
Revises: 0005_periodic_tasks
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.db.base import UTCDateTime

revision = "0006_processing_analytics"
down_revision = "0005_periodic_tasks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("publish_jobs") as batch:
        batch.add_column(sa.Column("poll_handle", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("processing_since", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("polls", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("analytics_next_at", UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("analytics_step", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("notes", sa.JSON(), nullable=True))
    op.create_index(
        "ix_publish_jobs_analytics_due", "publish_jobs", ["analytics_next_at"], unique=False
    )
    # Fair claims walk the due jobs of one tenant at a time.
    op.create_index(
        "ix_publish_jobs_tenant_due",
        "publish_jobs",
        ["tenant_id", "status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "publish_job_analytics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("collected_at", UTCDateTime(), nullable=False),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["publish_jobs.id"],
            name=op.f("fk_publish_job_analytics_job_id_publish_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publish_job_analytics")),
    )
    op.create_index(
        "ix_publish_job_analytics_job_collected",
        "publish_job_analytics",
        ["job_id", "collected_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_publish_job_analytics_job_collected", table_name="publish_job_analytics")
    op.drop_table("publish_job_analytics")
    op.drop_index("ix_publish_jobs_tenant_due", table_name="publish_jobs")
    op.drop_index("ix_publish_jobs_analytics_due", table_name="publish_jobs")
    with op.batch_alter_table("publish_jobs") as batch:
        for column in ("notes", "analytics_step", "analytics_next_at", "polls", "processing_since"):
            batch.drop_column(column)
        batch.drop_column("poll_handle")
