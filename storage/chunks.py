"""The workers' bookkeeping: one row per chunk task, with its deliveries, crashes and lease.

A chunk is a run of sample indices of one batch and modality (workers/chunks.py makes it).
`ChunkBook` records them (`put`), follows them (`of_batch`, `get`, `totals`, `none_taken`) and
hands each one to one worker at a time under a lease:

- `begin` claims a chunk for a delivery: a new lease (its number one above the last) held by the
  delivery's task id until `lease_expires`. A delivery that finds the chunk `running` under a
  live lease of another task leaves it alone (a duplicate message); one that finds the lease run
  out, or its own task id holding it (the broker redelivered the message of a lost or stalled
  worker), takes it over and counts a crash.
- The holder renews its lease while it works (`renew`), and every write it makes about the chunk
  is fenced by the lease number in the same transaction (`hold`, `update_held`, and
  `Store.put_made` for its samples): once the chunk was handed to another delivery, a write of
  the old one is refused with `LeaseLost`, so a worker that stalled and came back changes nothing.
- `lost` finds running chunks whose lease ran out (their worker died or froze) and
  `requeue_lost` puts one back to `queued`, counting a crash, for its message to be sent again
  (`undo_requeue` when it could not be sent).
- `stalled` finds queued chunks nobody took for a while (their message may be lost) and
  `touch_stalled` claims one for the sweep that sends it again.

So a redelivered task can tell it lost a worker, and a sample that kills its worker every time
ends as `failed` with the reason kept on the sample row. Plain `update` is for the process that
submits and judges the batch, which holds no lease.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.engine import Connection, Engine

from synthgate.storage.tables import WriteTransaction, batches, chunks, upsert

# A chunk in one of these states needs no worker: `generated` waits for the run folder's
# assembly to finish its samples' reports in order, then becomes `done` (or `failed`).
FINISHED = ("generated", "done", "failed")


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
    updated: float = 0.0  # time.time() of the last change (a lease renewal counts)
    lease: int = 0  # the number of the last lease handed out
    holder: str | None = None  # the task id that holds (or last held) the lease
    lease_expires: float | None = None  # time.time() after which a running chunk is lost


@dataclass(frozen=True)
class Lease:
    """The right of one delivery to write a chunk: its number fences every write."""

    chunk_id: str
    number: int
    holder: str
    seconds: float  # a claim or renewal keeps the lease this long


@dataclass(frozen=True)
class Delivery:
    """What `begin` made of a delivery: the chunk, and the lease when it is this delivery's
    to make (None: finished, or held by another worker that is alive)."""

    chunk: ChunkState
    lease: Lease | None


class LeaseLost(Exception):
    """A write under a lease that is no longer the chunk's: refused, nothing written."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        super().__init__(
            f"{lease.chunk_id}: lease {lease.number} of task {lease.holder} is no longer the "
            "chunk's (it was handed to another worker, or finished); its writes are refused"
        )


