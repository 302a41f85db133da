"""storage/prepared.py: a statement run on the driver's cursor answers as `Connection.execute`
does (values, types, transactions, errors), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from review_fixtures import open_store
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError, NoResultFound

from synthgate.storage.prepared import Prepared
from synthgate.storage.store import Store
from synthgate.storage.tables import (
    WriteTransaction,
    batches,
    decisions,
    review_items,
    users,
)

USER = users.insert().values(
    name=bindparam("name"), role=bindparam("role"), token_hash=bindparam("digest")
)
BY_NAME = select(users).where(users.c.name == bindparam("name"))
ITEM = review_items.insert().values(
    id=bindparam("id"),
    key=bindparam("key"),
    sample_id="s",
    batch_id="b",
    modality="image",
    kind="sample",
    reason="review",
    k=2,
    status="open",
    created_at=bindparam("created_at"),
    priority=bindparam("priority"),
)
ITEM_ROW = select(review_items).where(review_items.c.id == bindparam("id"))
RECORD = decisions.insert().values({c.key: bindparam(c.key) for c in decisions.c if c.key != "id"})
DECISION = select(decisions).where(decisions.c.item_id == bindparam("item"))


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = open_store(request, tmp_path)
    yield made
    made.close()


def decision_row(item: int) -> dict[str, object]:
    return {
        "item_id": item,
        "annotator": "ann",
        "role": "annotator",
        "verdict": "fix",
        "levels": {"precision": 3},
        "comment": 'box: \u00e9 "quoted"',
        "objects": [{"category": "cat", "bbox": [1.5, 2.0, 3.0, 4.0]}],
        "spans": None,
        "original": [],
        "decided_at": 1.25,
    }


def test_rows_read_back_as_connection_execute_reads_them(store: Store) -> None:
    """JSON columns written and read, floats, NULLs, literals, a DateTime default: the same
    values through Prepared as through SQLAlchemy, whichever of the two wrote them."""
    with store.engine.begin() as connection:
        Prepared(USER).run(connection, {"name": "ann", "role": "annotator", "digest": "d1"})
        for item in (1, 2):
            values = {"id": item, "key": f"k{item}", "created_at": 3.5, "priority": -0.25}
            Prepared(ITEM).run(connection, values)
        Prepared(RECORD).run(connection, decision_row(1))
        connection.execute(RECORD, decision_row(2))
    with store.engine.connect() as connection:
        for query, values in (
            (BY_NAME, {"name": "ann"}),
            (ITEM_ROW, {"id": 1}),
            (DECISION, {"item": 1}),
            (DECISION, {"item": 2}),
        ):
            ours = Prepared(query).run(connection, values).one()
            theirs = connection.execute(query, values).one()
            assert tuple(ours) == tuple(theirs)
            assert ours._fields == tuple(theirs._fields)
        row = Prepared(DECISION).run(connection, {"item": 1}).one()
    assert row.levels == {"precision": 3}
    assert row.objects == [{"category": "cat", "bbox": [1.5, 2.0, 3.0, 4.0]}]
    assert row.spans is None and row.decided_at == 1.25


def test_a_statement_belongs_to_the_callers_transaction(store: Store) -> None:
    """A rollback undoes it and a commit keeps it, on a connection that began no transaction
    (PostgreSQL's driver opens one that SQLAlchemy must know of, or its commit does nothing)."""
    insert = Prepared(USER)
    with store.engine.connect() as connection:
        insert.run(connection, {"name": "gone", "role": "annotator", "digest": "d1"})
        connection.rollback()
        insert.run(connection, {"name": "kept", "role": "annotator", "digest": "d2"})
        connection.commit()
    with WriteTransaction(store.engine) as connection:
        insert.run(connection, {"name": "written", "role": "admin", "digest": "d3"})
    with pytest.raises(RuntimeError), WriteTransaction(store.engine) as connection:
        insert.run(connection, {"name": "failed", "role": "admin", "digest": "d4"})
        raise RuntimeError("the caller fails after the statement")
    with store.engine.connect() as connection:
        names = set(connection.execute(select(users.c.name)).scalars())
    assert names == {"kept", "written"}


def test_driver_errors_are_sqlalchemy_errors(store: Store) -> None:
    insert = Prepared(USER)
    with store.engine.begin() as connection:
        insert.run(connection, {"name": "ann", "role": "annotator", "digest": "d1"})
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        insert.run(connection, {"name": "ann", "role": "annotator", "digest": "d2"})


def test_rowcount_scalars_and_missing_rows(store: Store) -> None:
    with store.engine.begin() as connection:
        for item in (1, 2, 3):
            values = {"id": item, "key": f"k{item}", "created_at": 1.0, "priority": item}
            Prepared(ITEM).run(connection, values)
        moved = Prepared(
            review_items.update()
            .where(review_items.c.priority >= bindparam("low"))
            .values(status="final")
        ).run(connection, {"low": 2})
        assert moved.rowcount == 2
        final = Prepared(
            select(review_items.c.id)
            .where(review_items.c.status == "final")
            .order_by(review_items.c.id)
        ).run(connection)
        assert final.scalars() == [2, 3]
        assert Prepared(ITEM_ROW).run(connection, {"id": 9}).first() is None
        with pytest.raises(NoResultFound):
            Prepared(ITEM_ROW).run(connection, {"id": 9}).one()


def test_statements_sqlalchemy_completes_per_execution_are_refused(store: Store) -> None:
    expanding = select(users.c.name).where(users.c.name.in_(bindparam("names", expanding=True)))
    with store.engine.connect() as connection, pytest.raises(TypeError, match="IN list"):
        Prepared(expanding).run(connection, {"names": ["a"]})
    # batches.status has a Python-side default that SQLAlchemy fills in per execution
    batch = batches.insert().values(id="b", name="b", seed=0, config=bindparam("config"))
    with store.engine.connect() as connection, pytest.raises(TypeError, match="defaults"):
        Prepared(batch).run(connection, {"config": {}})
    returning = USER.returning(users.c.id)
    with store.engine.connect() as connection, pytest.raises(TypeError, match="RETURNING"):
        Prepared(returning).run(connection, {"name": "a", "role": "admin", "digest": "d"})
    spaced = select(users.c.name).where(users.c.name == bindparam("user name"))
    with store.engine.connect() as connection, pytest.raises(TypeError, match="names"):
        Prepared(spaced).run(connection, {"user name": "a"})


def test_text_statements_run_too(store: Store) -> None:
    """Plain SQL runs (BEGIN IMMEDIATE does); it gives no rows, having no column types."""
    with store.engine.begin() as connection:
        Prepared(USER).run(connection, {"name": "ann", "role": "annotator", "digest": "d1"})
        renamed = Prepared(text("UPDATE api_users SET role = 'admin' WHERE name = :name"))
        assert renamed.run(connection, {"name": "ann"}).rowcount == 1
        assert connection.execute(BY_NAME, {"name": "ann"}).one().role == "admin"


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)  # SQLite has no server
def test_a_dropped_connection_is_invalidated_as_execute_does(store: Store) -> None:
    """PostgreSQL ends the session mid-transaction: the statement's error says so and that the
    connection was invalidated, the caller's rollback does not replace it with one of its own,
    and the pool makes a new connection."""
    insert = Prepared(USER)
    invalidated = False
    with pytest.raises(DBAPIError) as raised, WriteTransaction(store.engine) as connection:
        backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with store.engine.connect() as other:
            other.execute(text(f"SELECT pg_terminate_backend({backend})"))
            other.commit()
        try:
            insert.run(connection, {"name": "lost", "role": "admin", "digest": "d1"})
        finally:
            invalidated = connection.invalidated
    assert invalidated and raised.value.connection_invalidated
    assert "administrator command" in str(raised.value)  # the server's reason, not the rollback's
    with store.engine.begin() as connection:
        insert.run(connection, {"name": "kept", "role": "admin", "digest": "d2"})
        assert set(connection.execute(select(users.c.name)).scalars()) == {"kept"}


