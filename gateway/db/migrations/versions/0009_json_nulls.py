"""A job's missing error, poll handle and notes stored as SQL NULL, not the JSON text 'null'

Revision ID: 0009_json_nulls
Revises: 0008_health_views
Create Date: 2026-11-26

Until now a cleared error (a job published after a retry, or at once) was written as JSON
'null', which is NOT NULL to SQL: the health view `api_recent_errors` counted every published
job as an error of type 'unknown'. The columns now write None as NULL; this turns the rows
already written into NULL too.
"""

from __future__ import annotations

from alembic import op

revision = "0009_json_nulls"
down_revision = "0008_health_views"
branch_labels = None
depends_on = None

COLUMNS = ("error_json", "poll_handle", "notes")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for column in COLUMNS:
        json_null = f"{column} = 'null'" if sqlite else f"json_typeof({column}) = 'null'"
        op.execute(f"UPDATE publish_jobs SET {column} = NULL WHERE {json_null}")  # noqa: S608


def downgrade() -> None:
    """Nothing to undo: NULL reads back as None, as JSON 'null' did."""
