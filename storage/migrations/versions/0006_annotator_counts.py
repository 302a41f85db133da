"""Each annotator's count of tasks given, kept (`review_annotators`): the claim read it by
counting the annotator's assignments, a cost that grew with their history on every claim.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Only what is missing: a database whose revision stamp was lost may have the table.
    if "review_annotators" in sa.inspect(op.get_bind()).get_table_names():
        return
    op.create_table(
        "review_annotators",
        sa.Column("annotator", sa.String(200), primary_key=True),
        sa.Column("given", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO review_annotators (annotator, given) "
        "SELECT annotator, count(*) FROM review_assignments GROUP BY annotator"
    )


def downgrade() -> None:
    op.drop_table("review_annotators")
