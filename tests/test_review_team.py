"""Who is in a queue's team (review/stats.py `queue_team`): everyone the queue gave work to, but
admins and the users `synthgate users remove` took away. A removal is recorded
(api_removed_users, storage/users.py) and adding a user under the name again clears it, so an
annotator who works outside the API (Label Studio through `review export --annotator NAME` and
`review import`, or `ReviewQueue` in Python) and is never a user stays in the team of a queue
with users, where a removed user leaves it (SQLite and PostgreSQL; migration 0011 on an older
database, up and down)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_support import wipe
from review_fixtures import ACCEPT, fill, open_store, work
from sqlalchemy import create_engine, inspect, select

from synthgate.review.queue import ReviewQueue
from synthgate.storage.schema import MIGRATIONS, revision_of, upgrade
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.tables import SCHEMA_REVISION, removed_users
from synthgate.storage.users import Users


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = open_store(request, tmp_path)
    yield made
    made.close()


def ann_and_bob_at_three(store: Store, *, users_too: tuple[str, ...] = ()) -> ReviewQueue:
    """Four items enqueued with k = 3; ann and bob (users, with `users_too`) decide them all."""
    fill(store, review=4, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    people = Users(store.engine)
    for who in ("ann", "bob", *users_too):
        people.add(who, "annotator")
    for who in ("ann", "bob"):
        work(queue, who, lambda task: ACCEPT)
    return queue


def short_of(queue: ReviewQueue) -> list[tuple[int, int, int, list[str]]]:
    return [
        (short["k"], short["items"], short["team"], short["names"])
        for short in queue.stats()["short_of_annotators"]
    ]


def removed(store: Store) -> list[str]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(removed_users.c.name).order_by("name")).scalars())


def test_an_annotator_working_outside_the_api_is_in_the_team_of_a_queue_with_users(
    store: Store,
) -> None:
    queue = ann_and_bob_at_three(store)
    # lee labels in Label Studio: `review import` records lee's decisions, assigning the items
    assert queue.next_item("lee") is not None
    # three people decide these items: none is short of annotators
    assert queue.stats()["short_of_annotators"] == []
    assert queue.set_annotators_per_item(3).team == ["ann", "bob", "lee"]


def test_a_queue_without_users_counts_everyone_it_gave_work_to(tmp_path: Path) -> None:
    """The same work with no users at all: lee is in the team (as stats.queue_team says)."""
    store = Store(sqlite_url(tmp_path / "queue.db"))
    fill(store, review=4, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    for who in ("ann", "bob"):
        work(queue, who, lambda task: ACCEPT)
    assert queue.next_item("lee") is not None
    assert queue.stats()["short_of_annotators"] == []
    assert queue.set_annotators_per_item(3).team == ["ann", "bob", "lee"]
    store.close()


def test_a_removed_user_leaves_the_team_and_one_never_a_user_stays(store: Store) -> None:
    """cy, a user, takes an item and is removed: the team is ann and bob, short of k = 3, as
    stats say; lee, never a user, takes one and fills it again; removing a name twice, or one
    that was never a user, records nothing."""
    queue = ann_and_bob_at_three(store, users_too=("cy",))
    people = Users(store.engine)
    assert queue.next_item("cy") is not None
    assert short_of(queue) == []
    assert people.remove("cy")
    assert removed(store) == ["cy"]
    assert short_of(queue) == [(3, 4, 2, ["ann", "bob"])]
    [short] = queue.stats()["short_of_annotators"]
    assert "given work to 2 (ann, bob)" in short["why"]
    assert "review set-k 2" in short["fix"]
    assert queue.set_annotators_per_item(3).team == ["ann", "bob"]
    assert not people.remove("cy") and not people.remove("lee")
    assert removed(store) == ["cy"]
    assert queue.next_item("lee") is not None
    assert short_of(queue) == []
    assert queue.set_annotators_per_item(3).team == ["ann", "bob", "lee"]


def test_an_annotator_who_has_not_asked_for_work_yet_is_still_to_come(store: Store) -> None:
    """cy, an annotator user, has not asked for work yet: ann, bob and cy may decide the items
    of k = 3, so stats name no shortage and no set-k (they said "set-k 2", as if nobody else
    would come). At k = 4 even cy is not enough: stats name cy among those who may take them
    and set-k 3, not the 2 given work; once cy works, the same."""
    queue = ann_and_bob_at_three(store, users_too=("cy",))
    assert short_of(queue) == []
    queue.set_annotators_per_item(4)
    [short] = queue.stats()["short_of_annotators"]
    assert (short["k"], short["items"], short["team"], short["names"]) == (4, 4, 2, ["ann", "bob"])
    assert short["waiting"] == ["cy"]
    assert "1 annotator who has not asked for work yet (cy)" in short["why"]
    assert "review set-k 3" in short["fix"] and "set-k 2" not in short["fix"]
    assert queue.next_item("cy") is not None
    [short] = queue.stats()["short_of_annotators"]
    assert (short["team"], short["waiting"]) == (3, [])
    assert "review set-k 3" in short["fix"]


def test_a_user_removed_and_added_again_is_back_in_the_team(store: Store) -> None:
    """The new account clears the trace, in its transaction; a second removal records the name
    again."""
    queue = ann_and_bob_at_three(store, users_too=("cy",))
    people = Users(store.engine)
    assert queue.next_item("cy") is not None
    assert people.remove("cy")
    assert queue.set_annotators_per_item(3).team == ["ann", "bob"]
    people.add("cy", "annotator")
    assert removed(store) == []
    assert short_of(queue) == []
    assert queue.set_annotators_per_item(3).team == ["ann", "bob", "cy"]
    assert people.remove("cy")
    assert removed(store) == ["cy"]
    assert queue.set_annotators_per_item(3).team == ["ann", "bob"]


def test_an_admin_is_left_out_and_a_removed_admin_added_as_an_annotator_is_back(
    store: Store,
) -> None:
    queue = ann_and_bob_at_three(store)
    people = Users(store.engine)
    people.add("boss", "admin")
    assert queue.next_item("boss") is not None  # handed an item before the server refused it
    assert queue.set_annotators_per_item(3).team == ["ann", "bob"]
    assert people.remove("boss")
    assert queue.set_annotators_per_item(3).team == ["ann", "bob"]
    people.add("boss", "annotator")
    assert queue.set_annotators_per_item(3).team == ["ann", "bob", "boss"]


# ---- the migration ---------------------------------------------------------------------------


def _url(request: pytest.FixtureRequest, tmp_path: Path, dialect: str) -> str:
    if dialect == "sqlite":
        return sqlite_url(tmp_path / "old.db")
    url: str = request.getfixturevalue("postgres_scratch_url")
    wipe(url)
    return url


def downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.downgrade(config, revision)
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_database_of_revision_0010_gets_the_table_and_records_removals(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    url = _url(request, tmp_path, dialect)
    engine = create_engine(url)
    with engine.begin() as connection:
        upgrade(connection, "0010")
    engine.dispose()
    store = Store(url)  # upgraded to the head
    try:
        with store.engine.connect() as connection:
            assert revision_of(connection) == SCHEMA_REVISION
        queue = ann_and_bob_at_three(store, users_too=("cy",))
        assert queue.next_item("cy") is not None and queue.next_item("lee") is not None
        assert Users(store.engine).remove("cy")
        assert removed(store) == ["cy"]
        assert queue.set_annotators_per_item(3).team == ["ann", "bob", "lee"]
    finally:
        store.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_removal_from_before_0011_left_no_trace_and_a_downgrade_drops_the_table(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    """Down to 0010 and up again: the table comes back empty, as on a database upgraded from
    0010, where a removal deleted the user row alone. Such a user is in the team again, until
    an add and a remove under the name record it (the migration's docstring says so)."""
    url = _url(request, tmp_path, dialect)
    store = Store(url)
    queue = ann_and_bob_at_three(store, users_too=("cy",))
    assert queue.next_item("cy") is not None
    assert Users(store.engine).remove("cy")
    store.close()
    downgrade(url, "0010")
    engine = create_engine(url)
    with engine.connect() as connection:
        assert revision_of(connection) == "0010"
        assert not inspect(connection).has_table("api_removed_users")
    engine.dispose()
    store = Store(url)  # up again
    try:
        assert removed(store) == []
        queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
        assert queue.set_annotators_per_item(3).team == ["ann", "bob", "cy"]
        people = Users(store.engine)
        people.add("cy", "annotator")
        assert people.remove("cy")
        assert queue.set_annotators_per_item(3).team == ["ann", "bob"]
    finally:
        store.close()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_downgrade_refused_below_0010_leaves_0011_whole(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    """0010's downgrade refuses while review_taken_back holds decisions; 0011's ran before it
    in the same transaction and is rolled back with it. On SQLite it was not (pysqlite sent no
    BEGIN before DDL: storage/migrations/env.py): the table was gone under the stamp 0011, and
    every read of the team failed."""
    url = _url(request, tmp_path, dialect)
    store = Store(url)
    queue = ann_and_bob_at_three(store, users_too=("cy",))
    assert queue.next_item("cy") is not None
    assert Users(store.engine).remove("cy")
    assert queue.reopen(annotator="bob", by="lead").decisions == 4
    store.close()
    with pytest.raises(RuntimeError, match=r"holds 4 decision.*would delete them"):
        downgrade(url, "0009")
    store = Store(url)
    try:
        with store.engine.connect() as connection:
            assert revision_of(connection) == SCHEMA_REVISION
        assert removed(store) == ["cy"]
        queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
        assert queue.set_annotators_per_item(3).team == ["ann", "bob"]
    finally:
        store.close()
