"""Dataset checks (whole COCO files) and the COCO reader: real-world shapes never crash."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from synthgate.errors import InputError
from synthgate.formats.coco import read_coco
from synthgate.formats.coco_annotations import coco_to_samples
from synthgate.masks import decode_mask, segmentation_to_rle
from synthgate.validators.checks.dataset import DatasetTally
from synthgate.validators.context import ValidationContext
from synthgate.validators.measure import judge_dataset
from synthgate.validators.rubric import load_rubric

RUBRIC = load_rubric("detection")


def coco(**changes: Any) -> dict[str, Any]:
    """Two images, three annotations: a polygon, a crowd region (uncompressed RLE), a box."""
    crowd = np.zeros((40, 60), dtype=np.uint8, order="F")
    crowd[5:20, 30:55] = 1
    counts = []
    flat, value, run = crowd.ravel(order="F"), 0, 0
    for pixel in flat:
        if pixel != value:
            counts.append(run)
            value, run = pixel, 0
        run += 1
    counts.append(run)
    data: dict[str, Any] = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 60, "height": 40},
            {"id": 2, "file_name": "b.jpg", "width": 60, "height": 40},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 100.0,
             "bbox": [10, 10, 10, 10], "segmentation": [[10, 10, 20, 10, 20, 20, 10, 20]]},
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 1, "area": 375.0,
             "bbox": [30, 5, 25, 15], "segmentation": {"size": [40, 60], "counts": counts}},
            {"id": 12, "image_id": 2, "category_id": 2, "iscrowd": 0, "area": 50.0,
             "bbox": [1, 2, 10, 5]},
        ],
    }  # fmt: skip
    data.update(changes)
    return data


def findings(data: dict[str, Any], quotas: dict[str, int] | None = None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in judge_dataset(DatasetTally.of(data), RUBRIC, ValidationContext(quotas=quotas)):
        found.setdefault(f.check, []).append(f.message)
    return found


def with_annotation(**fields: Any) -> dict[str, Any]:
    data = coco()
    data["annotations"].append(
        {"id": 13, "image_id": 2, "category_id": 2, "bbox": [0, 0, 4, 4], **fields}
    )
    return data


IMAGE_2 = coco()["images"][1]
DATASET_CASES = [
    ("clean", coco(), {}),
    ("duplicate image id", coco(images=[{"id": i, "file_name": "a.jpg", "width": 60, "height": 40} for i in (1, 1, 2)]),
     {"correctness_unique_ids": "images ids"}),
    ("duplicate annotation id", with_annotation(id=10), {"correctness_unique_ids": "annotations ids"}),
    ("duplicate category name", coco(categories=[{"id": 1, "name": "person"}, {"id": 2, "name": "person"}]),
     {"correctness_unique_ids": "categories names"}),
    ("dangling image", with_annotation(image_id=99), {"correctness_dangling_references": "1 annotation names an unknown image"}),
    ("dangling category", with_annotation(category_id=7), {"correctness_dangling_references": "unknown category"}),
    ("annotation without bbox", coco(annotations=[{"id": 1, "image_id": 1, "category_id": 1}]),
     {"correctness_coco_schema": "1 annotation lacks one of"}),
    ("annotations not a list", coco(annotations={"id": 1}), {"correctness_coco_schema": "not a list"}),
    ("string ids, repeated", coco(images=[{"id": i, "file_name": "a.jpg", "width": 60, "height": 40} for i in ("a", "a", "b")],
                                  annotations=[{"id": 1, "image_id": "b", "category_id": 1, "bbox": [0, 0, 2, 2]}]),
     {"correctness_unique_ids": "images ids used more than once: a",
      "correctness_coco_schema": "3 images have an id that is not an integer: 'a', 'a', 'b'"}),
    # balance, merge and export refuse them ("id must be an integer"): validate said nothing
    ("string annotation id", with_annotation(id="7"),
     {"correctness_coco_schema": "1 annotation has an id that is not an integer: '7'; write"}),
    ("float image and bool category ids", coco(images=[{"id": 1.0, "file_name": "a.jpg", "width": 60, "height": 40}, IMAGE_2],
                                               categories=[{"id": True, "name": "person"}, {"id": 2, "name": "dog"}]),
     {"correctness_coco_schema": "1 category has an id that is not an integer: True"}),
    ("string image id unknown", coco(annotations=[{"id": 1, "image_id": "zz", "category_id": 1, "bbox": [0, 0, 2, 2]}]),
     {"correctness_dangling_references": "unknown image: ids 1"}),
    # 1.0 finds image 1 (no dangling reference), yet readers that type ids as integers refuse it
    ("float image id names an int one", coco(annotations=[{"id": 1, "image_id": 1.0, "category_id": 1, "bbox": [0, 0, 2, 2]}]),
     {"correctness_coco_schema": "1 image_id or category_id value is not an integer: image_id 1.0 (annotation 1); write each as a whole number (7, not 7.0)"}),
    ("float category id", with_annotation(category_id=2.0),
     {"correctness_coco_schema": "1 image_id or category_id value is not an integer: category_id 2.0 (annotation 13)"}),
    # pycocotools indexes 1.0 as 1: the second image replaces the first
    ("image ids 1 and 1.0", coco(images=[{"id": 1, "file_name": "a.jpg", "width": 60, "height": 40}, {**IMAGE_2, "id": 1.0}]),
     {"correctness_unique_ids": "images ids used more than once: 1",
      "correctness_dangling_references": "unknown image: ids 12",
      "correctness_coco_schema": "1 image has an id that is not an integer: 1.0; write each as a whole number (7, not \"7\" or 7.0)"}),
    ("image width a string", coco(images=[{"id": 1, "file_name": "a.jpg", "width": "60", "height": 40}, IMAGE_2]),
     {"correctness_coco_schema": "1 image has a width or height that is not a number of pixels > 0: ids 1 ('60')"}),
    ("image height null", coco(images=[{"id": 1, "file_name": "a.jpg", "width": 60, "height": None}, IMAGE_2]),
     {"correctness_coco_schema": "1 (None)"}),
    ("image width 0", coco(images=[{"id": 1, "file_name": "a.jpg", "width": 0, "height": 40}, IMAGE_2]),
     {"correctness_coco_schema": "not a number of pixels"}),
    ("image sizes as floats", coco(images=[{"id": 1, "file_name": "a.jpg", "width": 60.0, "height": 40.0}, IMAGE_2]), {}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "data", "expected"), DATASET_CASES, ids=[c[0] for c in DATASET_CASES]
)
def test_dataset_checks(name: str, data: dict[str, Any], expected: dict[str, str]) -> None:
    found = findings(data)
    assert set(found) == set(expected), found
    for check, text in expected.items():
        assert any(text in message for message in found[check]), found[check]


def test_class_quotas_shortfall_levels() -> None:
    data = coco()  # 2 person annotations, 1 dog
    assert findings(data, {"person": 2, "dog": 1}) == {}
    short = judge_dataset(
        DatasetTally.of(data), RUBRIC, ValidationContext(quotas={"person": 2, "dog": 4})
    )
    assert [(f.check, f.level) for f in short] == [("completeness_class_quotas", 1)]
    assert "'dog': 1 of 4" in short[0].message


def test_coco_reader_converts_polygons_crowd_rle_and_boxes() -> None:
    samples = list(coco_to_samples(coco()))
    assert [s.id for s in samples] == ["coco-1", "coco-2"]
    polygon, crowd = samples[0].objects
    assert polygon.category == "person" and polygon.attributes == {
        "iscrowd": False,
        "annotation_id": 10,
    }
    assert crowd.attributes["iscrowd"] is True
    assert decode_mask(crowd.mask).sum() == 15 * 25  # type: ignore[arg-type]
    assert mask_utils.toBbox(polygon.mask).tolist() == [10, 10, 10, 10]
    assert samples[1].objects[0].mask is None and samples[1].objects[0].bbox == [1, 2, 10, 5]


@pytest.mark.parametrize(
    ("segmentation", "reason"),
    [
        ([[1, 2, 3, 4]], "no polygon"),  # 2 points: pycocotools would read it as a box
        ([[1, 2, 3, float("nan"), 5, 6]], "no polygon"),
        ({"size": [40, 60], "counts": [5, 5]}, "do not add up"),
        ({"size": [40, 60], "counts": "!!!garbage"}, "does not parse"),
        ({"size": "big", "counts": "x"}, "is not .height, width."),
        ("a string", "segmentation of type str"),
    ],
)
def test_unreadable_segmentations_raise_value_error(segmentation: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        segmentation_to_rle(segmentation, 40, 60)


def test_malformed_annotations_become_findings_not_crashes() -> None:
    data = coco()
    data["annotations"] += [
        {"id": 20, "image_id": 2, "category_id": 2, "bbox": "oops", "segmentation": [[1, 2, 3, 4]]},
        {"id": 21, "image_id": 2, "category_id": 99, "bbox": [0, 0, 5, 5]},
        {"image_id": 2, "category_id": 2, "bbox": [0, 0, 5, 5], "segmentation": {"counts": 3}},
    ]
    data["images"].append({"id": 3, "file_name": None})  # no size
    samples = list(coco_to_samples(copy.deepcopy(data)))
    objects = samples[1].objects
    assert objects[1].bbox == [] and "segmentation_error" in objects[1].attributes
    assert objects[2].category == "<category id 99>"
    assert samples[2].width is None and samples[2].uri is None


def test_read_coco_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match=r"bad\.json: not valid JSON"):
        read_coco(bad)
    bad.write_text(json.dumps({"annotations": []}))
    with pytest.raises(InputError, match="no `images` list"):
        read_coco(bad)
    with pytest.raises(InputError, match="file not found"):
        read_coco(tmp_path / "missing.json")


def test_polygon_parts_left_out_are_named_on_the_sample_and_in_its_table() -> None:
    from synthgate.validators.checks.objects import ObjectTable

    data = coco()
    good = data["annotations"][0]["segmentation"][0]
    data["annotations"][0]["segmentation"] = [good, [1.0, 1.0, 2.0, 2.0]]
    sample = next(coco_to_samples(data))
    obj = sample.objects[0]
    assert obj.attributes["segmentation_parts_left_out"] == (
        "polygon 1 has 2 point(s); a polygon needs at least 3"
    )
    assert obj.mask is not None and "segmentation_error" not in obj.attributes
    table = ObjectTable.of(sample.objects, sample.height, sample.width)
    assert table.parts_left_out(0) is not None and table.parts_left_out(1) is None
