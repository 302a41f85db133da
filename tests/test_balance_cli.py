"""`synthgate balance` end to end on the tiny COCO fixture: the merged file, the summary,
reproducibility, validation of the result, reruns that never overwrite review decisions, and
mixed generators."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from balance_fixtures import balance_coco, make_tiny_coco, run_cli
from pycocotools.coco import COCO

from synthgate.commands import progress_bars, run_progress


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def balanced(tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    coco, images = tiny
    out = tmp_path_factory.mktemp("balanced") / "out"
    result = balance_coco(str(coco), str(images), str(out), "--target", "median")
    assert result.returncode == 0, result.stderr + result.stdout
    made = json.loads((out / "balance.json").read_text())["runs"]
    assert made and re.search(r"image .* (\d+)/\1 ", result.stderr)  # its progress bar
    return out


def test_run_progress_gives_each_run_its_own_bar() -> None:
    """balance runs one batch per generator section, each with its own total."""
    with progress_bars() as bars:
        advance = run_progress(bars)
        for done in (2, 3):
            advance("image", done, 5)  # the first run: 5 samples
        advance("image", 4, 4)  # the second
        advance("text", 1, 1)
        shown = [(t.description.strip(), t.completed, t.total) for t in bars.tasks]
    assert shown == [("image", 5, 5), ("image", 4, 4), ("text", 1, 1)]


def test_balance_median_merges_a_file_pycocotools_loads(
    balanced: Path, tiny: tuple[Path, Path]
) -> None:
    merged_path = balanced / "merged.coco.json"
    coco = COCO(str(merged_path))
    real = json.loads(tiny[0].read_text())
    merged = json.loads(merged_path.read_text())
    # Every original entry is kept and first, its image now under the output's images/;
    # categories are the real ones.
    assert merged["images"][: len(real["images"])] == [
        {**image, "file_name": f"images/{image['file_name']}"} for image in real["images"]
    ]
    assert merged["annotations"][: len(real["annotations"])] == real["annotations"]
    assert merged["categories"] == real["categories"]
    assert merged["info"] == real["info"]
    synthetic = merged["images"][len(real["images"]) :]
    assert synthetic, "nothing was merged"
    ids = [i["id"] for i in merged["images"]]
    assert len(ids) == len(set(ids))
    annotation_ids = [a["id"] for a in merged["annotations"]]
    assert len(annotation_ids) == len(set(annotation_ids))
    for image in synthetic:
        mark = image["synthgate"]
        assert mark["synthetic"] is True
        assert {"sample_id", "batch_id", "generator", "seed", "score"} <= set(mark)
        assert mark["generator"] == "copy_paste"
        assert coco.getAnnIds(imgIds=[image["id"]])
    for image in merged["images"]:
        # Relative to the output folder and inside it, real and synthetic images alike.
        assert ".." not in Path(image["file_name"]).parts
        assert (balanced / image["file_name"]).is_file()


def test_balance_median_raises_every_class_below_median_or_says_why(balanced: Path) -> None:
    summary = json.loads((balanced / "balance.json").read_text())
    classes = summary["classes"]
    assert classes["tri"]["before"] == 1 and classes["tri"]["target"] == 3
    for name, entry in classes.items():
        if entry["before"] < entry["target"]:
            assert entry["after"] >= entry["target"] or entry["why_not"], name
    assert classes["tri"]["after"] >= 3
    assert "no non-crowd instance" in classes["blob"]["why_not"]
    for name in ("report.md", "report.html", "plots/class_histogram.svg"):
        assert (balanced / name).is_file()


def test_balance_is_reproducible(balanced: Path, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    coco, images = tiny
    out = tmp_path / "again"
    result = balance_coco(str(coco), str(images), str(out), "--target", "median")
    assert result.returncode == 0, result.stderr

    # Self-contained folders: the same bytes wherever they are written.
    assert (out / "merged.coco.json").read_bytes() == (balanced / "merged.coco.json").read_bytes()


def test_validate_finds_every_image_of_a_moved_balanced_folder(
    balanced: Path, tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(balanced, moved, copy_function=os.link)
    merged = json.loads((moved / "merged.coco.json").read_text())
    result = run_cli("validate", str(moved / "merged.coco.json"), "--images", str(moved))
    assert result.returncode == 0, result.stderr
    assert f"{len(merged['images'])} samples" in result.stdout
    assert "image_unreadable" not in result.stdout, result.stdout


def _add_review_decision(db: Path) -> None:
    """One human decision in a run database, the way a reviewer makes it."""
    from synthgate.review.queue import Decision, ReviewQueue
    from synthgate.storage.store import Store, sqlite_url

    store = Store(sqlite_url(db))
    batch_id = json.loads((db.parent / "manifest.json").read_text())["batch_id"]
    first = next(store.iter_samples(batch_id, "image"))
    store.upsert_samples([first.model_copy(update={"status": "review"})])
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch(batch_id)
    task = queue.next_item("ann")
    assert task is not None
    queue.decide(task.item_id, "ann", Decision(verdict="accept"))
    store.close()


def test_rerun_replaces_a_balance_output_but_never_review_decisions(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco, images = tiny
    out = tmp_path / "out"
    assert balance_coco(coco, images, out).returncode == 0
    again = balance_coco(coco, images, out)
    assert again.returncode == 0, again.stderr
    assert (out / "balance.json").is_file()
    db = next(out.glob("runs/*/synthgate.db"))
    _add_review_decision(db)
    before = db.read_bytes()
    refused = balance_coco(coco, images, out)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "holds 1 human review decision that" in " ".join(refused.stderr.split())
    assert db.read_bytes() == before and (out / "merged.coco.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


def test_generators_can_be_mixed_and_unknown_ones_are_named(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco, images = tiny
    config = tmp_path / "mix.yaml"
    config.write_text(
        "name: mix\nimage:\n  - {generator: copy_paste}\n  - {generator: procedural, size: [64, 64], objects_per_image: [1, 1]}\n"
    )
    out = tmp_path / "out"
    result = balance_coco(
        str(coco), str(images), str(out), "--target", "5", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "balance.json").read_text())
    assert summary["runs"] == ["runs/mix-0-copy_paste", "runs/mix-1-procedural"]
    merged = json.loads((out / "merged.coco.json").read_text())
    generators = Counter(i["synthgate"]["generator"] for i in merged["images"] if "synthgate" in i)
    assert set(generators) == {"copy_paste", "procedural"}
    # blob has nothing to cut out, but the procedural generator can draw it
    assert summary["classes"]["blob"]["after"] > 0
    config.write_text("image: {generator: object_paste_missing}\n")
    result = balance_coco(str(coco), str(images), str(tmp_path / "o2"), "--config", str(config))
    assert (
        result.returncode == 2
        and "object_paste_missing" in result.stderr
        and "copy_paste" in result.stderr
    )


def test_a_balance_that_adds_nothing_says_why(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """It printed an empty table, exit 0: repeat_factor on a small dataset (no class in fewer
    than 0.1 % of the images) added nothing, unexplained."""
    coco, images = tiny
    result = balance_coco(coco, images, tmp_path / "out", "--target", "repeat_factor")
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert "no class is below its target (repeat_factor); repeat_factor (LVIS) raises only" in said
    assert "nothing was added" in said
    assert "┏" not in result.stdout  # no empty table


def test_a_text_balance_that_adds_nothing_says_why_in_rows(tmp_path: Path) -> None:
    """The text balance's repeat_factor reason spoke of images: a JSONL holds rows."""
    rows = tmp_path / "reviews.jsonl"
    rows.write_text(
        '{"text": "Anna loves it.", "label": "pos"}\n'
        '{"text": "Tom hates it.", "label": "neg"}\n'
        '{"text": "Maria loves it too.", "label": "pos"}\n'
    )
    out = tmp_path / "out"
    result = run_cli(
        "balance", "--jsonl", str(rows), "--out", str(out), "--target", "repeat_factor"
    )
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stdout.split())
    assert (
        "no class is below its target (repeat_factor); repeat_factor (LVIS) raises only classes "
        "in fewer than repeat_threshold of the rows (0.001 unless a --config sets it): nothing "
        "was added" in said
    ), said


