"""The review queue's tables, on the store's metadata (SQLAlchemy Core).

review_batches: where a batch's image uris are relative to (run folder or blob URL).
review_items: one row per item to review; `kind` "sample" (a routed or audited sample) or "gold"
(a gold task or honeypot); `status` open -> adjudication -> final.
review_assignments: who was given which item; unique (item, annotator), so nobody gets one twice.
review_decisions: every decision, with the labels a fix replaced (`original`).
review_gold: the sample a gold task shows, its known verdicts and, for honeypots, the defect.
`WriteTransaction` is how every queue write starts: holding the write lock (see its docstring).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine import Connection

from synthgate.storage.store import Store, metadata

review_batches = Table(
    "review_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("image_root", Text, nullable=True),
)

review_items = Table(
    "review_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "key", String(200), nullable=False, unique=True
    ),  # sample:<id> | honeypot:<id> | gold:<id>
    Column("sample_id", String(64), nullable=False, index=True),
    Column("batch_id", String(64), nullable=False, index=True),
    Column("modality", String(8), nullable=False),
    Column("kind", String(8), nullable=False),  # sample | gold
    Column("reason", String(10), nullable=False),  # review | audit | gold | honeypot
    Column("k", Integer, nullable=False),
    Column("status", String(16), nullable=False, index=True),  # open | adjudication | final
    Column("final_verdict", String(8), nullable=True),
    Column("created_at", Float, nullable=False),
)

assignments = Table(
    "review_assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("review_items.id"), nullable=False, index=True),
    Column("annotator", String(200), nullable=False, index=True),
    Column("assigned_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
    UniqueConstraint("item_id", "annotator", name="uq_assignment"),
)

decisions = Table(
    "review_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("review_items.id"), nullable=False, index=True),
    Column("annotator", String(200), nullable=False),
    Column("role", String(12), nullable=False),  # annotator | adjudicator
    Column("verdict", String(8), nullable=False),
    Column("levels", JSON, nullable=False),
    Column("comment", Text, nullable=False),
    Column("objects", JSON, nullable=True),
    Column("spans", JSON, nullable=True),
    Column("original", JSON, nullable=True),  # labels the fix replaced
    Column("decided_at", Float, nullable=False),
    UniqueConstraint("item_id", "annotator", "role", name="uq_decision"),
)

gold_answers = Table(
    "review_gold",
    metadata,
    Column("item_id", Integer, ForeignKey("review_items.id"), primary_key=True),
    Column("shown", Text, nullable=False),  # Sample JSON as the annotator sees it
    Column("expected", JSON, nullable=False),  # verdicts that count as correct
    Column("criterion", String(40), nullable=True),  # the criterion a honeypot's defect hits
    Column("defect", String(40), nullable=True),
    Column("answer", Text, nullable=True),  # Sample JSON with the correct labels
)


class WriteTransaction:
    """A connection holding the database's write lock from its first statement.

    SQLite: BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so a
    read-then-insert cannot interleave with another writer. PostgreSQL: an ordinary transaction;
    the queries lock rows with FOR UPDATE (SKIP LOCKED when picking work).
    """

    def __init__(self, store: Store, dialect: str) -> None:
        self.store = store
        self.dialect = dialect

    def __enter__(self) -> Connection:
        self.connection = self.store.engine.connect()
        if self.dialect == "sqlite":
            self.connection.exec_driver_sql("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        try:
            if kind is None:
                self.connection.commit()
            else:
                self.connection.rollback()
        finally:
            self.connection.close()


def reviewed_samples(store: Store, sample_ids: Collection[str]) -> set[str]:
    """Of `sample_ids`, those people were asked to review (a `sample` item, open or final):
    their verdict is the reviewers' to change, never a re-run's."""
    if not sample_ids:
        return set()
    query = select(review_items.c.sample_id).where(
        review_items.c.kind == "sample", review_items.c.sample_id.in_(list(sample_ids))
    )
    with store.engine.connect() as connection:
        return set(connection.execute(query).scalars())


def insert_ignore(dialect: str, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the database's own dialect."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing()
