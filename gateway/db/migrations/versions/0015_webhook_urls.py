"""Secret webhook URLs per connection (unsigned platforms such as Mailchimp)

Revision ID: 0015_webhook_urls
Revises: 0014_oauth_binding
Create Date: 2026-12-07

Until now one secret, derived from the vault key, served every tenant's connections of a
platform, so a tenant who saw its own URL could post events about another tenant's account.
Each connection now has its own random token: ``lookup_hash`` (its SHA-256, unique) finds the
connection, and the token is sealed in ``sealed_secrets`` so that the URL can be registered again.
URLs of the old form stop working: audiences' webhooks are registered again to get the new URL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.db.base import UTCDateTime

revision = "0015_webhook_urls"
down_revision = "0014_oauth_binding"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_urls",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("lookup_hash", sa.String(length=64), nullable=False),
        sa.Column("secret_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_webhook_urls_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_webhook_urls_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["secret_id"],
            ["sealed_secrets.id"],
            name=op.f("fk_webhook_urls_secret_id_sealed_secrets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_urls")),
        sa.UniqueConstraint("connection_id", name=op.f("uq_webhook_urls_connection_id")),
        sa.UniqueConstraint("lookup_hash", name=op.f("uq_webhook_urls_lookup_hash")),
    )
    op.create_index(op.f("ix_webhook_urls_tenant_id"), "webhook_urls", ["tenant_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_urls_tenant_id"), table_name="webhook_urls")
    op.drop_table("webhook_urls")
