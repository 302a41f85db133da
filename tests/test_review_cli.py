"""`synthgate review …` end to end on a real run folder: enqueue, work the queue, agreement
tables and JSON, Label Studio export/import round trip, and clear errors with exit code 2."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.masks import encode_mask, tight_bbox
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.report import routing_cutoffs
from synthgate.samples import (
    CRITERIA,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    Span,
    sample_id,
)
from synthgate.storage.store import Store, sqlite_url
from synthgate.validators.rubric import load_rubric

runner = CliRunner()


def image_sample(batch_id: str, index: int) -> Sample:
    yy, xx = np.mgrid[:48, :64]
    disc = (xx - 20) ** 2 + (yy - 20) ** 2 <= 64
    return Sample(
        id=sample_id(batch_id, "image", index),
        spec=SampleSpec(
            batch_id=batch_id, index=index, modality="image", generator="procedural", seed=index
        ),
        uri=f"images/{sample_id(batch_id, 'image', index)}.png",
        width=64,
        height=48,
        objects=[
            ObjectLabel(
                category="circle",
                bbox=tight_bbox(disc),
                mask=encode_mask(disc),
                area=float(disc.sum()),
            ),
            ObjectLabel(category="square", bbox=[40, 10, 12, 12], area=144.0),
        ],
        provenance=Provenance(generator="procedural", generator_version="1", seed=index),
    )


def text_sample(batch_id: str, index: int) -> Sample:
    text = f"Ticket {index}: Anna Berg from Acme GmbH wrote."
    start = text.index("Anna")
    return Sample(
        id=sample_id(batch_id, "text", index),
        spec=SampleSpec(
            batch_id=batch_id, index=index, modality="text", generator="templates", seed=index
        ),
        text=text,
        spans=[
            Span(start=start, end=start + 9, label="PERSON"),
            Span(start=start + 15, end=start + 24, label="ORG"),
        ],
        provenance=Provenance(generator="templates", generator_version="1", seed=index),
    )


@pytest.fixture
def run_folder(tmp_path: Path) -> Path:
    return make_run_folder(tmp_path)


def make_run_folder(tmp_path: Path, *, rubric: str = "default") -> Path:
    """A run folder's database with samples as the rubric would leave them (set by hand: the
    generators and the rubric land separately); `rubric`: the name their reports carry."""
    out = tmp_path / "run"
    out.mkdir()
    store = Store(sqlite_url(out / "synthgate.db"))
    store.put_batch(
        "small-1", name="small", seed=3, config={"categories": ["circle", "square", "triangle"]}
    )
    made = []
    for make, review in ((image_sample, 4), (text_sample, 4)):
        for index in range(10):
            sample = make("small-1", index)
            routed = "review" if index < review else "accepted"
            sample.report = RubricReport(
                rubric=rubric,
                score=2.5 + index / 4,
                levels={c: 5 for c in CRITERIA},
                route=routed,
                audit=index == review,
            )
            sample.status = routed
            made.append(sample)
    store.upsert_samples(made)
    store.close()
    return out


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})


def work(run: Path) -> None:
    store = Store(sqlite_url(run / "synthgate.db"))
    queue = ReviewQueue(store, seed=0)  # the gold draws fixed: this work meets gold tasks
    for who in ("ann", "bob", "cy"):
        while (task := queue.next_item(who)) is not None:
            # ann accepts everything, bob rejects every third item, cy rejects everything
            verdict = (
                "reject" if who == "cy" or (who == "bob" and task.item_id % 3 == 0) else "accept"
            )
            queue.decide(
                task.item_id,
                who,
                Decision(verdict=verdict, levels={"precision": 5 if verdict == "accept" else 1}),
            )
    for item in queue.awaiting_adjudication():
        queue.adjudicate(item, "lead", Decision(verdict="accept"))
    store.close()


def test_enqueue_work_and_agreement(run_folder: Path, tmp_path: Path) -> None:
    result = invoke("review", "enqueue", "--run", str(run_folder), "-k", "2", "--gold-rate", "0.2")
    assert result.exit_code == 0, result.output
    assert "10 new review items" in result.output  # 4 + 4 routed to review, 1 + 1 audited
    again = invoke("review", "enqueue", "--run", str(run_folder))
    assert "0 new review items" in again.output
    work(run_folder)
    stats = invoke("review", "stats", "--run", str(run_folder), "--json")
    numbers = json.loads(stats.output)
    assert numbers["items"]["final"] == 10 and numbers["queue_depth"] == 0
    json_path = tmp_path / "agreement.json"
    shown = invoke(
        "review",
        "agreement",
        "--run",
        str(run_folder),
        "--json",
        str(json_path),
        "--accept-at",
        "4.0",
    )
    assert shown.exit_code == 0, shown.output
    for words in (
        "Cohen's kappa",
        "Fleiss' kappa",
        "Krippendorff's alpha (nominal)",
        "gold tasks",
        "rubric route",
    ):
        assert words in shown.output
    report = json.loads(json_path.read_text())
    assert set(report) == {"verdicts", "levels", "gold", "validator"}
    assert report["verdicts"]["fleiss"]["n_items"] == 10
    stdout_only = invoke(
        "review", "agreement", "--run", str(run_folder), "--json", "-", "--accept-at", "4.0"
    )
    assert json.loads(stdout_only.output) == report


def test_enqueue_export_and_import_show_their_bars_for_a_large_queue(
    run_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthgate.commands import review as review_commands

    (tmp_path / "small").mkdir()
    small = make_run_folder(tmp_path / "small")
    quiet = invoke("review", "enqueue", "--run", str(small), "--gold-rate", "0.2")
    assert quiet.exit_code == 0, quiet.output
    assert "reading samples" not in quiet.output and "gold tasks" not in quiet.output
    monkeypatch.setattr(review_commands, "SAMPLES_BAR_FROM", 1)  # bars for 20 samples
    monkeypatch.setattr(review_commands, "PROGRESS_FROM", 1)
    monkeypatch.setattr(review_commands, "TASKS_BAR_FROM", 1)
    shown = invoke("review", "enqueue", "--run", str(run_folder), "--gold-rate", "0.2")
    assert shown.exit_code == 0, shown.output
    assert re.search(r"reading samples .* 20/20 ", shown.output), shown.output
    assert re.search(r"making gold tasks .* 4/4 ", shown.output), shown.output
    exported = invoke(
        "review",
        "export",
        "--run",
        str(run_folder),
        "--modality",
        "text",
        "-o",
        str(tmp_path / "t.json"),
    )
    assert exported.exit_code == 0, exported.output
    assert re.search(r"tasks .* 5/5 ", exported.output), exported.output
    imported = invoke("review", "import", str(tmp_path / "t.json"), "--run", str(run_folder))
    assert imported.exit_code == 0, imported.output
    assert re.search(r"tasks .* 5/5 ", imported.output), imported.output  # none decided yet


@pytest.mark.parametrize(("modality", "shapes"), [("image", "polygons"), ("text", "rectangles")])
def test_label_studio_round_trip_through_the_cli(
    run_folder: Path, tmp_path: Path, modality: str, shapes: str
) -> None:
    invoke("review", "enqueue", "--run", str(run_folder))
    work(run_folder)
    out = tmp_path / "ls" / "tasks.json"
    exported = invoke(
        "review",
        "export",
        "--run",
        str(run_folder),
        "--format",
        "labelstudio",
        "--out",
        str(out),
        "--include",
        "all",
        "--modality",
        modality,
        "--shapes",
        shapes,
        "--email-domain",
        "example.org",
    )
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "ls" / "tasks.config.xml").is_file()
    before = tables(run_folder)
    imported = invoke(
        "review", "import", str(out), "--run", str(run_folder), "--email-domain", "example.org"
    )
    assert imported.exit_code == 0, imported.output
    assert "decided 0, adjudicated 0" in imported.output
    assert "conflicts 0, skipped 0" in imported.output
    assert tables(run_folder) == before
    # without --email-domain: ann@example.org once took ann's gold decisions a second time
    again = invoke("review", "import", str(out), "--run", str(run_folder))
    assert "decided 0, adjudicated 0" in again.output, again.output
    assert "conflicts 0, skipped 0" in again.output
    assert tables(run_folder) == before


def test_import_refuses_an_annotators_per_item_it_cannot_apply(
    run_folder: Path, tmp_path: Path
) -> None:
    """`review import -k 3` said items needed 3 annotators, and went on to record decisions on
    items that kept the k they were enqueued with: an import makes no item to give a k."""
    invoke("review", "enqueue", "--run", str(run_folder), "-k", "2")
    out = tmp_path / "t.json"
    invoke("review", "export", "--run", str(run_folder), "--modality", "text", "-o", str(out))
    tasks = json.loads(out.read_text())
    verdict = {"from_name": "verdict", "to_name": "text", "type": "choices"}
    tasks[0]["annotations"] = [
        {"id": 1, "completed_by": 1, "result": [{**verdict, "value": {"choices": ["accept"]}}]}
    ]
    out.write_text(json.dumps(tasks))
    before = tables(run_folder)
    refused = invoke("review", "import", str(out), "--run", str(run_folder), "-k", "3")
    assert refused.exit_code == 2, refused.output
    shown = " ".join(refused.output.split())
    assert "--annotators-per-item 3: an import records decisions on items already" in shown
    assert "(`review enqueue -k`); drop -k" in shown and "Traceback" not in shown
    assert tables(run_folder) == before
    imported = invoke("review", "import", str(out), "--run", str(run_folder))
    assert imported.exit_code == 0 and "decided 1," in imported.output, imported.output


def test_stats_leave_imported_decisions_without_times_out_of_the_rate(
    run_folder: Path, tmp_path: Path
) -> None:
    """Decided the moment the import recorded it, such a decision once made a rate of thousands
    an hour; now only the decisions with Label Studio's times count, and stats say so."""
    invoke("review", "enqueue", "--run", str(run_folder))
    out = tmp_path / "t.json"
    invoke("review", "export", "--run", str(run_folder), "--modality", "text", "-o", str(out))
    tasks = json.loads(out.read_text())
    accept = [{"from_name": "verdict", "to_name": "text", "type": "choices"}]
    accept[0]["value"] = {"choices": ["accept"]}
    times = {"created_at": "2026-03-09T10:00:00Z", "lead_time": 40.0}
    tasks[0]["annotations"] = [{"id": 1, "completed_by": 1, "result": accept}]
    tasks[1]["annotations"] = [{"id": 2, "completed_by": 2, "result": accept, **times}]
    tasks[2]["annotations"] = [{"id": 3, "completed_by": 2, "result": accept, **times}]
    tasks[2]["annotations"][0]["created_at"] = "2026-03-09T10:01:00Z"
    out.write_text(json.dumps(tasks))
    imported = invoke("review", "import", str(out), "--run", str(run_folder))
    assert "decided 3," in imported.output, imported.output
    numbers = json.loads(invoke("review", "stats", "--run", str(run_folder), "--json").output)
    people = numbers["annotators"]
    assert people["labelstudio:1"]["decisions_per_hour"] is None
    assert people["labelstudio:1"]["untimed"] == 1
    assert people["labelstudio:2"]["decisions_per_hour"] == 72.0  # 2 in 100 s
    assert people["labelstudio:2"]["untimed"] == 0
    shown = " ".join(invoke("review", "stats", "--run", str(run_folder)).output.split())
    assert "decisions/h leaves out decisions imported with no time on the task" in shown
    assert shown.endswith("Label Studio export): labelstudio:1 1")


