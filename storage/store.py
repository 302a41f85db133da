"""The store: batches and the samples made for them, in SQL, by SQLAlchemy URL.

`Store(url)` opens a database (a SQLite file by default, PostgreSQL by URL), brings its schema
to the current revision (storage/schema.py) and offers the batch and sample rows. Samples are
written by upsert on their deterministic id, so a re-run or a redelivered task rewrites the same
row instead of adding one, and come back in index order, streamed, never all in memory. The
workers' chunk bookkeeping (`store.chunks`, storage/chunks.py) and who asked for which batch
(`store.requesters`, storage/requesters.py) share its engine. Image bytes live in the blob store.

Workers write their samples with `put_made`, a guarded write: it holds the chunk's lease in the
same transaction (a worker whose chunk was handed to another one writes nothing) and never
rewrites a sample that was judged or that people were asked to review. `upsert_samples` is the
judge's write (the run's own sinks), which turns `pending` samples into judged ones.
"""

from __future__ import annotations

import atexit
import math
import weakref
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, exists, func, literal_column, or_, select
from sqlalchemy.engine import Engine

from synthgate.errors import InputError, lone_surrogate_in
from synthgate.samples import Sample
from synthgate.storage.chunks import ChunkBook, Lease
from synthgate.storage.requesters import Requesters
from synthgate.storage.schema import ensure_schema
from synthgate.storage.tables import batch_rubrics, batches, review_items, samples, upsert

# The statuses a worker writes (made, or could not be made). A row in any other status was
# judged, perhaps reviewed since: a worker never rewrites it, nor one with a review item.
WORKER_STATUSES = ("pending", "failed")
# The ON CONFLICT … WHERE of a worker's upsert, on the row already there. Spelled with
# `samples.id` as a column name: SQLAlchemy does not correlate a subquery to an INSERT's table,
# and both SQLite and PostgreSQL name the existing row by its table there.
_UNREVIEWED = ~exists(
    select(review_items.c.id).where(review_items.c.sample_id == literal_column("samples.id"))
)
_WORKER_MAY_REWRITE = or_(*(samples.c.status == status for status in WORKER_STATUSES)) & _UNREVIEWED


# The engines of stores not closed, while they live. An engine sits in reference cycles (its
# pool, its events), so only garbage collection frees one whose store was dropped unclosed (a
# command that opens a store for one call): the `synthgate` command skips that collection at
# exit (cli.main), and such an engine would keep its SQLite connection open, and the rows it
# committed in the -wal file beside the database, not in it. So every engine still alive at exit
# is disposed: its pooled connections closed, SQLite's WAL checkpointed into the file.
_live_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


@atexit.register
def dispose_live_engines() -> None:
    for engine in list(_live_engines):
        try:
            engine.dispose()
        except Exception:  # at exit: one failure must not keep the others open
            continue


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


