"""The label side of `synthgate export` (datasets/yolo.py): VOC corners and YOLO lines of boxes
that are clipped, sub-pixel or wholly outside their image, export names, and VOC's <depth>."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageOps

from synthgate.errors import InputError
from synthgate.formats.exports import clip_bbox, export_names, exported_box, turned_box
from synthgate.formats.image_files import stored_frame_turn
from synthgate.formats.voc import coco_to_voc_xml, image_depth, voc_corners
from synthgate.formats.yolo import coco_to_yolo_lines

# bbox, image width, height, VOC [xmin, ymin, xmax, ymax] (None: left out, nothing inside).
CORNER_CASES: list[tuple[list[float], int, int, list[int] | None]] = [
    ([10, 5, 20, 10], 100, 50, [11, 6, 30, 15]),
    ([50, 20, 40, 25], 100, 50, [51, 21, 90, 45]),
    ([30.5, 10.25, 12.5, 7.75], 100, 50, [31, 11, 43, 18]),
    ([-2, 5, 12, 50], 8, 40, [1, 6, 8, 40]),  # clipped on three sides
    ([105, 10, 5, 5], 100, 50, None),  # wholly right of the image
    ([-5, -5, 4, 4], 100, 50, None),  # wholly above-left of it
    ([10, 5, 0, 5], 100, 50, None),  # w == 0, which check_coco allows
    ([10.6, 5, 0.3, 4], 100, 50, [11, 6, 11, 9]),  # thinner than a pixel: the pixel it is in
    ([99.5, 10, 0.5, 5], 100, 50, [100, 11, 100, 15]),  # the last half pixel
    ([0.2, 0.2, 0.2, 0.2], 100, 50, [1, 1, 1, 1]),
]


def _image(width: int, height: int) -> dict[str, Any]:
    return {"id": 1, "file_name": "x/a.png", "width": width, "height": height}


@pytest.mark.parametrize(("bbox", "width", "height", "expected"), CORNER_CASES)
def test_voc_corners_and_boxes_left_out(
    bbox: list[float], width: int, height: int, expected: list[int] | None
) -> None:
    annotation = {"category_id": 1, "bbox": bbox, "iscrowd": 0}
    image = _image(width, height)
    xml = ET.fromstring(coco_to_voc_xml(image, [annotation], category_names={1: "c"}))
    corners = [
        [int(o.findtext(f"bndbox/{t}") or 0) for t in ("xmin", "ymin", "xmax", "ymax")]
        for o in xml.iter("object")
    ]
    lines = coco_to_yolo_lines(image, [annotation], category_names={1: "c"}, class_names=["c"])
    if expected is None:
        assert exported_box(annotation, image) is None
        assert corners == [] and lines == []
    else:
        assert corners == [expected]
        assert len(lines) == 1 and all(float(v) > 0 for v in lines[0].split()[3:])


# bbox, image width, height: the line YOLO gets (6 decimals, more where they would read 0).
YOLO_LINE_CASES = [
    ([10, 5, 20, 10], 100, 50, "0 0.200000 0.200000 0.200000 0.200000"),
    ([0, 10, 0.004, 5], 10000, 50, "0 0.000000200000 0.250000 0.000000400000 0.100000"),
    (
        [0, 0, 1e-5, 1e-5],
        20000,
        20000,
        "0 0.000000000250000 0.000000000250000 0.000000000500000 0.000000000500000",
    ),
]


@pytest.mark.parametrize(("bbox", "width", "height", "expected"), YOLO_LINE_CASES)
def test_a_box_too_thin_for_6_decimals_keeps_its_size_in_yolo(
    bbox: list[float], width: int, height: int, expected: str
) -> None:
    """A box narrower than 5e-7 of its image read 0.000000 wide, a box Ultralytics drops."""
    annotation = {"category_id": 1, "bbox": bbox, "iscrowd": 0}
    lines = coco_to_yolo_lines(
        _image(width, height), [annotation], category_names={1: "c"}, class_names=["c"]
    )
    assert lines == [expected]
    values = np.array(lines[0].split(), dtype=np.float32)  # as Ultralytics reads a label file
    assert (values[3:] > 0).all()


@given(
    st.lists(st.floats(-200, 400, allow_nan=False), min_size=4, max_size=4),
    st.integers(1, 300),
    st.integers(1, 300),
)
def test_voc_corners_stay_inside_the_image(bbox: list[float], width: int, height: int) -> None:
    bbox[2], bbox[3] = abs(bbox[2]), abs(bbox[3])
    box = exported_box({"bbox": bbox}, _image(width, height))
    if box is None:
        return
    xmin, ymin, xmax, ymax = voc_corners(box)
    assert 1 <= xmin <= xmax <= width and 1 <= ymin <= ymax <= height


def test_boxes_leaving_the_image_are_clipped() -> None:
    assert clip_bbox([-2.0, 5.0, 12.0, 50.0], 8, 40) == [0.0, 5.0, 8.0, 35.0]


NAME_CASES = [
    (["x/a.png", "y/b.png"], ["a.png", "b.png"]),
    (["../../a.png", "/abs/b.png"], ["a.png", "b.png"]),  # only the base name is ever used
    (["x/a.png", "y/a.jpg"], ["f01d4696_a.png", "f08de710_a.jpg"]),  # one stem: one label file
    (["x/A.png", "y/a.png"], ["bb4a7892_A.png", "0b4b8437_a.png"]),  # case-insensitive disks
    (["a.png", "a.png"], "each image needs its own file_name"),
    (["x/..", "b.png"], "ends in no file name"),
    ([".", "b.png"], "ends in no file name"),
]


@pytest.mark.parametrize(("file_names", "expected"), NAME_CASES)
def test_export_names(file_names: list[str], expected: list[str] | str) -> None:
    images = [{"id": i, "file_name": name} for i, name in enumerate(file_names)]
    if isinstance(expected, str):
        with pytest.raises(InputError, match=expected):
            export_names(images)
    else:
        assert list(export_names(images).values()) == expected


@pytest.mark.parametrize(
    ("mode", "depth"), [("L", 1), ("I;16", 1), ("RGB", 3), ("RGBA", 3), ("P", 3)]
)
def test_voc_depth_is_read_from_the_image(tmp_path: Path, mode: str, depth: int) -> None:
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).convert(mode).save(path)
    assert image_depth(path) == depth


def test_voc_depth_of_a_file_that_is_no_image(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_text("not a PNG")
    with pytest.raises(InputError, match=r"a\.png: not an image file PIL can read"):
        image_depth(path)


@pytest.mark.parametrize(("setting", "readable"), [(None, False), ("16", False), ("5000", True)])
def test_voc_depth_of_a_file_over_the_pixel_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, readable: bool
) -> None:
    """image_depth read past SYNTHGATE_MAX_IMAGE_PIXELS, and a file over Pillow's own limit
    was a DecompressionBombError traceback: it is the limit, and how to raise it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow refuses over 20 (restored)
    if setting is None:
        monkeypatch.delenv("SYNTHGATE_MAX_IMAGE_PIXELS", raising=False)
    else:
        monkeypatch.setenv("SYNTHGATE_MAX_IMAGE_PIXELS", setting)
    path = tmp_path / "aerial.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(path)  # 64 pixels
    if readable:
        assert image_depth(path) == 1
        return
    limit = "20" if setting is None else "16"
    with pytest.raises(InputError) as caught:
        image_depth(path)
    message = str(caught.value)
    assert "aerial.png: too large to read" in message
    assert f"limit of {limit} pixels" in message
    assert "SYNTHGATE_MAX_IMAGE_PIXELS=<pixels>" in message


