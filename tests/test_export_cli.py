"""`synthgate export` end to end: YOLO and VOC folders from COCO files, run folders and balance
outputs; labels hold the expected values, images are linked or copied, colliding stems get
unique names, crowds and boxes outside their image are counted, --skip-invalid leaves bad
entries out and lists them, and file_names that point outside the images folder are still
written inside --out. Refusals: test_export_refusals.py; pure conversions: test_export_labels.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from export_fixtures import EXPECTED, IMAGES, export, files_under, runner, write_coco
from factories import small_config
from PIL import Image, ImageOps

import synthgate
from synthgate import commands
from synthgate.cli import app
from synthgate.commands import export as export_module
from synthgate.formats.yolo import yolo_to_bbox
from synthgate.workflows.export import UPRIGHT_UNREAD_KEPT


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_coco(tmp_path / "src")


def _subsets(folder: Path) -> dict[str, str]:
    """File name -> subset, from the folders images/<subset>/ of an export."""
    return {p.name: p.parent.name for p in folder.glob("*/*") if p.is_file()}


def test_yolo_folder_has_the_expected_labels(source: Path, tmp_path: Path) -> None:
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
    message = " ".join(result.output.split())
    assert "exported 4 images (3 train, 1 val), 4 labels, 2 classes as YOLO" in message
    assert "left out 1 crowd annotation(s)" in result.output
    assert "outside their image" not in result.output
    assert (out / "classes.txt").read_text().splitlines() == ["cat", "dog & co"]
    text = (out / "data.yaml").read_text()
    # No `path:`: Ultralytics reads train/val relative to the file, so the folder can move.
    assert yaml.safe_load(text) == {
        "train": "images/train",
        "val": "images/val",
        "names": {0: "cat", 1: "dog & co"},
    }
    subsets = _subsets(out / "images")
    assert sorted(subsets) == sorted(name for name, *_ in EXPECTED.values())
    assert sorted(subsets.values()) == ["train", "train", "train", "val"]
    for file_name, (name, lines, _, _) in EXPECTED.items():
        labels = out / "labels" / subsets[name] / f"{Path(name).stem}.txt"
        assert labels.read_text().splitlines() == lines
        original = source.parent / "images" / file_name
        assert (out / "images" / subsets[name] / name).read_bytes() == original.read_bytes()
    assert len(list((out / "labels").glob("*/*.txt"))) == 4
    marker = json.loads((out / ".synthgate-export.json").read_text())
    assert (marker["split"], marker["seed"], marker["subsets"]) == (
        0.9,
        0,
        {"train": 3, "val": 1},
    )
    assert not list(tmp_path.glob(".*partial"))


def test_the_split_is_seeded_and_recorded(source: Path, tmp_path: Path) -> None:
    images = str(source.parent / "images")
    splits = {}
    for name, seed in (("one", "0"), ("two", "0"), ("three", "1")):
        out = tmp_path / name
        args = ("-f", "yolo", "-o", str(out), "--images", images, "--split", "0.5", "--seed", seed)
        assert export(str(source), *args).exit_code == 0
        splits[name] = _subsets(out / "images")
        marker = json.loads((out / ".synthgate-export.json").read_text())
        assert (marker["split"], marker["seed"]) == (0.5, int(seed))
        assert marker["subsets"] == {"train": 2, "val": 2}
    assert splits["one"] == splits["two"]
    assert splits["one"] != splits["three"]  # another seed, another draw of 2 of the 4
    everything = tmp_path / "all"
    result = export(
        str(source), "-f", "yolo", "-o", str(everything), "--images", images, "--split", "1"
    )
    assert result.exit_code == 0, result.output
    assert set(_subsets(everything / "images").values()) == {"train"}
    text = (everything / "data.yaml").read_text()
    assert yaml.safe_load(text)["val"] == "images/train" and "val is the training images" in text
    for bad in ("0", "1.5", "-0.1", "nan"):  # one wording for all (0 and 1.5 had two)
        refused = export(str(source), "-f", "yolo", "-o", str(tmp_path / "x"), "--split", bad)
        said = " ".join(refused.output.split())
        assert refused.exit_code == 2 and "--split" in said, said
        assert "is the share of images in train: a number in (0, 1]" in said, said


def test_voc_folder_has_the_expected_corners(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "voc"
    result = export(
        str(source), "-f", "voc", "-o", str(out), "--images", str(source.parent / "images")
    )
    assert result.exit_code == 0, result.output
    # VOC has no crowd flag (<difficult> is trained on by most loaders): left out, said, and
    # how to keep them
    message = " ".join(result.output.split())
    assert (
        "left out 1 crowd annotation(s): VOC cannot express crowd regions; --format coco keeps "
        "them" in message
    )
    assert "exported 4 images (3 train, 1 val), 4 labels, 2 classes as VOC" in message
    names = {3: "cat", 7: "dog & co"}
    coco = json.loads(source.read_text())
    for image in coco["images"]:
        name, _, corners, depth = EXPECTED[image["file_name"]]
        root = ET.parse(out / "Annotations" / f"{Path(name).stem}.xml").getroot()
        assert root.findtext("filename") == name
        assert root.findtext("size/width") == str(image["width"])
        assert root.findtext("size/depth") == str(depth)
        objects = list(root.iter("object"))
        wanted = [
            names[a["category_id"]]
            for a in coco["annotations"]
            if a["image_id"] == image["id"] and not a["iscrowd"]
        ]
        assert [o.findtext("name") for o in objects] == wanted
        got = [
            [int(o.findtext(f"bndbox/{t}") or 0) for t in ("xmin", "ymin", "xmax", "ymax")]
            for o in objects
        ]
        assert got == corners
        # The original file, not re-encoded: PNG stays PNG, byte for byte.
        original = source.parent / "images" / image["file_name"]
        assert (out / "JPEGImages" / name).read_bytes() == original.read_bytes()
    lists = {
        subset: (out / "ImageSets" / "Main" / f"{subset}.txt").read_text().splitlines()
        for subset in ("train", "val")
    }
    assert sorted(lists["train"] + lists["val"]) == sorted(
        ["47f10bf6_000001", "8967309d_000001", "other", "empty"]
    )
    assert (len(lists["train"]), len(lists["val"])) == (3, 1)
    # Every class declared, so datumaro and CVAT accept names outside VOC's 20.
    assert (out / "labelmap.txt").read_text().splitlines() == [
        "# label:color_rgb:parts:actions",
        "cat:::",
        "dog & co:::",
    ]
    assert not (out / "images").exists() and not (out / "data.yaml").exists()


@pytest.mark.parametrize("fmt", ["yolo", "voc"])
def test_each_image_is_opened_once_after_its_check(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    """VOC opened each image three times: its check, its EXIF orientation, its <depth>. The
    check (which verifies the whole file) and one header read, for both, are what it needs."""
    opened: dict[str, int] = {}
    real = Image.open

    def counted(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened[Path(path).name] = opened.get(Path(path).name, 0) + 1
        return real(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counted)
    images = str(source.parent / "images")
    result = export(str(source), "-f", fmt, "-o", str(tmp_path / fmt), "--images", images)
    assert result.exit_code == 0, result.output
    assert opened == {"000001.png": 4, "other.png": 2, "empty.png": 2}  # two 000001.png


def test_colliding_stems_get_the_same_names_every_time(source: Path, tmp_path: Path) -> None:
    images = str(source.parent / "images")
    first, second = tmp_path / "one", tmp_path / "two"
    for out in (first, second):
        assert export(str(source), "-f", "yolo", "-o", str(out), "--images", images).exit_code == 0
    assert _subsets(first / "labels") == _subsets(second / "labels")
    assert _subsets(first / "images") == _subsets(second / "images")


def test_boxes_outside_their_image_are_left_out_and_counted(tmp_path: Path) -> None:
    boxes = [(3, [105, 10, 5, 5], 0), (3, [10, 5, 0, 5], 0), (7, [10.6, 5, 0.3, 4], 0)]
    boxes.append((7, [99.5, 10, 0.5, 5], 0))
    source = write_coco(tmp_path / "src", [("x.png", 100, 50, boxes)])
    images = str(source.parent / "images")
    for fmt in ("voc", "yolo"):
        out = tmp_path / fmt
        result = export(str(source), "-f", fmt, "-o", str(out), "--images", images)
        assert result.exit_code == 0, result.output
        message = " ".join(result.output.split())
        assert "left out 2 box(es) outside their image" in message
        assert "exported 1 image (1 train), 2 labels" in message  # not "1 images"
    root = ET.parse(tmp_path / "voc" / "Annotations" / "x.xml").getroot()
    corners = [
        [int(o.findtext(f"bndbox/{t}") or 0) for t in ("xmin", "ymin", "xmax", "ymax")]
        for o in root.iter("object")
    ]
    assert corners == [[11, 6, 11, 9], [100, 11, 100, 15]]
    assert (tmp_path / "yolo" / "labels" / "train" / "x.txt").read_text().splitlines() == [
        "1 0.107500 0.140000 0.003000 0.080000",
        "1 0.997500 0.250000 0.005000 0.100000",
    ]


def test_labels_only_and_copies_where_links_fail(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = str(source.parent / "images")
    labels_only = tmp_path / "labels-only"
    result = export(str(source), "-f", "yolo", "-o", str(labels_only), "--no-copy-images")
    assert result.exit_code == 0, result.output  # no --images needed: no image is read
    assert sorted(p.name for p in labels_only.iterdir()) == [
        ".synthgate-export.json",
        ".synthgate-files",
        "classes.txt",
        "labels",
    ]
    assert sorted(p.name for p in (labels_only / "labels").iterdir()) == ["train", "val"]
    voc_labels = tmp_path / "voc-labels-only"
    result = export(str(source), "-f", "voc", "-o", str(voc_labels), "--no-copy-images")
    assert result.exit_code == 0, result.output
    root = ET.parse(voc_labels / "Annotations" / "empty.xml").getroot()
    assert root.findtext("size/depth") == "3"  # no image read: the usual colour depth

    def no_links(src: Path, dst: Path) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("synthgate.formats.exports.os.link", no_links)
    monkeypatch.setattr(export_module, "PROGRESS_FROM", 1)  # and show the bars
    monkeypatch.setattr(commands, "READ_BAR_FROM", 1)
    copied = tmp_path / "copied"
    result = export(str(source), "-f", "voc", "-o", str(copied), "--images", images)
    assert result.exit_code == 0, result.output
    assert "4 images copied" in result.output
    # the bars: the file read, every image file and annotation checked before any is written,
    # then every image placed
    reading = re.search(r"reading the COCO file \(MiB\) .* 1/1 ", result.output)
    entries = 4 + len(json.loads(source.read_text())["annotations"])  # files, then labels
    checking = re.search(rf"checking the dataset .* {entries}/{entries} ", result.output)
    placing = re.search(r"\n\s*images .* 4/4 ", result.output)
    assert reading and checking and placing, result.output
    assert reading.start() < checking.start() < placing.start(), result.output
    linked = tmp_path / "linked"
    monkeypatch.undo()
    result = export(str(source), "-f", "voc", "-o", str(linked), "--images", images)
    assert result.exit_code == 0, result.output
    assert "4 images hard-linked" in result.output
    original = source.parent / "images" / "c" / "other.png"
    assert (linked / "JPEGImages" / "other.png").stat().st_ino == original.stat().st_ino
    assert (copied / "JPEGImages" / "other.png").stat().st_ino != original.stat().st_ino


def test_two_images_of_one_name_are_refused_before_the_image_files_are_checked(
    source: Path, tmp_path: Path
) -> None:
    import synthgate
    from synthgate.errors import InputError

    data = json.loads(source.read_text())
    second = data["images"][1]
    data["images"][0]["file_name"] = second["file_name"]  # two entries, one file,
    data["images"][0]["width"] = second["width"] + 1  # which is not of the first one's size
    (source.parent / "images" / data["images"][2]["file_name"]).unlink()  # and a missing one
    source.write_text(json.dumps(data))
    with pytest.raises(InputError, match="would both be exported as"):
        synthgate.export(
            source,
            format="yolo",
            out=tmp_path / "out",
            images=source.parent / "images",
            check_progress=lambda *counts: pytest.fail("refused before any file is checked"),
        )
    assert not (tmp_path / "out").exists()
    # with skip_invalid the checks may leave one of the two out, as here: they come first
    checked: list[tuple[int, int]] = []
    result = synthgate.export(
        source,
        format="yolo",
        out=tmp_path / "out",
        images=source.parent / "images",
        skip_invalid=True,
        check_progress=lambda done, total: checked.append((done, total)),
    )
    entries = len(data["images"]) + len(data["annotations"])
    assert checked[-1] == (entries, entries)
    left_out = [problem.split(" (id")[0] for problem in result.skipped]
    assert left_out[:2] == ["images[0]", "images[2]"]  # its annotations follow it out
    assert result.counts.images == len(data["images"]) - 2


def test_names_the_checks_refuse_are_left_to_them(source: Path, tmp_path: Path) -> None:
    import synthgate
    from synthgate.errors import InputError

    data = json.loads(source.read_text())
    for image, folder in zip(data["images"][:2], "ab", strict=True):
        image["file_name"] = f"{folder}/x\ud800.png"  # one stem; no UTF-8 file name holds it
    source.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"(?s)2 problem\(s\).*lone surrogate") as refused:
        synthgate.export(source, format="yolo", out=tmp_path / "out", copy_images=False)
    assert "images[0]" in str(refused.value) and "images[1]" in str(refused.value)


def test_skip_invalid_lists_what_it_left_out_and_exports_the_rest(
    source: Path, tmp_path: Path
) -> None:
    (source.parent / "images" / "c" / "other.png").unlink()
    coco = json.loads(source.read_text())
    coco["annotations"][0]["bbox"] = [10, 5, -1, 10]
    source.write_text(json.dumps(coco))
    out = tmp_path / "out"
    images = str(source.parent / "images")
    result = export(str(source), "-f", "yolo", "-o", str(out), "--images", images, "--skip-invalid")
    assert result.exit_code == 0, result.output
    message = " ".join(result.output.split())
    assert "left out: images[2] (id 3): image file missing" in message and "other.png" in message
    assert "left out: annotations[4] (id 5): left out with its image 3" in message
    assert "left out: annotations[0] (id 1): bbox must be" in message
    assert "exported 3 images (2 train, 1 val), 2 labels" in message
    subsets = _subsets(out / "images")
    assert sorted(subsets) == ["47f10bf6_000001.png", "8967309d_000001.png", "empty.png"]
    labels = out / "labels" / subsets["47f10bf6_000001.png"] / "47f10bf6_000001.txt"
    assert labels.read_text().splitlines() == ["1 0.700000 0.650000 0.400000 0.500000"]


def test_force_replaces_an_earlier_export(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    images = str(source.parent / "images")
    assert export(str(source), "-f", "voc", "-o", str(out), "--images", images).exit_code == 0
    result = export(str(source), "-f", "yolo", "-o", str(out), "--images", images, "--force")
    assert result.exit_code == 0, result.output
    assert (out / "data.yaml").is_file() and not (out / "Annotations").exists()
    assert json.loads((out / ".synthgate-export.json").read_text())["format"] == "yolo"


def test_file_names_outside_the_images_folder_are_left_out_unread(tmp_path: Path) -> None:
    """`..` and absolute file_names stop the export; with --skip-invalid they are left out and
    listed, and the files they point at are never read or linked (formats/paths.py)."""
    source = write_coco(tmp_path / "src", [("x.png", 100, 50, [])])
    up = tmp_path / "src" / "up.png"
    shutil.copy(tmp_path / "src" / "images" / "x.png", up)
    elsewhere = tmp_path / "elsewhere" / "abs.png"
    elsewhere.parent.mkdir()
    shutil.copy(up, elsewhere)
    coco = json.loads(source.read_text())
    for image_id, name in ((2, "../up.png"), (3, str(elsewhere))):
        coco["images"].append({"id": image_id, "file_name": name, "width": 100, "height": 50})
    source.write_text(json.dumps(coco))
    before = files_under(tmp_path)
    out = tmp_path / "deep" / "out"
    images = str(source.parent / "images")
    refused = export(str(source), "-f", "voc", "-o", str(out), "--images", images)
    message = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "'../up.png' climbs out of its folder" in message
    assert files_under(tmp_path) == before
    result = export(str(source), "-f", "voc", "-o", str(out), "--images", images, "--skip-invalid")
    assert result.exit_code == 0, result.output
    message = " ".join(result.output.split())
    assert f"file_name {str(elsewhere)!r} is an absolute path" in message
    assert {p.relative_to(out).as_posix() for p in files_under(tmp_path) - before} == {
        ".synthgate-export.json",
        ".synthgate-files",
        "JPEGImages/x.png",
        "Annotations/x.xml",
        "ImageSets/Main/train.txt",
        "labelmap.txt",
    }
    assert up.stat().st_nlink == 1 and elsewhere.stat().st_nlink == 1


@pytest.mark.parametrize("relative", [True, False], ids=["relative", "absolute"])
def test_images_that_are_symlinks_are_placed_as_the_files_they_name(
    relative: bool, tmp_path: Path
) -> None:
    """A dataset whose images/ holds symlinks (images/x.png -> ../raw/x.png) exports the image
    files: os.link linked the symlink itself, so a relative one dangled in the export and an
    absolute one left the folder pointing outside itself (balance and merge place images the
    same way)."""
    source = write_coco(tmp_path / "src", IMAGES[2:3])
    image = source.parent / "images" / "c" / "other.png"
    raw = tmp_path / "src" / "raw" / "other.png"
    raw.parent.mkdir()
    image.rename(raw)
    image.symlink_to(Path("..", "..", "raw", "other.png") if relative else raw)
    out = tmp_path / "deep" / "out"
    images = str(source.parent / "images")
    result = export(str(source), "-f", "yolo", "-o", str(out), "--images", images, "--split", "1")
    assert result.exit_code == 0, result.output
    placed = out / "images" / "train" / "other.png"
    assert not placed.is_symlink()
    assert placed.stat().st_ino == raw.stat().st_ino
    moved = shutil.move(out, tmp_path / "moved")
    raw.unlink()  # another machine: only what the folder holds
    assert (Path(moved) / "images" / "train" / "other.png").read_bytes()[:4] == b"\x89PNG"


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
    subsets = _subsets(out / "images")
    assert set(subsets) == {Path(i["file_name"]).name for i in accepted["images"]}
    image = accepted["images"][0]
    name = Path(image["file_name"])
    rows = (out / "labels" / subsets[name.name] / f"{name.stem}.txt").read_text().splitlines()
    boxes = [a["bbox"] for a in accepted["annotations"] if a["image_id"] == image["id"]]
    back = [
        yolo_to_bbox([float(v) for v in r.split()[1:]], image["width"], image["height"])
        for r in rows
    ]
    # 6 decimals of a fraction of the image: within half a millionth of its size.
    for got, want in zip(back, boxes, strict=True):
        assert got == pytest.approx(want, abs=image["width"] * 5e-7 + 1e-9)


def test_a_balance_or_merge_output_exports_from_its_path_alone(tmp_path: Path) -> None:
    """Balance and merge outputs are self-contained: merged.coco.json names real and synthetic
    images under the folder's images/, so no --images is needed, wherever the folder lies."""
    real = tmp_path / "real"
    write_coco(real, IMAGES[2:3])
    merged = json.loads((real / "coco.json").read_text())
    merged["images"][0]["file_name"] = "images/c/other.png"
    merged["images"].append({"id": 9, "file_name": "images/s1.png", "width": 100, "height": 50})
    merged["annotations"].append(
        {"id": 9, "image_id": 9, "category_id": 7, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0}
    )
    for marker in ("balance.json", "merge.json"):
        folder = tmp_path / marker.removesuffix(".json") / "moved"
        (folder / "images" / "c").mkdir(parents=True)
        os.link(real / "images" / "c" / "other.png", folder / "images" / "c" / "other.png")
        shutil.copy(real / "images" / "c" / "other.png", folder / "images" / "s1.png")
        (folder / "merged.coco.json").write_text(json.dumps(merged))
        (folder / marker).write_text("{}")
        out = tmp_path / f"out-{marker}"
        result = export(str(folder), "-f", "yolo", "-o", str(out))
        assert result.exit_code == 0, result.output
        subsets = _subsets(out / "images")
        assert sorted(subsets) == ["other.png", "s1.png"]
        assert (out / "labels" / subsets["s1.png"] / "s1.txt").read_text().startswith("1 ")


