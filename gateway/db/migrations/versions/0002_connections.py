"""Connections, accounts, OAuth states, health checks

Revision ID: 0002_connections
Revises: 0001_core
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.db.base import UTCDateTime


revision = "0002_connections"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("health", sa.String(length=20), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("external_user_id", sa.String(length=200), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("metadata_json", sa.JSON(), nullable=False),
        sa.Column("credentials_secret_id", sa.String(length=40), nullable=True),
        sa.Column("credential_version", sa.Integer(), nullable=False),
        sa.Column("token_expires_at", UTCDateTime(), nullable=True),
        sa.Column("refresh_expires_at", UTCDateTime(), nullable=True),
        sa.Column("next_refresh_at", UTCDateTime(), nullable=True),
        sa.Column("reconnect_by", UTCDateTime(), nullable=True),
        sa.Column("refresh_lease_owner", sa.String(length=60), nullable=True),
        sa.Column("refresh_lease_until", UTCDateTime(), nullable=True),
        sa.Column("refresh_failures", sa.Integer(), nullable=False),
        sa.Column("refresh_blocked_until", UTCDateTime(), nullable=True),
        sa.Column("last_refresh_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_health_check_at", UTCDateTime(), nullable=True),
        sa.Column("next_health_check_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["credentials_secret_id"],
            ["sealed_secrets.id"],
            name=op.f("fk_connections_credentials_secret_id_sealed_secrets"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint(
            "tenant_id", "platform", "external_user_id", name=op.f("uq_connections_tenant_id")
        ),
    )
    op.create_index(
        "ix_connections_next_health_check_at", "connections", ["next_health_check_at"], unique=False
    )
    op.create_index(
        "ix_connections_next_refresh_at", "connections", ["next_refresh_at"], unique=False
    )
    op.create_index(op.f("ix_connections_tenant_id"), "connections", ["tenant_id"], unique=False)
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("return_url", sa.Text(), nullable=True),
        sa.Column("connection_id", sa.String(length=40), nullable=True),
        sa.Column("verifier_secret_id", sa.String(length=40), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_oauth_states_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["verifier_secret_id"],
            ["sealed_secrets.id"],
            name=op.f("fk_oauth_states_verifier_secret_id_sealed_secrets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
    )
    op.create_index(op.f("ix_oauth_states_tenant_id"), "oauth_states", ["tenant_id"], unique=False)
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("metadata_json", sa.JSON(), nullable=False),
        sa.Column("token_secret_id", sa.String(length=40), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_accounts_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_accounts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_secret_id"],
            ["sealed_secrets.id"],
            name=op.f("fk_accounts_token_secret_id_sealed_secrets"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint(
            "connection_id", "kind", "external_id", name=op.f("uq_accounts_connection_id")
        ),
    )
    op.create_index(op.f("ix_accounts_connection_id"), "accounts", ["connection_id"], unique=False)
    op.create_index(op.f("ix_accounts_tenant_id"), "accounts", ["tenant_id"], unique=False)
    op.create_table(
        "connection_health_checks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("connection_id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("error_code", sa.String(length=60), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_connection_health_checks_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connection_health_checks")),
    )
    op.create_index(
        "ix_connection_health_checks_checked_at",
        "connection_health_checks",
        ["checked_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_connection_health_checks_connection_id"),
        "connection_health_checks",
        ["connection_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_connection_health_checks_connection_id"), table_name="connection_health_checks"
    )
    op.drop_index("ix_connection_health_checks_checked_at", table_name="connection_health_checks")
    op.drop_table("connection_health_checks")
    op.drop_index(op.f("ix_accounts_tenant_id"), table_name="accounts")
    op.drop_index(op.f("ix_accounts_connection_id"), table_name="accounts")
    op.drop_table("accounts")
    op.drop_index(op.f("ix_oauth_states_tenant_id"), table_name="oauth_states")
    op.drop_table("oauth_states")
    op.drop_index(op.f("ix_connections_tenant_id"), table_name="connections")
    op.drop_index("ix_connections_next_refresh_at", table_name="connections")
    op.drop_index("ix_connections_next_health_check_at", table_name="connections")
    op.drop_table("connections")
