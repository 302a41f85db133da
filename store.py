"""The database and the blob store.

`Store(url)` keeps batches and samples in SQL (a SQLite file by default, PostgreSQL by URL) with
SQLAlchemy Core: rows are written by upsert on the deterministic sample id, so a re-run or a
redelivered task rewrites the same row instead of adding one. Samples come back in index order,
streamed, never all in memory. `BlobStore(url)` keeps image bytes on a local path or any fsspec
URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
    create_engine,
    event,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine

from synthgate.samples import Sample

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
    UniqueConstraint("batch_id", "modality", "index", name="uq_sample_position"),
)


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

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            _tune_sqlite(self.engine)
        metadata.create_all(self.engine)

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

    def upsert_samples(self, items: Iterable[Sample]) -> None:
        """Write samples by id: the same sample written twice leaves one row."""
        rows = [
            {
                "id": s.id,
                "batch_id": s.spec.batch_id,
                "modality": s.spec.modality,
                "index": s.spec.index,
                "status": s.status,
                "score": s.report.score if s.report else None,
                "data": s.model_dump_json(),
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
        query = (
            select(samples.c.modality, samples.c.status, func.count())
            .where(samples.c.batch_id == batch_id)
            .group_by(samples.c.modality, samples.c.status)
        )
        with self.engine.connect() as connection:
            return {(m, s): n for m, s, n in connection.execute(query)}


def human_decision_count(path: Path) -> int:
    """How many human review decisions a run database holds (0 if it has no review tables).

    Read without creating anything, so a run folder can be checked before it is replaced.
    """
    if not path.is_file():
        return 0
    engine = create_engine(sqlite_url(path))
    try:
        if not inspect(engine).has_table("review_decisions"):
            return 0
        with engine.connect() as connection:
            return int(
                connection.execute(text("SELECT COUNT(*) FROM review_decisions")).scalar() or 0
            )
    finally:
        engine.dispose()


class BlobStore:
    """Image bytes by key, under a local folder or an fsspec URL (a shared path, s3://…)."""

    def __init__(self, url: str | Path) -> None:
        self.url = str(url)
        self._local = Path(self.url) if "://" not in self.url else None
        if self._local is not None:
            self._local.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, data: bytes) -> None:
        if self._local is not None:
            target = self._local / key
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            partial.write_bytes(data)
            partial.replace(target)
            return
        import fsspec  # only for remote blob stores

        with fsspec.open(f"{self.url.rstrip('/')}/{key}", "wb") as handle:
            handle.write(data)

    def get(self, key: str) -> bytes:
        if self._local is not None:
            return (self._local / key).read_bytes()
        import fsspec

        with fsspec.open(f"{self.url.rstrip('/')}/{key}", "rb") as handle:
            return handle.read()
