"""Taking decisions back (`review reopen`, review/reopen.py): a careless annotator's decisions, or
those on some items, move to review_taken_back (kept with who, when and why), every reader of
the decisions leaves them out, each item is made again from the decisions left (its sample back
to how review found it), the claim's kept counts stay right and claims hand the items out
again, but not to the annotator named (benched); a Label Studio file from before brings no
decision taken back again; gold stays scored; a dry run changes nothing; bad input names the
value (SQLite and PostgreSQL; the CLI and the migration, up and down, too)."""

from __future__ import annotations

import json
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from postgres_support import wipe
from review_fixtures import (
    ACCEPT,
    REJECT,
    corrected,
    fill,
    kept_and_counted,
    make_sample,
    open_store,
    work,
)
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from synthgate.cli import app as cli
from synthgate.commands import user_errors
from synthgate.errors import InputError
from synthgate.review import reopen as reopen_module
from synthgate.review.claims import AHEAD
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.stats import blocked_items
from synthgate.storage.schema import revision_of, upgrade
from synthgate.storage.store import Store
from synthgate.storage.tables import (
    SCHEMA_REVISION,
    annotator_counts,
    assignments,
    decisions,
    review_items,
    samples,
    taken_back,
)

runner = CliRunner()


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made = open_store(request, tmp_path)
    yield made
    made.close()


