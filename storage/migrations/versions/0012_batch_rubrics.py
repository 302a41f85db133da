"""The digest of the rubric each modality of a service's batch was judged with
(`batch_rubrics`): a batch kept its rubric's name or path only, so the same file edited in place
and the config posted again was answered with the old rubric's verdicts, unnoticed.

Batches judged before this revision have no row: a post of one again compares its rubric by
name, as before.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLE = "batch_rubrics"


def upgrade() -> None:
    # Only what is missing: a database whose revision stamp was lost may have the table.
    if TABLE in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        TABLE,
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("modality", sa.String(8), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    # The code of 0011 compares rubrics by name alone: the table holds nothing it needs.
    op.drop_table(TABLE)