class Store:
    """Batches and samples in a SQL database, by SQLAlchemy URL."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        """`create`: give a new or older database synthgate's schema (without it, for commands
        that only read, a database holding none of its tables is refused)."""
        self.url = url
        self.engine = create_engine(url, future=True)
        _live_engines.add(self.engine)
        sqlite = self.engine.dialect.name == "sqlite"
        if sqlite and create:
            _tune_sqlite(self.engine)
        try:
            ensure_schema(self.engine, create=create)
        except BaseException:
            # a store that could not open holds nothing: a failed (full) SQLite file, deleted
            # with its folder, would stay open, its space taken, until a garbage collection
            self.close()
            raise
        if sqlite and not create:
            # Checked before the connection's pragmas: a database refused (someone else's) is
            # left as it was, not switched to WAL mode (which stays with the file).
            self.engine.dispose()
            _tune_sqlite(self.engine)
        self.chunks = ChunkBook(self.engine)
        self.requesters = Requesters(self.engine)
        # Built once: each is a statement of this engine's dialect, used on every write.
        self._upsert_any = self._upsert()
        self._upsert_unjudged = self._upsert(where=_WORKER_MAY_REWRITE)
        self._upsert_unreviewed = self._upsert(where=_UNREVIEWED)

    def close(self) -> None:
        _live_engines.discard(self.engine)
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def put_batch(self, batch_id: str, *, name: str, seed: int, config: dict[str, Any]) -> None:
        statement = upsert(self.engine, batches).values(
            id=batch_id, name=name, seed=seed, config=config, status="running"
        )
        statement = statement.on_conflict_do_update(
            index_elements=["id"], set_={"config": config, "seed": seed, "name": name}
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def set_batch_status(self, batch_id: str, status: str, message: str | None = None) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                batches.update()
                .where(batches.c.id == batch_id)
                .values(status=status, message=message)
            )

    def get_batch(self, batch_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(batches).where(batches.c.id == batch_id)).first()
        return dict(row._mapping) if row else None

    def put_rubric_digests(self, batch_id: str, digests: dict[str, str]) -> None:
        """Record the digest of the rubric each modality is judged with ({modality: digest}),
        replacing what a run of the batch before recorded."""
        if not digests:
            return
        rows = [{"batch_id": batch_id, "modality": m, "digest": d} for m, d in digests.items()]
        statement = upsert(self.engine, batch_rubrics)
        statement = statement.on_conflict_do_update(
            index_elements=["batch_id", "modality"], set_={"digest": statement.excluded.digest}
        )
        with self.engine.begin() as connection:
            connection.execute(statement, rows)

    def rubric_digests(self, batch_id: str) -> dict[str, str]:
        """{modality: digest} of the rubrics the batch was judged with; empty for a batch
        judged before they were recorded."""
        query = select(batch_rubrics.c.modality, batch_rubrics.c.digest).where(
            batch_rubrics.c.batch_id == batch_id
        )
        with self.engine.connect() as connection:
            return {modality: digest for modality, digest in connection.execute(query)}

    def upsert_samples(self, items: Iterable[Sample], *, reason: str | None = None) -> None:
        """Write samples by id: the same sample written twice leaves one row.

        `reason` says why the samples failed (status `failed`); it is cleared otherwise.
        """
        rows = _sample_rows(items, reason)
        if not rows:
            return
        with self.engine.begin() as connection:
            connection.execute(self._upsert_any, rows)

    def upsert_unreviewed(self, items: Iterable[Sample]) -> None:
        """`upsert_samples`, except over a sample that has a review item: what people decided
        (its final status, their fixed labels) is never written over by its source again."""
        rows = _sample_rows(items, None)
        if rows:
            with self.engine.begin() as connection:
                connection.execute(self._upsert_unreviewed, rows)

    def put_made(self, items: Iterable[Sample], *, lease: Lease, reason: str | None = None) -> None:
        """A worker's write of samples it made (or failed to make) under its chunk's lease.

        In one transaction: the lease is renewed, or `LeaseLost` is raised and nothing is
        written; then the samples are upserted by id, except over a row that was judged
        (any status but pending or failed) or that has a review item.
        """
        rows = _sample_rows(items, reason)
        with self.engine.begin() as connection:
            self.chunks.hold(connection, lease)
            if rows:
                connection.execute(self._upsert_unjudged, rows)

    def _upsert(self, *, where: Any = None) -> Any:
        statement = upsert(self.engine, samples)
        return statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "status": statement.excluded.status,
                "score": statement.excluded.score,
                "data": statement.excluded.data,
                "reason": statement.excluded.reason,
            },
            where=where,
        )

    def iter_samples(self, batch_id: str, modality: str, *, chunk: int = 500) -> Iterator[Sample]:
        """Samples of one batch and modality in index order, fetched page by page."""
        last = -1
        while True:
            query = (
                select(samples.c.index, samples.c.data)
                .where(
                    samples.c.batch_id == batch_id,
                    samples.c.modality == modality,
                    samples.c.index > last,
                )
                .order_by(samples.c.index)
                .limit(chunk)
            )
            with self.engine.connect() as connection:
                page = connection.execute(query).all()
            if not page:
                return
            for _index, data in page:
                yield Sample.model_validate_json(data)
            last = page[-1][0]

    def get_sample(self, sample_id: str) -> Sample | None:
        with self.engine.connect() as connection:
            data = connection.execute(
                select(samples.c.data).where(samples.c.id == sample_id)
            ).scalar()
        return Sample.model_validate_json(data) if data else None

    def get_samples(self, sample_ids: Sequence[str]) -> dict[str, Sample]:
        """The samples of these ids that are in the database, by id, read in one query (bind
        at most a few hundred ids: SQLite takes 32,766 variables)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(samples.c.id, samples.c.data).where(samples.c.id.in_(sample_ids))
            )
            return {sample_id: Sample.model_validate_json(data) for sample_id, data in rows}

    def count_by_status(self, batch_id: str) -> dict[tuple[str, str], int]:
        """{(modality, status): count} for one batch."""
        by_modality = self.counts_of([batch_id])[batch_id]
        return {(m, s): n for m, statuses in by_modality.items() for s, n in statuses.items()}

    def counts_of(self, batch_ids: list[str]) -> dict[str, dict[str, dict[str, int]]]:
        """{batch_id: {modality: {status: count}}} for many batches in one grouped query (a
        list page would otherwise ask once per batch); a batch without samples maps to {}."""
        counts: dict[str, dict[str, dict[str, int]]] = {batch_id: {} for batch_id in batch_ids}
        if not batch_ids:
            return counts
        query = (
            select(samples.c.batch_id, samples.c.modality, samples.c.status, func.count())
            .where(samples.c.batch_id.in_(batch_ids))
            .group_by(samples.c.batch_id, samples.c.modality, samples.c.status)
        )
        with self.engine.connect() as connection:
            for batch_id, modality, status, n in connection.execute(query):
                counts[batch_id].setdefault(modality, {})[status] = n
        return counts

    def failures(self, batch_id: str, *, limit: int | None = None) -> list[dict[str, Any]]:
        """Failed samples of a batch (the first `limit`), in order: modality, index, id, reason."""
        query = (
            select(samples.c.modality, samples.c.index, samples.c.id, samples.c.reason)
            .where(samples.c.batch_id == batch_id, samples.c.status == "failed")
            .order_by(samples.c.modality, samples.c.index)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def forget_failed(self, batch_id: str, modality: str, start: int, stop: int) -> int:
        """Delete the failed rows with index in [start, stop), so the chunk makes them again."""
        query = samples.delete().where(
            samples.c.batch_id == batch_id,
            samples.c.modality == modality,
            samples.c.index.between(start, stop - 1),
            samples.c.status == "failed",
        )
        with self.engine.begin() as connection:
            return int(connection.execute(query).rowcount)

    def samples_in(self, batch_id: str, modality: str, start: int, stop: int) -> list[Sample]:
        """The samples with index in [start, stop), in index order (a chunk's worth)."""
        query = (
            select(samples.c.data)
            .where(
                samples.c.batch_id == batch_id,
                samples.c.modality == modality,
                samples.c.index >= start,
                samples.c.index < stop,
            )
            .order_by(samples.c.index)
        )
        with self.engine.connect() as connection:
            return [
                Sample.model_validate_json(data) for data in connection.execute(query).scalars()
            ]

    def stored_indices(self, batch_id: str, modality: str, start: int, stop: int) -> set[int]:
        """Indices in [start, stop) that already have a row (made or failed)."""
        query = select(samples.c.index).where(
            samples.c.batch_id == batch_id,
            samples.c.modality == modality,
            samples.c.index >= start,
            samples.c.index < stop,
        )
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def reviewed_samples(self, sample_ids: Iterable[str]) -> set[str]:
        """Of `sample_ids`, those people were asked to review (a `sample` item, open or final):
        their verdict is the reviewers' to change, never a re-run's."""
        wanted = list(sample_ids)
        if not wanted:
            return set()
        query = select(review_items.c.sample_id).where(
            review_items.c.kind == "sample", review_items.c.sample_id.in_(wanted)
        )
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())


