"""`synthgate export` end to end: YOLO and VOC folders from COCO files, run folders and balance
outputs; boxes round-trip, images are linked or copied, colliding stems get unique names,
crowds are counted, and every bad input exits 2 with one message and no output folder."""

from __future__ import annotations

import json
import os
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from factories import small_config
from PIL import Image
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.commands import export as export_module
from synthgate.datasets.yolo import clip_bbox, export_names, yolo_to_bbox
from synthgate.errors import InputError

runner = CliRunner()
CATEGORIES = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog & co"}]
# file_name, width, height, [(category id, bbox, iscrowd)]. Sizes make every YOLO value exact
# at 6 decimals, so the round trip holds to 1e-6 relative. Two images share the stem 000001.
IMAGES: list[tuple[str, int, int, list[tuple[int, list[float], int]]]] = [
    ("a/000001.png", 100, 50, [(3, [10, 5, 20, 10], 0), (7, [50, 20, 40, 25], 0)]),
    ("b/000001.png", 80, 40, [(7, [0, 0, 8, 4], 0), (3, [4, 4, 16, 8], 1)]),
    ("c/other.png", 100, 50, [(3, [30.5, 10.25, 12.5, 7.75], 0)]),
    ("c/empty.png", 100, 50, []),
]


def write_coco(folder: Path, images: list[Any] = IMAGES) -> Path:
    """PNGs under folder/images/ and folder/coco.json naming them relative to images/."""
    coco: dict[str, Any] = {"images": [], "annotations": [], "categories": CATEGORIES}
    for image_id, (name, width, height, boxes) in enumerate(images, start=1):
        path = folder / "images" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((height, width, 3), image_id * 40, np.uint8)).save(path)
        coco["images"].append({"id": image_id, "file_name": name, "width": width, "height": height})
        for category_id, bbox, crowd in boxes:
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": image_id,
                    "category_id": category_id,
                    "bbox": bbox,
                    "area": bbox[2] * bbox[3],
                    "iscrowd": crowd,
                    "segmentation": [[1, 1, 2]] if crowd else [],  # unusable, not exported
                }
            )
    path = folder / "coco.json"
    path.write_text(json.dumps(coco))
    return path


def export(*args: str) -> Any:
    return runner.invoke(app, ["export", *args])


def exported_names(out: Path) -> dict[str, str]:
    """Original file_name -> exported name, through export_names on the fixture."""
    coco = json.loads((out.parent / "src" / "coco.json").read_text())
    names = export_names(coco["images"])
    return {image["file_name"]: names[image["id"]] for image in coco["images"]}


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_coco(tmp_path / "src")


