"""The one holder of a sample item taken once (`review_items.holder`, kept with `taken`), and an
index of each holder's items in claim order: an annotator far ahead of the team held thousands
of started items nobody else had taken yet, and every claim of theirs walked past all of them.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEX = "ix_review_items_holder"


def upgrade() -> None:
    # Only what is missing: a database whose revision stamp was lost may have either.
    inspector = sa.inspect(op.get_bind())
    if "holder" not in {c["name"] for c in inspector.get_columns("review_items")}:
        op.add_column("review_items", sa.Column("holder", sa.String(200), nullable=True))
    op.execute(
        "UPDATE review_items SET holder = (SELECT a.annotator FROM review_assignments a "
        "WHERE a.item_id = review_items.id) "
        "WHERE kind = 'sample' AND status = 'open' AND k > 1 AND taken = 1"
    )
    if INDEX not in {i["name"] for i in inspector.get_indexes("review_items")}:
        op.create_index(INDEX, "review_items", ["holder", "priority", "id"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="review_items")
    op.drop_column("review_items", "holder")
