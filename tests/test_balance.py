"""Balancing: counts, targets, deficits, attribute quotas, the plan, and `synthgate balance` end to end.

`make_tiny_coco` builds the fixture the balance, merge, copy-paste and report tests share: six
64x64 images with polygon, RLE and crowd annotations of an imbalanced taxonomy
(square 8, disc 3, tri 1, blob 0; one crowd region of squares).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from synthgate.datasets.balance import (
    ClassCount,
    assign_attributes,
    attribute_shares,
    class_counts,
    class_targets,
    deficits,
    label_counts,
    parse_target,
    plan_specs,
    split_deficits,
)
from synthgate.errors import InputError

SIZE = 64
CATEGORIES = [
    {"id": 1, "name": "square", "supercategory": "shape"},
    {"id": 2, "name": "disc", "supercategory": "shape"},
    {"id": 3, "name": "tri", "supercategory": "shape"},
    {"id": 5, "name": "blob", "supercategory": "shape"},
]
# image id -> [(category id, kind, x, y, size)]
LAYOUT: dict[int, list[tuple[int, str, int, int, int]]] = {
    101: [(1, "square", 4, 4, 14), (1, "square", 36, 36, 16), (2, "disc", 40, 6, 14)],
    102: [(1, "square", 8, 30, 18), (3, "tri", 30, 8, 24)],
    103: [(1, "square", 6, 6, 12), (2, "disc", 30, 30, 20)],
    104: [(1, "square", 40, 8, 14), (1, "square", 10, 40, 14)],
    105: [(2, "disc", 20, 20, 18)],
    106: [(1, "square", 34, 34, 20)],
}
CROWD_IMAGE = 106


def _shape_mask(kind: str, x: int, y: int, size: int) -> tuple[np.ndarray, list[float] | None]:
    image = Image.new("L", (SIZE, SIZE), 0)
    draw = ImageDraw.Draw(image)
    polygon = None
    if kind == "square":
        polygon = [x, y, x + size, y, x + size, y + size, x, y + size]
    elif kind == "tri":
        polygon = [x, y + size, x + size / 2, y, x + size, y + size]
    if polygon is not None:
        draw.polygon(polygon, fill=1)
        # Mask as pycocotools rasterises the polygon, so labels and pixels agree exactly.
        rle = mask_utils.merge(mask_utils.frPyObjects([polygon], SIZE, SIZE))
        return mask_utils.decode(rle).astype(bool), [float(v) for v in polygon]
    draw.ellipse([x, y, x + size, y + size], fill=1)
    return np.asarray(image).astype(bool), None


def make_tiny_coco(folder: Path) -> tuple[Path, Path]:
    """Write images/ and annotations.json under `folder`; returns (coco path, images dir)."""
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    colours = {1: (200, 40, 40), 2: (40, 160, 60), 3: (40, 60, 200)}
    images, annotations = [], []
    next_annotation = 1000
    for image_id, objects in LAYOUT.items():
        pixels = np.full((SIZE, SIZE, 3), rng.integers(90, 170, size=3), dtype=np.uint8)
        for category_id, kind, x, y, size in objects:
            mask, polygon = _shape_mask(kind, x, y, size)
            pixels[mask] = colours[category_id]
            if polygon is not None:
                segmentation: Any = [polygon]
            else:
                rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
                segmentation = {"size": [SIZE, SIZE], "counts": rle["counts"].decode("ascii")}
            x0, y0, w, h = mask_utils.toBbox(
                mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            )
            annotations.append(
                {
                    "id": next_annotation,
                    "image_id": image_id,
                    "category_id": category_id,
                    "segmentation": segmentation,
                    "area": float(mask.sum()),
                    "bbox": [float(x0), float(y0), float(w), float(h)],
                    "iscrowd": 0,
                }
            )
            next_annotation += 1
        if image_id == CROWD_IMAGE:  # a crowd of squares, as uncompressed RLE
            crowd = np.zeros((SIZE, SIZE), dtype=bool)
            crowd[2:12, 2:30] = True
            pixels[crowd] = colours[1]
            counts = mask_utils.frPyObjects(
                {"size": [SIZE, SIZE], "counts": _uncompressed(crowd)}, SIZE, SIZE
            )
            annotations.append(
                {
                    "id": next_annotation,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": {"size": [SIZE, SIZE], "counts": _uncompressed(crowd)},
                    "area": float(mask_utils.area(counts)),
                    "bbox": [2.0, 2.0, 28.0, 10.0],
                    "iscrowd": 1,
                }
            )
            next_annotation += 1
        name = f"img_{image_id}.png"
        Image.fromarray(pixels).save(images_dir / name)
        images.append(
            {"id": image_id, "file_name": name, "width": SIZE, "height": SIZE, "license": 0}
        )
    coco = {
        "info": {"description": "tiny balance fixture"},
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
    }
    path = folder / "annotations.json"
    path.write_text(json.dumps(coco))
    return path, images_dir


def _uncompressed(mask: np.ndarray) -> list[int]:
    """COCO uncompressed RLE counts (column-major runs, starting with a run of zeros)."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = value, 0
        run += 1
    counts.append(run)
    return counts


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("tiny"))


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthgate", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
    )


