"""`synthgate export --format coco`: the layouts COCO tools expect, every annotation kept, and
self-contained folders: every written file_name stays inside its folder (no `..`), and an export
moved elsewhere still loads from its own path (COCO, YOLO and VOC alike)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from balance_fixtures import make_tiny_coco
from export_fixtures import export, runner
from factories import small_config
from pycocotools.coco import COCO

import synthgate
from synthgate.cli import app


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    """The tiny COCO file (polygons, RLE, a crowd region) and its images folder."""
    return make_tiny_coco(tmp_path / "real")


LAYOUTS = {
    "coco": ("annotations/instances_{}.json", "images/{}"),
    "fiftyone": ("{}/labels.json", "{}/data"),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_coco_export_keeps_every_entry_in_the_layout_asked(
    layout: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco_path, images = tiny
    out = tmp_path / "coco"
    args = ["-f", "coco", "-o", str(out), "--images", str(images), "--layout", layout]
    result = export(str(coco_path), *args)
    assert result.exit_code == 0, result.output
    assert "exported 6 images (5 train, 1 val)" in " ".join(result.output.split())
    real = json.loads(coco_path.read_text())
    loaded_images, loaded_annotations = [], []
    for subset in ("train", "val"):
        annotation_file, image_folder = (part.format(subset) for part in LAYOUTS[layout])
        data = COCO(str(out / annotation_file)).dataset
        assert data["categories"] == real["categories"] and data["info"] == real["info"]
        for image in data["images"]:
            # The image's own name in its subset folder: no folder part, no `..`.
            assert "/" not in image["file_name"]
            assert (out / image_folder / image["file_name"]).is_file()
        loaded_images += data["images"]
        loaded_annotations += data["annotations"]
    by_id = {image["id"]: image for image in real["images"]}
    assert sorted(i["id"] for i in loaded_images) == sorted(by_id)
    for image in loaded_images:
        assert image == {**by_id[image["id"]], "file_name": image["file_name"]}
    # Every annotation as it was: masks, areas and the crowd region included.
    key = lambda a: a["id"]  # noqa: E731
    assert sorted(loaded_annotations, key=key) == sorted(real["annotations"], key=key)
    marker = json.loads((out / ".synthgate-export.json").read_text())
    assert marker["layout"] == layout and marker["subsets"] == {"train": 5, "val": 1}


def _written_names(out: Path) -> list[str]:
    """Every path an export's label files name: COCO file_names, data.yaml folders, VOC's
    <filename> (beside Annotations/, in JPEGImages/)."""
    names = []
    for annotation_file in out.rglob("*.json"):
        data = json.loads(annotation_file.read_text())
        if isinstance(data, dict) and "images" in data:
            names += [image["file_name"] for image in data["images"]]
    if (out / "data.yaml").is_file():
        data = yaml.safe_load((out / "data.yaml").read_text())
        names += [data["train"], data["val"]]
    for xml in out.glob("Annotations/*.xml"):
        names.append(ET.parse(xml).getroot().findtext("filename") or "")
    return names


def _loads(out: Path, fmt: str) -> int:
    """How many images the export names that exist where its tools look for them."""
    found = 0
    if fmt == "coco":
        for annotation_file in (out / "annotations").glob("instances_*.json"):
            subset = annotation_file.stem.removeprefix("instances_")
            for image in COCO(str(annotation_file)).dataset["images"]:
                found += (out / "images" / subset / image["file_name"]).is_file()
    elif fmt == "yolo":
        data = yaml.safe_load((out / "data.yaml").read_text())
        assert "path" not in data  # else a moved copy reads the original folder
        for subset in ("train", "val"):
            folder = out / data[subset]
            found += sum(
                (out / "labels" / subset / f"{p.stem}.txt").is_file() for p in folder.iterdir()
            )
    else:
        for xml in out.glob("Annotations/*.xml"):
            found += (
                out / "JPEGImages" / (ET.parse(xml).getroot().findtext("filename") or "")
            ).is_file()
    return found


@pytest.mark.parametrize("fmt", ["coco", "yolo", "voc"])
def test_a_moved_export_still_loads_and_names_nothing_outside_it(
    fmt: str, tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    coco_path, images = tiny
    out = tmp_path / "export"
    result = export(str(coco_path), "-f", fmt, "-o", str(out), "--images", str(images))
    assert result.exit_code == 0, result.output
    for name in _written_names(out):
        assert not Path(name).is_absolute() and ".." not in Path(name).parts, name
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(out, moved)
    shutil.rmtree(images)  # the source is gone too: the export must not need it
    assert _loads(moved, fmt) == 6


def test_a_moved_run_folder_still_loads_from_its_path(tmp_path: Path) -> None:
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    run = tmp_path / "run"
    assert runner.invoke(app, ["run", str(config), "--out", str(run)]).exit_code == 0
    moved = tmp_path / "elsewhere"
    shutil.move(run, moved)
    for name in ("coco.json", "accepted.coco.json"):
        images = COCO(str(moved / name)).dataset["images"]
        assert images
        for image in images:
            assert ".." not in Path(image["file_name"]).parts
            assert (moved / image["file_name"]).is_file()  # relative to the run folder
    result = export(str(moved), "-f", "coco", "-o", str(tmp_path / "coco"))
    assert result.exit_code == 0, result.output


def test_each_coco_file_is_written_with_progress_then_the_images_are_placed(
    tiny: tuple[Path, Path], tmp_path: Path
) -> None:
    source, images = tiny
    events: list[tuple[str, int, int]] = []
    result = synthgate.export(
        source,
        format="coco",
        out=tmp_path / "out",
        images=images,
        split=0.5,
        progress=lambda done, total: events.append(("placed", done, total)),
        write_progress=lambda done, total: events.append(("written", done, total)),
    )
    # instances_train.json and instances_val.json are written, each counted from 0 to its
    # entries (its images, annotations and categories); then every image is placed
    written = [event for event in events if event[0] == "written"]
    assert events[len(written) :] == [
        ("placed", n, result.counts.images) for n in range(1, result.counts.images + 1)
    ]
    starts = [i for i, (_, done, _) in enumerate(written) if done == 0]
    assert len(starts) == 2 and starts[0] == 0
    for subset, run in zip(
        ("train", "val"), (written[: starts[1]], written[starts[1] :]), strict=True
    ):
        coco = json.loads((result.out / f"annotations/instances_{subset}.json").read_text())
        entries = sum(len(coco[key]) for key in ("images", "annotations", "categories"))
        assert run[-1] == ("written", entries, entries)
        assert [done for _, done, _ in run] == sorted({done for _, done, _ in run})