def test_an_old_balance_output_with_dotdot_names_is_refused(tmp_path: Path) -> None:
    """Balance outputs made before they were self-contained named synthetic images
    ../<out>/runs/<run>/images/x.png from the real images folder: such a name is refused."""
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
    (balanced / "merged.coco.json").write_text(json.dumps(merged))
    (balanced / "balance.json").write_text("{}")
    out = tmp_path / "out"
    result = export(str(balanced), "-f", "yolo", "-o", str(out), "--images", str(real / "images"))
    assert result.exit_code == 2 and "climbs out of its folder" in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize("size", ["stored", "shown"])
def test_a_photo_stored_turned_gets_labels_where_loaders_show_its_object(
    tmp_path: Path, size: str
) -> None:
    """Ultralytics and datumaro decode a photo turned by its EXIF orientation (6: shown turned
    90 degrees clockwise) and read YOLO's fractions and VOC's corners in that frame, whichever
    size its entry gives (the stored one: labels drawn on the stored pixels)."""
    stored = np.zeros((60, 40, 3), np.uint8)  # 40 wide, 60 high as stored
    stored[10:30, 4:12] = 255  # the object: [4, 10, 8, 20] on the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "images").mkdir()
    Image.fromarray(stored).save(tmp_path / "images" / "photo.jpg", exif=exif, quality=100)
    shown_box = [30, 4, 20, 8]  # the object in the 60 x 40 frame the photo is shown in
    entry, bbox = ((40, 60), [4, 10, 8, 20]) if size == "stored" else ((60, 40), shown_box)
    coco = {
        "images": [{"id": 1, "file_name": "photo.jpg", "width": entry[0], "height": entry[1]}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": bbox, "area": 160, "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    for fmt in ("yolo", "voc"):
        out = tmp_path / fmt
        result = export(
            str(tmp_path / "coco.json"),
            "-f",
            fmt,
            "--split",
            "1",
            "--out",
            str(out),
            "--images",
            str(tmp_path / "images"),
        )
        assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "yolo" / "images" / "train" / "photo.jpg") as image:
        shown = np.asarray(ImageOps.exif_transpose(image).convert("L"))  # as the loaders do
    ys, xs = np.nonzero(shown > 127)
    assert [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()] == shown_box
    line = (tmp_path / "yolo" / "labels" / "train" / "photo.txt").read_text().split()
    assert yolo_to_bbox([float(v) for v in line[1:]], 60, 40) == pytest.approx(shown_box, abs=1e-3)
    xml = ET.parse(tmp_path / "voc" / "Annotations" / "photo.xml")
    assert (xml.findtext("size/width"), xml.findtext("size/height")) == ("60", "40")
    corners = [
        int(xml.findtext(f"object/bndbox/{t}") or 0) for t in ("xmin", "ymin", "xmax", "ymax")
    ]
    assert corners == [31, 5, 50, 12]  # 1-based: the shown box's pixels
    # labels only, beside the photos where they are: the same labels
    only = tmp_path / "labels-only"
    args = ["-f", "yolo", "--split", "1", "--no-copy-images"]
    result = export(
        str(tmp_path / "coco.json"), *args, "--out", str(only), "--images", str(tmp_path / "images")
    )
    assert result.exit_code == 0, result.output
    assert (only / "labels" / "train" / "photo.txt").read_text().split() == line


def test_labels_only_of_a_photo_over_the_pixel_limit_say_its_orientation_is_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --no-copy-images no file is checked: a photo over SYNTHGATE_MAX_IMAGE_PIXELS had its
    EXIF orientation unread and its labels exported as if upright, without a word."""
    stored = np.zeros((60, 40, 3), np.uint8)
    stored[10:30, 4:12] = 255  # [4, 10, 8, 20] on the stored pixels, which EXIF 6 shows turned
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "images").mkdir()
    Image.fromarray(stored).save(tmp_path / "images" / "photo.jpg", exif=exif, quality=100)
    coco = {
        "images": [{"id": 1, "file_name": "photo.jpg", "width": 40, "height": 60}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [4, 10, 8, 20], "area": 160}
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)  # restored after
    args = ["-f", "yolo", "--split", "1", "--no-copy-images", "--images", str(tmp_path / "images")]
    read = export(str(tmp_path / "coco.json"), *args, "--out", str(tmp_path / "read"))
    assert read.exit_code == 0, read.output
    assert "orientation is unread" not in read.output
    monkeypatch.setenv("SYNTHGATE_MAX_IMAGE_PIXELS", "1000")  # the photo has 2,400
    result = export(str(tmp_path / "coco.json"), *args, "--out", str(tmp_path / "unread"))
    assert result.exit_code == 0, result.output
    message = " ".join(result.output.split())
    photo = tmp_path / "images" / "photo.jpg"
    assert f"{photo}: its EXIF orientation is unread (Image size (2400 pixels) exceeds" in message
    assert "SYNTHGATE_MAX_IMAGE_PIXELS=<pixels>" in message
    assert (
        "1 image(s) exported as upright" in message and "YOLO boxes in the wrong frame" in message
    )
    # what it warns of: the label is on the stored pixels, not where loaders show the object
    unread = (tmp_path / "unread" / "labels" / "train" / "photo.txt").read_text()
    assert unread != (tmp_path / "read" / "labels" / "train" / "photo.txt").read_text()
    library = synthgate.export(
        tmp_path / "coco.json",
        format="voc",
        out=tmp_path / "voc",
        images=tmp_path / "images",
        copy_images=False,
    )
    assert library.counts.upright_unread_total == len(library.counts.upright_unread) == 1
    assert "photo.jpg: its EXIF orientation is unread (Image" in library.counts.upright_unread[0]


def test_labels_only_of_images_not_here_keep_the_first_unread_orientations_and_count_the_rest(
    tmp_path: Path,
) -> None:
    """A labels-only export of a dataset whose images are on another machine: each image's
    orientation is unread, and ExportCounts kept one message an image (a million for a large
    dataset), its repr calling the list a number. Now the first few, and the total."""
    images = 13
    coco = {
        "images": [
            {"id": i, "file_name": f"{i:03d}.jpg", "width": 40, "height": 60}
            for i in range(1, images + 1)
        ],
        "annotations": [],
        "categories": [{"id": 1, "name": "thing"}],
    }
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    (tmp_path / "elsewhere").mkdir()
    library = synthgate.export(
        tmp_path / "coco.json",
        format="yolo",
        out=tmp_path / "yolo",
        images=tmp_path / "elsewhere",
        copy_images=False,
    )
    kept = UPRIGHT_UNREAD_KEPT
    counts = library.counts
    assert counts.upright_unread_total == images and len(counts.upright_unread) == kept
    assert counts.upright_unread[0].endswith("001.jpg: its EXIF orientation is unread (not found)")
    assert f"upright_unread_total={images})" in repr(counts)  # the count, not the list
    args = ["-f", "yolo", "--no-copy-images", "--images", str(tmp_path / "elsewhere")]
    shown = export(str(tmp_path / "coco.json"), *args, "--out", str(tmp_path / "cli"))
    assert shown.exit_code == 0, shown.output
    assert shown.output.count("its EXIF orientation is unread") == kept
    assert f"{images} image(s) (and {images - kept} more) exported as upright" in shown.output
