"""Filling the queue: a batch's review and audit samples become items, accepted ones become
honeypots, and gold tasks enter the gold set. Every insert is keyed (`sample:<id>`,
`honeypot:<id>`, `gold:<id>`), so filling twice adds nothing twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import bindparam, func, select
from sqlalchemy.engine import Connection

from synthgate.errors import InputError
from synthgate.formats.coco import Progress
from synthgate.review import gold, priority
from synthgate.review.items import HONEYPOT, labels_of
from synthgate.review.value import overrule_rates
from synthgate.samples import Sample
from synthgate.storage.store import Store, sample_json
from synthgate.storage.tables import (
    WriteTransaction,
    gold_answers,
    insert_ignore,
    review_batches,
    review_items,
)
from synthgate.validators.rubric import Rubric

CHUNK = 500
READ_AHEAD = 100  # accepted samples read in one query while honeypots are made of them
ANALYZE_AFTER = 1000  # new items from which PostgreSQL's statistics are refreshed at once


class Queue(Protocol):
    """What filling needs of a queue (review/queue.py's `ReviewQueue` is one)."""

    store: Store
    k: int
    gold_rate: float
    seed: int
    dialect: str

    def write(self) -> WriteTransaction: ...


def default_image_root(store: Store) -> str | None:
    """The folder of a SQLite database file: the run folder the sample uris are relative to."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return str(Path(url.database).resolve().parent)
    return None


def enqueue_batch(
    queue: Queue,
    batch_id: str,
    *,
    image_root: str | Path | None = None,
    order: str = "uncertainty",
    rubric: Rubric | None = None,
    progress: Progress | None = None,
    gold_progress: Progress | None = None,
) -> int:
    """Add a batch's review and audit samples as items, plus honeypots; returns new items.

    Idempotent: an item is keyed by its sample, so a second call adds only what is new, and
    gives the batch's open items nobody has started the place `order` gives them now (review/
    priority.py: uncertainty, random or fifo; `rubric` is the one uncertainty measures against,
    by default the batch's). `image_root` is the folder or blob URL the samples' uris are
    relative to (default: the folder of a SQLite database, i.e. the run folder).
    `progress(samples read, samples in the batch)` is called a chunk at a time;
    `gold_progress(honeypots made, honeypots wanted)` once per honeypot, and at the end with
    what was made as the total when the accepted samples ran out first.
    """
    order = priority.check_order(order)
    root = str(image_root) if image_root is not None else default_image_root(queue.store)
    with queue.write() as connection:
        connection.execute(
            insert_ignore(queue.dialect, review_batches).values(batch_id=batch_id, image_root=root)
        )
        if image_root is not None:
            connection.execute(
                review_batches.update()
                .where(review_batches.c.batch_id == batch_id)
                .values(image_root=root)
            )
    batch = queue.store.get_batch(batch_id)
    in_batch = sum(queue.store.count_by_status(batch_id).values()) if progress else 0
    read, added = 0, 0
    # each modality's labels: object classes of the images, span labels of the texts
    labels: dict[str, set[str]] = {"image": set(), "text": set()}
    accepted: dict[str, list[str]] = {"image": [], "text": []}
    looks = gold.BatchLooks()  # what the batch's samples look like: honeypots keep to it
    for modality in ("image", "text"):
        rows: list[dict[str, Any]] = []
        ranking = Ranking(queue, order, rubric, (batch or {}).get("config"), modality)
        for sample in queue.store.iter_samples(batch_id, modality):
            if len(rows) >= CHUNK:  # bounded inserts: a batch of any size streams through
                added += insert_items(queue, rows)
                rows = []
            read += 1
            if progress and read % CHUNK == 0:
                progress(read, in_batch)
            labels[modality].update(o.category for o in sample.objects)
            labels[modality].update(s.label for s in sample.spans)
            looks.add(sample)
            reason = review_reason(sample)
            if reason is None:
                if honeypot_source(sample):
                    accepted[modality].append(sample.id)
                continue
            row = item_row(queue, f"sample:{sample.id}", sample, "sample", reason)
            row["priority"] = ranking.priority(sample, row["key"])
            rows.append(row)
        added += insert_items(queue, rows)
    if progress and read % CHUNK:  # the last, partial chunk
        progress(read, in_batch)
    # the labels a fix may use (review/decision.py), by modality: a box's class is an object
    # class, a span's label a span label. The batch's, and its config's classes, which a fix
    # of an image may name though no sample of the batch holds one yet.
    config = (batch or {}).get("config") or {}
    fix_labels = {
        "image": sorted(labels["image"] | set(config.get("categories", []))),
        "text": sorted(labels["text"]),
    }
    with queue.write() as connection:
        connection.execute(
            review_batches.update()
            .where(review_batches.c.batch_id == batch_id)
            .values(labels=fix_labels)
        )
    seen = {modality: sorted(names) for modality, names in labels.items()}
    _add_gold(queue, batch_id, accepted, seen, looks, gold_progress)
    if queue.dialect == "postgresql" and added >= ANALYZE_AFTER:
        # The planner's statistics, now: until autovacuum gets to a table grown by a whole
        # batch, it took a 100k-item queue for a few items and read every open item's row
        # for each claim (`next` 1 ms -> 5 ms); ANALYZE samples the table (~0.1 s).
        with queue.write() as connection:
            connection.exec_driver_sql("ANALYZE review_items")
    return added


def honeypot_source(sample: Sample) -> bool:
    """Whether a sample no item reviews may become a honeypot: one the rubric accepted. No
    sample of a real item is one: a sample people accepted is accepted too once its item is
    final, but its report keeps the route the rubric gave it (review), and an audited one its
    audit flag (review_reason takes it first); a re-run never rewrites a sample people were
    asked to review (sinks.py KeepReviewed; a run folder's database is made anew)."""
    return (
        sample.status == "accepted"
        and sample.report is not None
        and sample.report.route == "accepted"
    )


def _add_gold(
    queue: Queue,
    batch_id: str,
    accepted: dict[str, list[str]],
    labels: dict[str, list[str]],
    looks: gold.BatchLooks,
    progress: Progress | None,
) -> None:
    """The batch's honeypots, each modality's as many as its items call for (`accepted`: the
    accepted sample ids by modality) and labelled from its own labels (`labels` by modality:
    a box never gets a span's label); `progress(made, wanted)` over both modalities."""
    wanted = {m: honeypots_wanted(queue, batch_id, m, ids) for m, ids in accepted.items()}
    goal, made = sum(wanted.values()), 0

    def gold_made(done: int) -> None:  # `done` of this modality's, after `made` of the others
        if progress:
            progress(made + done, goal)

    for modality, candidates in accepted.items():
        made += add_honeypots(
            queue,
            batch_id,
            candidates,
            labels[modality],
            modality,
            looks,
            wanted=wanted[modality],
            progress=gold_made,
        )
    if progress and made < goal:  # fewer fit than were wanted: the count ends where it got
        progress(made, made)


class Ranking:
    """The priorities of one batch's items of one modality under an order. Uncertainty finds
    its rubric (and how often people overrule each check) at the first sample, whose report
    names the rubric that judged it."""

    def __init__(
        self,
        queue: Queue,
        order: priority.Order,
        rubric: Rubric | None,
        config: dict[str, Any] | None,
        modality: str,
    ) -> None:
        self.queue, self.order, self.config, self.modality = queue, order, config, modality
        self.rubric = rubric
        self.rates: dict[str, float] | None = None

    def priority(self, sample: Sample, key: str) -> float:
        if self.order == "uncertainty" and self.rates is None:
            if self.rubric is None:
                named = sample.report.rubric if sample.report else None
                self.rubric = priority.resolve_rubric(self.config, self.modality, named)
            found = self.rubric is not None and self.rubric.modality == self.modality
            self.rates = overrule_rates(self.queue.store, self.rubric) if found else {}  # type: ignore[arg-type]
            if not found:
                self.rubric = None
        return priority.priority_of(
            sample,
            key,
            order=self.order,
            seed=self.queue.seed,
            rubric=self.rubric,
            rates=self.rates,
        )


def item_row(queue: Queue, key: str, sample: Sample, kind: str, reason: str) -> dict[str, Any]:
    return {
        "key": key,
        "sample_id": sample.id,
        "batch_id": sample.spec.batch_id,
        "modality": sample.spec.modality,
        "kind": kind,
        "reason": reason,
        "k": queue.k,
        "status": "open",
        "created_at": time.time(),
        # gold items keep a fixed place in the gold order; sample items get theirs from the
        # queue's order once the batch is in (review/priority.py)
        "priority": priority.gold_position(key) if kind == "gold" else 0.0,
        "route": sample.report.route if kind == "sample" and sample.report else None,
    }


def insert_items(queue: Queue, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose key is new; returns how many were new. Known items that are open
    and untouched (taken == 0) take the row's priority: the order they are enqueued in now."""
    if not rows:
        return 0
    keys = [r["key"] for r in rows]
    with queue.write() as connection:
        known = set(
            connection.execute(
                select(review_items.c.key).where(review_items.c.key.in_(keys))
            ).scalars()
        )
        fresh = [r for r in rows if r["key"] not in known]
        if fresh:
            connection.execute(insert_ignore(queue.dialect, review_items), fresh)
        again = [{"known": r["key"], "new": r["priority"]} for r in rows if r["key"] in known]
        if again:
            connection.execute(RERANK, again)
        return len(fresh)


RERANK = (
    review_items.update()
    .where(
        review_items.c.key == bindparam("known"),
        review_items.c.status == "open",
        review_items.c.taken == 0,
    )
    .values(priority=bindparam("new"))
)


def honeypots_wanted(queue: Queue, batch_id: str, modality: str, accepted: list[str]) -> int:
    """Honeypots of one modality as many as its real items call for: gold then comes in the
    same mix of images and texts as real work, and tells nothing by its modality."""
    if queue.gold_rate <= 0 or not accepted:
        return 0
    with queue.store.engine.connect() as connection:
        reviewed = connection.execute(
            select(func.count()).where(
                review_items.c.batch_id == batch_id,
                review_items.c.kind == "sample",
                review_items.c.modality == modality,
            )
        ).scalar_one()
    return gold.honeypot_count(reviewed, queue.gold_rate)


def add_honeypots(
    queue: Queue,
    batch_id: str,
    accepted: list[str],
    categories: list[str],
    modality: str,
    looks: gold.BatchLooks,
    *,
    wanted: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Up to `wanted` honeypots of one modality made from accepted samples in a seeded order
    (some have no label to break) and put into the gold set a chunk to a transaction; returns
    how many. `progress(made so far)` after each one.

    The honeypots the gold set holds already (an earlier enqueue of the batch made them) count
    as made first, and are not made again. They are counted whatever their place in the seeded
    order: that order is of the sources as they are now, and a source gone or new reshuffles
    it (counted as they came, held ones fell past `wanted` and new ones were made).
    """
    held = _honeypots_held(queue, batch_id, modality)
    made = min(len(held), wanted)
    if progress:
        for done in range(1, made + 1):
            progress(done)
    pending: list[Gold] = []
    candidates = gold.pick_candidates(accepted, seed=[queue.seed, batch_id])
    to_make = [sample_id for sample_id in candidates if sample_id not in held]
    samples = _read_ahead(queue.store, to_make)  # the samples of to_make, in its order
    for sample_id in to_make:
        if made >= wanted:
            break
        sample = next(samples)
        if sample is None:
            continue
        honeypot = gold.make_honeypot(sample, categories, seed=[queue.seed, sample_id], batch=looks)
        if honeypot is None:
            continue
        pending.append(
            Gold(
                HONEYPOT + sample_id,
                honeypot.shown,
                honeypot.expected,
                honeypot.criterion,
                honeypot.defect,
                sample,
            )
        )
        made += 1
        if len(pending) == CHUNK:
            put_golds(queue, pending)
            pending = []
        if progress:
            progress(made)
    put_golds(queue, pending)
    return made


def _honeypots_held(queue: Queue, batch_id: str, modality: str) -> set[str]:
    """The samples of the batch's honeypots of one modality already in the gold set."""
    with queue.store.engine.connect() as connection:
        keys = connection.execute(
            select(review_items.c.key).where(
                review_items.c.batch_id == batch_id,
                review_items.c.modality == modality,
                review_items.c.kind == "gold",
                review_items.c.key.startswith(HONEYPOT, autoescape=True),
            )
        ).scalars()
        return {key.removeprefix(HONEYPOT) for key in keys}


def _read_ahead(store: Store, sample_ids: list[str]) -> Iterator[Sample | None]:
    """Each id's sample (None when it is not in the database), in order, READ_AHEAD to a query."""
    for start in range(0, len(sample_ids), READ_AHEAD):
        chunk = sample_ids[start : start + READ_AHEAD]
        found = store.get_samples(chunk)
        yield from (found.get(sample_id) for sample_id in chunk)


@dataclass(frozen=True)
class Gold:
    """A gold task to put into the gold set: its key, the sample shown and the known answer."""

    key: str
    shown: Sample
    expected: Sequence[str]
    criterion: str | None
    defect: str | None
    answer: Sample | None
    batch: str | None = None  # the batch it is tied to (gold_batch); None: its sample's


def gold_batch(
    connection: Connection, sample: Sample, batch: str | None = None, *, tied: str | None = None
) -> str:
    """The batch of the queue a gold task of `sample` is tied to: its Fix form lists that
    batch's labels, exactly as the batch's real tasks do (review/items.py fix_labels_of).

    `batch` when given; else `tied`, the batch gold already in the queue is tied to, when the
    queue holds it (correcting its answer must not change the labels an annotator holding it
    sees); else the sample's own batch when the queue keeps labels of the sample's kind for
    it, or keeps labels for it and the sample has none (a classification batch keeps no span
    label: its texts list none, its gold neither); else the only batch that keeps labels of its
    kind, or the only one of them whose labels hold every label of the sample. With none, the
    sample's own batch, as before the tie (its Fix form lists every batch's labels of its kind
    until that batch is enqueued). A label of the sample the batch lacks is refused: the Fix
    form would list it, which no real task of the batch does."""
    modality, home = sample.spec.modality, sample.spec.batch_id
    kind = "object class" if modality == "image" else "span label"
    own = {o.category for o in sample.objects} | {s.label for s in sample.spans}
    kept = dict(
        connection.execute(
            select(review_batches.c.batch_id, review_batches.c.labels).order_by(
                review_batches.c.batch_id
            )
        ).all()
    )
    of_kind = [b for b, labels in kept.items() if labels_of(labels, modality)]
    if batch is None and tied is not None and tied in kept:
        return tied
    if batch is None and (home in of_kind or (kept.get(home) is not None and not own)):
        batch = home
    elif batch is None:
        if not of_kind or (home in kept and kept[home] is None):
            # nothing to tie it to yet, or its batch was enqueued before labels were kept:
            # as before, its Fix form lists every batch's labels of its kind
            return home
        holding = [b for b in of_kind if own <= set(labels_of(kept[b], modality))]
        if len(of_kind) > 1 and len(holding) != 1:
            where = f"gold of {sample.id} (the queue keeps no {kind} of its batch {home})"
            raise InputError(
                field="batch",
                problem=f"{where} could be tied to any of the batches {', '.join(holding)}"
                if holding
                else f"{where} has labels {', '.join(sorted(own))}, which no batch of the queue "
                f"({', '.join(of_kind)}) has all of",
                fix="name the one whose labels its Fix form should list: {batch=ID}"
                if holding
                else "make gold of another sample",
                options=("batch=ID",) if holding else (),
            )
        batch = (holding or of_kind)[0]
    if batch not in kept:
        raise InputError(
            field="batch",
            value=batch,
            problem="no such batch in the review queue",
            fix=f"name one of {', '.join(of_kind)}" if of_kind else "enqueue it first",
        )
    if kept[batch] is None:
        raise InputError(
            field="batch",
            value=batch,
            problem="it keeps no labels to hold the gold to (enqueued by an older synthgate)",
            fix="enqueue it again first (review enqueue)",
        )
    labels = set(labels_of(kept[batch], modality))
    missing = sorted(own - labels)
    if missing:
        raise InputError(
            field="batch",
            value=batch,
            problem=f"{sample.id} has the {kind} {missing[0]!r}, which batch {batch} lacks "
            f"(it has {', '.join(sorted(labels)) or 'none'}): its Fix form would list it, "
            "which no real task of the batch does",
            fix="make gold of another sample, or tie it to a batch that has it: {batch=ID}",
            options=("batch=ID",),
        )
    return batch


def put_golds(queue: Queue, golds: Sequence[Gold]) -> list[int]:
    """Put gold tasks into the gold set in one write transaction; their item ids, in order (an
    item already there under its key keeps its id and its answer)."""
    if not golds:
        return []
    keys = [task.key for task in golds]
    with queue.write() as connection:

        def ids() -> dict[str, int]:
            found = select(review_items.c.key, review_items.c.id).where(
                review_items.c.key.in_(keys)
            )
            return {key: int(item_id) for key, item_id in connection.execute(found)}

        known = ids()
        fresh = [task for task in golds if task.key not in known]
        if fresh:
            rows = [
                item_row(queue, task.key, task.shown, "gold", "honeypot" if task.defect else "gold")
                for task in fresh
            ]
            for row, task in zip(rows, fresh, strict=True):
                row["batch_id"] = task.batch or row["batch_id"]
            connection.execute(review_items.insert(), rows)
            made = ids()
            connection.execute(
                gold_answers.insert(),
                [
                    {
                        "item_id": made[task.key],
                        "shown": sample_json(task.shown),
                        "expected": list(task.expected),
                        "criterion": task.criterion,
                        "defect": task.defect,
                        "answer": sample_json(task.answer) if task.answer else None,
                    }
                    for task in fresh
                ],
            )
            known = made
    return [known[key] for key in keys]


def review_reason(sample: Sample) -> str | None:
    if sample.status == "review":
        return "review"
    if sample.status == "accepted" and sample.report is not None and sample.report.audit:
        return "audit"
    return None
