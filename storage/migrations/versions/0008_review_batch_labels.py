"""The labels a fix may use, kept per review batch (`review_batches.labels`): the object classes
and span labels of the batch, seen when it is enqueued. A fix with a class the batch does not
hold ("banana", "") would have become an accepted sample's label.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing: a database whose revision stamp was lost may have it. A batch
    # enqueued before keeps NULL until `review enqueue` runs again: its fixes are checked
    # against the labels of the sample they fix.
    inspector = sa.inspect(op.get_bind())
    if "labels" not in {c["name"] for c in inspector.get_columns("review_batches")}:
        op.add_column("review_batches", sa.Column("labels", sa.JSON, nullable=True))


def downgrade() -> None:
    op.drop_column("review_batches", "labels")
