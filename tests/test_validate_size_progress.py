"""`validate --images` of COCO entries without a width or height reads each file's header before
judging (100k such images: about 15 s); it did so with no progress shown. `size_progress` is
called for each header read, and the command shows it as a bar."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.validators.validate import validate_coco


def _coco(folder: Path, *, images_first: bool) -> Path:
    """Five images, three of them without a size (one with a width only), each with a box."""
    images = []
    for index in range(1, 6):
        Image.new("RGB", (32, 24), (index * 40, 90, 90)).save(folder / f"{index}.png")
        images.append({"id": index, "file_name": f"{index}.png", "width": 32, "height": 24})
    del images[0]["width"], images[0]["height"]
    del images[2]["height"]
    del images[4]["width"], images[4]["height"]
    annotations = [
        {"id": i, "image_id": i, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100}
        for i in range(1, 6)
    ]
    members = [("images", images), ("annotations", annotations)]
    coco = dict(members if images_first else members[::-1])
    coco["categories"] = [{"id": 1, "name": "thing"}]
    path = folder / "coco.json"
    path.write_text(json.dumps(coco))
    return path


@pytest.mark.parametrize("images_first", [True, False], ids=["images first", "images last"])
def test_each_header_read_is_reported_before_judging(tmp_path: Path, images_first: bool) -> None:
    path = _coco(tmp_path, images_first=images_first)
    events: list[Any] = []
    validate_coco(
        path,
        images=tmp_path,
        size_progress=lambda done, total: events.append((done, total)),
        progress=lambda done, total: events.append("judged"),
    )
    assert events == [(1, 3), (2, 3), (3, 3), *["judged"] * 5]


def test_a_coco_mapping_reports_its_header_reads_too(tmp_path: Path) -> None:
    coco = json.loads(_coco(tmp_path, images_first=True).read_text())
    events: list[tuple[int, int]] = []
    validate_coco(coco, images=tmp_path, size_progress=lambda *counts: events.append(counts))
    assert events == [(1, 3), (2, 3), (3, 3)]


def test_no_header_is_read_without_images_nor_where_every_entry_has_its_size(
    tmp_path: Path,
) -> None:
    path = _coco(tmp_path, images_first=True)
    events: list[tuple[int, int]] = []
    validate_coco(path, size_progress=lambda *counts: events.append(counts))
    sized = json.loads(path.read_text())
    for image in sized["images"]:
        image.update(width=32, height=24)
    validate_coco(sized, images=tmp_path, size_progress=lambda *counts: events.append(counts))
    assert events == []


def test_validate_shows_a_bar_for_the_header_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthgate.commands import validate as command

    path = _coco(tmp_path, images_first=False)
    shown = CliRunner().invoke(app, ["validate", str(path), "--images", str(tmp_path)])
    assert shown.exit_code == 0 and "reading image sizes" not in shown.stderr  # 3: in a blink
    monkeypatch.setattr(command, "PROGRESS_FROM", 1)  # as for thousands of images
    result = CliRunner().invoke(app, ["validate", str(path), "--images", str(tmp_path)])
    assert result.exit_code == 0, result.output
    reading = re.search(r"reading image sizes .* 3/3 ", result.stderr)
    judging = re.search(r"judging .* 5/5 ", result.stderr)
    assert reading and judging and reading.start() < judging.start(), result.stderr


def test_predictions_report_their_header_reads_too(tmp_path: Path) -> None:
    """validate --coco (validate_predictions) read the headers without passing the calls on."""
    from synthgate.validators.predictions import validate_predictions

    path = _coco(tmp_path, images_first=True)
    results = tmp_path / "results.json"
    rows = [
        {"image_id": i, "category_id": 1, "bbox": [2, 2, 10, 10], "score": 0.9} for i in range(1, 6)
    ]
    results.write_text(json.dumps(rows))
    events: list[Any] = []
    validate_predictions(
        results,
        path,
        images=tmp_path,
        size_progress=lambda done, total: events.append((done, total)),
        progress=lambda done, total: events.append("judged"),
    )
    assert events == [(1, 3), (2, 3), (3, 3), *["judged"] * 5]


def test_validate_coco_shows_the_bar_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`validate RESULTS --coco GT --images DIR`: the command did not pass the bar on."""
    from synthgate.commands import validate as command

    path = _coco(tmp_path, images_first=True)
    results = tmp_path / "results.json"
    rows = [
        {"image_id": i, "category_id": 1, "bbox": [2, 2, 10, 10], "score": 0.9} for i in range(1, 6)
    ]
    results.write_text(json.dumps(rows))
    monkeypatch.setattr(command, "PROGRESS_FROM", 1)
    shown = CliRunner().invoke(
        app, ["validate", str(results), "--coco", str(path), "--images", str(tmp_path)]
    )
    assert shown.exit_code == 0, shown.output
    assert re.search(r"reading image sizes .* 3/3 ", shown.stderr), shown.stderr