def test_class_names_that_trimming_or_case_would_merge_are_warned_of(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    """Classes with spaces around their name (' disc '), or that differ only in case (Square,
    square), were balanced without a word: YOLO and VOC exports, and tools that trim names,
    read them as other classes, or as one. Balance keeps them (it writes the dataset's names
    as they are) and says which, and the fix; a dataset of plain names gets no warning."""
    coco, images = tiny
    data = json.loads(coco.read_text())
    data["categories"][1]["name"] = " disc "
    data["categories"][3]["name"] = "Square"
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(data))
    result = balance_coco(renamed, images, tmp_path / "out", "--dry-run")
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert (
        f"warning: {renamed}: class ' disc ' has spaces around its name, and 'square', 'Square' "
        "differ only in case: YOLO and VOC exports, and tools that trim or lower-case class "
        "names, would read them as other classes, or as one; rename them in the dataset "
        "(balance keeps them as they are)" in said
    ), said
    plain = balance_coco(coco, images, tmp_path / "plain", "--dry-run")
    assert plain.returncode == 0 and "warning" not in plain.stderr, plain.stderr

    rows = tmp_path / "pets.jsonl"
    rows.write_text(
        "".join(
            json.dumps({"text": f"{name} walked the pet today.", "label": label}) + "\n"
            for name, label in [("Anna", "Dog"), ("Tom", "dog"), ("Maria", "dog"), ("Ben", "cat")]
        )
    )
    out = tmp_path / "text"
    result = run_cli("balance", "--jsonl", str(rows), "--out", str(out), "--target", "max")
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert f"warning: {rows}: classes 'Dog', 'dog' differ only in case:" in said, said
    assert json.loads((out / "balance.json").read_text())["warnings"] == [
        f"{rows}: classes 'Dog', 'dog' differ only in case: YOLO and VOC exports, and tools "
        "that trim or lower-case class names, would read them as other classes, or as one; "
        "rename them in the dataset (balance keeps them as they are)"
    ]
