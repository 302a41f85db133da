"""Rubric vs humans in the agreement report, per modality: a queue holding image and text
samples pooled both into one kappa, one confusion table and one set of threshold suggestions,
though each modality is routed by a rubric of its own (a detection score is no ner score). A
queue of one modality keeps the report it had."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_review_cli import make_run_folder

from synthgate.review.adjudication import ROUTE_OF_VERDICT
from synthgate.review.queue import Decision, ReviewQueue
from synthgate.review.report import (
    _final_items,
    agreement_report,
    routing_cutoffs,
    validator_vs_human,
)
from synthgate.storage.store import Store, sqlite_url

pytest.importorskip("sklearn")


def _reviewed(tmp_path: Path, *, modalities: tuple[str, ...]) -> Store:
    """make_run_folder's batch (10 image and 10 text samples, 5 of each queued), the samples of
    other modalities than `modalities` taken out; people accept every image sample and reject
    every text sample, so pooled tables would mix two opposite answers."""
    run = make_run_folder(tmp_path, rubric="detection")
    store = Store(sqlite_url(run / "synthgate.db"))
    kept = [s for s in store.iter_samples("small-1", "image")] if "image" in modalities else []
    kept += [s for s in store.iter_samples("small-1", "text")] if "text" in modalities else []
    store.close()
    (run / "synthgate.db").unlink()
    store = Store(sqlite_url(run / "synthgate.db"))
    store.put_batch(
        "small-1", name="small", seed=3, config={"categories": ["circle", "square", "triangle"]}
    )
    store.upsert_samples(kept)
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0, seed=0)
    queue.enqueue_batch("small-1")
    while (task := queue.next_item("ann")) is not None:
        verdict = "accept" if task.sample.text is None else "reject"  # blind: no spec
        queue.decide(task.item_id, "ann", Decision(verdict=verdict))
    return store


def test_a_queue_of_both_modalities_compares_each_with_its_own_routes(tmp_path: Path) -> None:
    store = _reviewed(tmp_path, modalities=("image", "text"))
    validator = agreement_report(store, min_items=2)["validator"]
    assert sorted(validator["modalities"]) == ["image", "text"]
    for modality, verdict in (("image", "accept"), ("text", "reject")):
        each = validator["modalities"][modality]
        finals = list(_final_items(store, modality=modality))
        assert finals and {s.spec.modality for s, _ in finals} == {modality}
        assert {v for _, v in finals} == {verdict}
        # each table counts its own samples only: 5 of each, not 10 of both
        assert sum(n for row in each["confusion"].values() for n in row.values()) == len(finals)
        assert set().union(*each["confusion"].values()) == {ROUTE_OF_VERDICT[verdict]}
        cutoffs = routing_cutoffs(store, modality=modality)
        assert each == {
            **validator_vs_human(
                finals,
                accept_at=cutoffs["accept_at"],
                reject_below=cutoffs["reject_below"],
                min_items=2,
            ),
            "cutoffs": cutoffs,
        }
    # the pooled keys stay, for readers of a one-modality report, empty and saying where to look
    assert validator["confusion"] == {} and validator["kappa"]["value"] is None
    assert "compared per modality (validator.modalities)" in validator["cutoffs"]["note"]
    store.close()


@pytest.mark.parametrize("modality", ["image", "text"])
def test_a_queue_of_one_modality_keeps_its_report(tmp_path: Path, modality: str) -> None:
    store = _reviewed(tmp_path, modalities=(modality,))
    validator = agreement_report(store, min_items=2)["validator"]
    cutoffs = routing_cutoffs(store)
    assert validator == {
        **validator_vs_human(
            _final_items(store),
            accept_at=cutoffs["accept_at"],
            reject_below=cutoffs["reject_below"],
            min_items=2,
        ),
        "cutoffs": cutoffs,
    }
    assert list(validator) == ["kappa", "confusion", "suggestions", "cutoffs"]
    store.close()


def test_the_cli_prints_a_table_for_each_modality(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from synthgate.cli import app

    _reviewed(tmp_path, modalities=("image", "text")).close()
    db = f"sqlite:///{tmp_path / 'run' / 'synthgate.db'}"
    shown = CliRunner().invoke(
        app, ["review", "agreement", "--db", db, "--min-items", "2"], env={"COLUMNS": "200"}
    )
    assert shown.exit_code == 0, shown.output
    image = shown.output.index("rubric route vs final human verdict (image samples)")
    text = shown.output.index("rubric route vs final human verdict (text samples)")
    assert image < text


def test_the_admin_page_shows_a_table_for_each_modality(tmp_path: Path) -> None:
    """The admin page's agreement tables drew the pooled keys of a mixed report: an empty
    table and a kappa of "n/a", the per-modality numbers nowhere."""
    from synthgate.api.view import agreement_tables

    store = _reviewed(tmp_path, modalities=("image", "text"))
    report = agreement_report(store, min_items=2)
    tables = {t["title"]: t for t in agreement_tables(report)}
    assert "Validator vs humans" not in tables
    for modality in ("image", "text"):
        table = tables[f"Validator vs humans ({modality} samples)"]
        counts = report["validator"]["modalities"][modality]["confusion"]
        assert table["rows"] and sum(int(n) for row in table["rows"] for n in row[1:]) == sum(
            n for row in counts.values() for n in row.values()
        )
    store.close()


def test_the_admin_page_keeps_one_table_for_one_modality(tmp_path: Path) -> None:
    from synthgate.api.view import agreement_tables

    store = _reviewed(tmp_path, modalities=("image",))
    titles = [t["title"] for t in agreement_tables(agreement_report(store, min_items=2))]
    assert titles[-1] == "Validator vs humans" and not any("samples)" in t for t in titles)
    store.close()
