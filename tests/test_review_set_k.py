"""Changing how many annotators the open items need (`review set-k`, review/set_k.py): the way
out of a queue enqueued with k larger than the team. Lowering k finishes the items that have
their decisions, as a k-th decision would; raising it reopens nothing; the claim's kept counts
stay right; decisions arriving meanwhile are counted; stats name the command (SQLite and
PostgreSQL; the CLI and the API on SQLite)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import bearer, make_app, token_for
from fastapi.testclient import TestClient
from review_fixtures import ACCEPT, REJECT, fill, kept_and_counted, open_store, work
from sqlalchemy import func, select
from typer.testing import CliRunner

from synthgate.cli import app as cli
from synthgate.errors import InputError
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store
from synthgate.storage.tables import decisions, review_items
from synthgate.storage.users import Users

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = open_store(request, tmp_path)
    yield made
    made.close()


def items_of(store: Store) -> dict[int, tuple[str, int, str | None]]:
    """Each sample item's (status, k, final verdict)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                review_items.c.id,
                review_items.c.status,
                review_items.c.k,
                review_items.c.final_verdict,
            ).where(review_items.c.kind == "sample")
        ).all()
    return {row.id: (row.status, row.k, row.final_verdict) for row in rows}


def two_at_three(store: Store, items: int = 4) -> tuple[ReviewQueue, list[int]]:
    """`review enqueue -k 3` with a team of two: ann and bob decide every item, bob rejecting
    the second (a split) and both rejecting the third; the queue and the item ids."""
    fill(store, review=items, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    assert queue.enqueue_batch("b1") == items
    ids = sorted(items_of(store))
    work(queue, "ann", lambda t: REJECT if t.item_id in ids[2:3] else ACCEPT)
    work(queue, "bob", lambda t: REJECT if t.item_id in ids[1:3] else ACCEPT)
    return queue, ids


def test_k_above_the_team_is_named_by_stats_and_lowering_it_finishes_the_items(
    store: Store,
) -> None:
    queue, ids = two_at_three(store)
    # the trap: every item open, nobody is given anything, stats say why and name the way out
    assert queue.next_item("ann") is None and queue.next_item("bob") is None
    assert queue.stats()["items"] == {"open": 4, "adjudication": 0, "final": 0}
    [short] = queue.stats()["short_of_annotators"]
    assert (short["k"], short["items"], short["team"], short["names"]) == (3, 4, 2, ["ann", "bob"])
    assert "synthgate review set-k 2" in short["fix"]

    change = queue.set_annotators_per_item(2)
    assert (change.changed, change.final, change.adjudication, change.still_open) == (4, 3, 1, 0)
    assert change.kept == {} and change.team == ["ann", "bob"]
    assert items_of(store) == {
        ids[0]: ("final", 2, "accept"),
        ids[1]: ("adjudication", 2, None),
        ids[2]: ("final", 2, "reject"),
        ids[3]: ("final", 2, "accept"),
    }
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 8
    assert store.get_sample(_sample_of(store, ids[2])).status == "rejected"
    assert queue.awaiting_adjudication() == [ids[1]]
    assert queue.stats()["short_of_annotators"] == [] and queue.stats()["queue_depth"] == 0
    kept, counted = kept_and_counted(store)
    assert kept == counted


def test_a_user_removed_leaves_the_team(store: Store) -> None:
    """cy took one item and was then removed (`synthgate users remove`): the team that may take
    the items is ann and bob again, short of k = 3, and set-k names them alone. With every
    user removed the team is empty: the removals are recorded (storage/users.py), so a queue
    left with no users does not count them again, as it did when it read a queue without users
    as one worked from the CLI alone."""
    queue, _ = two_at_three(store)
    people = Users(store.engine)
    for who in ("ann", "bob", "cy"):
        people.add(who, "annotator")
    assert queue.next_item("cy") is not None
    assert queue.stats()["short_of_annotators"] == []  # cy may take the items
    assert people.remove("cy")
    [short] = queue.stats()["short_of_annotators"]
    assert (short["k"], short["items"], short["team"], short["names"]) == (3, 4, 2, ["ann", "bob"])
    assert queue.set_annotators_per_item(3).team == ["ann", "bob"]
    for who in ("ann", "bob"):
        people.remove(who)
    assert queue.set_annotators_per_item(3).team == []
    assert queue.stats()["short_of_annotators"] == []  # no team to be short of


def _sample_of(store: Store, item_id: int) -> str:
    with store.engine.connect() as connection:
        return connection.execute(
            select(review_items.c.sample_id).where(review_items.c.id == item_id)
        ).scalar_one()


def test_an_item_with_fewer_decisions_stays_open_and_is_then_taken(store: Store) -> None:
    fill(store, review=3, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    ids = sorted(items_of(store))
    work(queue, "ann", lambda t: ACCEPT)
    for _ in range(2):  # bob decides two items; the third has ann's decision alone
        task = queue.next_item("bob")
        assert task is not None and task.item_id in ids[:2]
        queue.decide(task.item_id, "bob", REJECT if task.item_id == ids[1] else ACCEPT)

    change = queue.set_annotators_per_item(2)
    assert (change.final, change.adjudication, change.still_open) == (1, 1, 1)
    assert items_of(store)[ids[2]] == ("open", 2, None)
    kept, counted = kept_and_counted(store)  # ann holds the open item alone: its holder
    assert kept == counted
    task = queue.next_item("bob")
    assert task is not None and task.item_id == ids[2]
    queue.decide(task.item_id, "bob", ACCEPT)
    assert items_of(store)[ids[2]] == ("final", 2, "accept")
    assert queue.next_item("ann") is None and queue.next_item("bob") is None


def test_an_item_held_undecided_waits_for_its_holder(store: Store) -> None:
    """Lowering k below the people on an item: nobody's decision is thrown away or comes in on
    a final item; the holder's decision finishes it."""
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    [item] = items_of(store)
    work(queue, "ann", lambda t: ACCEPT)
    work(queue, "bob", lambda t: ACCEPT)
    held = queue.next_item("cy")
    assert held is not None and held.item_id == item

    change = queue.set_annotators_per_item(2)
    assert (change.changed, change.final, change.still_open) == (0, 0, 1)
    assert (change.held, change.holders) == (1, ["cy"])
    assert items_of(store)[item] == ("open", 3, None)
    queue.decide(item, "cy", REJECT)
    assert items_of(store)[item] == ("final", 3, "accept")  # two of three accepted
    kept, counted = kept_and_counted(store)
    assert kept == counted


def test_a_held_item_released_gets_the_k_asked_and_is_finished_by_it(store: Store) -> None:
    """set-k 2 over an item ann and bob decided and cy holds keeps k 3 for cy; cy walks away and
    `review release` takes it back: the item was left at k 3 and handed to dee. As set-k would
    have, now that nobody holds it: two decisions of k 2, final."""
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    [item] = items_of(store)
    work(queue, "ann", lambda t: ACCEPT)
    work(queue, "bob", lambda t: ACCEPT)
    assert queue.next_item("cy") is not None
    assert queue.set_annotators_per_item(2).held == 1
    assert items_of(store)[item] == ("open", 3, None)

    assert queue.release_stale(0) == 1
    assert items_of(store)[item] == ("final", 2, "accept")
    assert queue.next_item("dee") is None
    kept, counted = kept_and_counted(store)
    assert kept == counted


def test_a_held_item_released_short_of_the_k_asked_goes_to_one_more(store: Store) -> None:
    """set-k 2 over an item ann decided and bob and cy hold (k 3 kept); both are released: the
    item needs the k asked, one more person, not two; one who held it still counts."""
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    first, second = sorted(items_of(store))
    task = queue.next_item("ann")
    assert task is not None and task.item_id == first
    queue.decide(first, "ann", ACCEPT)
    for who in ("bob", "cy"):
        held = queue.next_item(who)
        assert held is not None and held.item_id == first
    # the second item, ann's alone and held: k 2 kept for her, then 2 asked; stays as it was
    held = queue.next_item("ann")
    assert held is not None and held.item_id == second
    change = queue.set_annotators_per_item(2)
    assert (change.held, change.holders) == (1, ["bob", "cy"])
    assert items_of(store)[first] == ("open", 3, None)

    assert queue.release_stale(0) == 3
    assert items_of(store)[first] == ("open", 2, None)
    assert items_of(store)[second] == ("open", 2, None)
    kept, counted = kept_and_counted(store)  # ann alone on each: their holder
    assert kept == counted
    task = queue.next_item("dee")
    assert task is not None and task.item_id == first
    queue.decide(first, "dee", ACCEPT)
    assert items_of(store)[first] == ("final", 2, "accept")
    task = queue.next_item("dee")
    assert task is not None and task.item_id == second


def test_raising_k_reopens_nothing_and_keeps_the_holder(store: Store) -> None:
    fill(store, review=3, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    ids = sorted(items_of(store))
    done = queue.next_item("ann")
    assert done is not None
    queue.decide(done.item_id, "ann", ACCEPT)
    held = queue.next_item("ann")  # held undecided: at k = 1 it has no holder
    assert held is not None

    change = queue.set_annotators_per_item(2)
    assert change.kept == {"final": 1} and change.changed == 2 and change.final == 0
    assert items_of(store)[done.item_id] == ("final", 1, "accept")
    kept, counted = kept_and_counted(store)  # the held item, now of k = 2, has ann as holder
    assert kept == counted
    # back to 1: the held item loses its holder; ann's decision finishes it
    assert queue.set_annotators_per_item(1).changed == 2
    kept, counted = kept_and_counted(store)
    assert kept == counted
    queue.decide(held.item_id, "ann", REJECT)
    assert items_of(store)[held.item_id] == ("final", 1, "reject")
    assert len(ids) == 3


def test_only_the_named_batches_change(store: Store) -> None:
    queue, _ = two_at_three(store, items=2)
    with pytest.raises(InputError, match=r"nope.*no items in the review queue"):
        queue.set_annotators_per_item(2, batches=["nope"])
    assert {k for _, k, _ in items_of(store).values()} == {3}  # nothing half-done
    assert queue.set_annotators_per_item(2, batches=["b1"]).final == 1


@pytest.mark.parametrize("k", [0, -1, True, 2**31, 2.0, "2"])
def test_nonsense_k_is_refused(store: Store, k: object) -> None:
    queue, _ = two_at_three(store, items=1)
    with pytest.raises(InputError, match="annotators per item must be a whole number"):
        queue.set_annotators_per_item(k)  # type: ignore[arg-type]
    assert {k for _, k, _ in items_of(store).values()} == {3}


def test_a_k_beyond_the_column_is_refused_before_any_item_is_made(store: Store) -> None:
    """`review enqueue -k 3000000000` on PostgreSQL ended in a DataError (integer out of
    range), exit 1; SQLite took it."""
    fill(store, review=1, audit=0, accepted=0)
    with pytest.raises(InputError, match="annotators_per_item must be at most 2147483647"):
        ReviewQueue(store, annotators_per_item=2**31).enqueue_batch("b1")
    assert items_of(store) == {}


def test_decisions_arriving_meanwhile_are_counted(store: Store) -> None:
    """Holders decide while set-k runs: whichever comes first, every decision is kept and every
    item whose people all decided ends final (one transaction under the queue's lock)."""
    fill(store, review=4, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    work(queue, "ann", lambda t: ACCEPT)
    holders = {who: queue.next_item(who) for who in ("bob", "cy", "dee", "eve")}
    start = threading.Barrier(len(holders) + 1)
    failed: list[BaseException] = []

    def decide(who: str) -> None:
        task = holders[who]
        assert task is not None
        start.wait()
        try:
            queue.decide(task.item_id, who, ACCEPT)
        except BaseException as error:  # reported below
            failed.append(error)

    threads = [threading.Thread(target=decide, args=(who,)) for who in holders]
    for thread in threads:
        thread.start()
    start.wait()
    queue.set_annotators_per_item(2)
    for thread in threads:
        thread.join()
    assert failed == []
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(decisions)).scalar_one() == 8
        people = dict(
            connection.execute(
                select(decisions.c.item_id, func.count()).group_by(decisions.c.item_id)
            ).all()
        )
    for item_id, (status, k, verdict) in items_of(store).items():
        if people[item_id] >= 2:
            assert (status, k, verdict) == ("final", people[item_id], "accept")
        else:
            assert (status, k) == ("open", 2)
    kept, counted = kept_and_counted(store)
    assert kept == counted


def test_cli_set_k_prints_what_changed_and_stats_name_it(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    two_at_three(store)
    store.close()
    db = ["--db", f"sqlite:///{tmp_path / 'synthgate.db'}"]
    stats = runner.invoke(cli, ["review", "stats", *db])
    assert stats.exit_code == 0
    said = " ".join(stats.output.split())
    assert "4 open items need 3 annotators each" in said and "(ann, bob)" in said
    assert "synthgate review set-k 2" in said
    for bad, why in (
        (["0"], "from 1 to 2147483647 (got 0)"),
        (["-1"], "from 1 to 2147483647 (got -1)"),
        (["two"], "'two' is not a valid"),
        (["2", "--batch", "nope"], "--batch nope: has no items"),
        (["3000000000"], "from 1 to 2147483647"),
    ):
        refused = runner.invoke(cli, ["review", "set-k", *bad, *db])
        assert refused.exit_code == 2, refused.output
        assert why in " ".join(refused.output.split())
        assert "Traceback" not in refused.output
    done = runner.invoke(cli, ["review", "set-k", "2", *db])
    assert done.exit_code == 0, done.output
    said = " ".join(done.output.split())
    assert "3 final" in said and "1 to adjudication" in said and "0 still open" in said
    raised = runner.invoke(cli, ["review", "set-k", "3", *db])
    said = " ".join(raised.output.split())
    assert "unchanged: 1 adjudication, 3 final (a new k reopens no item)" in said
    stats = runner.invoke(cli, ["review", "stats", *db])
    assert "set-k" not in stats.output


def test_enqueue_with_another_k_names_set_k(tmp_path: Path) -> None:
    """`review enqueue -k 2` over open items of k 3 gives only new items 2: it says so, and
    names the command that reaches the open ones."""
    store = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    two_at_three(store)
    store.put_batch("b1", name="b", seed=0, config={})
    store.close()
    db = ["--db", f"sqlite:///{tmp_path / 'synthgate.db'}"]
    huge = runner.invoke(cli, ["review", "enqueue", "-k", "3000000000", "--batch", "b1", *db])
    assert huge.exit_code == 2 and "at most 2147483647" in huge.output
    again = runner.invoke(cli, ["review", "enqueue", "-k", "2", "--batch", "b1", *db])
    assert again.exit_code == 0, again.output
    said = " ".join(again.output.split())
    assert "4 open items keep the k they were enqueued with (3)" in said
    assert "`synthgate review set-k 2 --batch b1` gives it to the open ones" in said  # only b1


def test_api_admins_set_k(tmp_path: Path) -> None:
    app = make_app(tmp_path, images=2, texts=1, k=3)
    people = {who: bearer(token_for(app, who, "annotator")) for who in ("ann", "bob")}
    admin = bearer(token_for(app, "boss", "admin"))
    url = "/api/review/annotators-per-item"
    with TestClient(app) as client:
        for headers in people.values():
            while (task := client.get("/api/review/next", headers=headers)).status_code == 200:
                decided = f"/api/review/{task.json()['item_id']}/decision"
                client.post(decided, json={"verdict": "accept"}, headers=headers)
        [short] = client.get("/api/review/stats", headers=admin).json()["short_of_annotators"]
        assert (short["k"], short["items"], short["team"]) == (3, 3, 2)
        assert client.post(url, json={"k": 2}, headers=people["ann"]).status_code == 403
        assert client.post(url, json={"k": 0}, headers=admin).status_code == 422
        unknown = client.post(url, json={"k": 2, "batches": ["nope"]}, headers=admin)
        assert unknown.status_code == 400 and "nope" in unknown.json()["detail"]
        done = client.post(url, json={"k": 2}, headers=admin)
        assert done.status_code == 200, done.text
        assert done.json()["final"] == 3 and done.json()["still_open"] == 0
        stats = client.get("/api/review/stats", headers=admin).json()
        assert stats["items"]["final"] == 3 and stats["short_of_annotators"] == []


def test_set_k_in_chunks_finishes_as_in_one(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction per chunk of open items (claims wait for one chunk, not the queue): the
    same items finished, the same counts, across chunk boundaries."""
    from synthgate.review import set_k as set_k_module

    monkeypatch.setattr(set_k_module, "CHUNK_ITEMS", 3)
    queue, ids = two_at_three(store)
    change = queue.set_annotators_per_item(2)
    assert (change.changed, change.final, change.adjudication, change.still_open) == (4, 3, 1, 0)
    assert [items_of(store)[i][0] for i in ids] == ["final", "adjudication", "final", "final"]
    kept, counted = kept_and_counted(store)
    assert kept == counted