def items_of(store: Store) -> dict[int, tuple[str, str | None, int]]:
    """Each sample item's (status, final verdict, taken)."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                review_items.c.id,
                review_items.c.status,
                review_items.c.final_verdict,
                review_items.c.taken,
            ).where(review_items.c.kind == "sample")
        ).all()
    return {row.id: (row.status, row.final_verdict, row.taken) for row in rows}


def rows(store: Store, table: Any) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        found = connection.execute(select(table).order_by(*table.primary_key.columns))
        return [dict(row._mapping) for row in found]


def everything(store: Store) -> dict[str, list[dict[str, Any]]]:
    """Every row a reopen may change."""
    tables = (review_items, assignments, decisions, taken_back, annotator_counts, samples)
    return {table.name: rows(store, table) for table in tables}


def deciders(store: Store, item_id: int) -> list[str]:
    with store.engine.connect() as connection:
        return sorted(
            connection.execute(
                select(decisions.c.annotator).where(decisions.c.item_id == item_id)
            ).scalars()
        )


def three_decided(store: Store) -> tuple[ReviewQueue, list[int]]:
    """k = 2: ann and bob decide three items, bob rejecting the second (a split)."""
    fill(store, review=3, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    ids = sorted(items_of(store))
    work(queue, "ann", lambda t: ACCEPT)
    work(queue, "bob", lambda t: REJECT if t.item_id == ids[1] else ACCEPT)
    return queue, ids


def test_an_annotator_s_decisions_are_kept_apart_and_their_items_reopened(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reopen_module, "CHUNK_ITEMS", 2)  # two write transactions
    queue, ids = three_decided(store)
    assert items_of(store) == {
        ids[0]: ("final", "accept", 2),
        ids[1]: ("adjudication", None, 2),
        ids[2]: ("final", "accept", 2),
    }
    bobs = [d for d in rows(store, decisions) if d["annotator"] == "bob"]
    bob_assigned = {
        a["item_id"]: (a["assigned_at"], a["decided_at"])
        for a in rows(store, assignments)
        if a["annotator"] == "bob"
    }

    done = queue.reopen(annotator="bob", by="lead", reason="failed gold")

    assert done.decisions == 3 and not done.dry_run
    assert [(c.item_id, c.before, c.after, c.annotators) for c in done.items] == [
        (ids[0], ("final", "accept"), ("open", None), ["bob"]),
        (ids[1], ("adjudication", None), ("open", None), ["bob"]),
        (ids[2], ("final", "accept"), ("open", None), ["bob"]),
    ]
    assert done.were_final == [ids[0], ids[2]] and done.now("open") == ids
    # nothing lost: each decision as it was, with its assignment's times, who, when and why
    kept = rows(store, taken_back)
    assert [k["decision_id"] for k in kept] == [d["id"] for d in bobs]
    for was, moved in zip(bobs, kept, strict=True):
        assert {key: moved[key] for key in was if key != "id"} == {
            key: value for key, value in was.items() if key != "id"
        }
        assert (moved["assigned_at"], moved["submitted_at"]) == bob_assigned[was["item_id"]]
        assert (moved["taken_back_by"], moved["reason"]) == ("lead", "failed gold")
        assert moved["taken_back_at"] >= was["decided_at"]
    # every reader of the decisions sees ann's alone
    assert all(deciders(store, item) == ["ann"] for item in ids)
    stats = queue.stats()
    assert stats["decisions"] == 3 and "bob" not in stats["annotators"]
    assert stats["items"] == {"open": 3, "adjudication": 0, "final": 0}
    assert stats["queue_depth"] == 3
    for item in ids:  # the samples as review found them
        assert store.get_sample(queue.task(item).sample.id).status == "review"
    kept_counts, counted = kept_and_counted(store)
    assert kept_counts == counted == dict.fromkeys(ids, 1)
    assert {r["annotator"]: r["given"] for r in rows(store, annotator_counts)} == {
        "ann": 3,
        "bob": 0,
    }

    # claims hand the items out again, in their order
    assert work(queue, "cy", lambda t: ACCEPT) == ids
    assert items_of(store) == {
        ids[0]: ("final", "accept", 2),
        ids[1]: ("final", "accept", 2),
        ids[2]: ("final", "accept", 2),
    }
    assert store.get_sample(queue.task(ids[1]).sample.id).status == "accepted"
    # nothing left of bob's to take back; his name stays known
    assert queue.reopen(annotator="bob", by="lead").items == []


def test_a_dry_run_lists_the_same_and_changes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reopen_module, "CHUNK_ITEMS", 2)
    queue, _ = three_decided(store)
    before = everything(store)
    dry = queue.reopen(annotator="bob", by="lead", dry_run=True)
    assert everything(store) == before
    done = queue.reopen(annotator="bob", by="lead")
    assert dry.dry_run and (dry.decisions, dry.items) == (done.decisions, done.items)


@pytest.mark.parametrize("named", [False, True], ids=["annotator", "items"])
def test_a_failure_mid_way_keeps_the_chunks_before_it_whole_and_says_how_to_finish(
    store: Store, monkeypatch: pytest.MonkeyPatch, named: bool
) -> None:
    """A write transaction per chunk (not one for the reopen: see reopen.py): a failure in the
    second chunk leaves the first reopened whole (counts right), the rest untouched, and a note
    on the error naming the last item done; the reopen the note names finishes it as one
    uninterrupted reopen would have."""
    monkeypatch.setattr(reopen_module, "CHUNK_ITEMS", 2)
    fill(store, review=5, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    ids = sorted(items_of(store))
    work(queue, "ann", lambda t: ACCEPT)
    work(queue, "bob", lambda t: ACCEPT)
    real_take_back, calls = reopen_module._take_back, []

    def failing(*args: Any) -> int:
        calls.append(args[2])
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real_take_back(*args)

    monkeypatch.setattr(reopen_module, "_take_back", failing)
    asked = list(reversed(ids)) if named else []  # in any order: chunks go in id order
    with pytest.raises(RuntimeError, match="went away") as failed:
        queue.reopen(asked, annotator="bob", by="lead")
    assert calls == [ids[:2], ids[2:4]]
    finish = "name only the items after it" if named else "the same reopen takes back the rest"
    assert failed.value.__notes__ == [
        f"review reopen stopped: the decisions on the items up to item {ids[1]} were taken back "
        "and committed before this failure (2 decisions on 2 items, a write transaction per 2 "
        f"items); the items after it are unchanged: {finish}"
    ]
    assert items_of(store) == dict.fromkeys(ids[:2], ("open", None, 1)) | dict.fromkeys(
        ids[2:], ("final", "accept", 2)
    )
    kept, counted = kept_and_counted(store)
    assert kept == counted
    monkeypatch.setattr(reopen_module, "_take_back", real_take_back)
    done = queue.reopen(ids[2:] if named else [], annotator="bob", by="lead")
    assert [change.item_id for change in done.items] == ids[2:]
    assert items_of(store) == dict.fromkeys(ids, ("open", None, 1))
    assert [d["annotator"] for d in rows(store, decisions)] == ["ann"] * 5
    assert [r["annotator"] for r in rows(store, taken_back)] == ["bob"] * 5
    kept, counted = kept_and_counted(store)
    assert kept == counted


def test_a_fix_taken_back_gives_the_sample_its_labels_back(store: Store) -> None:
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    [item] = items_of(store)
    original = make_sample(0, "review").objects
    ann_fix = Decision(verdict="fix", objects=corrected(original))
    queue.next_item("ann")
    queue.decide(item, "ann", ann_fix)
    task = queue.next_item("bob")
    assert task is not None
    queue.decide(item, "bob", ann_fix)  # the same fix: fixes that differ await adjudication
    sample_id = task.sample.id
    final = store.get_sample(sample_id)
    assert (final.status, final.objects) == ("accepted", ann_fix.objects)

    queue.reopen(annotator="ann", by="lead")
    reopened = store.get_sample(sample_id)
    assert (reopened.status, reopened.objects) == ("review", original)
    assert queue.task(item).sample.objects == original  # what the next annotator is shown
    task = queue.next_item("cy")
    assert task is not None and task.item_id == item
    queue.decide(item, "cy", ann_fix)
    final = store.get_sample(sample_id)
    assert (final.status, final.objects) == ("accepted", ann_fix.objects)  # bob's and cy's now


def test_an_item_keeps_its_holder_and_goes_to_someone_new(store: Store) -> None:
    """k = 3: ann and bob decided, cy holds it undecided; ann's decision taken back, the item
    needs one more person besides cy: dee, never bob or cy again."""
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    [item] = items_of(store)
    work(queue, "ann", lambda t: ACCEPT)
    work(queue, "bob", lambda t: REJECT)
    assert queue.next_item("cy") is not None
    queue.reopen(annotator="ann", by="lead")
    assert items_of(store)[item] == ("open", None, 2)
    kept, counted = kept_and_counted(store)
    assert kept == counted
    assert queue.reopen(annotator="cy", by="lead", dry_run=True).holding == [item]
    assert queue.next_item("bob") is None
    task = queue.next_item("cy")  # their open task, still theirs
    assert task is not None and task.item_id == item
    queue.decide(item, "cy", REJECT)
    assert items_of(store)[item] == ("open", None, 2)  # two decisions of three
    task = queue.next_item("dee")
    assert task is not None and task.item_id == item
    queue.decide(item, "dee", ACCEPT)
    assert items_of(store)[item] == ("final", "reject", 3)


def test_items_named_lose_every_decision_and_start_afresh(store: Store) -> None:
    queue, ids = three_decided(store)
    done = queue.reopen([ids[1]], by="lead", reason="bad image")
    assert (done.decisions, [c.annotators for c in done.items]) == (2, [["ann", "bob"]])
    assert items_of(store)[ids[1]] == ("open", None, 0)
    assert items_of(store)[ids[0]] == ("final", "accept", 2)
    # nobody holds it now: a claim hands it out to anyone, those who decided it before too
    task = queue.next_item("ann")
    assert task is not None and task.item_id == ids[1]
    # the annotator's decision on one item alone
    done = queue.reopen([ids[2]], annotator="bob", by="lead")
    assert (done.decisions, deciders(store, ids[2])) == (1, ["ann"])
    assert deciders(store, ids[0]) == ["ann", "bob"]


def test_an_adjudication_taken_back_waits_again_and_one_left_stands(store: Store) -> None:
    queue, ids = three_decided(store)
    queue.adjudicate(ids[1], "lead", REJECT)
    sample_id = queue.task(ids[1]).sample.id
    assert store.get_sample(sample_id).status == "rejected"
    # the adjudicator taken back: the split awaits adjudication again, the rubric's route stands
    done = queue.reopen(annotator="lead", by="boss")
    assert [(c.before, c.after) for c in done.items] == [
        (("final", "reject"), ("adjudication", None))
    ]
    assert store.get_sample(sample_id).status == "review"
    assert queue.awaiting_adjudication() == [ids[1]]
    queue.adjudicate(ids[1], "dee", ACCEPT)
    # an annotator taken back: the adjudicator's word stands by itself, as adjudicate made it
    done = queue.reopen(annotator="bob", by="boss")
    after = {c.item_id: c.after for c in done.items}
    assert after == {ids[0]: ("open", None), ids[1]: ("final", "accept"), ids[2]: ("open", None)}
    assert store.get_sample(sample_id).status == "accepted"
    kept, counted = kept_and_counted(store)
    assert kept == counted
    assert work(queue, "cy", lambda t: ACCEPT) == [ids[0], ids[2]]


def test_gold_decisions_stay_scored_and_gold_tasks_are_not_reopened(store: Store) -> None:
    fill(store, review=4, audit=0, accepted=8)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.5, seed=3)
    queue.enqueue_batch("b1")
    with store.engine.connect() as connection:
        gold = set(
            connection.execute(
                select(review_items.c.id).where(review_items.c.kind == "gold")
            ).scalars()
        )
    seen = work(queue, "bob", lambda t: REJECT)
    met = sorted(gold & set(seen))
    assert met, "bob met no gold task: another seed"
    scored = queue.stats()["annotators"]["bob"]["gold_decided"]
    done = queue.reopen(annotator="bob", by="lead")
    assert done.gold_kept == len(met) == scored
    assert done.decisions == len(seen) - len(met)
    assert queue.stats()["annotators"]["bob"]["gold_decided"] == scored
    assert sorted(d["item_id"] for d in rows(store, decisions)) == met
    with pytest.raises(InputError, match=rf"item {met[0]} is a gold task"):
        queue.reopen([met[0]], by="lead")


def test_bad_input_names_the_value_and_changes_nothing(store: Store) -> None:
    queue, ids = three_decided(store)
    before = everything(store)
    with pytest.raises(InputError, match=r"annotator=zed: made no decision"):
        queue.reopen(annotator="zed", by="lead")
    with pytest.raises(InputError, match=r"no review item 999"):
        queue.reopen([ids[0], 999], by="lead")
    with pytest.raises(InputError, match=r"name the items to reopen"):
        queue.reopen(by="lead")
    queue.reopen([ids[0]], by="lead")
    after_one = everything(store)
    with pytest.raises(InputError, match=rf"item {ids[0]}: nothing to reopen.*2 taken back"):
        queue.reopen([ids[2], ids[0]], by="lead")
    with pytest.raises(InputError, match=rf"item {ids[0]}: nothing to reopen, ann made no"):
        queue.reopen([ids[0]], annotator="ann", by="lead")
    assert everything(store) == after_one
    assert before != after_one


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_database_of_revision_0009_gets_the_table_and_reopens(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = request.getfixturevalue("postgres_scratch_url")
        wipe(url)
    engine = create_engine(url)
    with engine.begin() as connection:
        upgrade(connection, "0009")
    engine.dispose()
    store = Store(url)  # upgraded to the head
    try:
        with store.engine.connect() as connection:
            assert revision_of(connection) == SCHEMA_REVISION
        queue, _ = three_decided(store)
        assert queue.reopen(annotator="bob", by="lead").decisions == 3
        assert len(rows(store, taken_back)) == 3
    finally:
        store.close()


def test_items_named_list_only_those_the_annotator_holds_undecided(store: Store) -> None:
    """cy decided the first item and holds the second: reopening her decision on the first
    names no item she holds (the second was not named)."""
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    first, second = sorted(items_of(store))
    task = queue.next_item("cy")
    assert task is not None and task.item_id == first
    queue.decide(first, "cy", ACCEPT)
    task = queue.next_item("cy")
    assert task is not None and task.item_id == second
    assert queue.reopen([first], annotator="cy", by="lead", dry_run=True).holding == []
    assert queue.reopen([], annotator="cy", by="lead", dry_run=True).holding == [second]


def downgrade(url: str, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from synthgate.storage.schema import MIGRATIONS

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
def test_a_downgrade_below_0010_keeps_the_decisions_taken_back(
    request: pytest.FixtureRequest, tmp_path: Path, dialect: str
) -> None:
    """README: nothing reviewed is deleted. Dropping review_taken_back would: the downgrade is
    refused while it holds rows, and goes ahead once it is empty."""
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'db.db'}"
    else:
        url = request.getfixturevalue("postgres_scratch_url")
        wipe(url)
    store = Store(url)
    queue, _ = three_decided(store)
    queue.reopen(annotator="bob", by="lead")
    store.close()
    with pytest.raises(RuntimeError, match=r"holds 3 decision.*would delete them"):
        downgrade(url, "0009")
    store = Store(url)
    assert len(rows(store, taken_back)) == 3
    with store.engine.begin() as connection:
        connection.execute(taken_back.delete())
    store.close()
    downgrade(url, "0009")
    engine = create_engine(url)
    with engine.connect() as connection:
        assert revision_of(connection) == "0009"
    engine.dispose()


# ---- the command -------------------------------------------------------------------------


def cli_queue(tmp_path: Path) -> tuple[Store, list[int], str]:
    store = Store(f"sqlite:///{tmp_path / 'synthgate.db'}")
    _, ids = three_decided(store)
    return store, ids, f"sqlite:///{tmp_path / 'synthgate.db'}"


def test_the_command_reopens_and_says_what_to_do_next(tmp_path: Path) -> None:
    store, ids, db = cli_queue(tmp_path)
    dry = runner.invoke(cli, ["review", "reopen", "--annotator", "bob", "--db", db, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would take back 3 decisions of bob on 3 items" in dry.output
    assert f"item {ids[1]} (sample" in dry.output and "adjudication -> open (bob)" in dry.output
    assert "nothing was changed" in dry.output
    assert len(rows(store, taken_back)) == 0

    took = ["--annotator", "bob", "--as", "lead", "--reason", "failed gold"]
    result = runner.invoke(cli, ["review", "reopen", *took, "--db", db])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "took back 3 decisions of bob on 3 items" in text
    assert f"item {ids[0]} (sample" in text and "final accept -> open (bob)" in text
    assert "3 items open" in text
    assert "2 of these items were final" in text and "synthgate export RUN" in text
    assert "synthgate merge --synthetic RUN" in text
    assert "bob is not handed these items again" in text
    assert [(r["taken_back_by"], r["reason"]) for r in rows(store, taken_back)] == [
        ("lead", "failed gold")
    ] * 3
    again = runner.invoke(cli, ["review", "reopen", "--annotator", "bob", "--as", "x", "--db", db])
    assert again.exit_code == 0 and "nothing to reopen" in again.output
    store.close()


def test_decisions_taken_back_still_keep_a_new_run_from_replacing_the_folder(
    tmp_path: Path,
) -> None:
    """A run folder whose decisions were all taken back read as unreviewed: `synthgate run`
    into it would have replaced it, review_taken_back with it."""
    from synthgate.outputs import check_out, human_decision_count

    store, ids, db = cli_queue(tmp_path)
    held = human_decision_count(tmp_path / "synthgate.db")
    result = runner.invoke(cli, ["review", "reopen", *map(str, ids), "--as", "lead", "--db", db])
    assert result.exit_code == 0, result.output
    assert not rows(store, decisions) and len(rows(store, taken_back)) == held > 0
    store.close()
    assert human_decision_count(tmp_path / "synthgate.db") == held
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(InputError, match=f"holds {held} human review decisions"):
        check_out(tmp_path)


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--annotator", "zed", "--as", "lead"], "--annotator zed: made no decision"),
        (["999", "--as", "lead"], "no review item 999"),
        (["--annotator", "bob"], "--as: names who takes the decisions back"),
        (["--as", "lead"], "name the items to reopen, or --annotator NAME"),
        (["--annotator", "bob", "--as", "lead", "--reason", "a\udcffb"], "--reason: holds a lone"),
    ],
)
def test_the_command_refuses_bad_input_with_exit_2(
    tmp_path: Path, arguments: list[str], named: str
) -> None:
    store, _, db = cli_queue(tmp_path)
    before = everything(store)
    result = runner.invoke(cli, ["review", "reopen", *arguments, "--db", db])
    assert result.exit_code == 2, result.output
    assert named in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert everything(store) == before
    store.close()


def test_the_command_refuses_an_item_without_decisions(tmp_path: Path) -> None:
    store, ids, db = cli_queue(tmp_path)
    runner.invoke(cli, ["review", "reopen", str(ids[0]), "--as", "lead", "--db", db])
    result = runner.invoke(cli, ["review", "reopen", str(ids[0]), "--as", "lead", "--db", db])
    assert result.exit_code == 2
    assert f"item {ids[0]}: nothing to reopen" in " ".join(result.output.split())
    with store.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(taken_back)).scalar() == 2
    store.close()


def test_a_label_studio_file_from_before_brings_no_decision_back(
    store: Store, tmp_path: Path
) -> None:
    """`review export --include all` before the reopen, imported after it: the file holds bob's
    decisions, no longer recorded; they must not come back as new ones of his."""
    from synthgate.review.interop import export_tasks, import_annotations

    queue, ids = three_decided(store)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality="image", email_domain="example.org")
    queue.reopen(annotator="bob", by="lead", reason="failed gold")
    result = import_annotations(queue, out, email_domain="example.org")
    assert result.decided == 0 and result.unchanged == 3  # ann's came back as they are
    assert len(result.skipped) == 3
    assert all("taken back by lead (review reopen: failed gold)" in line for line in result.skipped)
    assert all(deciders(store, item) == ["ann"] for item in ids)
    assert items_of(store) == dict.fromkeys(ids, ("open", None, 1))


def test_an_audited_sample_reopened_is_accepted_again_as_the_rubric_said(store: Store) -> None:
    """An audit of a sample the rubric accepted, rejected by people, reopened: the rubric's
    accept stands again until people decide anew (as while it first waited)."""
    fill(store, review=0, audit=1, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    [item] = items_of(store)
    work(queue, "ann", lambda t: REJECT)
    sample_id = queue.task(item).sample.id
    assert store.get_sample(sample_id).status == "rejected"
    done = queue.reopen([item], by="lead")
    assert done.were_final == [item] and done.now("open") == [item]
    assert store.get_sample(sample_id).status == "accepted"
    assert store.get_sample(sample_id).report.audit


def test_an_item_set_k_kept_larger_gets_the_k_asked(store: Store) -> None:
    """set-k 2 over an item ann decided and bob and cy hold keeps k 3 for them; ann's decision
    taken back, as a release of her: the k asked, 2, which bob and cy then finish."""
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    [item] = items_of(store)
    work(queue, "ann", lambda t: ACCEPT)
    for who in ("bob", "cy"):
        assert queue.next_item(who) is not None
    assert queue.set_annotators_per_item(2).held == 1
    queue.reopen(annotator="ann", by="lead")
    with store.engine.connect() as connection:
        k, asked = connection.execute(
            select(review_items.c.k, review_items.c.k_asked).where(review_items.c.id == item)
        ).one()
    assert (k, asked) == (2, None)
    queue.decide(item, "bob", REJECT)
    queue.decide(item, "cy", REJECT)
    assert items_of(store)[item] == ("final", "reject", 2)


def test_a_reopen_while_annotators_work_leaves_every_count_right(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """careless decided every item; ann, bob and cy work the queue in threads, and a lead takes
    careless's decisions back while each of them holds a task (a barrier: the reopen starts
    only then) and goes on working through its write transactions (released by its first):
    every item still ends with k decisions of distinct people, none of careless's, the kept
    counts match the assignments, and so does each annotator's count of tasks given."""
    import threading

    fill(store, review=12, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    ids = sorted(items_of(store))
    assert work(queue, "careless", lambda t: REJECT) == ids
    holding = threading.Barrier(4, timeout=30)  # the three annotators each holding a task, and
    reopening = threading.Event()  # the lead, who took the first items back
    failures: list[BaseException] = []
    take_back = reopen_module._take_back

    def taking_back(*args: Any, **kwargs: Any) -> int:
        taken = take_back(*args, **kwargs)
        reopening.set()  # the rest of the reopen runs while they decide and claim
        return taken

    monkeypatch.setattr(reopen_module, "_take_back", taking_back)
    monkeypatch.setattr(reopen_module, "CHUNK_ITEMS", 2)  # six write transactions

    def annotate(who: str) -> None:
        waited = False

        def choose(task: Any) -> Decision:
            nonlocal waited
            if not waited:  # their first task: held when the reopen starts
                waited = True
                holding.wait()
                assert reopening.wait(timeout=30)
            return ACCEPT

        try:
            work(queue, who, choose)
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    threads = [threading.Thread(target=annotate, args=(who,)) for who in ("ann", "bob", "cy")]
    for thread in threads:
        thread.start()
    holding.wait()
    done = queue.reopen(annotator="careless", by="lead")
    for thread in threads:
        thread.join()
    assert not failures
    assert done.decisions == len(ids)
    work(queue, "dee", lambda t: ACCEPT)  # what the threads had finished before the reopen
    assert items_of(store) == dict.fromkeys(ids, ("final", "accept", 2))
    with store.engine.connect() as connection:
        said = connection.execute(select(decisions.c.item_id, decisions.c.annotator)).all()
    assert sorted(item for item, _ in said) == sorted(ids * 2)
    assert len(set(said)) == len(said) and "careless" not in {who for _, who in said}
    kept, counted = kept_and_counted(store)
    assert kept == counted
    given = {row["annotator"]: row["given"] for row in rows(store, annotator_counts)}
    held = Counter(row["annotator"] for row in rows(store, assignments))
    assert given == {**held, "careless": 0}


def test_a_label_studio_file_from_before_brings_no_adjudication_back(
    store: Store, tmp_path: Path
) -> None:
    """An adjudication taken back does not come back from a Label Studio file exported before
    the reopen (a ground_truth annotation), as an annotator's decision does not."""
    from synthgate.review.interop import export_tasks, import_annotations

    queue, ids = three_decided(store)
    queue.adjudicate(ids[1], "lead", REJECT)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality="image", email_domain="example.org")
    queue.reopen(annotator="lead", by="boss", reason="wrong adjudication")
    assert queue.awaiting_adjudication() == [ids[1]]
    result = import_annotations(queue, out, email_domain="example.org")
    assert result.adjudicated == 0
    note = f"lead's decision on item {ids[1]} was taken back by boss (review reopen: wrong"
    assert sum(note in line for line in result.skipped) == 1
    assert queue.awaiting_adjudication() == [ids[1]]


