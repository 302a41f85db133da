"""COCO files read as they stream (formats/coco_reader.py) into annotation columns
(formats/coco_annotations.py): the same Samples, dataset tally and report bytes as reading the
whole file and converting annotation by annotation, whatever the key order, formatting and mess.

The reference is the conversion as it was before columns (kept here, verbatim): one Python
object per annotation, every coordinate checked one by one.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from synthgate.errors import InputError, quoted
from synthgate.formats.coco import beyond_float, read_coco, refuse_non_finite
from synthgate.formats.coco_annotations import _no_size, coco_to_samples
from synthgate.formats.coco_reader import read_coco_streaming, stream_coco
from synthgate.masks import (
    encode_mask,
    finite_number,
    finite_numbers,
    polygon_part_problem,
    segmentation_to_rle,
)
from synthgate.samples import ObjectLabel, Provenance, Sample, SampleSpec
from synthgate.validators.checks.dataset import DatasetTally
from synthgate.validators.context import ValidationContext
from synthgate.validators.measure import judge_dataset
from synthgate.validators.report_file import ReportFile
from synthgate.validators.rubric import load_rubric
from synthgate.validators.sources import _CocoSink
from synthgate.validators.validate import validate_file

# The reference: annotations -> Samples one object at a time (formats/coco.py before columns).


def _mapping_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count_of(value: Any, default: int) -> int:
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


def _whole(value: Any) -> Any:
    """3.0 as 3 (pycocotools takes one for the other), in sample and annotation ids."""
    whole = isinstance(value, float) and value.is_integer() and abs(value) < 2**63
    return int(value) if whole else value


def _size(value: Any) -> int | None:
    return int(value) if finite_number(value) and value > 0 else None


def _object(
    annotation: dict[str, Any], names: dict[Any, str], height: int | None, width: int | None
) -> ObjectLabel:
    image_id = annotation.get("image_id")
    attributes: dict[str, Any] = {"iscrowd": bool(annotation.get("iscrowd", 0))}
    if isinstance(_whole(annotation.get("id")), int):
        attributes["annotation_id"] = _whole(annotation["id"])
    bbox = annotation.get("bbox")
    box = (
        [float(v) for v in bbox] if isinstance(bbox, list) and all(map(finite_number, bbox)) else []
    )
    mask = None
    segmentation = annotation.get("segmentation")
    if segmentation not in (None, []):
        try:
            mask = segmentation_to_rle(segmentation, height, width)
        except (ValueError, TypeError, OverflowError) as error:
            # the columns name the image entry that lacks the size, not the polygons
            no_size = str(error) == "polygons need the image's width and height"
            attributes["segmentation_error"] = (
                _no_size((height, width), image_id) if no_size else str(error)
            )
    if isinstance(segmentation, list) and "segmentation_error" not in attributes:
        parts = [polygon_part_problem(points) for points in segmentation]
        bad = [f"polygon {i} {problem}" for i, problem in enumerate(parts) if problem is not None]
        if 0 < len(bad) < len(segmentation):  # measured from the others, the rest named
            attributes["segmentation_parts_left_out"] = ", ".join(bad)
    if len(box) != 4:
        attributes["bbox_error"] = (
            "bbox is missing"
            if bbox is None
            else f"bbox {quoted(bbox)} is not four finite numbers [x, y, w, h]"
        )
    category_id = annotation.get("category_id")
    visible: Any = _mapping_of(annotation.get("synthgate")).get("visible_fraction", 1.0)
    area: Any = annotation.get("area")
    return ObjectLabel(
        category=names.get(category_id, f"<category id {category_id}>"),
        bbox=box,
        mask=mask,
        area=float(area) if finite_number(area) else 0.0,
        visible_fraction=float(visible) if finite_number(visible) and 0 <= visible <= 1 else 1.0,
        attributes=attributes,
    )


def reference_samples(coco: dict[str, Any], source: str = "coco") -> Iterator[Sample]:
    names = {
        c.get("id"): str(c.get("name"))
        for c in coco.get("categories", [])
        if isinstance(c, dict) and "name" in c
    }
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for annotation in coco.get("annotations", []):
        if isinstance(annotation, dict):
            by_image[annotation.get("image_id")].append(annotation)
    for position, image in enumerate(coco.get("images", [])):
        if not isinstance(image, dict):
            continue
        image_id = image.get("id")
        height, width = _size(image.get("height")), _size(image.get("width"))
        mark = _mapping_of(image.get("synthgate"))
        seed = _count_of(mark.get("seed"), _count_of(image_id, position))
        spec = SampleSpec(
            batch_id=str(mark.get("batch_id") or source),
            index=_count_of(mark.get("index"), position),
            modality="image",
            generator=str(mark.get("generator") or "coco"),
            category=mark.get("category") if isinstance(mark.get("category"), str) else None,
            params={"image_id": image_id, "file_name": image.get("file_name")},
            seed=seed,
        )
        try:
            provenance = Provenance.model_validate(mark["provenance"])
        except (KeyError, ValidationError):
            provenance = Provenance(generator=spec.generator, generator_version="", seed=seed)
        file_name = image.get("file_name")
        yield Sample(
            id=str(mark.get("sample_id") or f"coco-{_whole(image_id)}"),
            spec=spec,
            uri=file_name if isinstance(file_name, str) else None,
            width=width,
            height=height,
            objects=[_object(a, names, height, width) for a in by_image.get(image_id, [])],
            provenance=provenance,
        )


# Messy COCO content: hashable ids of every kind, boxes and segmentations good and bad.


def _rle(y: int, x: int, side: int, shape: tuple[int, int] = (24, 32)) -> dict[str, Any]:
    mask = np.zeros(shape, dtype=bool)
    mask[y : y + side, x : x + side] = True
    return encode_mask(mask)


number = st.one_of(
    st.integers(-5, 40), st.floats(-5, 40, allow_nan=False).map(lambda v: round(v, 2))
)
ids = st.one_of(
    st.integers(1, 3), st.integers(1, 3), st.sampled_from([1.0, 2.5, "3", None, True, -1, 2**63])
)
polygon = st.sampled_from([0, 2, 4, 5, 6, 6, 8, 12]).flatmap(
    lambda n: st.lists(number, min_size=n, max_size=n)
)
polygons = st.lists(polygon, min_size=1, max_size=3)
segmentation = st.one_of(
    polygons,
    polygons,
    st.none(),
    st.just([]),
    st.just({}),
    st.lists(st.lists(st.sampled_from([1, 2.5, True, "4", None]), min_size=6, max_size=8)),
    st.builds(_rle, st.integers(0, 23), st.integers(0, 31), st.integers(0, 9)),
    st.builds(_rle, st.integers(0, 5), st.integers(0, 5), st.integers(0, 3), st.just((8, 8))),
    st.just({"size": [24, 32], "counts": [10, 20, 24 * 32 - 30]}),
    st.just({"size": [24, 32], "counts": [10, 20]}),
    st.just({"size": [24, 32], "counts": [True, 24 * 32 - 1]}),
    st.just({"size": [24, 32], "counts": "!!garbage"}),
    st.just({"size": [24], "counts": "abc"}),
    st.sampled_from([5, "polygon", False]),
)
annotation = st.fixed_dictionaries(
    {
        "image_id": st.one_of(st.integers(1, 3), st.integers(1, 3), ids),
        "segmentation": segmentation,
    },
    optional={
        "id": ids,
        "category_id": st.one_of(st.integers(0, 4), st.sampled_from(["1", 2.0, None])),
        "bbox": st.one_of(
            st.lists(number, min_size=4, max_size=4),
            st.lists(number, min_size=0, max_size=6),
            st.sampled_from(["box", None, [1, 2, True, 4], [1, 2, "3", 4]]),
        ),
        "area": st.one_of(number, st.sampled_from(["big", None, True])),
        "iscrowd": st.sampled_from([0, 1, True, False, "1", None]),
        "synthgate": st.one_of(
            st.fixed_dictionaries({"visible_fraction": st.sampled_from([0.3, 2.0, "x", True])}),
            st.just("mark"),
        ),
    },
)
image = st.fixed_dictionaries(
    {
        "id": st.one_of(st.integers(1, 3), ids),
        "width": st.one_of(st.just(32), st.sampled_from([32.0, 0, "w", None, 16])),
        "height": st.one_of(st.just(24), st.sampled_from([24.0, -1, None, 12])),
    },
    optional={
        "file_name": st.sampled_from(["a.png", None, 'ü"b.png']),
        "synthgate": st.sampled_from(
            [
                {"sample_id": "s", "seed": 3, "index": 2, "category": "cat", "generator": "g"},
                {"provenance": {"generator": "g", "generator_version": "1", "seed": 1}},
                {"provenance": {"bad": 1}, "seed": -2},
            ]
        ),
    },
)
category = st.one_of(
    st.fixed_dictionaries({"id": st.integers(0, 4), "name": st.sampled_from(["cat", "dog", 7])}),
    st.just({"id": 9}),
    st.just("category"),
)


@st.composite
def coco_files(draw: Any) -> dict[str, Any]:
    """A file whose annotations mostly name its images (most of them of a usable size), with
    every kind of mess mixed in."""
    images = draw(st.lists(image, min_size=1, max_size=5))
    for n, entry in enumerate(images):
        if draw(st.integers(0, 3)):  # most images: a plain id and a size
            entry.update(id=n + 1, width=32, height=24)
    if draw(st.booleans()):
        images.insert(draw(st.integers(0, len(images))), "not an image")
    annotations = draw(st.lists(annotation, max_size=12))
    for entry in annotations:
        if draw(st.integers(0, 3)):
            entry["image_id"] = draw(st.integers(1, len(images)))
    if draw(st.booleans()):
        annotations.insert(draw(st.integers(0, len(annotations))), 3)
    categories = draw(st.lists(category, max_size=4))
    return {"images": images, "annotations": annotations, "categories": categories}


def dumped(samples: Iterator[Sample]) -> list[str]:
    return [sample.model_dump_json() for sample in samples]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coco_files())
def test_columns_make_the_samples_the_reference_makes(coco: dict[str, Any]) -> None:
    assert dumped(coco_to_samples(coco)) == dumped(reference_samples(coco))


class Collected:
    """A sink that keeps what a stream hands over, and whether it had to start again."""

    def __init__(self) -> None:
        self.heads: list[dict[str, Any]] = []
        self.entries: list[Any] = []
        self.cleared = 0

    def head(self, members: dict[str, Any]) -> None:
        self.heads.append(members)

    def add(self, entry: Any) -> None:
        self.entries.append(entry)

    def clear(self) -> None:
        self.cleared += 1
        self.heads, self.entries = [], []


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    coco_files(),
    st.permutations(["images", "annotations", "categories", "info"]),
    st.sampled_from([None, 1]),
)
def test_a_stream_reads_what_json_reads(
    tmp_path_factory: pytest.TempPathFactory,
    coco: dict[str, Any],
    order: list[str],
    indent: int | None,
) -> None:
    # A nested "annotations" key and keys hidden in strings must not fool the reader.
    info = {"annotations": [1], "note": 'a "annotations": [ in text', "x\\": '}], "y": {'}
    document = {key: info if key == "info" else coco[key] for key in order}
    path = tmp_path_factory.mktemp("stream") / "coco.json"
    path.write_text(json.dumps(document, indent=indent, ensure_ascii=False))
    sink = Collected()
    members = stream_coco(path, sink)
    whole = read_coco(path)
    # Valid JSON streams; yajl stops at ints beyond 64 bits, and json reads those.
    assert sink.cleared == int("9223372036854775808" in path.read_text())
    assert sink.entries == whole["annotations"]
    assert {k: v for k, v in members.items() if k != "annotations"} == {
        k: v for k, v in whole.items() if k != "annotations"
    }
    assert members["annotations"] == []


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"images": [], "annotations": [{"bbox": [NaN, 1, 2, 3]}]}', "NaN: json reads it"),
        ('{"images": [], "annotations": [{"name": "\\ud800"}]}', "lone surrogate"),
        ('{"annotations": [{"id": 1}], "images": [], "annotations": [{"id": 2}]}', "twice"),
        ('{"images": [], "annotations": null}', "not an array"),
        ('{"images": [{"id": 1}]}', "no annotations"),
        ('{"images": [], "annotations": [{"id": 1e400}]}', "float overflow"),
    ],
)
def test_what_yajl_reads_otherwise_goes_through_json(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "odd.json"
    path.write_text(text)
    sink = Collected()
    members = stream_coco(path, sink)
    whole = read_coco(path)
    assert sink.entries == whole["annotations"], why
    assert len(sink.heads) == 1 and members["images"] == whole["images"]


def _many_buffers(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A COCO file of some hundred kB (many of the reader's buffers) and its annotations."""
    annotations = [
        {"id": i, "image_id": 1, "category_id": 1, "bbox": [i % 7, 1.5, 2, 3], "note": "x" * 40}
        for i in range(1, 3001)
    ]
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"images": [{"id": 1}], "annotations": annotations}))
    return path, annotations