# --- counts, targets, deficits ---------------------------------------------------------------


def test_class_counts_leave_crowds_out_and_keep_empty_classes(tiny: tuple[Path, Path]) -> None:
    counts = class_counts(json.loads(tiny[0].read_text()))
    assert counts == {
        "square": ClassCount(instances=7, images=5),
        "disc": ClassCount(3, 3),
        "tri": ClassCount(1, 1),
        "blob": ClassCount(0, 0),
    }


COUNTS = {
    "a": ClassCount(100, 50),
    "b": ClassCount(10, 10),
    "c": ClassCount(3, 1),
    "d": ClassCount(0, 0),
}

TARGET_CASES = [
    ("max", {"a": 100, "b": 100, "c": 100, "d": 100}),
    ("median", {"a": 10, "b": 10, "c": 10, "d": 10}),  # median of the classes present
    (25, {"a": 25, "b": 25, "c": 25, "d": 25}),
    # LVIS: f = images/100; r = max(1, sqrt(0.1 / f)): a 1, b 1, c sqrt(10) -> ceil(3 * 3.162)
    ("repeat_factor", {"a": 100, "b": 10, "c": 10, "d": 0}),
]


@pytest.mark.parametrize(
    ("target", "expected"), TARGET_CASES, ids=[str(c[0]) for c in TARGET_CASES]
)
def test_class_targets(target: str | int, expected: dict[str, int]) -> None:
    assert class_targets(COUNTS, target, image_count=100, repeat_threshold=0.1) == expected


def test_targets_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text("c: 40\nd: 5\n")
    targets = class_targets(COUNTS, parse_target(str(path)), image_count=100)
    assert targets == {"a": 100, "b": 10, "c": 40, "d": 5}
    assert deficits(COUNTS, targets) == {"a": 0, "b": 0, "c": 37, "d": 5}


BAD_TARGETS = [
    ("largest", "choose max, median"),
    ("0", "must be > 0"),
    ("missing.yaml", "file not found"),
]


@pytest.mark.parametrize(("value", "words"), BAD_TARGETS)
def test_bad_targets_are_clear_errors(value: str, words: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=words):
        parse_target(value)