def test_an_old_label_studio_file_brings_no_decision_back_onto_an_item_held_again(
    store: Store, tmp_path: Path
) -> None:
    """The item reopened, bob asks for work and holds it again: the Label Studio file exported
    before the reopen must not record his (or ann's) decision taken back as a new one."""
    from synthgate.review.interop import export_tasks, import_annotations

    queue, ids = three_decided(store)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality="image", email_domain="example.org")
    queue.reopen([ids[0]], by="lead", reason="bad image")
    task = queue.next_item("bob")
    assert task is not None and task.item_id == ids[0]
    result = import_annotations(queue, out, email_domain="example.org")
    assert (result.decided, result.unchanged) == (0, 4)
    assert sum("taken back by lead (review reopen: bad image)" in s for s in result.skipped) == 2
    assert deciders(store, ids[0]) == []


def test_the_annotator_taken_back_is_not_handed_the_same_items_again(store: Store) -> None:
    """bob's decisions taken back as careless: no claim hands bob those items again (ann holds
    them decided); cy takes each, and the team of two short of bob blocks them meanwhile."""
    queue, ids = three_decided(store)
    queue.reopen(annotator="bob", by="lead", reason="failed gold")
    assert queue.next_item("bob") is None and queue.next_item("ann") is None
    with store.engine.connect() as connection:
        blocked = blocked_items(connection)
    assert [(b["item"], b["benched"], b["needs"]) for b in blocked] == [
        (item, ["bob"], 1) for item in ids
    ]
    assert "review reopen took back the decision of bob on it" in blocked[0]["why"]
    queue.adjudicate(ids[2], "lead", ACCEPT)  # a blocked item: a lead may decide it
    assert work(queue, "cy", lambda t: ACCEPT) == ids[:2]
    assert items_of(store) == dict.fromkeys(ids[:2], ("final", "accept", 2)) | {
        ids[2]: ("final", "accept", 1)
    }
    with store.engine.connect() as connection:
        assert blocked_items(connection) == []


