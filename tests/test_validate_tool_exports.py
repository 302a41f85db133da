"""COCO files as the datasets and annotation tools that write them lay them out, validated: each
legal quirk is read as pycocotools and the tool mean it (no finding of its own), and the summary
counts every image of the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from balance_fixtures import make_tiny_coco

from synthgate.validators.validate import validate_coco


def _findings(result: Any, measure: str) -> list[dict[str, Any]]:
    return [f for row in result.rows for f in row["findings"] if f.get("measure") == measure]


def _lvis(data: dict[str, Any]) -> dict[str, Any]:
    """LVIS v1: images named by `coco_url` alone (no `file_name`), with the category lists LVIS
    adds; categories with synonyms and frequency; annotations without `iscrowd` (LVIS has no
    crowd regions)."""
    images = []
    for image in data["images"]:
        entry = {k: v for k, v in image.items() if k != "file_name"}
        entry["coco_url"] = f"http://images.cocodataset.org/val2017/{image['file_name']}"
        entry.update(not_exhaustive_category_ids=[1], neg_category_ids=[3])
        images.append(entry)
    categories = [
        {**c, "synset": f"{c['name']}.n.01", "synonyms": [c["name"]], "frequency": "f"}
        for c in data["categories"]
    ]
    annotations = [
        {k: v for k, v in a.items() if k != "iscrowd"}
        for a in data["annotations"]
        if not a["iscrowd"]
    ]
    return {**data, "images": images, "annotations": annotations, "categories": categories}


@pytest.mark.parametrize("layout", ["split folder", "flat"])
def test_lvis_images_named_by_their_coco_url_are_found(tmp_path: Path, layout: str) -> None:
    """LVIS names its images by `coco_url` alone. validate read every image as having no file
    (image_unreadable: correctness 1, every image sent to review) and listed each as lacking
    `file_name`. The URL's split folder and name are looked up (Detectron2's layout: images/
    val2017/x.jpg), or the bare name (the LVIS API's download: images/x.jpg)."""
    coco_path, images = make_tiny_coco(tmp_path)
    lvis = _lvis(json.loads(coco_path.read_text()))
    if layout == "split folder":
        (images / "val2017").mkdir()
        for image in list(images.glob("*.png")):
            image.rename(images / "val2017" / image.name)
    coco_path.write_text(json.dumps(lvis))

    result = validate_coco(coco_path, images=images)

    assert result.summary.samples == len(lvis["images"])
    assert _findings(result, "image_unreadable") == []
    assert result.summary.dataset == []
    assert {r.levels["correctness"] for r in result.reports.values()} == {5}
