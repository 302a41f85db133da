"""`synthgate run` end to end: exact COCO labels, exact spans, byte-identical re-runs."""

from __future__ import annotations

import itertools
import json
import string
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import yaml
from factories import small_config
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.generators.text.templates import load_template_file

runner = CliRunner()


def run_cli(config: dict, out: Path, *extra: str) -> None:
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", str(path), "--out", str(out), *extra])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "small"
    run_cli(small_config(), out)
    return out


def test_run_folder_holds_every_output(run_folder: Path) -> None:
    names = {p.name for p in run_folder.iterdir()}
    assert {
        "images",
        "coco.json",
        "accepted.coco.json",
        "text.jsonl",
        "manifest.json",
        "synthgate.db",
    } <= names
    assert not [n for n in names if n.endswith(".part")]
    manifest = json.loads((run_folder / "manifest.json").read_text())
    assert manifest["counts"]["image"]["generated"] == 6
    assert manifest["counts"]["text"]["generated"] == 12


def test_coco_labels_are_exact(run_folder: Path) -> None:
    coco = COCO(str(run_folder / "coco.json"))
    assert len(coco.getImgIds()) == 6
    image_ids = [img["id"] for img in coco.dataset["images"]]
    annotation_ids = [a["id"] for a in coco.dataset["annotations"]]
    for ids in (image_ids, annotation_ids):
        assert len(ids) == len(set(ids)) and min(ids) >= 1
    assert coco.dataset["annotations"], "a batch of six images should hold objects"
    for annotation in coco.dataset["annotations"]:
        decoded = mask_utils.decode(
            {**annotation["segmentation"], "counts": annotation["segmentation"]["counts"].encode()}
        )
        assert int(decoded.sum()) == annotation["area"]
        rows, cols = np.nonzero(decoded)
        tight = [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
        assert annotation["bbox"] == [float(v) for v in tight]
        assert annotation["iscrowd"] == 0
    for image in coco.dataset["images"]:
        with Image.open(run_folder / image["file_name"]) as pil:
            assert pil.size == (image["width"], image["height"]) == (96, 64)
    names = {c["name"]: c["id"] for c in coco.dataset["categories"]}
    assert names == {"circle": 1, "square": 2, "triangle": 3}
    used = {a["category_id"] for a in coco.dataset["annotations"]}
    assert used == set(names.values())


def _is_boundary_junk(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in "PS" or char in string.punctuation


def test_text_spans_are_exact(run_folder: Path) -> None:
    declared = set(load_template_file(Path(small_config()["text"]["templates"])).labels)
    rows = [json.loads(line) for line in (run_folder / "text.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12
    assert {r["attributes"]["locale"] for r in rows} == {"en_US", "de_DE", "ja_JP"}
    for row in rows:
        spans = sorted(row["spans"])
        for start, end, label in spans:
            value = row["text"][start:end]
            assert value and not _is_boundary_junk(value[0]) and not _is_boundary_junk(value[-1])
            assert label in declared
        for (_, end, _), (start, _, _) in itertools.pairwise(spans):
            assert end <= start


def test_same_seed_is_byte_identical_and_another_seed_differs(
    run_folder: Path, tmp_path: Path
) -> None:
    again = tmp_path / "again"
    run_cli(small_config(), again)
    for name in ("coco.json", "accepted.coco.json", "text.jsonl"):
        assert (again / name).read_bytes() == (run_folder / name).read_bytes(), name
    first_images = sorted((run_folder / "images").iterdir())
    assert [p.name for p in first_images] == sorted(p.name for p in (again / "images").iterdir())
    for path in first_images:
        assert path.read_bytes() == (again / "images" / path.name).read_bytes()

    other = tmp_path / "other"
    run_cli(small_config(), other, "--seed", "4")
    assert (other / "text.jsonl").read_bytes() != (run_folder / "text.jsonl").read_bytes()
    other_pixels = [np.asarray(Image.open(p)) for p in sorted((other / "images").iterdir())]
    first_pixels = [np.asarray(Image.open(p)) for p in first_images]
    assert all(not np.array_equal(a, b) for a, b in zip(other_pixels, first_pixels, strict=True))


def test_rerun_into_the_same_folder_replaces_it(tmp_path: Path) -> None:
    """The old run goes whole: none of its images stays beside the new run's (a file of the
    user's own stops the rerun instead: tests/test_out_foreign_files.py)."""
    out = tmp_path / "run"
    run_cli(small_config(image={"generator": "procedural", "count": 3, "size": [64, 64]}), out)
    first = {p.name for p in (out / "images").iterdir()}
    config = small_config(seed=8, image={"generator": "procedural", "count": 2, "size": [64, 64]})
    run_cli(config, out)
    again = {p.name for p in (out / "images").iterdir()}
    assert len(again) == 2 and not first & again
    assert not list(tmp_path.glob(".run.*"))


def test_version_and_help() -> None:
    assert runner.invoke(app, ["--version"]).output.startswith("synthgate ")
    help_text = runner.invoke(app, ["run", "--help"]).output
    assert "--seed" in help_text and "--out" in help_text


def test_rerun_refuses_to_replace_human_review_decisions(tmp_path: Path) -> None:
    """Reviewed data is never lost: a run folder holding decisions is not replaced."""
    from synthgate.review.queue import Decision, ReviewQueue
    from synthgate.storage.store import Store, sqlite_url

    out = tmp_path / "run"
    config = small_config(
        image={"generator": "procedural", "count": 2, "size": [64, 64]}, text=None
    )
    run_cli(config, out)
    store = Store(sqlite_url(out / "synthgate.db"))
    batch_id = json.loads((out / "manifest.json").read_text())["batch_id"]
    first = next(store.iter_samples(batch_id, "image"))
    store.upsert_samples([first.model_copy(update={"status": "review"})])
    queue = ReviewQueue(store, annotators_per_item=1, gold_rate=0.0)
    queue.enqueue_batch(batch_id)
    task = queue.next_item("ann")
    assert task is not None
    queue.decide(task.item_id, "ann", Decision(verdict="accept"))
    store.close()
    before = (out / "synthgate.db").read_bytes()

    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(config))
    result = runner.invoke(app, ["run", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert "holds 1 human review decision that a new run would replace" in result.output
    assert (out / "synthgate.db").read_bytes() == before