def test_a_stream_reports_its_progress_through_the_file(tmp_path: Path) -> None:
    path, annotations = _many_buffers(tmp_path)
    size = path.stat().st_size
    seen: list[tuple[int, int]] = []
    stream_coco(path, Collected(), progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (0, size) and seen[-1] == (size, size)
    assert len(seen) > 3 and {total for _, total in seen} == {size}
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    # a stream that stops part way (a NaN, which json reads) goes on to the end as the file is
    # read whole: the count never goes back (a bar would start again)
    odd = tmp_path / "odd.json"
    annotations[1000]["bbox"] = "NAN"
    odd.write_text(
        json.dumps({"images": [{"id": 1}], "annotations": annotations}).replace('"NAN"', "NaN")
    )
    seen.clear()
    stream_coco(odd, Collected(), progress=lambda done, total: seen.append((done, total)))
    size = odd.stat().st_size
    done = [count for count, _ in seen]
    assert seen[0] == (0, size) and seen[-1] == (size, size) and 0 < done[-2] < size
    assert done == sorted(done)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    coco_files(),
    st.permutations(["images", "annotations", "categories", "info"]),
    st.sampled_from([None, 1]),
    # what yajl reads (a float near the end of the range: a false alarm of json's gate) and
    # what it leaves to json, which reads NaN, infinities and ints beyond 64 bits
    st.sampled_from(
        ["", "1.5e300", "NaN", "-Infinity", "1e400", "9" * 309 + ".5", "9" * 309, "2" + "0" * 19]
    ),
)
def test_a_streamed_whole_read_is_read_coco(
    tmp_path_factory: pytest.TempPathFactory,
    coco: dict[str, Any],
    order: list[str],
    indent: int | None,
    number: str,
) -> None:
    """What merge, balance and export copy into their outputs: the same mapping, key order
    and bytes written back as the whole-file reader's, and the same NaN / Infinity refusal."""
    document = {key: {"v": 1} if key == "info" else coco[key] for key in order}
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    if number:
        text = text.replace('"v": 1', f'"v": {number}')
    path = tmp_path_factory.mktemp("whole") / "coco.json"
    path.write_text(text)
    streamed_noted: list[str] = []
    whole_noted: list[str] = []
    streamed = read_coco_streaming(path, non_finite=streamed_noted)
    whole = read_coco(path, non_finite=whole_noted)
    assert json.dumps(streamed) == json.dumps(whole)  # keys in order, values to the bit
    assert streamed == whole or number == "NaN"  # NaN is not equal to itself
    refusals = []
    for data, noted in ((streamed, streamed_noted), (whole, whole_noted)):
        try:
            refuse_non_finite(data, path, noted)
            refusals.append(None)
        except InputError as error:
            refusals.append(str(error))
    assert refusals[0] == refusals[1]
    assert (refusals[0] is not None) == (number in ("NaN", "-Infinity", "1e400", "9" * 309 + ".5"))