def test_an_annotator_far_ahead_is_not_handed_an_item_they_were_taken_back_from(
    store: Store,
) -> None:
    """bob's decision on the first item taken back (ann holds it alone); bob then holds AHEAD
    items alone, so his claim seeks each other holder's first item (claims.py CLAIM_AHEAD):
    ann's is the first item, and he is not given it there either."""
    fill(store, review=AHEAD + 2, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    first, *rest = sorted(items_of(store))
    task = queue.next_item("bob")
    assert task is not None and task.item_id == first
    queue.decide(first, "bob", ACCEPT)
    queue.decide(first, "ann", ACCEPT, assign=True)
    queue.reopen([first], annotator="bob", by="lead")
    for _ in range(AHEAD):
        task = queue.next_item("bob")
        assert task is not None and task.item_id != first
        queue.decide(task.item_id, "bob", ACCEPT)
    task = queue.next_item("bob")  # holding AHEAD alone: the seek of ann's first passes it
    assert task is not None and task.item_id == rest[-1]


def test_work_of_an_annotator_taken_back_on_those_items_is_not_imported(
    store: Store, tmp_path: Path
) -> None:
    """bob benched from the items: his Label Studio work on them saved after the reopen is not
    recorded either (an assignment outside the claim keeps to its rules)."""
    from synthgate.review.interop import export_tasks, import_annotations

    queue, ids = three_decided(store)
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality="image", email_domain="example.org")
    queue.reopen(annotator="bob", by="lead", reason="failed gold")
    task = label_studio_task(out, ids[0], "bob")
    task["annotations"][0]["created_at"] = "2999-01-01T00:00:00+00:00"
    made = tmp_path / "made.json"
    made.write_text(json.dumps([task]))
    result = import_annotations(queue, made, email_domain="example.org")
    assert result.decided == 0
    assert ["not given it again" in line for line in result.skipped] == [True]
    assert deciders(store, ids[0]) == ["ann"]


