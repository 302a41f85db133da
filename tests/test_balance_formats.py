"""YOLO and Pascal VOC label writers: pure conversions from COCO boxes, crowds left out."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from balance_fixtures import make_tiny_coco
from hypothesis import given
from hypothesis import strategies as st

from synthgate.formats.voc import coco_to_voc_xml, write_voc
from synthgate.formats.yolo import bbox_to_yolo, coco_to_yolo_lines, write_yolo, yolo_to_bbox

BOX_CASES = [
    ([0, 0, 64, 32], 64, 32, [0.5, 0.5, 1.0, 1.0]),
    ([16, 8, 16, 8], 64, 32, [0.375, 0.375, 0.25, 0.25]),
    ([10.5, 2.0, 3.0, 4.0], 100, 50, [0.12, 0.08, 0.03, 0.08]),
]


@pytest.mark.parametrize(("bbox", "width", "height", "expected"), BOX_CASES)
def test_bbox_to_yolo(bbox: list[float], width: int, height: int, expected: list[float]) -> None:
    assert bbox_to_yolo(bbox, width, height) == pytest.approx(expected)


@given(
    st.floats(0, 500),
    st.floats(0, 500),
    st.floats(0.5, 500),
    st.floats(0.5, 500),
    st.integers(1, 4000),
    st.integers(1, 4000),
)
def test_yolo_round_trip(x: float, y: float, w: float, h: float, width: int, height: int) -> None:
    back = yolo_to_bbox(bbox_to_yolo([x, y, w, h], width, height), width, height)
    assert back == pytest.approx([x, y, w, h], rel=1e-9, abs=1e-6)


def test_yolo_and_voc_files_of_a_coco_dataset(tmp_path: Path) -> None:
    coco_path, _ = make_tiny_coco(tmp_path / "real")
    coco = json.loads(coco_path.read_text())
    classes = write_yolo(coco, tmp_path / "yolo")
    assert classes == ["square", "disc", "tri", "blob"]
    lines = (tmp_path / "yolo" / "labels" / "img_106.txt").read_text().splitlines()
    assert len(lines) == 1  # the crowd region of image 106 has no YOLO form
    cls, *values = lines[0].split()
    assert cls == "0" and all(0 <= float(v) <= 1 for v in values)
    write_voc(coco, tmp_path / "voc")
    root = ET.parse(tmp_path / "voc" / "Annotations" / "img_102.xml").getroot()
    assert root.findtext("filename") == "img_102.png"
    names = [o.findtext("name") for o in root.iter("object")]
    assert names == ["square", "tri"]
    box = root.find("object/bndbox")
    assert box is not None
    first = next(a for a in coco["annotations"] if a["image_id"] == 102)
    x, y, w, h = first["bbox"]
    assert [int(box.findtext(t) or 0) for t in ("xmin", "ymin", "xmax", "ymax")] == [
        round(x) + 1,
        round(y) + 1,
        round(x + w),
        round(y + h),
    ]


def test_pure_functions_skip_crowds() -> None:
    image = {"id": 1, "file_name": "a/b.png", "width": 10, "height": 10}
    annotations = [
        {"category_id": 7, "bbox": [0, 0, 5, 5], "iscrowd": 1},
        {"category_id": 7, "bbox": [1, 1, 2, 2], "iscrowd": 0},
    ]
    assert coco_to_yolo_lines(
        image, annotations, category_names={7: "c"}, class_names=["x", "c"]
    ) == ["1 0.200000 0.200000 0.200000 0.200000"]
    xml = coco_to_voc_xml(image, annotations, category_names={7: "c & d"})
    assert xml.count("<object>") == 1 and "c &amp; d" in xml and "<filename>b.png</filename>" in xml
