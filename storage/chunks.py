"""The workers' bookkeeping: one row per chunk task, with its deliveries and crashes.

A chunk is a run of sample indices of one batch and modality (workers/chunks.py makes it).
`ChunkBook` records them (`put`), claims one per delivery (`begin`: a delivery that finds the
chunk still `running` means its worker was lost, which counts as a crash), follows them
(`of_batch`, `get`, `totals`) and updates them (`update`). So a redelivered task can tell it lost
a worker, and a sample that kills its worker every time ends as `failed` with the reason kept on
the sample row.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine

from synthgate.storage.tables import chunks, upsert


@dataclass(frozen=True)
class ChunkState:
    """A chunk as a task delivery finds it (see `ChunkBook.begin`)."""

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


class ChunkBook:
    """The `chunks` table of a store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, rows: Iterable[dict[str, Any]]) -> None:
        """Register chunks (id, batch_id, modality, start, stop, queue); known ones are kept."""
        now = time.time()
        values = [
            {**row, "status": "queued", "deliveries": 0, "crashes": 0, "updated": now}
            for row in rows
        ]
        if not values:
            return
        statement = upsert(self.engine, chunks).on_conflict_do_nothing(index_elements=["id"])
        with self.engine.begin() as connection:
            connection.execute(statement, values)

    def of_batch(self, batch_id: str, *, statuses: Iterable[str] | None = None) -> list[ChunkState]:
        query = select(chunks).where(chunks.c.batch_id == batch_id)
        if statuses is not None:
            query = query.where(chunks.c.status.in_(list(statuses)))
        with self.engine.connect() as connection:
            rows = connection.execute(query.order_by(chunks.c.modality, chunks.c.start)).all()
        return [_chunk_state(row) for row in rows]

    def get(self, chunk_id: str) -> ChunkState | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(chunks).where(chunks.c.id == chunk_id)).first()
        return _chunk_state(row) if row else None

    def totals(self, batch_id: str) -> dict[str, Any]:
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

    def begin(self, chunk_id: str) -> ChunkState | None:
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

    def update(self, chunk_id: str, **values: Any) -> None:
        """Set fields of a chunk: status, current, crashes, reason."""
        with self.engine.begin() as connection:
            connection.execute(
                chunks.update().where(chunks.c.id == chunk_id).values(**values, updated=time.time())
            )


def _chunk_state(row: Any) -> ChunkState:
    fields = row._mapping
    return ChunkState(**{name: fields[name] for name in ChunkState.__dataclass_fields__})
