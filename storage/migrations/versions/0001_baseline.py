"""Baseline: the schema as it stood before migrations, created where it is missing.

Databases written before synthgate used migrations have some or all of these tables (a run
folder's database has no review or user tables until a review command or the service opened
it): every missing table is created as it was then, and existing ones are left as they are.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tables(meta: sa.MetaData) -> None:
    sa.Table(
        "batches",
        meta,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("seed", sa.BigInteger, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
    )
    sa.Table(
        "samples",
        meta,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False, index=True),
        sa.Column("modality", sa.String(8), nullable=False),
        sa.Column("index", sa.Integer, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.UniqueConstraint("batch_id", "modality", "index", name="uq_sample_position"),
    )
    sa.Table(
        "chunks",
        meta,
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("batch_id", sa.String(64), nullable=False, index=True),
        sa.Column("modality", sa.String(8), nullable=False),
        sa.Column("start", sa.Integer, nullable=False),
        sa.Column("stop", sa.Integer, nullable=False),
        sa.Column("queue", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("deliveries", sa.Integer, nullable=False),
        sa.Column("crashes", sa.Integer, nullable=False),
        sa.Column("current", sa.Integer, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("quota_categories", sa.JSON, nullable=True),
        sa.Column("updated", sa.Float, nullable=False),
    )
    sa.Table(
        "batch_requesters",
        meta,
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("user", sa.String(100), primary_key=True),
        sa.Column("requested_at", sa.Float, nullable=False),
        sa.Index("ix_batch_requesters_user", "user", "requested_at"),
    )
    sa.Table(
        "api_users",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False, server_default=sa.func.now()),
    )
    sa.Table(
        "review_batches",
        meta,
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("image_root", sa.Text, nullable=True),
    )
    sa.Table(
        "review_items",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("sample_id", sa.String(64), nullable=False, index=True),
        sa.Column("batch_id", sa.String(64), nullable=False, index=True),
        sa.Column("modality", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("reason", sa.String(10), nullable=False),
        sa.Column("k", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("final_verdict", sa.String(8), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    sa.Table(
        "review_assignments",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "item_id", sa.Integer, sa.ForeignKey("review_items.id"), nullable=False, index=True
        ),
        sa.Column("annotator", sa.String(200), nullable=False, index=True),
        sa.Column("assigned_at", sa.Float, nullable=False),
        sa.Column("decided_at", sa.Float, nullable=True),
        sa.UniqueConstraint("item_id", "annotator", name="uq_assignment"),
    )
    sa.Table(
        "review_decisions",
        meta,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "item_id", sa.Integer, sa.ForeignKey("review_items.id"), nullable=False, index=True
        ),
        sa.Column("annotator", sa.String(200), nullable=False),
        sa.Column("role", sa.String(12), nullable=False),
        sa.Column("verdict", sa.String(8), nullable=False),
        sa.Column("levels", sa.JSON, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("objects", sa.JSON, nullable=True),
        sa.Column("spans", sa.JSON, nullable=True),
        sa.Column("original", sa.JSON, nullable=True),
        sa.Column("decided_at", sa.Float, nullable=False),
        sa.UniqueConstraint("item_id", "annotator", "role", name="uq_decision"),
    )
    sa.Table(
        "review_gold",
        meta,
        sa.Column("item_id", sa.Integer, sa.ForeignKey("review_items.id"), primary_key=True),
        sa.Column("shown", sa.Text, nullable=False),
        sa.Column("expected", sa.JSON, nullable=False),
        sa.Column("criterion", sa.String(40), nullable=True),
        sa.Column("defect", sa.String(40), nullable=True),
        sa.Column("answer", sa.Text, nullable=True),
    )


def upgrade() -> None:
    meta = sa.MetaData()
    _tables(meta)
    meta.create_all(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    meta = sa.MetaData()
    _tables(meta)
    meta.drop_all(op.get_bind(), checkfirst=True)