def _cut_at_buffer(before: str, after: str, at: int) -> str:
    """`before` padded with x so that the character after the padding sits at offset `at`."""
    return before + "x" * (at - len(before)) + after


ANNOTATION = '{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}'
ARRAY = len('{"images": [{"id": 1}], "annotations": ')  # where the array's "[" is
BUFFER = 1 << 16  # the reader's buffers


@pytest.mark.parametrize(
    "text",
    [
        # a lone surrogate escape whose backslash ends one of the reader's buffers, in an
        # annotation, in the head and in the tail (yajl reads it as "?", json keeps it)
        _cut_at_buffer(
            '{"images": [{"id": 1}], "annotations": [{"id": 1, "s": "',
            '\\ud800"}]}',
            ARRAY + BUFFER - 1,
        ),
        _cut_at_buffer(
            '{"images": [{"id": 1, "s": "', '\\ud800"}], "annotations": []}', BUFFER - 1
        ),
        _cut_at_buffer(
            '{"images": [{"id": 1}], "annotations": [], "info": "', '\\ud800"}', ARRAY + BUFFER - 1
        ),
        # tail keys a search for keys would swallow: they begin with a colon
        '{"images": [], "annotations": [{"id": 1, "category": "a"}], ":note": 1}',
        '{"images": [], "annotations": [{"id": 1, "s": "a"}], " : x": 1, "categories": [1]}',
        # form feed and vertical tab: space to yajl, a syntax error to json
        '{"images": [], "annotations"\f:\f[' + ANNOTATION + "]}",
        '{"images": [], "annotations":\v[' + ANNOTATION + "]}",
        '{"images": [],\f"annotations": [' + ANNOTATION + "]}",
        '{"images": [], "annotations": [' + ANNOTATION + ",\f" + ANNOTATION + "]}",
        '{"images": [], "annotations": [' + ANNOTATION + '],\f"categories": []}',
        # nested deeper than json goes (yajl's builder is killed on a deep enough file)
        '{"images": [{"id": 1}], "annotations": [{"d": ' + "[" * 2000 + "]" * 2000 + "}]}",
        '{"images": [{"id": 1, "d": ' + "[" * 100_000 + "]" * 100_000 + '}], "annotations": []}',
        # the annotations key in the head twice, escaped once: json keeps it where it first came
        '{"annot\\u0061tions": 5, "images": [], "annotations": [' + ANNOTATION + "]}",
    ],
    ids=[
        "surrogate-cut-annotation",
        "surrogate-cut-head",
        "surrogate-cut-tail",
        "colon-key",
        "colon-key-then-more",
        "form-feed-key",
        "vertical-tab-key",
        "form-feed-head",
        "form-feed-annotations",
        "form-feed-tail",
        "deep-annotation",
        "very-deep-head",
        "escaped-twice",
    ],
)
def test_what_yajl_reads_otherwise_is_read_as_json_reads_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "odd.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    results = []
    for read in (read_coco_streaming, read_coco):
        try:
            results.append(json.dumps(read(path)))
        except InputError as error:
            results.append(str(error))
    assert results[0] == results[1]