def label_studio_task(path: Path, item_id: int, annotator: str) -> dict[str, Any]:
    """The task of `item_id` in an export of `path`, with only `annotator`'s annotation, as if
    made in Label Studio (its own id, not the decision's)."""
    [task] = [t for t in json.loads(path.read_text()) if t["data"]["item_id"] == item_id]
    [annotation] = [
        a for a in task["annotations"] if a["completed_by"] == {"email": f"{annotator}@example.org"}
    ]
    task["annotations"] = [{**annotation, "id": 10_000}]
    return task


MADE_IN_LABEL_STUDIO = [  # (the annotation's times, its verdict: bob's first or his second's)
    pytest.param({}, "reject", "recorded", id="no time, saying something new"),
    pytest.param({}, "accept", "taken back", id="no time, saying what was taken back"),
    pytest.param({"created_at": "2000-01-01T00:00:00+00:00"}, "reject", "taken back", id="old"),
    pytest.param({"created_at": "2999-01-01T00:00:00+00:00"}, "accept", "recorded", id="new"),
    pytest.param(
        {"created_at": "2000-01-01T00:00:00", "updated_at": "2999-01-01T00:00:00"},
        "accept",
        "recorded",
        id="edited after the reopen",
    ),
]


@pytest.mark.parametrize(("times", "verdict", "then"), MADE_IN_LABEL_STUDIO)
def test_work_made_in_label_studio_after_the_reopen_is_new_and_counts(
    store: Store, tmp_path: Path, times: dict[str, str], verdict: str, then: str
) -> None:
    """A decision taken back comes back from Label Studio when it was saved before the reopen
    (or, with no time, says the same); bob's work saved after it is new, and recorded."""
    from synthgate.review.interop import export_tasks, import_annotations

    queue, ids = three_decided(store)  # bob accepted ids[0], rejected ids[1]
    out = tmp_path / "all.json"
    export_tasks(queue, out, include="all", modality="image", email_domain="example.org")
    queue.reopen([ids[0]], by="lead", reason="bad image")
    task = label_studio_task(out, ids[0], "bob")
    said = label_studio_task(out, ids[0 if verdict == "accept" else 1], "bob")["annotations"][0]
    annotation = {**task["annotations"][0], "result": said["result"]}
    annotation.pop("created_at")
    task["annotations"] = [{**annotation, **times}]
    made = tmp_path / "made.json"
    made.write_text(json.dumps([task]))
    result = import_annotations(queue, made, email_domain="example.org")
    if then == "recorded":
        assert (result.decided, result.skipped) == (1, [])
        assert deciders(store, ids[0]) == ["bob"]
    else:
        assert result.decided == 0
        assert ["taken back by lead" in line for line in result.skipped] == [True]
        assert deciders(store, ids[0]) == []