def sample_json(sample: Sample) -> str:
    """The sample's JSON, as the database keeps it; an InputError naming the field when a string
    in it holds a lone surrogate (an unpaired \\ud800-\\udfff escape: valid in a JSON file, but
    no character, and no database or UTF-8 file can keep it), or its report a number that is not
    finite (JSON would keep it as null, which no sample reads back from), raised before anything
    is written."""
    report = sample.report
    if report is not None and not (
        math.isfinite(report.score) and all(map(math.isfinite, report.measurements.values()))
    ):
        raise InputError(
            f"sample {sample.id!r}: its report holds a number that is not finite (score "
            f"{report.score}, measurements {report.measurements}); judge it again"
        )
    try:
        return sample.model_dump_json()
    except ValueError as error:  # pydantic's serialisation error names the encoding's
        if "UnicodeEncodeError" not in str(error):
            raise
        where, value = lone_surrogate_in(sample.model_dump()) or ("a string", "")
        raise InputError(
            f"sample {sample.id!r}: {where} {value!r} holds a lone surrogate (an unpaired "
            "\\ud800-\\udfff escape), which is no character: fix it in the file the sample "
            "came from"
        ) from None


def _sample_rows(items: Iterable[Sample], reason: str | None) -> list[dict[str, Any]]:
    return [
        {
            "id": s.id,
            "batch_id": s.spec.batch_id,
            "modality": s.spec.modality,
            "index": s.spec.index,
            "status": s.status,
            "score": s.report.score if s.report else None,
            "data": sample_json(s),
            "reason": reason,
        }
        for s in items
    ]