HIGH, LOW = "\\ud83d", "\\ude00"  # 😀 as json.dumps writes it by default


@pytest.mark.parametrize(
    ("text", "streams"),
    [
        ('{"images": [], "annotations": [{"id": 1, "caption": "a' + HIGH + LOW + 'b"}]}', True),
        # the pair cut by the end of the reader's first buffer, then a lone one cut the same way
        (
            _cut_at_buffer(
                '{"images": [{"id": 1}], "annotations": [{"id": 1, "s": "',
                HIGH + LOW + '"}]}',
                ARRAY + BUFFER - len(HIGH),
            ),
            True,
        ),
        (
            _cut_at_buffer(
                '{"images": [{"id": 1}], "annotations": [{"id": 1, "s": "',
                HIGH + '\\u0041"}]}',
                ARRAY + BUFFER - len(HIGH),
            ),
            False,  # yajl would read the two escapes as one character
        ),
        ('{"images": [], "annotations": [{"id": 1, "s": "' + HIGH + '\\\\ude00"}]}', False),
    ],
    ids=["pair", "pair-cut", "lone-cut", "escaped-backslash"],
)
def test_surrogate_pairs_stream_and_lone_ones_go_to_json(
    tmp_path: Path, text: str, streams: bool
) -> None:
    path = tmp_path / "escapes.json"
    path.write_text(text)
    sink = Collected()
    members = stream_coco(path, sink)
    whole = read_coco(path)
    assert sink.cleared == (0 if streams else 1)
    assert json.dumps(sink.entries) == json.dumps(whole["annotations"])
    assert members["images"] == whole["images"]