# ---- the API -----------------------------------------------------------------------------


def api_three_decided(tmp_path: Path) -> tuple[Any, dict[str, dict[str, str]], list[int]]:
    """The app of three_decided (k = 2: ann and bob decide three image items, bob rejecting the
    second), with an admin; the app, the headers by name and the items' public ids in the
    queue's order."""
    from api_support import bearer, make_app, token_for

    app = make_app(tmp_path, images=3, k=2)
    queue = app.state.queue
    ids = sorted(items_of(app.state.store))
    work(queue, "ann", lambda t: ACCEPT)
    work(queue, "bob", lambda t: REJECT if t.item_id == ids[1] else ACCEPT)
    people = {who: token_for(app, who, role) for who, role in USERS}
    return app, {who: bearer(token) for who, token in people.items()}, ids


USERS = [("ann", "annotator"), ("bob", "annotator"), ("boss", "admin")]
REOPEN = "/api/review/reopen"


def test_api_admins_reopen_as_the_command_does(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    app, headers, ids = api_three_decided(tmp_path)
    store, public = app.state.store, [app.state.item_ids.public(i) for i in ids]
    body = {"annotator": "bob", "reason": "failed gold"}
    with TestClient(app) as client:
        refused = client.post(REOPEN, json=body, headers=headers["ann"])
        assert refused.status_code == 403 and "needs role admin" in refused.json()["detail"]
        before = everything(store)
        dry = client.post(REOPEN, json={**body, "dry_run": True}, headers=headers["boss"])
        assert dry.status_code == 200, dry.text
        assert everything(store) == before
        done = client.post(REOPEN, json=body, headers=headers["boss"])
        assert done.status_code == 200, done.text
        assert {**dry.json(), "dry_run": False} == done.json()
        answer = done.json()
        assert (answer["annotator"], answer["decisions"], answer["gold_kept"]) == ("bob", 3, 0)
        assert [c["item_id"] for c in answer["items"]] == public  # opaque ids, queue order
        assert answer["items"][1] == {
            "item_id": public[1],
            "sample": app.state.queue.task(ids[1]).sample.id,
            "annotators": ["bob"],
            "before": {"status": "adjudication", "final_verdict": None},
            "after": {"status": "open", "final_verdict": None},
        }
        assert answer["were_final"] == [public[0], public[2]] and answer["holding"] == []
        # kept apart as the command keeps them, the admin calling as who took them back
        assert [
            (r["annotator"], r["taken_back_by"], r["reason"]) for r in rows(store, taken_back)
        ] == [("bob", "boss", "failed gold")] * 3
        assert items_of(store) == dict.fromkeys(ids, ("open", None, 1))
        assert client.get("/api/review/next", headers=headers["bob"]).status_code == 204  # benched
        # stats say who is benched: ann holds each item, bob may not take it, nobody else is
        stats = client.get("/api/review/stats", headers=headers["boss"]).json()
        assert [(b["item_id"], b["benched"], b["met_as_gold"]) for b in stats["blocked"]] == [
            (item, ["bob"], []) for item in public
        ]
        # by items alone: every decision on them
        one = client.post(REOPEN, json={"items": [public[0]]}, headers=headers["boss"])
        assert one.status_code == 200, one.text
        assert [(c["item_id"], c["annotators"]) for c in one.json()["items"]] == [
            (public[0], ["ann"])
        ]
        assert deciders(store, ids[0]) == []


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({}, 400, "name the items to reopen, or annotator=NAME (every decision of theirs)"),
        ({"annotator": "zed"}, 400, "annotator=zed: made no decision in this review queue; name"),
        (
            {"annotator": ""},
            400,
            "annotator='': names an annotator, in 1 to 200 characters; give a name, e.g. "
            "annotator=lead",
        ),
        ({"items": [12345]}, 400, "no review item 12345"),
        ({"items": [-1]}, 422, "items"),
        ({"items": ["1"]}, 422, "items"),
        ({"annotator": "bob", "reason": "a\x00b"}, 400, "body.reason: contains a NUL byte"),
        ({"annotator": "bob", "reason": "a\ud800b"}, 400, "reason: holds a lone surrogate"),
        ({"annotator": "bob", "as": "lead"}, 422, "as"),
    ],
)
def test_api_refuses_bad_input_naming_it_and_changes_nothing(
    tmp_path: Path, body: dict[str, Any], status: int, named: str
) -> None:
    from fastapi.testclient import TestClient

    app, headers, _ = api_three_decided(tmp_path)
    before = everything(app.state.store)
    with TestClient(app) as client:
        sent = {**headers["boss"], "Content-Type": "application/json"}  # json= refuses \ud800
        refused = client.post(REOPEN, content=json.dumps(body), headers=sent)
    assert refused.status_code == status, refused.text
    assert named in refused.json()["detail"]
    assert everything(app.state.store) == before


