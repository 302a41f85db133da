"""Every table synthgate keeps, on one SQLAlchemy MetaData (Core), and the SQL helpers they share.

- batches, samples: what was asked for and what was made (storage/store.py).
- chunks: the workers' bookkeeping, one row per chunk task, with the lease of the delivery
  making it (storage/chunks.py).
- batch_requesters: who asked for which batch (storage/requesters.py).
- batch_rubrics: the digest of the rubric each modality of a service's batch was judged with,
  which a post of the batch again is held to (storage/store.py).
- api_users: who may use the service, with token hashes; api_removed_users: the names
  `users remove` took away and nobody was added under again (a review queue's team leaves them
  out, review/stats.py `queue_team`); api_sessions: the review page's logins, by the hash of
  their session id; api_secrets: keys the service makes once (the one that turns review item
  numbers into the opaque ids annotators see) (storage/users.py).
- review_batches, review_items, review_assignments, review_decisions, review_gold: the review
  queue (review/): where a batch's image uris are relative to and the labels a fix may use; one row per item to review (`kind`
  "sample" for a routed or audited sample, "gold" for a gold task or honeypot; `status` open ->
  adjudication -> final; `taken`, the kept count of its assignments, and `priority`, its place in
  the claim order, so that claiming an item is one walk down an index: see review/claims.py);
  who was given which item (unique per annotator); every decision, with the labels a fix
  replaced (`original`); the sample a gold task shows and its known verdicts.
- review_annotators: each annotator's kept count of tasks given (it seeds their gold draw).
- review_taken_back: decisions a lead took back (`review reopen`, review/reopen.py), moved out
  of review_decisions with their assignment's times, who took them back, when and why: kept,
  never deleted, and read by nothing that reads the decisions.

The schema's revision is `SCHEMA_REVISION`; migrations (storage/migrations/) bring an older
database to it (storage/schema.py). `WriteTransaction` is how every queue write starts, holding
the write lock; `insert_ignore` is INSERT … ON CONFLICT DO NOTHING in the database's dialect.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.engine import Connection, Engine

from synthgate.storage.prepared import Prepared

# The migration that made the schema below (storage/migrations/versions/): a database stamped
# with it needs no upgrade. A test holds it equal to the migrations' head.
SCHEMA_REVISION = "0012"

metadata = MetaData()

batches = Table(
    "batches",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("config", JSON, nullable=False),
    Column("status", String(20), nullable=False, default="running"),
    Column("message", Text, nullable=True),
)

samples = Table(
    "samples",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("batch_id", String(64), nullable=False, index=True),
    Column("modality", String(8), nullable=False),
    Column("index", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("score", Float, nullable=True),
    Column("data", Text, nullable=False),  # Sample as JSON
    Column("reason", Text, nullable=True),  # why a sample failed
    UniqueConstraint("batch_id", "modality", "index", name="uq_sample_position"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", String(100), primary_key=True),  # <batch_id>:<modality>:<start>
    Column("batch_id", String(64), nullable=False, index=True),
    Column("modality", String(8), nullable=False),
    Column("start", Integer, nullable=False),
    Column("stop", Integer, nullable=False),
    Column("queue", String(20), nullable=False),
    Column("status", String(20), nullable=False),  # queued | running | generated | done | failed
    Column("deliveries", Integer, nullable=False, default=0),
    Column("crashes", Integer, nullable=False, default=0),  # deliveries that found it running
    Column("current", Integer, nullable=True),  # sample index in flight (after a crash)
    Column("reason", Text, nullable=True),
    # The generator's quota categories, recorded by the worker that built it: the judges of a
    # GPU batch need them where the run folder is written, without loading the model there.
    Column("quota_categories", JSON, nullable=True),
    Column("updated", Float, nullable=False),
    # The lease of the delivery making the chunk (storage/chunks.py): its number goes up with
    # every claim and fences the writes of an older holder; the holder (the Celery task id)
    # renews `lease_expires` while it works, and a chunk past it is handed to another worker.
    Column("lease", Integer, nullable=False, default=0, server_default="0"),
    Column("holder", String(200), nullable=True),
    Column("lease_expires", Float, nullable=True),
    # the recovery sweep: running chunks whose lease ran out, without reading every chunk
    Index("ix_chunks_lease", "status", "lease_expires"),
)

batch_requesters = Table(
    "batch_requesters",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("user", String(100), primary_key=True),  # api_users.name
    Column("requested_at", Float, nullable=False),  # time.time() of the last ask
    # a requester's list: their rows, latest first, without reading everyone's
    Index("ix_batch_requesters_user", "user", "requested_at"),
)

# A rubric is named by its file, which can be edited in place: the digest of the rubric as it was
# loaded tells a post of the batch again whether it still judges alike (api/batch_runner.py).
batch_rubrics = Table(
    "batch_rubrics",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("modality", String(8), primary_key=True),
    Column("digest", String(64), nullable=False),  # pipeline.rubric_digest
)

users = Table(
    "api_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", DateTime, nullable=False, server_default=func.now()),
)

# The trace of a removal (`Users.remove`, in its transaction; `Users.add` under the name clears
# it): a name absent from api_users was either removed or never a user (an annotator working in
# Label Studio or through ReviewQueue), and only this tells the two apart.
removed_users = Table(
    "api_removed_users",
    metadata,
    Column("name", String(100), primary_key=True),  # api_users.name, as it was
    Column("removed_at", Float, nullable=False),  # time.time()
)

sessions = Table(
    "api_sessions",
    metadata,
    # SHA-256 of the session id the browser holds in its cookie: the id itself is never stored
    Column("id_hash", String(64), primary_key=True),
    Column("user", String(100), nullable=False, index=True),  # api_users.name
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

service_secrets = Table(
    "api_secrets",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(128), nullable=False),  # hex, made once by secrets.token_hex
)

review_batches = Table(
    "review_batches",
    metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("image_root", Text, nullable=True),
    # the labels a fix may use, the batch's seen when it was enqueued, by modality: {"image":
    # object classes, "text": span labels} (a batch enqueued before they were kept apart holds
    # one list of both: review/items.py batch_labels reads either)
    Column("labels", JSON, nullable=True),
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
    # Kept with every change of review_assignments (same transaction): how many people hold the
    # item. The claim reads it from the index instead of counting assignments per item.
    Column("taken", Integer, nullable=False, server_default="0"),
    # The claim order: lower first (review/priority.py: 0 for fifo, a seeded draw for random,
    # the item's value for uncertainty; for gold items a fixed draw the annotators' seeded
    # offsets walk from).
    Column("priority", Float, nullable=False, server_default="0"),
    Column("route", String(10), nullable=True),  # the rubric's route when the item was enqueued
    # Kept with `taken`: the one person holding a sample item taken once of k > 1 (else NULL).
    # An annotator far ahead of the team holds many such items the claim must pass; it finds
    # the first one someone else holds by one seek per other holder instead (review/claims.py).
    Column("holder", String(200), nullable=True),
    # The k `review set-k` asked for, where the people holding the item undecided keep its k
    # larger (else NULL): a release taking one of them back lowers k towards it (review/set_k.py).
    Column("k_asked", Integer, nullable=True),
    # Claiming a gold item: the first unseen one from a seeded point of the priority order.
    Index("ix_review_items_gold_order", "kind", "status", "priority", "id"),
    # A holder's items in claim order.
    Index("ix_review_items_holder", "holder", "priority", "id"),
)
# Claiming a sample item: started items (taken > 0) first, the most taken first, then the fresh
# ones (taken = 0), each in priority order. Both are a range of this index walked in its own
# order (taken descending: no sort, however many items are started), and it holds every column
# the claim reads (`k` too, last: it only filters).
Index(
    "ix_review_items_claim",
    review_items.c.kind,
    review_items.c.status,
    review_items.c.taken.desc(),
    review_items.c.priority,
    review_items.c.id,
    review_items.c.k,
)

assignments = Table(
    "review_assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("item_id", Integer, ForeignKey("review_items.id"), nullable=False, index=True),
    Column("annotator", String(200), nullable=False),
    Column("assigned_at", Float, nullable=False),
    Column("decided_at", Float, nullable=True),
    UniqueConstraint("item_id", "annotator", name="uq_assignment"),
    # An annotator's open task (decided_at IS NULL), without reading the rest of their history.
    Index("ix_review_assignments_annotator_open", "annotator", "decided_at"),
)

# How many tasks each annotator was given (their rows in review_assignments), kept with every
# change of those rows in the same transaction: the position that seeds their next gold draw,
# read without counting their history.
annotator_counts = Table(
    "review_annotators",
    metadata,
    Column("annotator", String(200), primary_key=True),
    Column("given", Integer, nullable=False),
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

# Decisions taken back by `review reopen` (review/reopen.py): each row a review_decisions row as
# it was (`decision_id` its id there), with its assignment's times (none for an adjudicator's)
# and who took it back, when and why. Apart from review_decisions, so that every reader of the
# decisions (stats, agreement, verdicts, exports, calibration) leaves them out unchanged.
taken_back = Table(
    "review_taken_back",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", Integer, nullable=False),
    Column("item_id", Integer, ForeignKey("review_items.id"), nullable=False, index=True),
    Column("annotator", String(200), nullable=False),
    Column("role", String(12), nullable=False),
    Column("verdict", String(8), nullable=False),
    Column("levels", JSON, nullable=False),
    Column("comment", Text, nullable=False),
    Column("objects", JSON, nullable=True),
    Column("spans", JSON, nullable=True),
    Column("original", JSON, nullable=True),
    Column("decided_at", Float, nullable=False),
    Column("assigned_at", Float, nullable=True),  # the assignment's (review_assignments)
    Column("submitted_at", Float, nullable=True),  # its decided_at
    Column("taken_back_by", String(200), nullable=False),
    Column("taken_back_at", Float, nullable=False),
    Column("reason", Text, nullable=False),
    # taken back by `review reopen --annotator` (the annotator found careless): no claim hands
    # them the item again; by ITEM alone (a bad image, say) nobody is benched
    Column("benched", Boolean, nullable=False, server_default=false()),
    # the claim's anti-join (claims.py NOT_BENCHED): one seek per item walked
    Index("ix_review_taken_back_annotator_item", "annotator", "item_id"),
)


# Run on the driver's cursor (storage/prepared.py), as the statements of the review requests that
# open most write transactions are.
BEGIN_IMMEDIATE = Prepared(text("BEGIN IMMEDIATE"))
# One lock per SQLite engine: the writers of one process queue on it (see WriteTransaction).
_PROCESS_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_PROCESS_WRITERS_GUARD = threading.Lock()


def _process_writer_lock(engine: Engine) -> threading.Lock:
    with _PROCESS_WRITERS_GUARD:
        lock = _PROCESS_WRITERS.get(engine)
        if lock is None:
            lock = _PROCESS_WRITERS[engine] = threading.Lock()
        return lock


class WriteTransaction:
    """A connection holding the database's write lock from its first statement.

    SQLite: BEGIN IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so a
    read-then-insert cannot interleave with another writer. Threads of one process first queue
    on a lock of their own: SQLite's busy handler sleeps 1, 2, 5, 10 … ms between tries, so a
    thread finding the file locked by its neighbour would wait far longer than the neighbour's
    sub-millisecond transaction; the process lock hands over at once. Other processes still meet
    at the file lock. PostgreSQL: an ordinary transaction; the queries lock rows with FOR UPDATE
    (SKIP LOCKED when picking work). Write transactions do not nest.

    `connection`: an open connection of `engine`, outside any transaction, to write on (it is
    left open afterwards); by default a new one, closed afterwards.
    """

    def __init__(self, engine: Engine, connection: Connection | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.lock = _process_writer_lock(engine) if self.dialect == "sqlite" else None
        self.given = connection

    def __enter__(self) -> Connection:
        if self.lock is not None:
            self.lock.acquire()
        try:
            self.connection = self.given if self.given is not None else self.engine.connect()
            if self.dialect == "sqlite":
                BEGIN_IMMEDIATE.run(self.connection)
        except BaseException:
            if self.lock is not None:
                self.lock.release()
            raise
        return self.connection

    def __exit__(self, kind: Any, error: Any, traceback: Any) -> None:
        try:
            if kind is None:
                self.connection.commit()
            else:
                self.connection.rollback()
        finally:
            if self.given is None:
                self.connection.close()
            if self.lock is not None:
                self.lock.release()


def dialect_insert(dialect: str, table: Table) -> Any:
    """An INSERT in the database's own dialect: it offers ON CONFLICT (SQLite and PostgreSQL
    spell it the same way). The dialect's module is the one the engine has loaded already:
    SQLite runs never load PostgreSQL's (25-40 ms of start-up)."""
    module = "postgresql" if dialect == "postgresql" else "sqlite"
    return importlib.import_module(f"sqlalchemy.dialects.{module}").insert(table)


def insert_ignore(dialect: str, table: Table) -> Any:
    """INSERT … ON CONFLICT DO NOTHING in the database's own dialect."""
    return dialect_insert(dialect, table).on_conflict_do_nothing()


def upsert(engine: Engine, table: Table) -> Any:
    """An INSERT of the engine's dialect, ready for `on_conflict_do_update`."""
    return dialect_insert(engine.dialect.name, table)