def test_run_between_runs_the_statement_between_two_others_in_one_transaction(
    store: Store,
) -> None:
    """`run_between` (a planner setting and its reset around the claim; PostgreSQL sends the
    three in pipeline mode): the first is in force for the statement, the last runs after it,
    all in the caller's transaction; an error in the statement is SQLAlchemy's, as `run`'s, and
    leaves the connection usable after the rollback."""
    before = "INSERT INTO api_users (name, role, token_hash) VALUES ('b', 'annotator', 'h')"
    after = "DELETE FROM api_users WHERE name = 'b'"
    count = Prepared(select(func.count()).select_from(users))
    with store.engine.connect() as connection:
        assert count.run_between(connection, before, after).scalar() == 1
        assert count.run(connection).scalar() == 0  # the last one ran, in the transaction
        connection.rollback()
        insert = Prepared(USER)
        insert.run(connection, {"name": "ann", "role": "annotator", "digest": "d1"})
        connection.commit()
        with pytest.raises(IntegrityError):
            insert.run_between(
                connection, before, after, {"name": "ann", "role": "annotator", "digest": "d2"}
            )
        connection.rollback()
        assert set(connection.execute(select(users.c.name)).scalars()) == {"ann"}


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_run_between_sets_a_planner_setting_for_the_statement_alone(store: Store) -> None:
    setting = Prepared(select(func.current_setting("plan_cache_mode")))
    with store.engine.connect() as connection:
        during = setting.run_between(
            connection,
            "SET LOCAL plan_cache_mode = force_generic_plan",
            "SET LOCAL plan_cache_mode TO DEFAULT",
        )
        assert during.scalar() == "force_generic_plan"
        assert setting.run(connection).scalar() == "auto"
        connection.commit()


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_run_between_invalidates_a_connection_lost_at_the_reset(store: Store) -> None:
    """The pipeline's second round trip (the reset's answer, read as the pipeline ends) can
    meet a connection the server dropped, as the claim's can. run invalidates such a connection
    and raises the server's reason; run_between wrapped that error without invalidating
    (connection_invalidated False; a second read found it), so the caller's rollback fails on the closed
    connection and replaces it with its own ("the connection is lost"): the pipeline's "server
    closed the connection unexpectedly" is gone."""
    count = Prepared(select(func.count()).select_from(users))
    # the session ends while the reset is answered (a server restart, a killed backend)
    after = "DO $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); END $$"
    invalidated = False
    with pytest.raises(DBAPIError) as raised, WriteTransaction(store.engine) as connection:
        try:
            count.run_between(connection, "SET LOCAL plan_cache_mode = force_generic_plan", after)
        finally:
            invalidated = connection.invalidated
    assert invalidated and raised.value.connection_invalidated, raised.value
    assert "server closed the connection" in str(raised.value)  # the pipeline's, not rollback's


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_run_between_works_where_the_drivers_libpq_has_no_pipeline_mode(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pipeline mode needs libpq 14 or later: psycopg on a system libpq 13 (psycopg[c] or the
    pure-Python build on Debian 11, RHEL 8) has Connection.pipeline() but raises
    NotSupportedError entering it. run_between fell back to one statement after another only
    where the driver lacked the attribute, so there every `next` on PostgreSQL failed (a second
    read found it); it asks psycopg's capabilities now."""
    import psycopg

    # what psycopg's capabilities say under libpq 13 (its message, cached per feature)
    monkeypatch.setitem(
        psycopg.capabilities._cache,  # type: ignore[attr-defined]
        "Connection.pipeline()",
        "Connection.pipeline() requires libpq version 14.0 or newer",
    )
    setting = Prepared(select(func.current_setting("plan_cache_mode")))
    with store.engine.connect() as connection:
        during = setting.run_between(
            connection,
            "SET LOCAL plan_cache_mode = force_generic_plan",
            "SET LOCAL plan_cache_mode TO DEFAULT",
        )
        assert during.scalar() == "force_generic_plan"
        assert setting.run(connection).scalar() == "auto"