class ChunkBook:
    """The `chunks` table of a store's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put(self, rows: Iterable[dict[str, Any]]) -> None:
        """Register chunks (id, batch_id, modality, start, stop, queue); known ones are kept."""
        now = time.time()
        values = [
            {**row, "status": "queued", "deliveries": 0, "crashes": 0, "lease": 0, "updated": now}
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

    def none_taken(self, batch_id: str) -> bool:
        """Whether no worker has taken any chunk of the batch yet: every one queued, never
        delivered (a batch waiting for its first worker, or for a broker that did not answer)."""
        query = select(chunks.c.status, chunks.c.deliveries).where(chunks.c.batch_id == batch_id)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return bool(rows) and all(status == "queued" and not n for status, n in rows)

    def begin(self, chunk_id: str, *, holder: str, lease_seconds: float) -> Delivery | None:
        """Count a delivery of a chunk and claim it for `holder` when it is free; None if the
        chunk is unknown (see the module docstring for who takes over a running chunk).

        The row is read under the write lock (BEGIN IMMEDIATE on SQLite, FOR UPDATE on
        PostgreSQL), so two deliveries never both claim it. On PostgreSQL a row locked by
        another transaction (its holder in the middle of a write, or frozen there) is skipped,
        not waited for: the chunk is that holder's, and this delivery leaves it alone.
        """
        now = time.time()
        with WriteTransaction(self.engine) as connection:
            row = connection.execute(
                select(chunks).where(chunks.c.id == chunk_id).with_for_update(skip_locked=True)
            ).first()
            if row is None:
                busy = connection.execute(select(chunks).where(chunks.c.id == chunk_id)).first()
                return Delivery(_chunk_state(busy), None) if busy else None
            found = _chunk_state(row)
            values: dict[str, Any] = {"deliveries": found.deliveries + 1, "updated": now}
            free = found.status not in FINISHED and (
                found.status != "running" or found.holder == holder or _expired(found, now)
            )
            if free:
                values.update(
                    status="running",
                    crashes=found.crashes + int(found.status == "running"),
                    lease=found.lease + 1,
                    holder=holder,
                    lease_expires=now + lease_seconds,
                )
            connection.execute(chunks.update().where(chunks.c.id == chunk_id).values(**values))
        claimed = replace(found, **values)
        lease = Lease(chunk_id, claimed.lease, holder, lease_seconds) if free else None
        return Delivery(claimed, lease)

    def renew(self, lease: Lease) -> bool:
        """Extend a lease by its `seconds`; False when it is no longer the chunk's."""
        with self.engine.begin() as connection:
            return self._renew(connection, lease)

    def hold(self, connection: Connection, lease: Lease) -> None:
        """Inside a write transaction: renew the lease, or raise `LeaseLost` (the caller's
        transaction then rolls back, so nothing it wrote stays)."""
        if not self._renew(connection, lease):
            raise LeaseLost(lease)

    def update_held(self, lease: Lease, **values: Any) -> None:
        """Set fields of a chunk under its lease (status, current, crashes, reason, quota
        categories), or raise `LeaseLost`. A status other than `running` ends the lease."""
        now = time.time()
        status = values.get("status", "running")
        expires = now + lease.seconds if status == "running" else None
        with self.engine.begin() as connection:
            changed = connection.execute(
                chunks.update()
                .where(_held_by(lease))
                .values(**values, lease_expires=expires, updated=now)
            ).rowcount
        if changed != 1:
            raise LeaseLost(lease)

    def update(self, chunk_id: str, *, if_status: str | None = None, **values: Any) -> None:
        """Set fields of a chunk, whoever holds it: for the process that submits and judges;
        with `if_status`, only while the chunk still has that status (another process may
        have moved it on since it was read)."""
        query = chunks.update().where(chunks.c.id == chunk_id)
        if if_status is not None:
            query = query.where(chunks.c.status == if_status)
        with self.engine.begin() as connection:
            connection.execute(query.values(**values, updated=time.time()))

    def lost(self, *, batch_id: str | None = None) -> list[ChunkState]:
        """Running chunks whose lease ran out: their worker died, froze or lost the database."""
        query = select(chunks).where(
            chunks.c.status == "running",
            _lease_ran_out(time.time()),
        )
        if batch_id is not None:
            query = query.where(chunks.c.batch_id == batch_id)
        with self.engine.connect() as connection:
            return [_chunk_state(row) for row in connection.execute(query.order_by(chunks.c.id))]

    def stalled(self, *, unchanged_since: float, batch_id: str | None = None) -> list[ChunkState]:
        """Queued chunks unchanged since `unchanged_since` (a time.time()), of batches not
        cancelled (whose chunks stay queued on purpose): their message may be lost."""
        query = (
            select(chunks)
            .join(batches, batches.c.id == chunks.c.batch_id)
            .where(
                chunks.c.status == "queued",
                chunks.c.updated < unchanged_since,
                batches.c.status != "cancelled",
            )
        )
        if batch_id is not None:
            query = query.where(chunks.c.batch_id == batch_id)
        with self.engine.connect() as connection:
            return [_chunk_state(row) for row in connection.execute(query.order_by(chunks.c.id))]

    def touch_stalled(self, chunk: ChunkState) -> bool:
        """Mark a chunk `stalled` found as changed now, before its message is sent again; False
        when it changed meanwhile (a worker took it, or another sweep touched it first)."""
        with self.engine.begin() as connection:
            changed = connection.execute(
                chunks.update()
                .where(
                    chunks.c.id == chunk.id,
                    chunks.c.status == "queued",
                    chunks.c.updated == chunk.updated,
                )
                .values(updated=time.time())
            ).rowcount
        return bool(changed == 1)

    def requeue_lost(self, chunk: ChunkState) -> bool:
        """Put a chunk `lost` found back to `queued`, counting a crash; False when it changed
        meanwhile (its holder renewed the lease, or another sweep requeued it first) or, on
        PostgreSQL, when its row is locked: its holder is inside a write (perhaps frozen there),
        and a sweep must not wait on it with every other lost chunk behind."""
        now = time.time()
        still_lost = (
            (chunks.c.id == chunk.id)
            & (chunks.c.status == "running")
            & (chunks.c.lease == chunk.lease)
            & _lease_ran_out(now)
        )
        with WriteTransaction(self.engine) as connection:
            mine = connection.execute(
                select(chunks.c.id).where(still_lost).with_for_update(skip_locked=True)
            ).first()
            if mine is None:
                return False
            connection.execute(
                chunks.update()
                .where(chunks.c.id == chunk.id)
                .values(
                    status="queued", crashes=chunks.c.crashes + 1, lease_expires=None, updated=now
                )
            )
        return True

    def undo_requeue(self, chunk: ChunkState) -> None:
        """Take back `requeue_lost` when the chunk's message could not be sent (no broker): the
        chunk is lost again, for the next sweep, and the crash is not counted twice."""
        with self.engine.begin() as connection:
            connection.execute(
                chunks.update()
                .where(
                    chunks.c.id == chunk.id,
                    chunks.c.status == "queued",
                    chunks.c.lease == chunk.lease,
                )
                .values(
                    status="running",
                    crashes=chunks.c.crashes - 1,
                    lease_expires=0.0,
                    updated=time.time(),
                )
            )

    def _renew(self, connection: Connection, lease: Lease) -> bool:
        now = time.time()
        changed = connection.execute(
            chunks.update()
            .where(_held_by(lease))
            .values(lease_expires=now + lease.seconds, updated=now)
        ).rowcount
        return bool(changed == 1)


def _held_by(lease: Lease) -> Any:
    """The chunk row while `lease` is its own: the same number, still running. Expiry alone
    does not end a lease: until another delivery claims the chunk, its holder may go on."""
    return (
        (chunks.c.id == lease.chunk_id)
        & (chunks.c.lease == lease.number)
        & (chunks.c.status == "running")
    )


def _expired(chunk: ChunkState, now: float) -> bool:
    # No expiry: a chunk claimed before leases existed, whose worker is long gone.
    return chunk.lease_expires is None or chunk.lease_expires < now


def _lease_ran_out(now: float) -> Any:
    """`_expired` as a condition on the chunks table (the two must agree)."""
    return or_(chunks.c.lease_expires.is_(None), chunks.c.lease_expires < now)


def _chunk_state(row: Any) -> ChunkState:
    fields = row._mapping
    return ChunkState(**{name: fields[name] for name in ChunkState.__dataclass_fields__})
