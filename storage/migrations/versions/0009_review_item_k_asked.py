"""The k `review set-k` asked for, kept on an item whose holders keep its k larger until they
decide (`review_items.k_asked`): a release that took one of them back left the larger k, and
the item went to someone new instead of being finished as set-k would have.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing: a database whose revision stamp was lost may have it. An item held
    # through a set-k run before keeps NULL (the k asked was not kept): it waits, as before,
    # for its holders or someone new.
    inspector = sa.inspect(op.get_bind())
    if "k_asked" not in {c["name"] for c in inspector.get_columns("review_items")}:
        op.add_column("review_items", sa.Column("k_asked", sa.Integer, nullable=True))


def downgrade() -> None:
    op.drop_column("review_items", "k_asked")