def _counted_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one with every parse of a head or tail (`_members`)."""
    from synthgate.formats import coco_reader

    parses: list[int] = []
    members = coco_reader._members
    monkeypatch.setattr(
        coco_reader, "_members", lambda *a, **k: parses.append(1) or members(*a, **k)
    )
    return parses


def test_many_nested_annotations_keys_before_the_array_are_not_each_tested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each nested "annotations" key before the array costs a parse of the head so far: past a
    few, the file is read whole (4,000 images with such a key took 15 s, not 4 ms)."""
    from synthgate.formats import coco_reader

    images = [{"id": i, "annotations": [i]} for i in range(1, 401)]
    path = tmp_path / "nested.json"
    path.write_text(json.dumps({"images": images, "annotations": [{"id": 1}]}))
    tests = _counted_parses(monkeypatch)
    assert read_coco_streaming(path) == read_coco(path)
    assert len(tests) <= coco_reader.HEAD_TESTS


def test_the_tail_is_found_by_counting_not_by_trying_each_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The array's end is where the nesting comes back to the top level: one parse of the
    tail, whatever the last buffer holds (each of its keys was tried before, 0.5 s for a file of
    20k small annotations; 15 s for a caption of escaped quotes). Captions that would read as
    deep nesting from a wrong place do not send the file to json."""
    annotations = [
        {"id": i, "image_id": 1, "category_id": 1, "caption": ": " + "[" * 80, "q": '"' * 30}
        for i in range(1, 3001)
    ]
    path = tmp_path / "captions.json"
    path.write_text(
        json.dumps({"images": [{"id": 1}], "annotations": annotations, "categories": [{"id": 1}]})
    )
    parses = _counted_parses(monkeypatch)
    sink = Collected()
    data = stream_coco(path, sink)
    assert sink.cleared == 0 and sink.entries == annotations
    assert data["categories"] == [{"id": 1}]
    assert len(parses) == 2  # the head's test and the tail


def test_a_streamed_whole_read_reports_its_progress_through_the_file(tmp_path: Path) -> None:
    path, annotations = _many_buffers(tmp_path)
    size = path.stat().st_size
    seen: list[tuple[int, int]] = []
    data = read_coco_streaming(path, progress=lambda done, total: seen.append((done, total)))
    assert data["annotations"] == annotations
    done = [count for count, _ in seen]
    assert seen[0] == (0, size) and seen[-1] == (size, size) and len(seen) > 3
    assert done == sorted(done) and {total for _, total in seen} == {size}


def test_a_byte_order_mark_is_no_part_of_the_file_and_it_still_streams(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows tools start a JSON file with a UTF-8 byte-order mark: the file streams as the
    same file without it (the mark sends it to no whole-file read), with progress through its
    bytes; files read whole, or refused, are read as they are without it."""
    plain, annotations = _many_buffers(tmp_path)
    marked = tmp_path / "marked" / plain.name
    marked.parent.mkdir()
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    size = marked.stat().st_size
    sink, seen = Collected(), []
    with monkeypatch.context() as patched:  # a whole read would fail the test
        patched.setattr("synthgate.formats.coco_reader.read_coco", None)
        members = stream_coco(marked, sink, progress=lambda done, total: seen.append(done))
    assert sink.entries == annotations and sink.cleared == 0
    assert members == stream_coco(plain, Collected())
    assert seen[0] == 0 and seen[-1] == size and seen == sorted(seen)
    for text in (
        '{"images": [], "annotations": [{"bbox": [NaN, 1, 2, 3]}]}',  # read whole by json
        '{"images": [],\n "annotations": [{"id": 1},, {"id": 2}]}',  # line 2, column 30
    ):
        plain.write_text(text)
        marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
        read = []
        for path in (plain, marked):
            try:
                read.append(json.dumps(read_coco_streaming(path, non_finite=[])))
            except InputError as error:
                read.append(str(error).replace(str(path), "PATH"))
        assert read[0] == read[1]