def test_api_refusals_name_items_by_the_ids_the_api_gave(tmp_path: Path) -> None:
    """A gold task, and an item with nothing left to reopen, are named by their opaque ids, as
    every route names items (the queue's own numbers are not the API's)."""
    from api_support import image_sample
    from fastapi.testclient import TestClient

    app, headers, ids = api_three_decided(tmp_path)
    gold = app.state.queue.add_gold(image_sample(7, tmp_path / "run"), expected=["accept"])
    public = app.state.item_ids.public
    with TestClient(app) as client:
        refused = client.post(REOPEN, json={"items": [public(gold)]}, headers=headers["boss"])
        assert refused.status_code == 400
        assert f"item {public(gold)} is a gold task" in refused.json()["detail"]
        assert "name real work, or annotator=NAME alone" in refused.json()["detail"]
        mine = {"items": [public(ids[1])], "annotator": "bob"}
        assert client.post(REOPEN, json=mine, headers=headers["boss"]).status_code == 200
        again = client.post(REOPEN, json=mine, headers=headers["boss"])
    assert again.status_code == 400
    assert (
        f"item {public(ids[1])}: nothing to reopen, bob made no decision on it"
        in (again.json()["detail"])
    )
    assert f"item {ids[1]}:" not in again.json()["detail"]


