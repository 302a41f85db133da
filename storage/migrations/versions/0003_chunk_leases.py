"""Chunk leases: the number, holder and expiry of the delivery making each chunk.

Workers fence their writes with the lease number (a delivery whose chunk was handed to another
worker can no longer write) and renew the expiry while they work; a running chunk past its
expiry lost its worker and is handed to another one (storage/chunks.py). Chunks from before
have lease 0, no holder and no expiry: a running one among them counts as lost.

Revision ID: 0003
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chunks") as batch:
        batch.add_column(sa.Column("lease", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("holder", sa.String(200), nullable=True))
        batch.add_column(sa.Column("lease_expires", sa.Float, nullable=True))
    op.create_index("ix_chunks_lease", "chunks", ["status", "lease_expires"])


def downgrade() -> None:
    op.drop_index("ix_chunks_lease", table_name="chunks")
    with op.batch_alter_table("chunks") as batch:
        batch.drop_column("lease_expires")
        batch.drop_column("holder")
        batch.drop_column("lease")
