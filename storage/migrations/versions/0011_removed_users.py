"""The names `synthgate users remove` took away (`api_removed_users`: name, removed_at), written
in the removal's transaction and cleared when a user is added under the name again: a review
queue's team (review/stats.py `queue_team`) leaves out those removed, and keeps the annotators
who were never users (Label Studio through `review import`, `ReviewQueue` in Python), which a
missing api_users row could not tell apart.

Removals before this revision left no trace, so the table starts empty: a user removed then is
in the team again until `synthgate users add NAME` and `synthgate users remove NAME` record it.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TABLE = "api_removed_users"


def upgrade() -> None:
    # Only what is missing: a database whose revision stamp was lost may have the table.
    if TABLE in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        TABLE,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("removed_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    # The code of 0010 reads no trace of a removal (its team keeps current users alone): the
    # table holds nothing it needs.
    op.drop_table(TABLE)