def test_ctrl_c_mid_way_says_what_was_committed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt in the second chunk: the first chunk stays committed, and the note
    saying so is on the interrupt as on any error (it was added to Exception only)."""
    monkeypatch.setattr(reopen_module, "CHUNK_ITEMS", 2)
    fill(store, review=4, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    work(queue, "bob", lambda t: ACCEPT)
    real_take_back, calls = reopen_module._take_back, []

    def interrupted(*args: Any) -> int:
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_take_back(*args)

    monkeypatch.setattr(reopen_module, "_take_back", interrupted)
    with pytest.raises(KeyboardInterrupt) as stopped:
        queue.reopen([], annotator="bob", by="lead")
    assert "review reopen stopped" in stopped.value.__notes__[0]


def test_the_cli_prints_the_notes_of_an_input_error(capsys: pytest.CaptureFixture[str]) -> None:
    """user_errors printed the message alone: the notes added on an error's way up (what a
    long operation had committed when it stopped) were dropped from the one error line."""
    error = InputError("item 7 is gold")
    error.add_note("review reopen stopped: the items up to item 5 were taken back")
    with pytest.raises(typer.Exit) as exited, user_errors():
        raise error
    assert exited.value.exit_code == 2
    said = capsys.readouterr().err
    assert "item 7 is gold" in said and "the items up to item 5 were taken back" in said


def test_the_release_hint_quotes_a_name_with_a_space(tmp_path: Path) -> None:
    """The hint for an annotator still holding items broke on a name with a space when pasted
    into a shell (the API's 403 hint quotes it)."""
    db = f"sqlite:///{tmp_path / 'synthgate.db'}"
    store = Store(db)
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    task = queue.next_item("ann lee")
    assert task is not None
    queue.decide(task.item_id, "ann lee", ACCEPT)
    assert queue.next_item("ann lee") is not None  # held undecided
    result = runner.invoke(
        cli, ["review", "reopen", "--annotator", "ann lee", "--as", "lead", "--db", db]
    )
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "`synthgate review release --annotator 'ann lee'`" in said
    store.close()


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_reopen_stopped_by_a_signal_says_what_was_committed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    signum: signal.Signals,
    status: int,
) -> None:
    """The note saying which chunks a reopen committed before it stopped went on a Ctrl-C
    (98a1462), but `synthgate review reopen` never printed it: typer turns the KeyboardInterrupt
    into exit 130 and SIGTERM's SystemExit(143) goes up as it is, notes dropped; the lead read
    'cleaning up what it had not finished' alone, with the first chunk already taken back."""
    from synthgate import cli as cli_module

    monkeypatch.setattr(reopen_module, "CHUNK_ITEMS", 1)
    store, ids, db = cli_queue(tmp_path)
    real_take_back, calls = reopen_module._take_back, []

    def stopped(*args: Any) -> int:
        calls.append(args[2])
        if len(calls) == 2:
            signal.raise_signal(signum)
        return real_take_back(*args)

    monkeypatch.setattr(reopen_module, "_take_back", stopped)
    monkeypatch.setattr(cli_module.gc, "freeze", lambda: None)  # not this test process's objects
    argv = ["synthgate", "review", "reopen", "--annotator", "bob", "--as", "lead", "--db", db]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exited:
        cli_module.main()
    assert exited.value.code == status
    said = " ".join(capsys.readouterr().err.split())
    assert f"the decisions on the items up to item {ids[0]} were taken back" in said, said
    assert len(rows(store, taken_back)) == 1