def test_broken_json_is_an_input_error_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"images": [],\n "annotations": [{"id": 1},, {"id": 2}]}')
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON \(line 2, column"):
        stream_coco(path, Collected())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(coco_files())
def test_streamed_tally_judges_as_the_whole_file(coco: dict[str, Any]) -> None:
    rubric = load_rubric("detection")
    sink = _CocoSink()
    sink.head(coco)
    for entry in coco["annotations"]:
        sink.add(entry)
    sink.finish(coco)
    context = ValidationContext(quotas={"cat": 2})
    assert judge_dataset(sink.tally, rubric, context) == judge_dataset(
        DatasetTally.of(coco), rubric, context
    )


def test_report_file_writes_the_bytes_json_dumps_would(tmp_path: Path) -> None:
    rows = [{"id": "ü", "score": 4.5, "findings": []}, {"id": 2, "levels": {"a": 5}}]
    summary = {"samples": 2, "mean": math.pi}
    out = tmp_path / "sub" / "report.json"
    with ReportFile(out) as document:
        for row in rows:
            document.add(row)
        document.close("detection", summary)
    expected = {"rubric": "detection", "summary": summary, "samples": rows}
    assert out.read_text(encoding="utf-8") == json.dumps(expected, ensure_ascii=False)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.json"]
    with ReportFile(out) as empty:
        empty.close("ner", {})
    assert json.loads(out.read_text()) == {"rubric": "ner", "summary": {}, "samples": []}


def test_report_file_leaves_nothing_half_written(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    out.write_text("the earlier report")
    with pytest.raises(RuntimeError), ReportFile(out) as document:
        document.add({"id": 1})
        raise RuntimeError("judging failed")
    assert out.read_text() == "the earlier report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    with pytest.raises(InputError, match="is a folder"):
        ReportFile(tmp_path)


def test_validate_file_streams_its_document_and_keeps_no_report(tmp_path: Path) -> None:
    coco = {
        "images": [{"id": i, "file_name": f"{i}.png", "width": 32, "height": 24} for i in (1, 2)],
        "annotations": [
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10],
             "segmentation": _rle(5, 5, 10)},
            {"id": 8, "image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20],
             "segmentation": _rle(5, 5, 10)},
        ],
        "categories": [{"id": 1, "name": "box"}],
    }  # fmt: skip
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(coco))
    kept = validate_file(path)
    out = tmp_path / "report.json"
    streamed = validate_file(path, json=out, keep_reports=False)
    assert out.read_text(encoding="utf-8") == kept.to_json()
    assert streamed.reports == {} and streamed.summary.as_dict() == kept.summary.as_dict()
    assert [r["id"] for r in kept.rows] == ["coco-1", "coco-2"]
    with pytest.raises(InputError, match="keep_reports"):
        streamed.to_json()
    with pytest.raises(InputError, match=r"keep_reports=False: .* no rows to give"):
        _ = streamed.rows  # an empty list would read as a file of no samples
    empty = tmp_path / "empty.json"
    empty.write_text('{"images": [], "annotations": []}')
    with pytest.raises(InputError, match="holds no samples"):
        validate_file(empty, json=tmp_path / "none.json")
    assert not (tmp_path / "none.json").exists()


