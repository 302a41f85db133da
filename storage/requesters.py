"""Who asked for which batch: `Requesters`, over the `batch_requesters` table.

Batch ids follow from the config (`pipeline.batch_id_for`), so two requesters posting the same
config get the same batch: a batch has a set of requesters, one row per (batch, user) with the
time that user last asked for it. A store offers them as `store.requesters`. Batches from before
the table have no requesters.

Requesters are user names, so removing a user must forget their rows (`forget_user`, called by
`api.auth.Users.remove`): a new user of the same name must not inherit the old one's batches.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from synthgate.storage.tables import batch_requesters, batches, upsert


def forget_user(connection: Connection, user: str) -> int:
    """Delete every requester row of `user`, inside the caller's transaction; the rows deleted."""
    deleted = connection.execute(batch_requesters.delete().where(batch_requesters.c.user == user))
    return deleted.rowcount


class Requesters:
    """Batch ownership in a store's database: who asked for which batch, and when."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, batch_id: str, user: str) -> None:
        """Record that `user` asked for the batch; asking again only moves the time forward."""
        now = time.time()
        statement = upsert(self.engine, batch_requesters).values(
            batch_id=batch_id, user=user, requested_at=now
        )
        statement = statement.on_conflict_do_update(
            index_elements=["batch_id", "user"], set_={"requested_at": now}
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def of_batch(self, batch_id: str) -> set[str]:
        query = select(batch_requesters.c.user).where(batch_requesters.c.batch_id == batch_id)
        with self.engine.connect() as connection:
            return set(connection.execute(query).scalars())

    def batches_of(
        self, user: str | None, *, limit: int = 50, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Batch rows `user` asked for, the latest asked first, with `requested_at` (and
        without `config`; `get_batch` has it).

        `user=None`: every batch, by the latest time anyone asked for it; batches nobody asked
        for (made before requesters were recorded, or by the CLI into this database) come last,
        with `requested_at` None.
        """
        if user is not None:
            asked = (
                select(batch_requesters.c.batch_id, batch_requesters.c.requested_at)
                .where(batch_requesters.c.user == user)
                .subquery()
            )
            source = batches.join(asked, asked.c.batch_id == batches.c.id)
        else:
            asked = (
                select(
                    batch_requesters.c.batch_id,
                    func.max(batch_requesters.c.requested_at).label("requested_at"),
                )
                .group_by(batch_requesters.c.batch_id)
                .subquery()
            )
            source = batches.outerjoin(asked, asked.c.batch_id == batches.c.id)
        # every column but the config, which can be large and which a list does not show
        columns = [column for column in batches.c if column.name != "config"]
        query = (
            select(*columns, asked.c.requested_at)
            .select_from(source)
            # coalesce: SQLite sorts NULL last in DESC, PostgreSQL first; unasked batches go last
            .order_by(func.coalesce(asked.c.requested_at, -1.0).desc(), batches.c.id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]
