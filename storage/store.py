"""The database.

`Store(url)` keeps batches and samples in SQL (a SQLite file by default, PostgreSQL by URL) with
SQLAlchemy Core: rows are written by upsert on the deterministic sample id, so a re-run or a
redelivered task rewrites the same row instead of adding one. Samples come back in index order,
streamed, never all in memory. Image bytes live in the blob store (blobs.py). The `chunks` table is the workers' bookkeeping: one row per task (a run of sample indices),
with its deliveries and crashes, so a redelivered task can tell it lost a worker and a sample that
kills its worker every time ends as `failed` with the reason kept on the sample row.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from synthgate.samples import Sample
from synthgate.storage import requesters

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
    Column("status", String(20), nullable=False),  # queued | running | done | failed
    Column("deliveries", Integer, nullable=False, default=0),
    Column("crashes", Integer, nullable=False, default=0),  # deliveries that found it running
    Column("current", Integer, nullable=True),  # sample index in flight (after a crash)
    Column("reason", Text, nullable=True),
    # The generator's quota categories, recorded by the worker that built it: the judges of a
    # GPU batch need them where the run folder is written, without loading the model there.
    Column("quota_categories", JSON, nullable=True),
    Column("updated", Float, nullable=False),
)


@dataclass(frozen=True)
class ChunkState:
    """A chunk as a task delivery finds it (see `Store.begin_chunk`)."""

    id: str
    batch_id: str
    modality: str
    start: int
    stop: int
    queue: str
    status: str
    deliveries: int
    crashes: int
    current: int | None
    reason: str | None = None
    quota_categories: list[str | None] | None = None
    updated: float = 0.0  # time.time() of the last change


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


def _create_schema(engine: Engine, attempts: int = 5) -> None:
    """Create missing tables; workers starting together on a fresh database race to do it."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            requesters.metadata.create_all(engine)
            return
        except (OperationalError, ProgrammingError, IntegrityError):
            # Another process created a table between the check and the CREATE: look again.
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


class Store(requesters.BatchRequesters):
    """Batches and samples in a SQL database, by SQLAlchemy URL; who asked for which batch
    (requesters.py)."""

    batch_table = batches

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            _tune_sqlite(self.engine)
        _create_schema(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: Table) -> Any:
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def put_batch(self, batch_id: str, *, name: str, seed: int, config: dict[str, Any]) -> None:
        statement = self._insert(batches).values(
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

    def upsert_samples(self, items: Iterable[Sample], *, reason: str | None = None) -> None:
        """Write samples by id: the same sample written twice leaves one row.

        `reason` says why the samples failed (status `failed`); it is cleared otherwise.
        """
        rows = [
            {
                "id": s.id,
                "batch_id": s.spec.batch_id,
                "modality": s.spec.modality,
                "index": s.spec.index,
                "status": s.status,
                "score": s.report.score if s.report else None,
                "data": s.model_dump_json(),
                "reason": reason,
            }
            for s in items
        ]
        if not rows:
            return
        statement = self._insert(samples)
        statement = statement.on_conflict_do_update(
            index_elements=["id"],
            set_={
                "status": statement.excluded.status,
                "score": statement.excluded.score,
                "data": statement.excluded.data,
                "reason": statement.excluded.reason,
            },
        )
        with self.engine.begin() as connection:
            connection.execute(statement, rows)

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

    # Worker bookkeeping: one row per chunk task.

    def put_chunks(self, rows: Iterable[dict[str, Any]]) -> None:
        """Register chunks (id, batch_id, modality, start, stop, queue); known ones are kept."""
        now = time.time()
        values = [
            {**row, "status": "queued", "deliveries": 0, "crashes": 0, "updated": now}
            for row in rows
        ]
        if not values:
            return
        statement = self._insert(chunks).on_conflict_do_nothing(index_elements=["id"])
        with self.engine.begin() as connection:
            connection.execute(statement, values)

    def chunks_of(
        self, batch_id: str, *, statuses: Iterable[str] | None = None
    ) -> list[ChunkState]:
        query = select(chunks).where(chunks.c.batch_id == batch_id)
        if statuses is not None:
            query = query.where(chunks.c.status.in_(list(statuses)))
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(chunks.c.modality, chunks.c.start)).all()
        return [_chunk_state(row) for row in rows]

    def get_chunk(self, chunk_id: str) -> ChunkState | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(chunks).where(chunks.c.id == chunk_id)).first()
        return _chunk_state(row) if row else None

    def chunk_totals(self, batch_id: str) -> dict[str, Any]:
        """{status: chunks of the batch}, and `last_update`: when any chunk last changed."""
        query = (
            select(chunks.c.status, func.count(), func.max(chunks.c.updated))
            .where(chunks.c.batch_id == batch_id)
            .group_by(chunks.c.status)
        )
        totals: dict[str, Any] = {"last_update": 0.0}
        with self.engine.connect() as connection:
            for status, count, updated in connection.execute(query):
                totals[status] = count
                totals["last_update"] = max(totals["last_update"], float(updated or 0.0))
        return totals

    def begin_chunk(self, chunk_id: str) -> ChunkState | None:
        """Count a delivery of a chunk and claim it; None if the chunk is unknown.

        A delivery that finds the chunk still `running` means the worker that had it was lost
        (killed, out of memory, past its hard time limit): that counts as a crash. Finished
        chunks (generated, done, failed) stay so, and a duplicate delivery does nothing. The write comes first so
        that, in SQLite as in PostgreSQL, the read that follows is under the write lock.
        """
        finished = chunks.c.status.in_(["generated", "done", "failed"])
        update = (
            chunks.update()
            .where(chunks.c.id == chunk_id)
            .values(
                deliveries=chunks.c.deliveries + 1,
                crashes=chunks.c.crashes + case((chunks.c.status == "running", 1), else_=0),
                status=case((finished, chunks.c.status), else_="running"),
                updated=time.time(),
            )
        )
        with self.engine.begin() as connection:
            connection.execute(update)
            row = connection.execute(select(chunks).where(chunks.c.id == chunk_id)).first()
        return _chunk_state(row) if row else None

    def update_chunk(self, chunk_id: str, **values: Any) -> None:
        """Set fields of a chunk: status, current, crashes, reason."""
        with self.engine.begin() as connection:
            connection.execute(
                chunks.update().where(chunks.c.id == chunk_id).values(**values, updated=time.time())
            )


def _chunk_state(row: Any) -> ChunkState:
    fields = row._mapping
    return ChunkState(**{name: fields[name] for name in ChunkState.__dataclass_fields__})