@pytest.mark.parametrize(
    ("number", "infinite"),
    [
        ("NaN", True),
        ("-Infinity", True),
        ("1e999", True),
        ("1.7976931348623159e308", True),  # just past the largest float: rounds to inf
        ("9" * 309 + ".5", True),  # 10**309: no exponent, still beyond
        ("1" + "0" * 150 + "e200", True),  # 1e350: an exponent under 300, still beyond
        ("1.5e300", False),  # the gate lets it through to the walk, which finds it finite
        ("12.5", False),
    ],
)
def test_the_reader_notes_what_reads_as_nan_or_infinity(
    tmp_path: Path, number: str, infinite: bool
) -> None:
    """What `refuse_non_finite` walks for: every number Python's json reads as NaN or inf is
    noted (a false alarm only costs a walk); an untouched file notes nothing."""
    path = tmp_path / "coco.json"
    path.write_text(
        '{"images": [{"id": 1, "file_name": "a-1e183.png", "width": 4, "height": 4, '
        f'"weight": {number}}}], "annotations": [], "categories": []}}'
    )
    noted: list[str] = []
    data = read_coco(path, non_finite=noted)
    assert bool(noted) == infinite or number == "1.5e300"
    if infinite:
        with pytest.raises(InputError, match=r"images\[0\] \(id 1\): weight is (NaN|-?Infinity)"):
            refuse_non_finite(data, path, noted)
    else:
        refuse_non_finite(data, path, noted)  # nothing to name
    assert read_coco(path)["images"][0]["file_name"] == "a-1e183.png"


