"""The review queue on the database: items, blind assignments, decisions, gold tasks.

`ReviewQueue(store)` takes the samples a batch routed to review (and the audit sample of accepted
ones) as items; `next_item(annotator)` hands each item to `annotators_per_item` distinct people,
never twice to one person, and mixes in gold tasks (known answers, honeypots made by injecting a
defect into an accepted sample) at `gold_rate`, unannounced; `decide()` records a decision and,
once an item has all its decisions, makes the result final on the sample (agreement or majority)
or sends it to an adjudicator. Assignment happens in one write transaction (BEGIN IMMEDIATE on
SQLite, a row lock with SKIP LOCKED on PostgreSQL), so concurrent annotators never share a slot.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection

from synthgate.errors import InputError
from synthgate.review import adjudication, gold
from synthgate.review.tables import (
    assignments,
    decisions,
    gold_answers,
    review_batches,
    review_items,
)
from synthgate.samples import CRITERIA, ObjectLabel, Sample, Span
from synthgate.store import Store, samples

Verdict = Literal["accept", "reject", "fix"]
ANNOTATOR_MAX = 200


class Decision(BaseModel):
    """One person's judgement of one item."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict
    levels: dict[str, Literal[5, 3, 1]] = Field(default_factory=dict)  # per rubric criterion
    comment: str = Field(default="", max_length=5000)
    objects: list[ObjectLabel] | None = None  # corrected labels of an image when verdict == "fix"
    spans: list[Span] | None = None  # corrected spans of a text when verdict == "fix"


class ReviewTask(BaseModel):
    """What an annotator sees: the sample as shown (never the answer, never others' decisions)."""

    model_config = ConfigDict(extra="forbid")

    item_id: int
    sample: Sample
    criteria: list[str]


