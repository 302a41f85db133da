"""An export's --out inside the real images' folder is refused whether --images names that folder
or it is the default (the COCO file's own folder): the export was written among the dataset's
own images when --images was left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_fixtures import export, files_under
from PIL import Image

import synthgate as sg
from synthgate.errors import InputError


def _dataset(folder: Path) -> Path:
    """folder/coco.json, its file_names relative to folder (the default images folder)."""
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (40, 20), (90, 90, 90)).save(folder / "images" / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "images/a.png", "width": 40, "height": 20}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 8], "area": 80}
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    path = folder / "coco.json"
    path.write_text(json.dumps(coco))
    return path


@pytest.mark.parametrize("inside", ["yolo", "images/yolo"])
def test_out_inside_the_default_images_folder_is_refused(tmp_path: Path, inside: str) -> None:
    source = _dataset(tmp_path / "data")
    before = files_under(tmp_path)
    result = export(str(source), "-f", "yolo", "-o", str(tmp_path / "data" / inside))
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert f"lies inside the images folder {tmp_path / 'data'}" in message, message
    assert "(the COCO file's folder, where --images defaults to)" in message, message
    assert files_under(tmp_path) == before  # nothing written
    # the library says it with its parameter's name
    with pytest.raises(InputError, match="where images defaults to") as refused:
        sg.export(source, format="yolo", out=tmp_path / "data" / inside)
    assert refused.value.field == "out"


def test_given_images_folder_is_named_as_the_flag(tmp_path: Path) -> None:
    source = _dataset(tmp_path / "data")
    images = tmp_path / "data"
    result = export(str(source), "-f", "yolo", "--images", str(images), "-o", str(images / "y"))
    assert result.exit_code == 2, result.output
    assert f"inside the images folder {images} (--images)," in " ".join(result.output.split())


def test_out_beside_the_dataset_is_written(tmp_path: Path) -> None:
    source = _dataset(tmp_path / "data")
    result = export(str(source), "-f", "yolo", "-o", str(tmp_path / "yolo"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "thing\n"