DIGITS = "0123456789"
# A JSON number: digits (no leading zero), maybe a fraction, maybe an exponent; lengths around
# where a float ends (1.8e308).
JSON_NUMBERS = st.builds(
    lambda first, rest, fraction, exponent: first + rest + fraction + exponent,
    st.sampled_from("123456789"),
    st.one_of(st.text(DIGITS, max_size=12), st.integers(140, 320).map(lambda n: "9" * n)),
    st.one_of(st.just(""), st.text(DIGITS, min_size=1, max_size=8).map(lambda f: f".{f}")),
    st.one_of(
        st.just(""),
        st.builds(
            lambda sign, power: f"e{sign}{power}",
            st.sampled_from(["", "+", "-", "+00"]),
            st.one_of(st.integers(0, 400), st.integers(150, 320)),
        ),
    ),
)
# The gate as the module had it, one regular expression (3 s over a large file).
GATE = re.compile(r"[0-9][eE]\+?0*(?:[3-9][0-9]{2}|[1-9][0-9]{3,})|[0-9]{300}")
NUMBERISH = st.text(alphabet='0123456789eE+-. ,:"a\u00e9', max_size=40)


@settings(max_examples=500, deadline=None)
@given(number=JSON_NUMBERS, around=st.sampled_from(["{}", '{{"a": [1, {}]}}', "[{}, 2e+5]"]))
def test_the_beyond_float_gate_finds_every_number_json_reads_as_infinite(
    number: str, around: str
) -> None:
    value = json.loads(number)
    if isinstance(value, float) and math.isinf(value):
        assert beyond_float(around.format(number).encode())
    if not re.search(r"[eE]\+?0*[0-9]{3}|[0-9]{10}", number):  # far from a float's end
        assert not beyond_float(number.encode())  # no alarm for ordinary numbers


@settings(max_examples=400, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            NUMBERISH,
            st.sampled_from(["1e308", "1e299", "5e+0309", "2E1000", "1e-400", "e400", "3e+300"]),
            st.integers(295, 305).map(lambda n: "9" * n),
        ),
        max_size=6,
    )
)
def test_the_beyond_float_gate_flags_what_the_plain_expression_flagged(parts: list[str]) -> None:
    text = "".join(parts)
    if GATE.search(text):
        assert beyond_float(text.encode())


COORDINATES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.sampled_from([1e308, -1e308, True, False, "1", None]),
)


@settings(max_examples=500, deadline=None)
@given(values=st.lists(COORDINATES, max_size=8))
def test_finite_numbers_says_what_finite_number_says_of_each(values: list[Any]) -> None:
    assert finite_numbers(values) == all(map(finite_number, values))