class ReviewQueue:
    """The review queue of one database (the store's), shared by the CLI, the API and workers."""

    def __init__(
        self,
        store: Store,
        *,
        annotators_per_item: int = 2,
        gold_rate: float = 0.1,
        seed: int = 0,
    ) -> None:
        if annotators_per_item < 1:
            raise InputError(
                f"annotators_per_item must be >= 1 (got {annotators_per_item}); 2 is the usual choice"
            )
        if not 0.0 <= gold_rate < 1.0:
            raise InputError(f"gold_rate must be in [0, 1) (got {gold_rate}); try 0.1")
        self.store = store
        self.k = annotators_per_item
        self.gold_rate = gold_rate
        self.seed = seed
        self._dialect = store.engine.dialect.name
        review_items.metadata.create_all(store.engine)

    # ---- filling the queue -------------------------------------------------------------------

    def enqueue_batch(self, batch_id: str, *, image_root: str | Path | None = None) -> int:
        """Add a batch's review and audit samples as items, plus honeypots; returns new items.

        Idempotent: an item is keyed by its sample, so a second call adds only what is new.
        `image_root` is the folder or blob URL the samples' uris are relative to (default: the
        folder of a SQLite database, i.e. the run folder).
        """
        root = str(image_root) if image_root is not None else self._default_image_root()
        with self._write() as connection:
            connection.execute(
                _insert_ignore(self._dialect, review_batches).values(
                    batch_id=batch_id, image_root=root
                )
            )
            if image_root is not None:
                connection.execute(
                    review_batches.update()
                    .where(review_batches.c.batch_id == batch_id)
                    .values(image_root=root)
                )
        added, accepted, categories = 0, [], set()
        for modality in ("image", "text"):
            rows = []
            for sample in self.store.iter_samples(batch_id, modality):
                categories.update(o.category for o in sample.objects)
                categories.update(s.label for s in sample.spans)
                reason = _review_reason(sample)
                if reason is None:
                    if sample.status == "accepted":
                        accepted.append(sample.id)
                    continue
                rows.append(self._item_row(f"sample:{sample.id}", sample, "sample", reason))
            added += self._insert_items(rows)
        self._add_honeypots(batch_id, accepted, sorted(categories))
        return added

    def add_gold(
        self,
        sample: Sample,
        *,
        expected: list[Verdict],
        criterion: str | None = None,
        answer: Sample | None = None,
    ) -> int:
        """Put a gold task (a sample with a known verdict) into the gold set; returns its item."""
        if not expected:
            raise InputError("add_gold: expected must name at least one verdict")
        return self._put_gold(f"gold:{sample.id}", sample, expected, criterion, None, answer)

    # ---- working the queue -------------------------------------------------------------------

    def next_item(self, annotator: str) -> ReviewTask | None:
        """The annotator's next task (their open one first), or None when nothing is left."""
        annotator = _check_annotator(annotator)
        for _attempt in range(20):
            with self._write() as connection:
                pending = connection.execute(
                    select(assignments.c.item_id)
                    .where(
                        assignments.c.annotator == annotator,
                        assignments.c.decided_at.is_(None),
                    )
                    .order_by(assignments.c.id)
                    .limit(1)
                ).scalar()
                if pending is not None:
                    return self._task(connection, pending)
                item_id = self._claim(connection, annotator)
                if item_id is None:
                    return None
                if item_id < 0:  # lost a race for that slot: try again
                    continue
                connection.execute(
                    assignments.insert().values(
                        item_id=item_id, annotator=annotator, assigned_at=time.time()
                    )
                )
                return self._task(connection, item_id)
        raise RuntimeError("next_item: could not claim an item after 20 attempts")

    def decide(self, item_id: int, annotator: str, decision: Decision) -> None:
        """Record the annotator's decision; with all k in, finalise or send to adjudication."""
        annotator = _check_annotator(annotator)
        with self._write() as connection:
            item = self._lock_item(connection, item_id)
            assignment = connection.execute(
                select(assignments.c.id, assignments.c.decided_at).where(
                    assignments.c.item_id == item_id, assignments.c.annotator == annotator
                )
            ).first()
            if assignment is None:
                raise InputError(
                    f"item {item_id} is not assigned to {annotator!r}; ask for the next item first"
                )
            if assignment.decided_at is not None:
                raise InputError(f"{annotator!r} already decided item {item_id}")
            shown = self._shown_sample(connection, item)
            _check_decision(item_id, shown, decision)
            now = time.time()
            connection.execute(
                decisions.insert().values(
                    **_decision_row(item_id, annotator, decision, shown, "annotator", now)
                )
            )
            connection.execute(
                assignments.update().where(assignments.c.id == assignment.id).values(decided_at=now)
            )
            if item.kind == "sample":
                self._maybe_finalise(connection, item)

    def adjudicate(self, item_id: int, adjudicator: str, decision: Decision) -> None:
        """An adjudicator's decision on an item its annotators disagreed on: it is final."""
        adjudicator = _check_annotator(adjudicator)
        with self._write() as connection:
            item = self._lock_item(connection, item_id)
            if item.status != "adjudication":
                raise InputError(f"item {item_id} is {item.status}, not waiting for adjudication")
            shown = self._shown_sample(connection, item)
            _check_decision(item_id, shown, decision)
            row = _decision_row(item_id, adjudicator, decision, shown, "adjudicator", time.time())
            connection.execute(decisions.insert().values(**row))
            self._finalise(connection, item, decision.verdict, [row])

    def awaiting_adjudication(self) -> list[int]:
        with self.store.engine.connect() as connection:
            return list(
                connection.execute(
                    select(review_items.c.id)
                    .where(review_items.c.status == "adjudication")
                    .order_by(review_items.c.id)
                ).scalars()
            )

    def task(self, item_id: int) -> ReviewTask:
        """The task of an item as an annotator sees it (for an adjudicator or an export)."""
        with self.store.engine.connect() as connection:
            return self._task(connection, item_id)

    def item_image_path(self, item_id: int) -> Path | str | None:
        """Where the item's pixels are: a local Path, an fsspec URL, or None for text."""
        with self.store.engine.connect() as connection:
            item = _item(connection, item_id)
            shown = self._shown_sample(connection, item)
            root = connection.execute(
                select(review_batches.c.image_root).where(
                    review_batches.c.batch_id == item.batch_id
                )
            ).scalar()
        if shown.spec.modality != "image" or not shown.uri or root is None:
            return None
        if "://" in root:
            return f"{root.rstrip('/')}/{shown.uri.lstrip('/')}"
        base = Path(root).resolve()
        path = (base / shown.uri).resolve()
        if not path.is_relative_to(base):  # a uri must never reach outside its run folder
            raise InputError(f"item {item_id}: image uri {shown.uri!r} leaves the run folder")
        return path

    def item_image_bytes(self, item_id: int) -> bytes | None:
        where = self.item_image_path(item_id)
        if where is None:
            return None
        if isinstance(where, Path):
            return where.read_bytes()
        import fsspec  # only for remote blob stores

        with fsspec.open(where, "rb") as handle:
            return handle.read()

    def stats(self) -> dict[str, Any]:
        """Queue depth, decisions, per-annotator throughput and gold accuracy."""
        from synthgate.review.stats import queue_stats

        with self.store.engine.connect() as connection:
            return queue_stats(connection, self.k)

    # ---- internals ---------------------------------------------------------------------------

    def _write(self) -> _WriteTransaction:
        return _WriteTransaction(self.store, self._dialect)

    def _default_image_root(self) -> str | None:
        url = self.store.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            return str(Path(url.database).resolve().parent)
        return None

    def _item_row(self, key: str, sample: Sample, kind: str, reason: str) -> dict[str, Any]:
        return {
            "key": key,
            "sample_id": sample.id,
            "batch_id": sample.spec.batch_id,
            "modality": sample.spec.modality,
            "kind": kind,
            "reason": reason,
            "k": self.k,
            "status": "open",
            "created_at": time.time(),
        }

    def _insert_items(self, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        with self._write() as connection:
            before = (
                connection.execute(
                    select(review_items.c.id).order_by(review_items.c.id.desc()).limit(1)
                ).scalar()
                or 0
            )
            connection.execute(_insert_ignore(self._dialect, review_items), rows)
            return len(
                connection.execute(
                    select(review_items.c.id).where(
                        review_items.c.id > before,
                        review_items.c.key.in_([r["key"] for r in rows]),
                    )
                ).all()
            )

    def _add_honeypots(self, batch_id: str, accepted: list[str], categories: list[str]) -> None:
        if self.gold_rate <= 0 or not accepted:
            return
        with self.store.engine.connect() as connection:
            reviewed = connection.execute(
                select(review_items.c.id).where(
                    review_items.c.batch_id == batch_id, review_items.c.kind == "sample"
                )
            ).all()
        wanted = gold.honeypot_count(len(reviewed), self.gold_rate)
        made = 0
        for sample_id in gold.pick_candidates(accepted, seed=[self.seed, batch_id]):
            if made >= wanted:
                break
            sample = self.store.get_sample(sample_id)
            if sample is None:
                continue
            honeypot = gold.make_honeypot(sample, categories, seed=[self.seed, sample_id])
            if honeypot is None:
                continue
            self._put_gold(
                f"honeypot:{sample_id}",
                honeypot.shown,
                honeypot.expected,
                honeypot.criterion,
                honeypot.defect,
                sample,
            )
            made += 1

    def _put_gold(
        self,
        key: str,
        shown: Sample,
        expected: list[str],
        criterion: str | None,
        defect: str | None,
        answer: Sample | None,
    ) -> int:
        row = self._item_row(key, shown, "gold", "honeypot" if defect else "gold")
        with self._write() as connection:
            existing = connection.execute(
                select(review_items.c.id).where(review_items.c.key == key)
            ).scalar()
            if existing is not None:
                return int(existing)
            item_id = connection.execute(review_items.insert().values(**row)).inserted_primary_key[
                0
            ]
            connection.execute(
                gold_answers.insert().values(
                    item_id=item_id,
                    shown=shown.model_dump_json(),
                    expected=list(expected),
                    criterion=criterion,
                    defect=defect,
                    answer=answer.model_dump_json() if answer else None,
                )
            )
            return int(item_id)

    def _claim(self, connection: Connection, annotator: str) -> int | None:
        """The item to assign next; -1 if a race took the chosen slot (the caller retries)."""
        done = connection.execute(
            select(assignments.c.id).where(assignments.c.annotator == annotator)
        ).all()
        real = self._claim_kind(connection, annotator, "sample")
        if real is None:
            return None  # gold only rides along with real work
        if gold.draw_gold(self.gold_rate, seed=[self.seed, annotator, len(done)]):
            golden = self._claim_kind(connection, annotator, "gold", seed=[self.seed, annotator])
            if golden is not None:
                return golden
        return real

    def _claim_kind(
        self, connection: Connection, annotator: str, kind: str, seed: list[Any] | None = None
    ) -> int | None:
        mine = select(assignments.c.item_id).where(assignments.c.annotator == annotator)
        taken = (
            select(func.count()).where(assignments.c.item_id == review_items.c.id).scalar_subquery()
        )
        query = select(review_items.c.id).where(
            review_items.c.kind == kind,
            review_items.c.status == "open",
            review_items.c.id.not_in(mine),
        )
        if kind == "sample":
            # finish items others have started before opening new ones: decisions complete sooner
            query = query.where(taken < review_items.c.k).order_by(taken.desc(), review_items.c.id)
            query = query.limit(1)
        else:
            query = query.order_by(review_items.c.id)
        if self._dialect == "postgresql":
            query = query.with_for_update(skip_locked=True, of=review_items)
        found = list(connection.execute(query).scalars())
        if not found:
            return None
        item_id = found[0] if seed is None else gold.choose(found, seed=seed)
        if kind == "sample":
            # re-count under the lock: the first count may predate a commit that filled the item
            count = connection.execute(
                select(func.count()).where(assignments.c.item_id == item_id)
            ).scalar_one()
            if count >= self.k:
                return -1
        return int(item_id)

    def _lock_item(self, connection: Connection, item_id: int) -> Any:
        query = select(review_items).where(review_items.c.id == item_id)
        if self._dialect == "postgresql":
            query = query.with_for_update()
        item = connection.execute(query).first()
        if item is None:
            raise InputError(f"no review item {item_id}")
        return item

    def _shown_sample(self, connection: Connection, item: Any) -> Sample:
        if item.kind == "gold":
            shown = connection.execute(
                select(gold_answers.c.shown).where(gold_answers.c.item_id == item.id)
            ).scalar_one()
            return Sample.model_validate_json(shown)
        data = connection.execute(
            select(samples.c.data).where(samples.c.id == item.sample_id)
        ).scalar()
        if data is None:
            raise InputError(f"item {item.id}: sample {item.sample_id} is not in the database")
        return Sample.model_validate_json(data)

    def _task(self, connection: Connection, item_id: int) -> ReviewTask:
        item = _item(connection, item_id)
        shown = self._shown_sample(connection, item).model_copy(deep=True)
        # every task looks alike: gold tasks must not be told apart by status or audit flag
        shown.status = "review"
        if item.kind == "gold" and shown.report is not None and shown.report.route == "accepted":
            shown.report.audit = True
        criteria = (
            list(shown.report.levels) if shown.report and shown.report.levels else list(CRITERIA)
        )
        return ReviewTask(item_id=item.id, sample=shown, criteria=criteria)

    def _maybe_finalise(self, connection: Connection, item: Any) -> None:
        rows = [
            dict(r._mapping)
            for r in connection.execute(
                select(decisions)
                .where(decisions.c.item_id == item.id, decisions.c.role == "annotator")
                .order_by(decisions.c.decided_at, decisions.c.id)
            )
        ]
        if len(rows) < item.k:
            return
        verdict = adjudication.resolve([r["verdict"] for r in rows])
        if verdict is None:
            connection.execute(
                review_items.update()
                .where(review_items.c.id == item.id)
                .values(status="adjudication")
            )
            return
        self._finalise(connection, item, verdict, rows)

    def _finalise(
        self, connection: Connection, item: Any, verdict: str, rows: list[dict[str, Any]]
    ) -> None:
        sample = self._shown_sample(connection, item)
        final = adjudication.final_sample(sample, verdict, rows)
        # the sample row and the item change in one transaction: no decision is half-applied
        connection.execute(
            samples.update()
            .where(samples.c.id == final.id)
            .values(
                status=final.status,
                score=final.report.score if final.report else None,
                data=final.model_dump_json(),
            )
        )
        connection.execute(
            review_items.update()
            .where(review_items.c.id == item.id)
            .values(status="final", final_verdict=verdict)
        )


class _WriteTransaction:
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


def _insert_ignore(dialect: str, table: Table) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table).on_conflict_do_nothing()


