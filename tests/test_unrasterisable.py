"""Values a JSON file may hold that the tools under synthgate cannot take, refused before they
reach them: polygons pycocotools would crash on or need gigabytes for (`masks.polygon_problem`,
`masks.mask_size_problem`), and lone surrogates (an unpaired \\ud800-\\udfff escape: valid
JSON, but no character) that no UTF-8 file or database can keep."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from api_support import text_sample
from balance_fixtures import make_tiny_coco
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from synthgate import merge, run
from synthgate.errors import InputError, _first_place, lone_surrogate_in, printable, string_in
from synthgate.files import json_text
from synthgate.masks import (
    MASK_PIXEL_LIMIT,
    POLYGON_COORDINATE_LIMIT,
    POLYGON_OUTLINE_LIMIT,
    mask_size_problem,
    polygon_problem,
)
from synthgate.storage.store import Store


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


def test_json_text_keeps_what_it_can_write_and_escapes_what_it_cannot() -> None:
    assert json_text({"a": "é"}) == '{"a": "é"}'  # as json.dumps(ensure_ascii=False)
    text = json_text({"id": "x\ud800", "name": "é"})
    assert text.isascii()
    assert json.loads(text) == {"id": "x\ud800", "name": "é"}  # read back as it was
    assert printable("a\udc00b") == "a\\udc00b"


def test_lone_surrogate_in_names_where_it_is() -> None:
    assert lone_surrogate_in({"objects": [{"category": "ok"}, {"category": "c\udc00"}]}) == (
        "objects[1].category",
        "c\udc00",
    )
    assert lone_surrogate_in({"a": {"k\ud800": 1}}) == ("a key of a", "k\ud800")
    assert lone_surrogate_in({"a": ["fine", 1, None]}) is None


TEXTS = st.text(alphabet="ab.!", max_size=3)  # "!" marks a string that holds
PLAIN = st.recursive(
    st.one_of(TEXTS, st.integers(-2, 2), st.none(), st.floats(allow_nan=False)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(
            st.one_of(TEXTS, st.integers(0, 3), st.tuples(TEXTS, st.integers(0, 1))),
            inner,
            max_size=3,
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=400)
@given(value=PLAIN, where=st.sampled_from(["", "body", "a.b[0]"]))
@example(value={"a": {"b": "x!"}}, where="")
@example(value={".a": [{"b!": 2}]}, where="")
@example(value=("!", {0: "!"}), where="body")
@example(value={("a", ("b!",)): "c"}, where="w")
def test_string_in_names_the_place_it_named_before(value: Any, where: str) -> None:
    def holds(text: str) -> bool:
        return "!" in text

    # _first_place is string_in as it was (every place written on the way down)
    assert string_in(value, holds, where) == _first_place(value, holds, where)


def test_a_sample_no_database_can_keep_is_refused_naming_its_field(tmp_path: Path) -> None:
    sample = text_sample(0).model_copy(update={"attributes": {"note": "a\udc00"}})
    with Store(f"sqlite:///{tmp_path / 'x.db'}") as store:
        with pytest.raises(InputError, match=r"attributes\.note 'a\\udc00' holds a lone"):
            store.upsert_samples([sample])
        with store.engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT count(*) FROM samples").scalar() == 0


def test_merge_writes_a_lone_surrogate_back_as_the_escape_it_read(tmp_path: Path) -> None:
    """A field merge only carries over (an annotation's note) holds \\udc00: the merged file
    holds the same escape, valid JSON that reads back as the real file did."""
    coco, images = make_tiny_coco(tmp_path / "real")
    data = json.loads(coco.read_text())
    data["annotations"][0]["note"] = "a\udc00"
    coco.write_text(json.dumps(data))
    synthetic = tmp_path / "synth"
    run(
        {"name": "s", "seed": 1, "categories": ["square"],
         "image": {"count": 2, "size": [64, 64], "objects_per_image": [1, 1]}},
        out=synthetic,
    )  # fmt: skip
    merged = merge(coco, synthetic, out=tmp_path / "out", images=images)
    written = (tmp_path / "out" / "merged.coco.json").read_bytes()
    assert b"\\udc00" in written and written.isascii()
    notes = [a.get("note") for a in json.loads(written)["annotations"]]
    assert "a\udc00" in notes
    assert merged.added_images == 2
