"""OAuth states bound to the browser: the one-time go link and the binding cookie's hash

Revision ID: 0014_oauth_binding
Revises: 0013_latency_from_due
Create Date: 2026-12-07

``authorizationUrl`` now points at the gateway (``GET /oauth/{platform}/go/{id}``), which sets
a cookie bound to the state before sending the browser to the platform; the callback requires it.

- ``go_hash``: the SHA-256 of the go link's one-time id (unique; the id itself is never stored);
- ``followed_at``: when the go link was followed (it can be followed once);
- ``binding_hash``: the SHA-256 of the cookie value set then, compared at the callback.

States written before this revision have none of them and cannot complete: they live ten minutes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gateway.db.base import UTCDateTime

revision = "0014_oauth_binding"
down_revision = "0013_latency_from_due"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        batch.add_column(sa.Column("go_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("followed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("binding_hash", sa.String(length=64), nullable=True))
        batch.create_index(batch.f("ix_oauth_states_go_hash"), ["go_hash"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("oauth_states") as batch:
        batch.drop_index(batch.f("ix_oauth_states_go_hash"))
        batch.drop_column("binding_hash")
        batch.drop_column("followed_at")
        batch.drop_column("go_hash")