def tables(run: Path) -> dict:
    """Every row of the samples and review tables: what an import must not change."""
    store = Store(sqlite_url(run / "synthgate.db"))
    with store.engine.connect() as connection:
        rows = {
            name: sorted(map(tuple, connection.exec_driver_sql(f"SELECT * FROM {name}")), key=repr)
            for name in (
                "samples",
                "review_items",
                "review_assignments",
                "review_decisions",
                "review_gold",
            )
        }
    store.close()
    return rows


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["review", "agreement", "--run", "nowhere"], "no synthgate.db there"),
        (
            ["review", "export", "--out", "x.json", "--format", "csv", "--run", "{run}"],
            "--format 'csv': choose one of labelstudio",
        ),
        (
            ["review", "export", "--out", "x.json", "--run", "{run}"],
            "--modality image or --modality text",
        ),
        (["review", "import", "missing.json", "--run", "{run}"], "no such file"),
        (["review", "enqueue", "--run", "{run}", "--batch", "nope"], "--batch nope: no such batch"),
    ],
)
def test_bad_input_exits_2_with_one_message(
    run_folder: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    args = [a.replace("{run}", str(run_folder)) for a in args]
    if "export" in args and "--format" not in args:
        invoke("review", "enqueue", "--run", str(run_folder))
    done = subprocess.run(
        [sys.executable, "-m", "synthgate", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr


def test_gold_set_from_the_command_line(run_folder: Path) -> None:
    store = Store(sqlite_url(run_folder / "synthgate.db"))
    chosen = [s.id for s in store.iter_samples("small-1", "image")][-2:]
    store.close()
    added = invoke(
        "review", "gold", *chosen, "--expect", "reject", "--expect", "fix", "--run", str(run_folder)
    )
    assert added.exit_code == 0, added.output
    assert added.output.count("gold item") == 2
    # no batch enqueued: the line says so, and what its Fix form lists meanwhile
    assert "reject or fix, tied to no batch of the queue yet (its Fix form lists every " + (
        "batch's labels of its kind until its batch small-1 is enqueued)"
    ) in " ".join(added.output.split())
    again = invoke("review", "gold", chosen[0], "--expect", "reject", "--run", str(run_folder))
    # the same item, its answer now the one given (no decision was scored against the old one)
    first = re.findall(r"gold item (\d+), expecting ([a-z ]+)", added.output)
    assert first[0][1] == "reject or fix"
    assert re.findall(r"gold item (\d+), expecting ([a-z ]+)", again.output) == [
        (first[0][0], "reject")
    ]
    missing = invoke("review", "gold", "nope", "--expect", "accept", "--run", str(run_folder))
    assert missing.exit_code == 2 and "no such sample" in missing.output


def test_gold_from_elsewhere_is_tied_to_a_batch_from_the_command_line(run_folder: Path) -> None:
    """`review gold` on a sample of a batch never enqueued ("gold-set"), two batches in the
    queue: with both holding its classes it is refused naming them and --batch; with --batch it
    is tied, listing that batch's labels; a batch lacking its class, or none of the queue, is
    refused naming it. Before, it was added untied, its Fix form listing both batches' labels."""
    from synthgate.storage.tables import review_batches

    assert invoke("review", "enqueue", "--run", str(run_folder)).exit_code == 0
    store = Store(sqlite_url(run_folder / "synthgate.db"))
    elsewhere = image_sample("gold-set", 0)
    elsewhere.status = "accepted"
    store.upsert_samples([elsewhere])
    with store.engine.begin() as connection:
        connection.execute(
            review_batches.insert(),
            [
                {"batch_id": "small-2", "labels": {"image": ["circle", "dog", "square"]}},
                {"batch_id": "triangles", "labels": {"image": ["triangle"]}},
            ],
        )
    store.close()
    gold = ("review", "gold", elsewhere.id, "--expect", "accept", "--run", str(run_folder))
    both = invoke(*gold)
    assert both.exit_code == 2
    assert "any of the batches small-1, small-2; name the one" in both.output
    assert both.output.rstrip().endswith("--batch ID")
    unknown = invoke(*gold, "--batch", "small-3")
    assert unknown.exit_code == 2
    assert "--batch small-3: no such batch in the review queue; name one of small-1, small-2, " + (
        "triangles"
    ) in " ".join(unknown.output.split())
    lacking = invoke(*gold, "--batch", "triangles")
    assert lacking.exit_code == 2
    assert "has the object class 'circle', which batch triangles lacks (it has triangle)" in (
        " ".join(lacking.output.split())
    )
    added = invoke(*gold, "--batch", "small-2")
    assert added.exit_code == 0, added.output
    (item,) = re.findall(r"gold item (\d+)", added.output)
    tied = f"gold item {item}, expecting accept, tied to batch small-2 (its Fix form lists " + (
        "small-2's labels)"
    )
    assert tied in " ".join(added.output.split())
    # its answer corrected without --batch: it stays tied to small-2, and says so
    corrected = invoke(*gold[:4], "reject", *gold[5:])
    assert corrected.exit_code == 0, corrected.output
    assert tied.replace("accept", "reject") in " ".join(corrected.output.split())
    store = Store(sqlite_url(run_folder / "synthgate.db"))
    queue = ReviewQueue(store)
    assert queue.fix_labels(int(item)) == ["circle", "dog", "square"]
    store.close()


def test_stats_name_an_item_the_blind_rule_keeps_from_everyone(tmp_path: Path) -> None:
    """Gold first (review_fixtures.met_as_gold_by_everyone): `review stats` said 1 open item
    and nothing of why nobody was given it."""
    from review_fixtures import SAMPLE_MET_AS_GOLD, met_as_gold_by_everyone

    url = sqlite_url(tmp_path / "synthgate.db")
    store = Store(url)
    _, real = met_as_gold_by_everyone(store)
    store.close()
    shown = invoke("review", "stats", "--db", url)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())  # as wrapped to the terminal
    assert f"item {real} (sample {SAMPLE_MET_AS_GOLD}) is blocked: ann, bob met its" in text
    assert f"or an admin adjudicates it (`synthgate review adjudicate {real} --verdict" in text
    numbers = json.loads(invoke("review", "stats", "--db", url, "--json").output)
    assert [each["item"] for each in numbers["blocked"]] == [real]
    # the command the line names finishes it
    decided = invoke(
        "review", "adjudicate", str(real), "--verdict", "accept", "--as", "lead", "--db", url
    )
    assert decided.exit_code == 0, decided.output
    after = json.loads(invoke("review", "stats", "--db", url, "--json").output)
    assert after["blocked"] == [] and after["items"]["final"] == numbers["items"]["final"] + 1


def test_stats_group_blocked_items_and_name_set_k_where_it_finishes_them(tmp_path: Path) -> None:
    """k = 3, a team of three; review reopen --annotator zed benches zed from every item, which
    now needs someone new: stats printed a line per item, each naming adjudication item by item,
    never `review set-k 2`, which finishes them from the two decisions each keeps (final where
    ann and bob agree, adjudication where they split). One line says how many and names a few."""
    from review_fixtures import ACCEPT, REJECT, fill

    url = sqlite_url(tmp_path / "synthgate.db")
    store = Store(url)
    fill(store, review=7, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=3, gold_rate=0.0)
    queue.enqueue_batch("b1")
    ids = sorted(work_as(queue, "ann", lambda task: ACCEPT))
    work_as(queue, "bob", lambda task: REJECT if task.item_id == ids[0] else ACCEPT)
    work_as(queue, "zed", lambda task: ACCEPT)
    queue.reopen(annotator="zed", by="lead")
    store.close()
    shown = invoke("review", "stats", "--db", url)
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())  # as wrapped to the terminal
    assert text.count("blocked") == 1, text  # one line for the seven
    assert f"7 items are blocked alike (items {', '.join(map(str, ids[:5]))}, ...)" in text, text
    assert "`synthgate review set-k 2`" in text, text
    numbers = json.loads(invoke("review", "stats", "--db", url, "--json").output)
    assert sorted(each["item"] for each in numbers["blocked"]) == ids  # the API's, item by item
    # the command the line names finishes them
    assert invoke("review", "set-k", "2", "--db", url).exit_code == 0
    after = json.loads(invoke("review", "stats", "--db", url, "--json").output)
    assert after["blocked"] == [] and after["items"] == {"open": 0, "adjudication": 1, "final": 6}


@pytest.mark.parametrize(
    "command",
    [["adjudicate", "1", "--verdict", "accept"], ["reopen", "1"]],
    ids=["adjudicate", "reopen"],
)
@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_as_is_refused_naming_as(tmp_path: Path, command: list[str], name: str) -> None:
    """`--as ''` said 'annotator name must be 1..200 characters (got '')': no annotator was
    named, and nothing said which option was wrong; review reopen --as '' took the decision
    back as 'dry-run''s."""
    from labelstudio_fixtures import snapshot
    from review_fixtures import ACCEPT, fill

    url = sqlite_url(tmp_path / "synthgate.db")
    store = Store(url)
    fill(store, review=1, audit=0, accepted=0)
    queue = ReviewQueue(store, gold_rate=0.0)
    queue.enqueue_batch("b1")
    assert work_as(queue, "ann", lambda task: ACCEPT) == [1]
    before = snapshot(store)
    refused = runner.invoke(app, ["review", *command, "--as", name, "--db", url])
    assert refused.exit_code == 2, refused.output
    said = refused.output  # one line (soft wrap): the name's spaces as they were
    assert f"error: --as {name!r}: " in said and "annotator name" not in said, said
    assert "e.g. --as lead" in said, said
    assert snapshot(store) == before
    store.close()


def work_as(queue: ReviewQueue, who: str, choose) -> list[int]:
    """Every item `who` is given, decided as `choose` says."""
    seen = []
    while (task := queue.next_item(who)) is not None:
        seen.append(task.item_id)
        queue.decide(task.item_id, who, choose(task))
    return seen


def test_release_takes_back_one_annotator_s_holds_or_everyone_s_as_before(
    tmp_path: Path,
) -> None:
    """`review release --annotator gone` takes back gone's undecided task alone (of any age, or
    older than --older-than-minutes); without --annotator it prints what it always printed."""
    from review_fixtures import fill

    url = sqlite_url(tmp_path / "synthgate.db")
    store = Store(url)
    fill(store, review=3, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch("b1")
    held = {who: queue.next_item(who) for who in ("gone", "bob", "cy")}
    store.close()
    old = invoke("review", "release", "--annotator", "gone", "--older-than-minutes", "60",
                 "--db", url)  # fmt: skip
    assert (old.exit_code, old.output) == (
        0,
        "released 0 assignments of gone undecided for longer than 60 minutes\n",
    )
    mine = invoke("review", "release", "--annotator", "gone", "--db", url)
    assert (mine.exit_code, mine.output) == (0, "released 1 assignment of gone\n")
    unknown = invoke("review", "release", "--annotator", "zed", "--db", url)
    assert unknown.exit_code == 2
    assert "--annotator zed: was never handed a task in this review queue; name an annotator" in (
        " ".join(unknown.output.split())
    )
    neither = invoke("review", "release", "--db", url)
    assert neither.exit_code == 2
    assert "name the undecided assignments to take back: --older-than-minutes N" in (
        " ".join(neither.output.split())
    )
    everyone = invoke("review", "release", "--older-than-minutes", "0", "--db", url)
    assert (everyone.exit_code, everyone.output) == (0, "released 2 assignments\n")
    store = Store(url)
    try:
        queue = ReviewQueue(store)
        assert queue.next_item("ann").item_id == held["gone"].item_id  # the first open again
    finally:
        store.close()


def test_stats_say_how_to_adjudicate_and_count_adjudications_apart(run_folder: Path) -> None:
    """Items awaiting adjudication were a count with no way out named (no command decides them);
    and the decisions counted the adjudicators' too, which no annotator row held."""
    assert invoke("review", "enqueue", "--run", str(run_folder), "--gold-rate", "0").exit_code == 0
    store = Store(sqlite_url(run_folder / "synthgate.db"))
    queue = ReviewQueue(store, seed=0)
    for who, verdict in (("ann", "accept"), ("cy", "reject")):
        while (task := queue.next_item(who)) is not None:
            queue.decide(task.item_id, who, Decision(verdict=verdict))  # type: ignore[arg-type]
    waiting = queue.awaiting_adjudication()
    queue.adjudicate(waiting[0], "lead", Decision(verdict="reject"))
    store.close()
    shown = invoke("review", "stats", "--run", str(run_folder)).output
    assert f"{len(waiting) - 1} awaiting adjudication" in shown
    flat = " ".join(shown.split())
    assert "synthgate review adjudicate" in flat and "POST /api/review/{id}/adjudication" in flat
    numbers = json.loads(invoke("review", "stats", "--run", str(run_folder), "--json").output)
    decided = sum(row["decided"] for row in numbers["annotators"].values())
    assert numbers["adjudications"] == 1 and numbers["decisions"] == decided + 1
    assert f"{decided + 1} decisions (1 by an adjudicator)" in " ".join(shown.split())
    store = Store(sqlite_url(run_folder / "synthgate.db"))
    ReviewQueue(store, seed=0).adjudicate(waiting[1], "lead", Decision(verdict="accept"))
    store.close()
    shown = invoke("review", "stats", "--run", str(run_folder)).output
    assert f"{decided + 2} decisions (2 by adjudicators)" in " ".join(shown.split())


def test_adjudicate_lists_the_split_items_and_decides_one(run_folder: Path) -> None:
    """Items awaiting adjudication had no command: a lead without a server could neither see
    their decisions nor decide them. A fix takes the labels of an annotator's fix."""
    assert invoke("review", "enqueue", "--run", str(run_folder), "--gold-rate", "0").exit_code == 0
    store = Store(sqlite_url(run_folder / "synthgate.db"))
    queue = ReviewQueue(store, seed=0)
    while (task := queue.next_item("ann")) is not None:
        queue.decide(task.item_id, "ann", Decision(verdict="accept", comment="fine"))
    fixes = {}
    while (task := queue.next_item("cy")) is not None:
        if task.sample.spec.modality == "image":
            fixes[task.item_id] = task.sample.objects[:1]  # the second box deleted
            decision = Decision(verdict="fix", objects=fixes[task.item_id])
        else:
            decision = Decision(verdict="reject", levels={"correctness": 1})
        queue.decide(task.item_id, "cy", decision)
    waiting = queue.awaiting_adjudication()
    store.close()
    listed = invoke("review", "adjudicate", "--run", str(run_folder))
    assert listed.exit_code == 0, listed.output
    assert [int(n) for n in re.findall(r"^item (\d+):", listed.output, re.M)] == waiting
    assert "ann: accept; 'fine'" in listed.output and "cy: fix (1 label)" in listed.output
    item = next(iter(fixes))
    wrong = invoke("review", "adjudicate", str(item), "--verdict", "fix", "--fix-from", "ann",
                   "--as", "lead", "--run", str(run_folder))  # fmt: skip
    assert wrong.exit_code == 2 and "ann said accept on item" in wrong.output
    own = invoke("review", "adjudicate", str(item), "--verdict", "reject", "--as", "cy",
                 "--run", str(run_folder))  # fmt: skip
    assert own.exit_code == 2 and "'cy' already decided item" in own.output
    done = invoke("review", "adjudicate", str(item), "--verdict", "fix", "--fix-from", "cy",
                  "--as", "lead", "--level", "precision=3", "--run", str(run_folder))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert f"item {item}: final verdict fix, by lead" in done.output
    store = Store(sqlite_url(run_folder / "synthgate.db"))
    try:
        queue = ReviewQueue(store)
        assert item not in queue.awaiting_adjudication()
        sample = store.get_sample(queue.task(item).sample.id)
        assert sample is not None and sample.status == "accepted"
        assert sample.objects == fixes[item]  # cy's labels, the deleted box gone
    finally:
        store.close()
    again = invoke("review", "adjudicate", str(item), "--verdict", "accept", "--as", "lead",
                   "--run", str(run_folder))  # fmt: skip
    assert again.exit_code == 2 and "not waiting for adjudication" in again.output


def test_agreement_leaves_an_excluded_annotator_out_as_the_libraries_compute_it(
    run_folder: Path,
) -> None:
    """`--exclude carol`: the agreement between ann and bob alone, as scikit-learn, statsmodels
    and krippendorff compute it on their decisions (read from the database here), and the
    output says who was left out and how many decisions that drops."""
    # the review extra's libraries, imported here as the code under test imports them
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    enqueued = invoke("review", "enqueue", "--run", str(run_folder), "-k", "3", "--gold-rate", "0")
    assert enqueued.exit_code == 0, enqueued.output
    store = Store(sqlite_url(run_folder / "synthgate.db"))
    queue = ReviewQueue(store, seed=0)
    rng = np.random.default_rng(7)
    for who in ("ann", "bob", "carol"):
        while (task := queue.next_item(who)) is not None:
            verdict = "accept" if who == "carol" else str(rng.choice(["accept", "reject"]))
            levels = {c: 5 if who == "carol" else int(rng.choice([1, 3, 5])) for c in CRITERIA[:2]}
            queue.decide(task.item_id, who, Decision(verdict=verdict, levels=levels))
    store.close()
    shown = invoke("review", "agreement", "--run", str(run_folder), "--exclude", "carol")
    assert shown.exit_code == 0, shown.output
    assert "left out: carol (10 decisions): 10 decisions on real items dropped" in shown.output
    asked = ("review", "agreement", "--run", str(run_folder), "--exclude", "carol", "--json", "-")
    report = json.loads(invoke(*asked).output)
    assert report["excluded"]["decisions"] == {"carol": 10} and report["excluded"]["dropped"] == 10

    with sqlite3.connect(run_folder / "synthgate.db") as connection:
        rows = connection.execute(
            "SELECT item_id, annotator, verdict, levels FROM review_decisions "
            "WHERE role = 'annotator' AND annotator != 'carol' ORDER BY item_id, annotator"
        ).fetchall()
    items = sorted({r[0] for r in rows})
    by = {(r[0], r[1]): (r[2], json.loads(r[3])) for r in rows}
    ann = [by[i, "ann"][0] for i in items]
    bob = [by[i, "bob"][0] for i in items]
    verdicts = report["verdicts"]
    (pair,) = verdicts["cohen_pairs"]
    assert pair["raters"] == ["ann", "bob"]
    assert pair["value"] == pytest.approx(cohen_kappa_score(ann, bob), abs=1e-9)
    table, _ = aggregate_raters(np.array([ann, bob]).T)
    assert verdicts["fleiss"]["value"] == pytest.approx(fleiss_kappa(table), abs=1e-9)
    assert verdicts["fleiss"]["n_ratings"] == 20
    codes = {"accept": 0.0, "fix": 1.0, "reject": 2.0}
    nominal = krippendorff.alpha(
        reliability_data=[[codes[v] for v in ann], [codes[v] for v in bob]],
        level_of_measurement="nominal",
        value_domain=[0.0, 1.0, 2.0],
    )
    assert verdicts["alpha_nominal"]["value"] == pytest.approx(nominal, abs=1e-9)
    for criterion in CRITERIA[:2]:
        matrix = [[by[i, who][1][criterion] for i in items] for who in ("ann", "bob")]
        ordinal = krippendorff.alpha(
            reliability_data=matrix, level_of_measurement="ordinal", value_domain=[1, 3, 5]
        )
        assert report["levels"][criterion]["value"] == pytest.approx(ordinal, abs=1e-9)
    # without --exclude carol is in every statistic, and the report has no `excluded`
    whole = json.loads(
        invoke("review", "agreement", "--run", str(run_folder), "--json", "-").output
    )
    assert "excluded" not in whole and len(whole["verdicts"]["cohen_pairs"]) == 3
    assert whole["verdicts"]["fleiss"]["n_ratings"] == 30
    # a name nobody decided under is refused, not silently "left out"
    typo = invoke("review", "agreement", "--run", str(run_folder), "--exclude", "carl")
    assert typo.exit_code == 2
    assert "--exclude 'carl': no annotator of that name" in typo.output
    assert "ann, bob, carol" in typo.output


def test_agreement_compares_the_suggestions_with_the_routing_of_the_rubric_that_routed(
    tmp_path: Path,
) -> None:
    """The threshold suggestions were compared with cut-offs only when typed in by hand
    (--accept-at, --reject-below; never on the admin page): by default they said "set" where
    the rubric's own routing was at hand. Now the rubric that routed the samples (here the
    shipped detection rubric their reports name: accept_at 4.4, reject_below 3.5) is read."""
    run = make_run_folder(tmp_path, rubric="detection")
    assert invoke("review", "enqueue", "--run", str(run), "--gold-rate", "0").exit_code == 0
    work(run)

    def report(*more: str) -> dict:
        shown = invoke("review", "agreement", "--run", str(run), "--min-items", "2", *more)
        assert shown.exit_code == 0, shown.output
        return json.loads(shown.output) if "-" in more else {"output": shown.output}

    found = report("--json", "-")["validator"]["modalities"]["image"]
    assert found["cutoffs"]["accept_at"] == 4.4 and found["cutoffs"]["reject_below"] == 3.5
    assert "'detection'" in found["cutoffs"]["source"]
    # compared with 4.4: "lower to", where nothing to compare with said "set to"
    assert found["suggestions"]["notes"] == [
        "accept_at: lower to 2.5: humans accepted 100% of reviewed samples scoring >= 2.5"
    ]
    typed = report("--json", "-", "--accept-at", "4.4", "--reject-below", "3.5")["validator"]
    typed = typed["modalities"]["image"]
    assert found["suggestions"] == typed["suggestions"]
    assert typed["cutoffs"]["source"] == "given"
    assert (
        "cut-offs compared with (image samples): accept_at 4.4, reject_below 3.5 (rubric "
        "'detection'" in (report()["output"])
    )
    # another rubric's routing to compare with, and one cut-off typed over it
    empty = Store(sqlite_url(tmp_path / "empty.db"))  # no reviewed sample of another modality
    other = routing_cutoffs(empty, load_rubric("classification"), accept_at=4)
    empty.close()
    assert (other["accept_at"], other["reject_below"]) == (4.0, 3.0)
    assert other["source"] == "given, the rest from rubric 'classification'"


def test_agreement_refuses_a_rubric_of_another_modality_than_the_reviewed_samples(
    tmp_path: Path,
) -> None:
    """`--rubric classification` (a text rubric) was compared with the scores of image samples
    too; reviewed samples of both kinds fit no one rubric. Typed cut-offs still do."""
    run = make_run_folder(tmp_path, rubric="detection")
    assert invoke("review", "enqueue", "--run", str(run), "--gold-rate", "0").exit_code == 0
    work(run)
    agreement = ("review", "agreement", "--run", str(run), "--min-items", "2")
    refused = invoke(*agreement, "--rubric", "classification", "--json", "-")
    assert refused.exit_code == 2, refused.output
    assert "--rubric classification: a rubric of text samples" in refused.output
    assert "reviewed samples are image and text" in refused.output
    assert "--accept-at and --reject-below" in refused.output
    typed = invoke(*agreement, "--accept-at", "4", "--reject-below", "3", "--json", "-")
    given = json.loads(typed.output)["validator"]["modalities"]
    assert given["image"]["cutoffs"]["source"] == given["text"]["cutoffs"]["source"] == "given"
    # with both cut-offs typed the rubric is not used: it is not refused either
    both = ("--accept-at", "4", "--reject-below", "3", "--rubric", "classification")
    unused = invoke(*agreement, *both, "--json", "-")
    assert unused.exit_code == 0, unused.output
    assert (
        json.loads(unused.output)["validator"]["modalities"]["text"]["cutoffs"]["source"] == "given"
    )


def test_agreement_says_when_the_rubric_that_routed_is_not_found(run_folder: Path) -> None:
    assert invoke("review", "enqueue", "--run", str(run_folder), "--gold-rate", "0").exit_code == 0
    work(run_folder)
    shown = invoke("review", "agreement", "--run", str(run_folder), "--json", "-")
    cutoffs = json.loads(shown.output)["validator"]["modalities"]["image"]["cutoffs"]
    assert cutoffs["accept_at"] is None and cutoffs["source"] is None
    assert "small-1 (image, rubric 'default')" in cutoffs["note"] and "--rubric" in cutoffs["note"]


def test_agreement_gives_no_cutoffs_of_a_rubric_the_reports_do_not_name(tmp_path: Path) -> None:
    """Samples routed by 'detection' (their reports say so); the batch was then run again with
    `image.rubric: classification`: the rubric is not part of the batch id, so put_batch
    replaces its config while the reviewed samples keep their reports. The agreement said
    'classification' routed them and compared with its cut-offs; now it says why it has none."""
    run = make_run_folder(tmp_path, rubric="detection")
    assert invoke("review", "enqueue", "--run", str(run), "--gold-rate", "0").exit_code == 0
    work(run)
    store = Store(sqlite_url(run / "synthgate.db"))
    config = {"categories": ["circle", "square", "triangle"]}
    config |= {modality: {"rubric": "classification"} for modality in ("image", "text")}
    store.put_batch("small-1", name="small", seed=3, config=config)
    store.close()
    out = invoke("review", "agreement", "--run", str(run), "--min-items", "2", "--json", "-")
    cutoffs = json.loads(out.output)["validator"]["modalities"]["image"]["cutoffs"]
    assert cutoffs["accept_at"] is None and cutoffs["source"] is None
    note = cutoffs["note"]
    assert "batch small-1 (image): its config names rubric 'classification' now" in note
    assert "reports name 'detection'" in note and "pass --rubric" in note