def test_yolo_folder_round_trips_the_boxes(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "yolo"
    result = export(
        str(source),
        "--format",
        "yolo",
        "--out",
        str(out),
        "--images",
        str(source.parent / "images"),
    )
    assert result.exit_code == 0, result.output
    assert "exported 4 images, 4 labels, 2 classes as YOLO" in result.output
    assert "left out 1 crowd annotation(s)" in result.output
    assert (out / "classes.txt").read_text().splitlines() == ["cat", "dog & co"]
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {
        "path": str(out.resolve()),
        "train": "images",
        "val": "images",
        "names": {0: "cat", 1: "dog & co"},
    }
    coco = json.loads(source.read_text())
    classes = {3: 0, 7: 1}
    names = exported_names(out)
    for image in coco["images"]:
        name = names[image["file_name"]]
        label = out / "labels" / f"{Path(name).stem}.txt"
        rows = [line.split() for line in label.read_text().splitlines()]
        wanted = [
            a for a in coco["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]
        ]
        assert len(rows) == len(wanted)
        for row, annotation in zip(rows, wanted, strict=True):
            assert int(row[0]) == classes[annotation["category_id"]]
            back = yolo_to_bbox([float(v) for v in row[1:]], image["width"], image["height"])
            assert back == pytest.approx(annotation["bbox"], rel=1e-6)
        copied = out / "images" / name
        assert copied.read_bytes() == (source.parent / "images" / image["file_name"]).read_bytes()
    assert len(list((out / "images").iterdir())) == len(list((out / "labels").iterdir())) == 4
    assert not list(tmp_path.glob(".*partial"))


def test_voc_folder_has_the_corners(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "voc"
    result = export(
        str(source), "-f", "voc", "-o", str(out), "--images", str(source.parent / "images")
    )
    assert result.exit_code == 0, result.output
    coco = json.loads(source.read_text())
    category = {c["id"]: c["name"] for c in CATEGORIES}
    names = exported_names(out)
    stems = []
    for image in coco["images"]:
        name = names[image["file_name"]]
        stems.append(Path(name).stem)
        root = ET.parse(out / "Annotations" / f"{Path(name).stem}.xml").getroot()
        assert root.findtext("filename") == name
        assert root.findtext("size/width") == str(image["width"])
        wanted = [
            a for a in coco["annotations"] if a["image_id"] == image["id"] and not a["iscrowd"]
        ]
        objects = list(root.iter("object"))
        assert [o.findtext("name") for o in objects] == [category[a["category_id"]] for a in wanted]
        for obj, annotation in zip(objects, wanted, strict=True):
            x, y, w, h = annotation["bbox"]
            corners = [
                int(obj.findtext(f"bndbox/{t}") or 0) for t in ("xmin", "ymin", "xmax", "ymax")
            ]
            assert corners == [round(x) + 1, round(y) + 1, round(x + w), round(y + h)]
        # The original file, not re-encoded: PNG stays PNG, byte for byte.
        assert (out / "JPEGImages" / name).read_bytes() == (
            source.parent / "images" / image["file_name"]
        ).read_bytes()
    assert (out / "ImageSets" / "Main" / "all.txt").read_text().splitlines() == stems
    assert not (out / "images").exists() and not (out / "data.yaml").exists()


def test_colliding_stems_get_unique_deterministic_names(source: Path, tmp_path: Path) -> None:
    images = str(source.parent / "images")
    first, second = tmp_path / "one", tmp_path / "two"
    for out in (first, second):
        assert export(str(source), "-f", "yolo", "-o", str(out), "--images", images).exit_code == 0
    names = exported_names(first)
    a, b = names["a/000001.png"], names["b/000001.png"]
    assert a != b and a.endswith("_000001.png") and b.endswith("_000001.png")
    assert names["c/other.png"] == "other.png"  # only colliding names get a prefix
    assert sorted(p.name for p in (first / "images").iterdir()) == sorted(names.values())
    # Each label belongs to its own image: a/ has two boxes, b/ one (its crowd is left out).
    assert len((first / "labels" / f"{Path(a).stem}.txt").read_text().splitlines()) == 2
    assert len((first / "labels" / f"{Path(b).stem}.txt").read_text().splitlines()) == 1
    assert sorted(os.listdir(first / "labels")) == sorted(os.listdir(second / "labels"))


NAME_CASES = [
    (["x/a.png", "y/b.png"], ["a.png", "b.png"]),
    (["x/a.png", "y/a.jpg"], None),  # one stem, two extensions: one label file
    (["x/A.png", "y/a.png"], None),  # one stem on a case-insensitive disk
    (["a.png", "a.png"], InputError),  # the same file twice cannot be told apart
]


@pytest.mark.parametrize(("file_names", "expected"), NAME_CASES)
def test_export_names(file_names: list[str], expected: Any) -> None:
    images = [{"id": i, "file_name": name} for i, name in enumerate(file_names)]
    if expected is InputError:
        with pytest.raises(InputError, match="each image needs its own file_name"):
            export_names(images)
        return
    names = export_names(images)
    if expected is not None:
        assert list(names.values()) == expected
    else:
        stems = [Path(n).stem.casefold() for n in names.values()]
        assert len(set(stems)) == len(stems)
        assert all(
            n.endswith(Path(f).name) for n, f in zip(names.values(), file_names, strict=True)
        )


def test_boxes_leaving_the_image_are_clipped() -> None:
    assert clip_bbox([-2.0, 5.0, 12.0, 50.0], 8, 40) == [0.0, 5.0, 8.0, 35.0]


def test_labels_only_and_copies_where_links_fail(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = str(source.parent / "images")
    labels_only = tmp_path / "labels-only"
    result = export(str(source), "-f", "yolo", "-o", str(labels_only), "--no-copy-images")
    assert result.exit_code == 0, result.output  # no --images needed: no image is read
    assert sorted(p.name for p in labels_only.iterdir()) == [
        ".synthgate-export.json",
        "classes.txt",
        "labels",
    ]

    def no_links(src: Path, dst: Path) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("synthgate.datasets.yolo.os.link", no_links)
    monkeypatch.setattr(export_module, "PROGRESS_FROM", 1)  # and show the bar
    copied = tmp_path / "copied"
    result = export(str(source), "-f", "voc", "-o", str(copied), "--images", images)
    assert result.exit_code == 0, result.output
    assert "4 images copied" in result.output
    linked = tmp_path / "linked"
    monkeypatch.undo()
    result = export(str(source), "-f", "voc", "-o", str(linked), "--images", images)
    assert "4 images hard-linked" in result.output
    original = source.parent / "images" / "c" / "other.png"
    assert (linked / "JPEGImages" / "other.png").stat().st_ino == original.stat().st_ino
    assert (copied / "JPEGImages" / "other.png").stat().st_ino != original.stat().st_ino


def test_force_replaces_an_earlier_export(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    images = str(source.parent / "images")
    assert export(str(source), "-f", "voc", "-o", str(out), "--images", images).exit_code == 0
    result = export(str(source), "-f", "yolo", "-o", str(out), "--images", images, "--force")
    assert result.exit_code == 0, result.output
    assert (out / "data.yaml").is_file() and not (out / "Annotations").exists()
    assert json.loads((out / ".synthgate-export.json").read_text())["format"] == "yolo"


def _text_run(folder: Path) -> None:
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    (folder / "text.jsonl").write_text("")


def _previous_export(folder: Path) -> None:
    folder.mkdir()
    (folder / ".synthgate-export.json").write_text("{}")
    (folder / "classes.txt").write_text("old\n")


# name, how to prepare tmp_path (given the COCO path), the arguments, words the message holds
ERROR_CASES: list[tuple[str, Any, list[str], list[str]]] = [
    ("missing source", None, ["{tmp}/nowhere", "-f", "yolo"], ["nowhere: not found"]),
    (
        "folder without a COCO file",
        lambda tmp, coco: (tmp / "empty").mkdir(),
        ["{tmp}/empty", "-f", "yolo"],
        ["no COCO file found", "accepted.coco.json", "merged.coco.json"],
    ),
    (
        "text-only run",
        lambda tmp, coco: _text_run(tmp / "textrun"),
        ["{tmp}/textrun", "-f", "voc"],
        ["synthgate run but without accepted.coco.json"],
    ),
    (
        "missing images",
        None,
        ["{coco}", "-f", "yolo"],  # file_names are relative to images/, not the COCO folder
        ["a/000001.png: image file not found", "4 of 4 images missing", "--images"],
    ),
    (
        "one image missing",
        lambda tmp, coco: (coco.parent / "images" / "c" / "other.png").unlink(),
        ["{coco}", "-f", "voc", "--images", "{tmp}/src/images"],
        ["c/other.png: image file not found", "1 of 4 images missing"],
    ),
    (
        "out not empty, not an export",
        lambda tmp, coco: (tmp / "out").mkdir() or (tmp / "out" / "keep.txt").write_text("x"),
        ["{coco}", "-f", "yolo", "--no-copy-images", "--force"],
        ["not a synthgate export"],
    ),
    (
        "earlier export without --force",
        lambda tmp, coco: _previous_export(tmp / "out"),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["earlier export", "--force"],
    ),
    (
        "one file_name twice",
        lambda tmp, coco: coco.write_text(coco.read_text().replace("c/empty.png", "c/other.png")),
        ["{coco}", "-f", "voc", "--no-copy-images"],
        ["(c/other.png) and 4 (c/other.png) would both be exported as", "its own file_name"],
    ),
    ("unknown format", None, ["{coco}", "-f", "coco"], ["'coco' is not one of"]),
    (
        "dangling category",
        lambda tmp, coco: coco.write_text(
            coco.read_text().replace('"category_id": 3', '"category_id": 4')
        ),
        ["{coco}", "-f", "yolo", "--no-copy-images"],
        ["category_id 4 is not the id of any category"],
    ),
]


@pytest.mark.parametrize(
    ("prepare", "args", "words"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_bad_input_exits_2_and_writes_nothing(
    source: Path, tmp_path: Path, prepare: Any, args: list[str], words: list[str]
) -> None:
    if prepare is not None:
        prepare(tmp_path, source)
    before = {p.name for p in tmp_path.iterdir()}
    if (tmp_path / "out").is_dir():
        before_out = sorted(p.name for p in (tmp_path / "out").iterdir())
    filled = [a.format(tmp=tmp_path, coco=source) for a in args]
    result = export(*filled, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    for word in words:
        assert word in message
    assert {p.name for p in tmp_path.iterdir()} == before  # no out, no .out.partial
    if "out" in before:
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == before_out


def test_a_run_folder_exports_its_accepted_images(tmp_path: Path) -> None:
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    run = tmp_path / "run"
    assert runner.invoke(app, ["run", str(config), "--out", str(run)]).exit_code == 0
    accepted = json.loads((run / "accepted.coco.json").read_text())
    assert accepted["images"], "the small config should accept some images"
    out = tmp_path / "yolo"
    result = export(str(run), "-f", "yolo", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"exported {len(accepted['images'])} images" in result.output
    names = {p.name for p in (out / "images").iterdir()}
    assert names == {Path(i["file_name"]).name for i in accepted["images"]}
    image = accepted["images"][0]
    rows = (out / "labels" / f"{Path(image['file_name']).stem}.txt").read_text().splitlines()
    boxes = [a["bbox"] for a in accepted["annotations"] if a["image_id"] == image["id"]]
    back = [
        yolo_to_bbox([float(v) for v in r.split()[1:]], image["width"], image["height"])
        for r in rows
    ]
    # 6 decimals of a fraction of the image: within half a millionth of its size.
    for got, want in zip(back, boxes, strict=True):
        assert got == pytest.approx(want, abs=image["width"] * 5e-7 + 1e-9)


def test_a_balance_output_resolves_file_names_against_the_real_images(tmp_path: Path) -> None:
    """merged.coco.json names real images relative to the real images folder and synthetic
    ones as ../<out>/runs/<run>/images/x.png from there; --images resolves both."""
    real = tmp_path / "real"
    write_coco(real, IMAGES[2:3])
    balanced = tmp_path / "balanced"
    (balanced / "runs" / "copy_paste" / "images").mkdir(parents=True)
    shutil.copy(real / "images" / "c" / "other.png", balanced / "runs/copy_paste/images/s1.png")
    merged = json.loads((real / "coco.json").read_text())
    merged["images"].append(
        {
            "id": 9,
            "file_name": "../../balanced/runs/copy_paste/images/s1.png",
            "width": 100,
            "height": 50,
        }
    )
    merged["annotations"].append(
        {"id": 9, "image_id": 9, "category_id": 7, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0}
    )
    (balanced / "merged.coco.json").write_text(json.dumps(merged))
    (balanced / "balance.json").write_text("{}")
    out = tmp_path / "out"
    result = export(str(balanced), "-f", "yolo", "-o", str(out))
    assert result.exit_code == 2 and "synthgate balance --images" in " ".join(result.output.split())
    result = export(str(balanced), "-f", "yolo", "-o", str(out), "--images", str(real / "images"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "images").iterdir()) == ["other.png", "s1.png"]
    assert (out / "labels" / "s1.txt").read_text().startswith("1 ")