def _item(connection: Connection, item_id: int) -> Any:
    item = connection.execute(select(review_items).where(review_items.c.id == item_id)).first()
    if item is None:
        raise InputError(f"no review item {item_id}")
    return item


def _review_reason(sample: Sample) -> str | None:
    if sample.status == "review":
        return "review"
    if sample.status == "accepted" and sample.report is not None and sample.report.audit:
        return "audit"
    return None


def _check_annotator(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > ANNOTATOR_MAX:
        raise InputError(f"annotator name must be 1..{ANNOTATOR_MAX} characters (got {name!r})")
    return name


def _check_decision(item_id: int, shown: Sample, decision: Decision) -> None:
    criteria = list(shown.report.levels) if shown.report and shown.report.levels else list(CRITERIA)
    unknown = sorted(set(decision.levels) - set(criteria))
    if unknown:
        raise InputError(f"item {item_id}: unknown criteria {unknown} in levels; use {criteria}")
    if decision.verdict != "fix":
        if decision.objects is not None or decision.spans is not None:
            raise InputError(
                f"item {item_id}: corrected labels come only with verdict 'fix' (got {decision.verdict!r})"
            )
        return
    if shown.spec.modality == "image":
        if decision.objects is None:
            raise InputError(f"item {item_id}: verdict 'fix' needs the corrected objects")
        gold.check_objects(item_id, shown, decision.objects)
    else:
        if decision.spans is None:
            raise InputError(f"item {item_id}: verdict 'fix' needs the corrected spans")
        gold.check_spans(item_id, shown, decision.spans)


def _decision_row(
    item_id: int, who: str, decision: Decision, shown: Sample, role: str, now: float
) -> dict[str, Any]:
    fixed = decision.verdict == "fix"
    image = shown.spec.modality == "image"
    original = None
    if fixed:
        # the labels the fix replaces stay with the decision: nothing reviewed is ever lost
        labels = shown.objects if image else shown.spans
        original = [label.model_dump(mode="json") for label in labels]
    return {
        "item_id": item_id,
        "annotator": who,
        "role": role,
        "verdict": decision.verdict,
        "levels": dict(decision.levels),
        "comment": decision.comment,
        "objects": [o.model_dump(mode="json") for o in decision.objects]
        if decision.objects is not None
        else None,
        "spans": [s.model_dump(mode="json") for s in decision.spans]
        if decision.spans is not None
        else None,
        "original": original,
        "decided_at": now,
    }


__all__ = [
    "Decision",
    "ReviewQueue",
    "ReviewTask",
    "assignments",
    "decisions",
    "gold_answers",
    "review_batches",
    "review_items",
]
