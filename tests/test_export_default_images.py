"""Second read (aeb8d19): refusing an --out inside the *defaulted* images folder (the COCO file's
own folder) refuses the most common export of all, a COCO file in the working directory written
to a new folder beside it. Before aeb8d19 this exported; merge and balance still accept it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from export_fixtures import export
from PIL import Image


def _dataset(folder: Path) -> Path:
    (folder / "images").mkdir(parents=True)
    Image.new("RGB", (40, 20), (90, 90, 90)).save(folder / "images" / "a.png")
    coco = {
        "images": [{"id": 1, "file_name": "images/a.png", "width": 40, "height": 20}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 8], "area": 80}
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    path = folder / "annotations.json"
    path.write_text(json.dumps(coco))
    return path


def test_a_coco_file_in_the_working_directory_exports_to_a_folder_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cd dataset && synthgate export annotations.json --format voc --out voc/`: the images
    folder defaults to '.', so every relative --out "lies inside the images folder ." and the
    only way out is a folder outside the working directory (or an explicit --images)."""
    _dataset(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = export("annotations.json", "--format", "voc", "--out", "voc")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "voc").is_dir()
