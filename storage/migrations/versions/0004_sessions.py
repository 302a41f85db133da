"""Server-side sessions and the service's secrets: `api_sessions` (a login of the review page,
by the SHA-256 of its session id, revoked by deleting its row) and `api_secrets` (keys the
service makes once, e.g. the one behind the opaque review item ids annotators see).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing: a database whose revision stamp was lost may have the tables.
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    if "api_sessions" in existing and "api_secrets" in existing:
        return
    if "api_sessions" not in existing:
        _sessions()
    if "api_secrets" not in existing:
        op.create_table(
            "api_secrets",
            sa.Column("name", sa.String(40), primary_key=True),
            sa.Column("value", sa.String(128), nullable=False),
        )


def _sessions() -> None:
    op.create_table(
        "api_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_api_sessions_user", "api_sessions", ["user"])


def downgrade() -> None:
    op.drop_table("api_secrets")
    op.drop_index("ix_api_sessions_user", table_name="api_sessions")
    op.drop_table("api_sessions")