def _tight_box(pixels: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(pixels > 127)
    return [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]


@pytest.mark.parametrize("turn", [5, 6, 7, 8])
def test_a_box_on_stored_pixels_is_turned_as_the_photo_is_shown(turn: int) -> None:
    stored = np.zeros((30, 50), np.uint8)  # 50 wide, 30 high as stored
    box = [4, 7, 11, 5]
    stored[7:12, 4:15] = 255
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[0x0112] = turn
    image.info["exif"] = exif.tobytes()
    shown = np.asarray(ImageOps.exif_transpose(image))  # as EXIF-aware loaders decode it
    assert shown.shape == (50, 30)
    assert turned_box(box, turn, (50, 30)) == _tight_box(shown)


def test_only_labels_drawn_on_the_stored_pixels_of_a_turned_photo_are_turned(
    tmp_path: Path,
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 60)).save(tmp_path / "turned.jpg", exif=exif)
    exif[0x0112] = 3  # upside down: width and height stay
    Image.new("RGB", (40, 60)).save(tmp_path / "flipped.jpg", exif=exif)
    Image.new("RGB", (40, 40)).save(tmp_path / "square.jpg", exif=exif)
    assert stored_frame_turn(tmp_path / "turned.jpg", (40, 60)) == 6  # the stored size
    assert stored_frame_turn(tmp_path / "turned.jpg", (60, 40)) == 1  # the size it shows
    assert stored_frame_turn(tmp_path / "flipped.jpg", (40, 60)) == 1
    assert stored_frame_turn(tmp_path / "square.jpg", (40, 40)) == 1
    (tmp_path / "not-an-image.jpg").write_text("no")
    assert stored_frame_turn(tmp_path / "not-an-image.jpg", (40, 60)) == 1
