"""COCO files as the datasets and annotation tools that write them lay them out, validated: each
legal quirk is read as pycocotools and the tool mean it (no finding of its own), and the summary
counts every image of the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from balance_fixtures import lvis_of, make_tiny_coco

from synthgate.formats.coco import image_file_name
from synthgate.validators.validate import validate_coco


def _findings(result: Any, measure: str) -> list[dict[str, Any]]:
    return [f for row in result.rows for f in row["findings"] if f.get("measure") == measure]


@pytest.mark.parametrize("layout", ["split folder", "flat"])
def test_lvis_images_named_by_their_coco_url_are_found(tmp_path: Path, layout: str) -> None:
    """LVIS names its images by `coco_url` alone. validate read every image as having no file
    (image_unreadable: correctness 1, every image sent to review) and listed each as lacking
    `file_name`. The URL's split folder and name are looked up (Detectron2's layout: images/
    val2017/x.jpg), or the bare name (the LVIS API's download: images/x.jpg)."""
    coco_path, images = make_tiny_coco(tmp_path)
    lvis = lvis_of(json.loads(coco_path.read_text()))
    if layout == "split folder":
        (images / "val2017").mkdir()
        for image in list(images.glob("*.png")):
            image.rename(images / "val2017" / image.name)
    coco_path.write_text(json.dumps(lvis))

    result = validate_coco(coco_path, images=images)

    assert result.summary.samples == len(lvis["images"])
    assert _findings(result, "image_unreadable") == []
    assert _findings(result, "mask_unreadable") == []
    assert result.summary.dataset == []
    assert {r.levels["correctness"] for r in result.reports.values()} == {5}


def _from_0(data: dict[str, Any], images: Path) -> dict[str, Any]:
    """Roboflow's and Label Studio's layout: image, annotation and category ids counted from 0
    (Roboflow's category 0 the project's supercategory, used by no annotation), file names
    under images/ with Label Studio's upload prefix, boxes with `"segmentation": []` and
    Label Studio's `ignore`."""
    image_ids = {image["id"]: k for k, image in enumerate(data["images"])}
    (images / "images").mkdir()
    renamed = []
    for image in data["images"]:
        name = f"images/1a2b3c4d-{image['file_name']}"
        (images / image["file_name"]).rename(images / name)
        renamed.append({**image, "id": image_ids[image["id"]], "file_name": name})
    annotations = [
        {
            **a,
            "id": k,
            "image_id": image_ids[a["image_id"]],
            "segmentation": [],
            "ignore": 0,
            "iscrowd": 0,
        }
        for k, a in enumerate(data["annotations"])
    ]
    categories = [{"id": 0, "name": "shapes-xyz", "supercategory": "none"}] + [
        {**c, "supercategory": "shapes-xyz"} for c in data["categories"]
    ]
    return {"images": renamed, "annotations": annotations, "categories": categories}


def test_an_export_counted_from_0_names_annotation_0(tmp_path: Path) -> None:
    """Roboflow and Label Studio number annotations from 0. A finding on annotation 0 was shown
    without its id ("coco-0" where others read "coco-0 ann 1"), and its row named the object by
    index as well as by id, as if it had no id."""
    coco_path, images = make_tiny_coco(tmp_path)
    data = _from_0(json.loads(coco_path.read_text()), images)
    data["annotations"][0]["bbox"] = [10.0, 10.0, 2.0, 2.0]  # too small to recognise
    coco_path.write_text(json.dumps(data))

    result = validate_coco(coco_path, images=images)

    assert result.summary.samples == len(data["images"])
    assert _findings(result, "image_unreadable") == []
    (small,) = [f for f in _findings(result, "min_side_px") if f["level"] == 1]
    assert small["annotation_id"] == 0 and "object_index" not in small
    (group,) = [g for g in result.summary.as_dict()["findings"] if g["level"] == 1]
    assert group["examples"] == ["coco-0 ann 0"]


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        (["2.0", "2.0", "28.0", "10.0"], "bbox ['2.0', '2.0', '28.0', '10.0'] is not four finite"),
        (None, "bbox is missing"),
    ],
)
def test_a_box_that_is_no_box_is_named_as_the_file_holds_it(
    tmp_path: Path, bbox: Any, message: str
) -> None:
    """Boxes written as strings (CSV-made files) are no box to pycocotools' IoU either; the
    finding said "box [] is not a positive box", hiding what the file holds."""
    coco_path, _ = make_tiny_coco(tmp_path)
    data = json.loads(coco_path.read_text())
    data["annotations"][0]["bbox"] = bbox
    coco_path.write_text(json.dumps(data))

    (invalid,) = _findings(validate_coco(coco_path), "bbox_invalid")

    assert invalid["annotation_id"] == data["annotations"][0]["id"]
    assert invalid["message"].startswith(message)


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ({"coco_url": "http://images.cocodataset.org/train2017/1.jpg"}, "train2017/1.jpg"),
        ({"coco_url": "http://host/x.jpg?token=a"}, "x.jpg"),
        ({"coco_url": "http://host/../../x.jpg"}, "x.jpg"),  # never a name that climbs out
        ({"coco_url": "", "file_name": None}, None),
        ({"coco_url": "http://host/a/b.jpg", "file_name": "c.jpg"}, "c.jpg"),
        ({"coco_url": "http://host/a/b.jpg", "file_name": ""}, ""),  # "missing", as it says
    ],
)
def test_an_image_named_by_url_alone_is_named_by_the_url_s_path(
    image: dict[str, Any], name: str | None
) -> None:
    assert image_file_name(image) == name


