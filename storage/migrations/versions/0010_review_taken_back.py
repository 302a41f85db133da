"""Decisions a lead took back (`review reopen`): `review_taken_back`, each a review_decisions row
as it was, with its assignment's times and who took it back, when and why, and whether that
benched the annotator from the item (`--annotator`: no claim hands it to them again; an index
on (annotator, item_id) serves the claim's anti-join). Kept apart from review_decisions so that
every reader of the decisions leaves them out.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLE = "review_taken_back"


def upgrade() -> None:
    # Only what is missing: a database whose revision stamp was lost may have the table.
    if TABLE in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.Integer, nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("review_items.id"), nullable=False),
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("levels", sa.JSON, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("objects", sa.JSON, nullable=True),
        sa.Column("spans", sa.JSON, nullable=True),
        sa.Column("original", sa.JSON, nullable=True),
        sa.Column("decided_at", sa.Float, nullable=False),
        sa.Column("assigned_at", sa.Float, nullable=True),
        sa.Column("submitted_at", sa.Float, nullable=True),
        sa.Column("taken_back_by", sa.String(200), nullable=False),
        sa.Column("taken_back_at", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("benched", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index(f"ix_{TABLE}_annotator_item", TABLE, ["annotator", "item_id"])
    op.create_index(f"ix_{TABLE}_item_id", TABLE, ["item_id"])


def downgrade() -> None:
    # Dropping the table would lose the decisions a lead took back (README: nothing reviewed is
    # deleted); an empty one holds nothing to lose.
    kept = op.get_bind().execute(sa.text(f"SELECT count(*) FROM {TABLE}")).scalar_one()
    if kept:
        raise RuntimeError(
            f"{TABLE} holds {kept} decision(s) `synthgate review reopen` took back; a downgrade "
            "below 0010 would delete them. Keep the database at 0010 or later, or copy the "
            f"table out and empty it first (DELETE FROM {TABLE}) if they are no longer wanted"
        )
    op.drop_index(f"ix_{TABLE}_item_id", table_name=TABLE)
    op.drop_index(f"ix_{TABLE}_annotator_item", table_name=TABLE)
    op.drop_table(TABLE)