def test_yaml_target_with_unknown_class_names_it(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text("zebra: 4\n")
    with pytest.raises(InputError, match="zebra"):
        class_targets(COUNTS, path, image_count=100)


def test_deficits_respect_classes_and_cap() -> None:
    targets = dict.fromkeys(COUNTS, 50)
    assert deficits(COUNTS, targets) == {"a": 0, "b": 40, "c": 47, "d": 50}
    assert deficits(COUNTS, targets, classes=["c"], max_new_per_class=20) == {
        "a": 0,
        "b": 0,
        "c": 20,
        "d": 0,
    }


def test_label_counts_of_text_rows() -> None:
    rows = [{"label": "pos"}, {"label": "neg"}, {"label": "pos"}]
    assert label_counts(rows, label_field="label") == {
        "pos": ClassCount(2, 2),
        "neg": ClassCount(1, 1),
    }


# --- attributes and the plan -------------------------------------------------------------------


def test_assign_attributes_closes_the_gap_first() -> None:
    shares = attribute_shares({"gender": ["female", "male"]})
    existing = {"gender": Counter({"male": 6, "female": 2})}
    chosen = [a["gender"] for a in assign_attributes(6, shares, existing)]
    assert chosen == ["female"] * 4 + ["female", "male"]
    assert Counter(chosen) + existing["gender"] == Counter({"female": 7, "male": 7})


def test_assign_attributes_follows_weighted_shares() -> None:
    shares = attribute_shares({"locale": {"en_US": 1, "de_DE": 1, "ja_JP": 2}})
    chosen = Counter(a["locale"] for a in assign_attributes(40, shares))
    assert chosen == {"en_US": 10, "de_DE": 10, "ja_JP": 20}


def test_plan_specs_adds_exactly_the_deficit() -> None:
    specs = plan_specs(
        {"tri": 7, "disc": 2, "square": 0},
        batch_id="b",
        seed=3,
        modality="image",
        generator="copy_paste",
        instances_per_sample=3,
        shares=attribute_shares({"light": ["day", "night"]}),
    )
    assert [s.index for s in specs] == list(range(len(specs)))
    assert [(s.category, s.params["instances"]) for s in specs] == [
        ("tri", 3),
        ("tri", 3),
        ("tri", 1),
        ("disc", 2),
    ]
    assert len({s.seed for s in specs}) == len(specs)
    assert [s.attributes["light"] for s in specs[:3]] == ["day", "night", "day"]
    again = plan_specs(
        {"tri": 7, "disc": 2},
        batch_id="b",
        seed=3,
        modality="image",
        generator="copy_paste",
        instances_per_sample=3,
    )
    assert [s.seed for s in again] == [s.seed for s in specs]


def test_split_deficits_between_generators() -> None:
    assert split_deficits({"a": 5, "b": 1}, 2) == [{"a": 3, "b": 1}, {"a": 2, "b": 0}]


# --- synthgate balance end to end --------------------------------------------------------------


@pytest.fixture(scope="module")
def balanced(tiny: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    coco, images = tiny
    out = tmp_path_factory.mktemp("balanced") / "out"
    result = run_cli(
        "balance",
        "--coco",
        str(coco),
        "--images",
        str(images),
        "--out",
        str(out),
        "--target",
        "median",
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return out


def test_balance_median_merges_a_file_pycocotools_loads(
    balanced: Path, tiny: tuple[Path, Path]
) -> None:
    merged_path = balanced / "merged.coco.json"
    coco = COCO(str(merged_path))
    real = json.loads(tiny[0].read_text())
    merged = json.loads(merged_path.read_text())
    # Every original entry is kept, unchanged and first; categories are the real ones.
    assert merged["images"][: len(real["images"])] == real["images"]
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
        # Relative to the real images folder, like the real file names: one --images for all.
        assert (tiny[1] / image["file_name"]).is_file()
        assert coco.getAnnIds(imgIds=[image["id"]])


def test_balance_median_raises_every_class_below_median_or_says_why(balanced: Path) -> None:
    summary = json.loads((balanced / "balance.json").read_text())
    classes = summary["classes"]
    assert classes["tri"]["before"] == 1 and classes["tri"]["target"] == 3
    for name, entry in classes.items():
        if entry["before"] < entry["target"]:
            assert entry["after"] >= entry["target"] or entry["why_not"], name
    assert classes["tri"]["after"] >= 3
    assert "no non-crowd instance" in classes["blob"]["why_not"]
    for name in ("report.md", "report.html", "plots/class_histogram.png"):
        assert (balanced / name).is_file()


def test_balance_is_reproducible(balanced: Path, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    coco, images = tiny
    out = tmp_path / "again"
    result = run_cli(
        "balance",
        "--coco",
        str(coco),
        "--images",
        str(images),
        "--out",
        str(out),
        "--target",
        "median",
    )
    assert result.returncode == 0, result.stderr

    def located(folder: Path) -> dict[str, Any]:
        """The merged file with each image named by where it lies inside `folder` (file names
        are relative to the real images folder, so they differ with the output's place)."""
        data = json.loads((folder / "merged.coco.json").read_text())
        for image in data["images"]:
            path = (images / image["file_name"]).resolve()
            if path.is_relative_to(folder.resolve()):
                image["file_name"] = str(path.relative_to(folder.resolve()))
        return data

    assert located(out) == located(balanced)


def test_validate_finds_every_image_of_a_balanced_file(
    balanced: Path, tiny: tuple[Path, Path]
) -> None:
    merged = json.loads((balanced / "merged.coco.json").read_text())
    result = run_cli("validate", str(balanced / "merged.coco.json"), "--images", str(tiny[1]))
    assert result.returncode == 0, result.stderr
    assert f"{len(merged['images'])} samples" in result.stdout
    assert "image_unreadable" not in result.stdout, result.stdout


def _add_review_decision(db: Path) -> None:
    """One human decision in a run database, the way a reviewer makes it."""
    from synthgate.review.queue import Decision, ReviewQueue
    from synthgate.store import Store, sqlite_url

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
    args = ("balance", "--coco", str(coco), "--images", str(images), "--out", str(out))
    assert run_cli(*args).returncode == 0
    (out / "stale.txt").write_text("from an earlier balance")
    again = run_cli(*args)
    assert again.returncode == 0, again.stderr
    assert not (out / "stale.txt").exists() and (out / "balance.json").is_file()
    db = next(out.glob("runs/*/synthgate.db"))
    _add_review_decision(db)
    before = db.read_bytes()
    refused = run_cli(*args)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "1 human review decisions" in " ".join(refused.stderr.split())
    assert db.read_bytes() == before and (out / "merged.coco.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder left


# --- bad input: clear errors naming the entries, nothing written --------------------------------


def _broken(real: dict[str, Any], case: str) -> dict[str, Any]:
    data = json.loads(json.dumps(real))
    if case == "dangling-image":
        data["annotations"][0]["image_id"] = 999
    elif case == "dangling-category":
        data["annotations"][1]["category_id"] = 77
    elif case == "duplicate-image":
        data["images"].append(dict(data["images"][0]))
    elif case == "duplicate-annotation":
        data["annotations"][2]["id"] = data["annotations"][3]["id"]
    elif case == "short-polygon":
        data["annotations"][0]["segmentation"] = [[1.0, 1.0, 5.0, 5.0]]
    elif case == "missing-image":
        data["images"][1]["file_name"] = "gone.png"
    return data


BAD_COCO_CASES = [
    ("dangling-image", ["annotations[0]", "image_id 999", "dangling"]),
    ("dangling-category", ["annotations[1]", "category_id 77"]),
    ("duplicate-image", ["images[6]", "id 101", "duplicate id"]),
    ("duplicate-annotation", ["annotations[3]", "duplicate id"]),
    ("short-polygon", ["annotations[0]", "2 point(s)", "at least 3"]),
    ("missing-image", ["images[1]", "id 102", "gone.png"]),
]


@pytest.mark.parametrize(("case", "words"), BAD_COCO_CASES, ids=[c[0] for c in BAD_COCO_CASES])
def test_bad_coco_is_refused_naming_the_entries(
    case: str, words: list[str], tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco, images = tiny
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(_broken(json.loads(coco.read_text()), case)))
    out = tmp_path / "out"
    result = run_cli("balance", "--coco", str(bad), "--images", str(images), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in message, (word, message)
    assert "nothing was written" in message
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))


def test_skip_invalid_leaves_bad_entries_out_and_lists_them(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco, images = tiny
    data = _broken(_broken(json.loads(coco.read_text()), "missing-image"), "short-polygon")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out"
    result = run_cli(
        "balance", "--coco", str(bad), "--images", str(images), "--out", str(out), "--skip-invalid"
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "balance.json").read_text())
    skipped = " ".join(summary["skipped_input"])
    assert (
        "gone.png" in skipped
        and "at least 3" in skipped
        and "left out with its image 102" in skipped
    )
    merged = json.loads((out / "merged.coco.json").read_text())
    assert 102 not in {i["id"] for i in merged["images"]}
    assert data["annotations"][0]["id"] not in {a["id"] for a in merged["annotations"]}
    COCO(str(out / "merged.coco.json"))


def test_balance_needs_one_input(tmp_path: Path) -> None:
    result = run_cli("balance", "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "--coco" in result.stderr and "--jsonl" in result.stderr


def test_generators_can_be_mixed_and_unknown_ones_are_named(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco, images = tiny
    config = tmp_path / "mix.yaml"
    config.write_text(
        "name: mix\nimage:\n  - {generator: copy_paste}\n  - {generator: procedural, size: [64, 64], objects_per_image: [1, 1]}\n"
    )
    out = tmp_path / "out"
    result = run_cli(
        "balance",
        "--coco",
        str(coco),
        "--images",
        str(images),
        "--out",
        str(out),
        "--target",
        "5",
        "--config",
        str(config),
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
    result = run_cli(
        "balance",
        "--coco",
        str(coco),
        "--images",
        str(images),
        "--out",
        str(tmp_path / "o2"),
        "--config",
        str(config),
    )
    assert (
        result.returncode == 2
        and "object_paste_missing" in result.stderr
        and "copy_paste" in result.stderr
    )