def _crowd_file(bbox: list[float], *, crowd: int) -> dict[str, Any]:
    """One 40x30 image with a region filling x 5..14, y 5..9 as uncompressed RLE (COCO's crowd
    masks, and CVAT's masks through datumaro), boxed by `bbox`."""
    mask = np.zeros((30, 40), dtype=np.uint8)
    mask[5:10, 5:15] = 1
    flat = mask.flatten(order="F")  # RLE runs down the columns, starting with a run of 0s
    changes = np.flatnonzero(np.diff(flat)) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    return {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30}],
        "annotations": [
            {
                "id": 7,
                "image_id": 1,
                "category_id": 1,
                "bbox": bbox,
                "area": 50.0,
                "iscrowd": crowd,
                "segmentation": {"size": [30, 40], "counts": counts},
            }
        ],
        "categories": [{"id": 1, "name": "person"}],
    }


@pytest.mark.parametrize(
    ("bbox", "crowd", "outside"),
    [
        ([5, 5, 9, 4], 1, None),  # COCO's crowd box: [x0, y0, x1 - x0, y1 - y0], last pixels
        ([5, 5, 10, 5], 1, None),  # pycocotools' toBbox
        ([5, 5, 8, 4], 1, 2.0),  # 2 px short on the right: a wrong box
        ([6, 6, 8, 3], 1, 1.0),  # 1 px short on the left and top: no convention does that
        ([5, 5, 9, 4], 0, 1.0),  # an instance's box is toBbox's
    ],
)
def test_a_crowd_region_boxed_to_its_last_pixel_is_inside_its_box(
    tmp_path: Path, bbox: list[float], crowd: int, outside: float | None
) -> None:
    """COCO's own crowd annotations (and CVAT's COCO export of every mask) box the mask to its
    last pixel, 1 px short of pycocotools' toBbox on the right and bottom: every such region was
    found reaching 1 px past its box (precision 3), sending each crowd image to review."""
    coco_path = tmp_path / "crowd.json"
    coco_path.write_text(json.dumps(_crowd_file(bbox, crowd=crowd)))

    found = _findings(validate_coco(coco_path), "mask_outside_box_px")

    reaches = [f["message"].split(" px beyond")[0] for f in found]
    assert reaches == ([] if outside is None else [f"mask reaches {outside:g}"])


@pytest.mark.parametrize("order", ["images first", "annotations first"])
def test_polygon_parts_that_are_no_polygon_are_named_and_the_rest_measured(
    tmp_path: Path, order: str
) -> None:
    """A 2-point part beside a good polygon was dropped without a word (balance refuses the
    file for it: "polygon 1 has 2 point(s)"); the good part is still measured."""
    data = _crowd_file([5, 5, 10, 5], crowd=0)
    good = [5.0, 5.0, 15.0, 5.0, 15.0, 10.0, 5.0, 10.0]
    data["annotations"][0]["segmentation"] = [good, [20.0, 20.0, 21.0, 21.0], "x"]
    data["annotations"].append({**data["annotations"][0], "id": 8, "segmentation": [good]})
    if order == "annotations first":
        data = {"annotations": data["annotations"], **data}
    coco_path = tmp_path / "parts.json"
    coco_path.write_text(json.dumps(data))

    result = validate_coco(coco_path)

    (left_out,) = _findings(result, "mask_parts_left_out")
    assert left_out["annotation_id"] == 7 and left_out["level"] == 3
    assert "polygon 1 has 2 point(s); a polygon needs at least 3" in left_out["message"]
    assert "polygon 2 must be a flat list of x, y pairs" in left_out["message"]
    assert _findings(result, "mask_unreadable") == []
    # measured as the good part alone: the same as annotation 8, which holds only it
    (duplicate,) = _findings(result, "duplicate_iou")
    assert "mask IoU 1.00 with annotation 7" in duplicate["message"]


def test_float_ids_name_samples_and_annotations_as_the_ints_they_equal(tmp_path: Path) -> None:
    """A file whose ids went through a float column (pandas writes 3.0): validate named its
    samples coco-0.0 and its annotations by index alone, where pycocotools (and a dict) takes
    3.0 for 3. They are named as the ints they equal, judged as the int file is, and the schema
    finding names each float id and reference with the fix."""
    coco_path, images = make_tiny_coco(tmp_path)
    data = _from_0(json.loads(coco_path.read_text()), images)
    data["annotations"][0]["bbox"] = [10.0, 10.0, 2.0, 2.0]  # a finding on annotation 0
    coco_path.write_text(json.dumps(data))
    floats = {
        "images": [{**i, "id": float(i["id"])} for i in data["images"]],
        "annotations": [
            {**a, **{k: float(a[k]) for k in ("id", "image_id", "category_id")}}
            for a in data["annotations"]
        ],
        "categories": data["categories"],
    }
    float_path = tmp_path / "floats.json"
    float_path.write_text(json.dumps(floats))

    expected, result = (
        validate_coco(coco_path, images=images),
        validate_coco(float_path, images=images),
    )

    def named(rows: list[dict[str, Any]]) -> str:  # as written, 0 and 0.0 apart
        return json.dumps([{k: v for k, v in row.items() if k != "image_id"} for row in rows])

    assert named(result.rows) == named(expected.rows)
    assert [row["image_id"] for row in result.rows] == [float(i["id"]) for i in data["images"]]
    (small,) = [f for f in _findings(result, "min_side_px") if f["level"] == 1]
    assert small["annotation_id"] == 0 and type(small["annotation_id"]) is int
    messages = [f.message for f in result.summary.dataset]
    assert any("images have an id that is not an integer: 0.0" in m for m in messages), messages
    assert any("image_id 0.0 (annotation 0.0)" in m and "(7, not 7.0)" in m for m in messages)
