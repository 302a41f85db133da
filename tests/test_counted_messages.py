"""Counts in messages read in their number: "1 human review decision", "2 human review
decisions"; each message here is one a user meets with a count of 1."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from synthgate.errors import InputError
from synthgate.outputs import check_out, check_out_file


def _database(path: Path, decisions: int) -> Path:
    """An SQLite file holding `decisions` rows of review_decisions (all human_decision_count
    reads)."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE review_decisions (id INTEGER PRIMARY KEY)")
        connection.executemany(
            "INSERT INTO review_decisions VALUES (?)", [(i,) for i in range(decisions)]
        )
    return path


@pytest.mark.parametrize(
    ("decisions", "said"), [(1, "1 human review decision,"), (2, "2 human review decisions,")]
)
def test_a_database_target_counts_its_decisions_in_their_number(
    tmp_path: Path, decisions: int, said: str
) -> None:
    db = _database(tmp_path / "review.db", decisions)
    with pytest.raises(InputError, match=f"is a database, with {said} which this would overwrite"):
        check_out_file(db)


@pytest.mark.parametrize(
    ("decisions", "said"),
    [(1, "1 human review decision that"), (2, "2 human review decisions that")],
)
def test_a_run_folder_counts_its_decisions_in_their_number(
    tmp_path: Path, decisions: int, said: str
) -> None:
    (tmp_path / "manifest.json").write_text("{}")
    _database(tmp_path / "synthgate.db", decisions)
    with pytest.raises(InputError, match=f"holds {said} a new run would replace"):
        check_out(tmp_path)


def _said(capsys: pytest.CaptureFixture[str]) -> str:
    return " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal's width


def test_a_reopen_of_one_decision_says_it_in_the_singular(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from synthgate.commands.review_lead import _print_reopened
    from synthgate.review.reopen import ItemChange, Reopened

    change = ItemChange(1, "s-1", ["bob"], before=("final", "accept"), after=("open", None))
    _print_reopened(
        Reopened("bob", [], dry_run=False, decisions=1, items=[change], gold_kept=1, holding=[4])
    )
    said = _said(capsys)
    for wanted in (
        "bob holds 1 item undecided (4)",
        "took back 1 decision of bob on 1 item",
        "1 item open:",
        "1 decision of bob on gold tasks stays: it scores",
        "1 of these items was final",
    ):
        assert wanted in said, said
    _print_reopened(Reopened("bob", [], dry_run=True, gold_kept=1))
    assert "(1 on gold tasks stays scored)" in _said(capsys)


def test_a_k_change_of_one_item_says_it_in_the_singular(capsys: pytest.CaptureFixture[str]) -> None:
    from synthgate.commands.review_lead import _print_k_change
    from synthgate.review.set_k import KChange

    _print_k_change(KChange(3, [], changed=1, still_open=1, held=1, holders=["ann"], team=["ann"]))
    said = _said(capsys)
    for wanted in (
        "k 3: 1 open item of the queue changed",
        "1 item keeps a larger k",
        "given work to 1 annotator:",
    ):
        assert wanted in said, said


def test_queue_stats_count_one_final_item_in_the_singular(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from synthgate.commands.printing import print_stats

    items = {"open": 0, "adjudication": 0, "final": 1}
    changes = {"changed": 1, "with_route": 1, "moves": {"accepted -> rejected": 1}}
    print_stats(
        {
            "items": items,
            "gold_items": 0,
            "queue_depth": 0,
            "decisions": 1,
            "annotators": {},
            "route_changes": changes,
        }
    )
    assert "verdicts changed the rubric's route on 1 of 1 final item (" in _said(capsys)


def test_submit_of_one_sample_in_one_chunk_says_it_in_the_singular(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'batch b: 1 samples, 1 chunks sent'; sending is stood in for (no broker here)."""
    import yaml
    from factories import small_config
    from typer.testing import CliRunner

    from synthgate.cli import app
    from synthgate.workers import submit

    config = tmp_path / "one.yaml"
    config.write_text(
        yaml.safe_dump(small_config(image={**small_config()["image"], "count": 1}, text=None))
    )
    monkeypatch.setattr(submit, "submit_batch", lambda app, store, config: ("one-batch", 1))
    shared = ["--db", f"sqlite:///{tmp_path}/x.db", "--blobs", str(tmp_path / "blobs")]
    result = CliRunner().invoke(app, ["submit", str(config), *shared, "--broker", "memory://"])
    assert result.exit_code == 0, result.output
    assert "batch one-batch: 1 sample, 1 chunk sent\n" in result.output


@pytest.mark.parametrize(
    ("added", "said"),
    [
        ({"added_images": 1, "added_annotations": 1}, "merged 1 image, 1 annotation into"),
        ({"added_images": 2, "added_annotations": 3}, "merged 2 images, 3 annotations into"),
        ({"added_rows": 1}, "merged 1 row into"),
    ],
)
def test_merge_counts_what_it_added_in_their_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, added: dict[str, int], said: str
) -> None:
    """The merge itself is stood in for: only its summary line is under test."""
    from typer.testing import CliRunner

    import synthgate
    from synthgate.cli import app
    from synthgate.workflows.merge import MergeResult

    merged = tmp_path / "out" / "merged.jsonl"
    monkeypatch.setattr(
        synthgate, "merge", lambda *args, **kwargs: MergeResult(**added, merged=merged)
    )
    result = CliRunner().invoke(
        app, ["merge", "--real", "real.jsonl", "--synthetic", "run", "--out", str(merged.parent)]
    )
    assert result.exit_code == 0, result.output
    assert said in " ".join(result.output.split())


def test_a_batch_sent_to_the_workers_in_one_chunk_says_it_in_the_singular(tmp_path: Path) -> None:
    """The message of a batch `serve --broker` sent ('1 chunks sent to the workers')."""
    from synthgate.api.distributed import WorkerMessages
    from synthgate.storage.store import Store

    store = Store(f"sqlite:///{tmp_path / 'shared.db'}")
    store.put_batch("b-1", name="b", seed=1, config={})
    WorkerMessages(store).sent("b-1", 1)
    batch = store.get_batch("b-1")
    store.close()
    assert batch is not None and batch["message"] == "1 chunk sent to the workers"
