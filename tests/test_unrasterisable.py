"""Values a JSON file may hold that the tools under synthgate cannot take, refused before they
reach them: polygons pycocotools would crash on or need gigabytes for (`masks.polygon_problem`,
`masks.mask_size_problem`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from balance_fixtures import make_tiny_coco
from pycocotools import mask as mask_utils

from synthgate.masks import (
    MASK_PIXEL_LIMIT,
    POLYGON_COORDINATE_LIMIT,
    POLYGON_OUTLINE_LIMIT,
    mask_size_problem,
    polygon_problem,
)


def outline(points: list[float]) -> float:
    """The steps pycocotools walks a polygon's outline in, in pixels (max(|dx|, |dy|) an edge)."""
    xs, ys = points[0::2], points[1::2]
    ends = zip(xs, ys, xs[1:] + xs[:1], ys[1:] + ys[:1], strict=True)
    return sum(max(abs(x1 - x0), abs(y1 - y0)) for x0, y0, x1, y1 in ends)


def test_the_polygons_of_a_real_dataset_pass_untouched(tmp_path: Path) -> None:
    coco, _ = make_tiny_coco(tmp_path)
    polygons = [
        [float(v) for v in polygon]
        for annotation in json.loads(coco.read_text())["annotations"]
        if isinstance(annotation["segmentation"], list)
        for polygon in annotation["segmentation"]
    ]
    assert polygons
    assert [polygon_problem(p) for p in polygons] == [None] * len(polygons)
    real = Path(__file__).parent.parent.parent / "shared/data/coco-tiny-val2017/annotations.json"
    if real.is_file():  # COCO's own polygons, where the shared data is at hand
        for annotation in json.loads(real.read_text())["annotations"]:
            for polygon in annotation["segmentation"] if annotation["iscrowd"] == 0 else []:
                assert polygon_problem([float(v) for v in polygon]) is None


def test_the_outline_is_measured_exactly_when_the_quick_bound_fails() -> None:
    # 100 vertices around a 30,000 px square: 100 x 30,000 px is past the outline limit, its
    # real outline (120,000 px) is not, and pycocotools rasterises it
    side = 30_000.0
    edge = [side * i / 25 for i in range(25)]
    points = [c for x in edge for c in (x, 0.0)]
    points += [c for y in edge for c in (side, y)]
    points += [c for x in reversed(edge) for c in (x + side / 25, side)]
    points += [c for y in reversed(edge) for c in (0.0, y + side / 25)]
    assert len(points) // 2 * side > POLYGON_OUTLINE_LIMIT
    assert outline(points) < POLYGON_OUTLINE_LIMIT
    assert polygon_problem(points) is None
    rle = mask_utils.frPyObjects([points], 30_000, 30_000)[0]
    assert abs(int(mask_utils.area(rle)) - side * side) / (side * side) < 1e-3


@pytest.mark.parametrize(
    ("points", "words"),
    [
        ([1, 1, 1e9, 1, 1, 1e9], "polygon coordinate 1e+09"),
        ([-3e9, 0, 5, 5, 0, 5], "polygon coordinate -3e+09"),
        ([0, 0, 3e6, 0, 0, 3e6], "polygon outline is 9000000 px long"),
        ([0, 0, 1e6, 0, 0, 1e6, 0, 0, 1e6, 0, 0, 1e6], "polygon outline"),
    ],
)
def test_a_polygon_pycocotools_cannot_take_is_named(points: list[float], words: str) -> None:
    assert words in (polygon_problem([float(v) for v in points]) or "")


def test_the_limits_are_inclusive() -> None:
    far = float(POLYGON_COORDINATE_LIMIT)
    assert polygon_problem([far, far, far - 1, far, far, far - 1]) is None
    assert polygon_problem([far + 1, far, far - 1, far, far, far - 1]) is not None
    long = POLYGON_OUTLINE_LIMIT / 2
    assert polygon_problem([0.0, 0.0, long, 0.0]) is None  # out and back: the limit exactly
    assert polygon_problem([0.0, 0.0, long + 1, 0.0]) is not None


def test_mask_sizes_stop_where_rle_counts_do() -> None:
    assert mask_size_problem(480, 640) is None
    assert mask_size_problem(65_535, 65_535) is None  # just under 2**32 pixels
    assert "more pixels than a COCO mask can hold" in (mask_size_problem(65_536, 65_536) or "")
    assert mask_size_problem(1, MASK_PIXEL_LIMIT) is not None  # a side past a C int
    assert "not negative" in (mask_size_problem(-1, 5) or "")


def test_validate_judges_such_polygons_instead_of_crashing(tmp_path: Path) -> None:
    """Before the checks, each of these ended the process: a segmentation fault, or the kernel
    killing it for memory. Run in a fresh process, as a user runs it."""
    coco, _ = make_tiny_coco(tmp_path)
    data = json.loads(coco.read_text())
    first, second = data["annotations"][:2]
    third = next(
        a
        for a in data["annotations"]
        if a["image_id"] not in {first["image_id"], second["image_id"]}
    )
    first["segmentation"] = [[1, 1, 1e9, 1, 1, 1e9]]
    second["segmentation"] = [[0, 0, 3e6, 0, 0, 3e6]]
    wide = next(i for i in data["images"] if i["id"] == third["image_id"])
    wide["width"] = 10**12
    third["segmentation"] = [[1, 1, 20, 1, 1, 20]]
    coco.write_text(json.dumps(data))
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "synthgate", "validate", str(coco), "--json", str(report)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    messages = {
        finding.get("annotation_id"): finding["message"]
        for row in json.loads(report.read_text())["samples"]
        for finding in row["findings"]
        if finding.get("measure") == "mask_unreadable"
    }
    assert "polygon coordinate 1e+09" in messages[first["id"]]
    assert "polygon outline is 9000000 px long" in messages[second["id"]]
    assert "more pixels than a COCO mask can hold" in messages[third["id"]]
