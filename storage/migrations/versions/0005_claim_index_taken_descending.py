"""The claim index holds `taken` descending (ix_review_items_claim): the claim walks started
items the most taken first, and with `taken` ascending in the index every claim sorted all the
started items (O(n log n) in them) before it could take the first one not the annotator's.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEX = "ix_review_items_claim"


def upgrade() -> None:
    _claim_index(sa.text("taken DESC"))


def downgrade() -> None:
    _claim_index("taken")


def _claim_index(taken: sa.TextClause | str) -> None:
    indexes = {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("review_items")}
    if INDEX in indexes:
        op.drop_index(INDEX, table_name="review_items")
    op.create_index(INDEX, "review_items", ["kind", "status", taken, "priority", "id", "k"])
