"""Review claims by index: kept `taken` counts, a claim `priority` and the rubric's `route` on
review items, the indexes a claim walks, and an index for an annotator's open task.

An older database keeps its rows: `taken` is counted from its assignments, gold items get their
fixed place in the gold order (a hash of their key), sample items their rubric route from the
sample's stored report; every other priority is 0, which claims in item order (fifo), as before.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHUNK = 1000


# Copied from review/priority.py (gold_position): a migration keeps its own copy, so it does
# the same thing whatever later code does.
def _gold_position(key: str) -> float:
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2.0**64


def upgrade() -> None:
    connection = op.get_bind()
    found = sa.inspect(connection)
    # Like 0001, it brings any older database to this schema: one made by a release whose
    # tables already had these columns (but no revision stamp) is left as it is.
    columns = {c["name"] for c in found.get_columns("review_items")}
    if "taken" not in columns:
        op.add_column(
            "review_items", sa.Column("taken", sa.Integer, nullable=False, server_default="0")
        )
        connection.execute(
            sa.text(
                "UPDATE review_items SET taken = (SELECT count(*) FROM review_assignments "
                "WHERE review_assignments.item_id = review_items.id)"
            )
        )
    if "priority" not in columns:
        op.add_column(
            "review_items", sa.Column("priority", sa.Float, nullable=False, server_default="0")
        )
        _fill_gold_positions(connection)
    if "route" not in columns:
        op.add_column("review_items", sa.Column("route", sa.String(10), nullable=True))
        _fill_routes(connection)
    indexes = {i["name"] for i in found.get_indexes("review_items")}
    if "ix_review_items_claim" not in indexes:
        op.create_index(
            "ix_review_items_claim",
            "review_items",
            ["kind", "status", "taken", "priority", "id", "k"],
        )
    if "ix_review_items_gold_order" not in indexes:
        op.create_index(
            "ix_review_items_gold_order", "review_items", ["kind", "status", "priority", "id"]
        )
    indexes = {i["name"] for i in found.get_indexes("review_assignments")}
    if "ix_review_assignments_annotator" in indexes:
        op.drop_index("ix_review_assignments_annotator", table_name="review_assignments")
    if "ix_review_assignments_annotator_open" not in indexes:
        op.create_index(
            "ix_review_assignments_annotator_open",
            "review_assignments",
            ["annotator", "decided_at"],
        )


def _fill_gold_positions(connection: sa.Connection) -> None:
    rows = connection.execute(sa.text("SELECT id, key FROM review_items WHERE kind = 'gold'")).all()
    if rows:
        connection.execute(
            sa.text("UPDATE review_items SET priority = :priority WHERE id = :id"),
            [{"id": item_id, "priority": _gold_position(key)} for item_id, key in rows],
        )


def _fill_routes(connection: sa.Connection) -> None:
    """Each sample item's rubric route, read from its sample's stored report, a chunk at a
    time (the JSON functions of SQLite and PostgreSQL differ; this runs once)."""
    last = 0
    while True:
        rows = connection.execute(
            sa.text(
                "SELECT review_items.id, samples.data FROM review_items "
                "JOIN samples ON samples.id = review_items.sample_id "
                "WHERE review_items.kind = 'sample' AND review_items.id > :last "
                "ORDER BY review_items.id LIMIT :chunk"
            ),
            {"last": last, "chunk": CHUNK},
        ).all()
        if not rows:
            return
        routes = []
        for item_id, data in rows:
            report = json.loads(data).get("report") or {}
            if report.get("route"):
                routes.append({"id": item_id, "route": report["route"]})
        if routes:
            connection.execute(
                sa.text("UPDATE review_items SET route = :route WHERE id = :id"), routes
            )
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_review_assignments_annotator_open", table_name="review_assignments")
    op.create_index("ix_review_assignments_annotator", "review_assignments", ["annotator"])
    op.drop_index("ix_review_items_gold_order", table_name="review_items")
    op.drop_index("ix_review_items_claim", table_name="review_items")
    with op.batch_alter_table("review_items") as batch:
        batch.drop_column("route")
        batch.drop_column("priority")
        batch.drop_column("taken")
