"""Chunk leases: the number, holder and expiry of the delivery making each chunk.

Workers fence their writes with the lease number (a delivery whose chunk was handed to another
worker can no longer write) and renew the expiry while they work; a running chunk past its
expiry lost its worker and is handed to another one (storage/chunks.py). Chunks from before
have lease 0, no holder and no expiry: a running one among them counts as lost.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("lease", sa.Integer, nullable=False, server_default="0"),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("lease_expires", sa.Float, nullable=True),
    ]


def upgrade() -> None:
    # Only what is missing: a database from before migrations (no revision stamped) may hold a
    # chunks table that already has them, as the baseline may find any table already there.
    found = sa.inspect(op.get_bind())
    have = {column["name"] for column in found.get_columns("chunks")}
    missing = [column for column in _columns() if column.name not in have]
    if missing:
        with op.batch_alter_table("chunks") as batch:
            for column in missing:
                batch.add_column(column)
    if "ix_chunks_lease" not in {index["name"] for index in found.get_indexes("chunks")}:
        op.create_index("ix_chunks_lease", "chunks", ["status", "lease_expires"])


def downgrade() -> None:
    op.drop_index("ix_chunks_lease", table_name="chunks")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("lease_expires")
        batch.drop_column("holder")
        batch.drop_column("lease")
