"""LVIS files (images named by `coco_url` alone) in balance, merge and export: validate read
them, while the three refused every image as "file_name is missing". Each now reads the image
by the name validate looks up: the URL's split folder and file, or the bare file name where
only it is in the images folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from balance_fixtures import lvis_of, make_tiny_coco, run_cli

import synthgate


@pytest.fixture(scope="module")
def lvis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """An LVIS file, its images folder (the files bare, as the LVIS API saves them) and a
    finished copy-paste run over the same dataset laid out as COCO."""
    folder = tmp_path_factory.mktemp("lvis")
    coco, images = make_tiny_coco(folder / "real")
    lvis_path = folder / "lvis_v1_val.json"
    lvis_path.write_text(json.dumps(lvis_of(json.loads(coco.read_text()))))
    config = {
        "name": "cp",
        "seed": 2,
        "categories": ["square", "disc", "tri"],
        "image": {"generator": "copy_paste", "count": 2, "coco": str(coco), "images": str(images)},
    }
    (folder / "cp.yaml").write_text(yaml.safe_dump(config))
    run = run_cli("run", str(folder / "cp.yaml"), "--out", str(folder / "runs" / "cp"))
    assert run.returncode == 0, run.stderr
    return lvis_path, images, folder / "runs" / "cp"


def _real_names(lvis_path: Path) -> list[str]:
    return [
        image["coco_url"].rsplit("/", 1)[-1]
        for image in json.loads(lvis_path.read_text())["images"]
    ]


def test_export_reads_an_lvis_file(lvis: tuple[Path, Path, Path], tmp_path: Path) -> None:
    lvis_path, images, _ = lvis
    result = synthgate.export(lvis_path, format="coco", out=tmp_path / "out", images=images)
    written = [
        json.loads(path.read_text())
        for path in sorted((tmp_path / "out" / "annotations").glob("*.json"))
    ]
    names = sorted(Path(i["file_name"]).name for data in written for i in data["images"])
    assert names == sorted(_real_names(lvis_path))
    assert result.skipped == []
    assert len(list((tmp_path / "out" / "images").rglob("*.png"))) == len(names)


def test_export_reads_an_lvis_file_in_its_split_folder(
    lvis: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """Detectron2's layout: images/val2017/x.jpg, as the URL's path says."""
    lvis_path, images, _ = lvis
    split = tmp_path / "images" / "val2017"
    split.mkdir(parents=True)
    for image in images.glob("*.png"):
        (split / image.name).write_bytes(image.read_bytes())
    result = synthgate.export(lvis_path, format="yolo", out=tmp_path / "out", images=split.parent)
    assert result.skipped == []
    assert len(list((tmp_path / "out" / "labels").rglob("*.txt"))) == len(_real_names(lvis_path))


def test_merge_reads_an_lvis_file(lvis: tuple[Path, Path, Path], tmp_path: Path) -> None:
    lvis_path, images, run_dir = lvis
    result = synthgate.merge(lvis_path, run_dir, out=tmp_path / "merged", images=images)
    merged = json.loads(result.merged.read_text())
    names = {Path(i["file_name"]).name for i in merged["images"]}
    assert set(_real_names(lvis_path)) <= names
    for image in merged["images"]:
        assert (tmp_path / "merged" / image["file_name"]).is_file()


def test_balance_reads_an_lvis_file(lvis: tuple[Path, Path, Path], tmp_path: Path) -> None:
    lvis_path, images, _ = lvis
    result = synthgate.balance(lvis_path, images=images, out=tmp_path / "balanced", target=2)
    merged = json.loads(result.merged.read_text())
    names = {Path(i["file_name"]).name for i in merged["images"]}
    assert set(_real_names(lvis_path)) <= names
    for image in merged["images"]:
        assert (tmp_path / "balanced" / image["file_name"]).is_file()


def test_an_image_with_neither_file_name_nor_coco_url_is_refused_naming_the_fix(
    lvis: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    lvis_path, images, _ = lvis
    data = json.loads(lvis_path.read_text())
    del data["images"][0]["coco_url"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data))
    with pytest.raises(synthgate.InputError, match="file_name is missing; give the image's"):
        synthgate.export(broken, format="yolo", out=tmp_path / "out", images=images)
