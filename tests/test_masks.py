"""Compressed RLE strings are read before pycocotools trusts them (`masks.rle_runs`): the
vectorised reading gives the runs the definition gives, a character at a time, for any string."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from synthgate import run
from synthgate.masks import _rle_runs_one_by_one, encode_mask, rle_areas, rle_runs

# Mostly the 64 characters RLE uses ('0' to 'o'), with a few outside it and some non-ASCII.
RLE_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=48, max_codepoint=111),
        st.sampled_from(["/", "p", "~", " ", "é", "\x7f"]),
    ),
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@given(RLE_TEXT)
@example("o" * 13 + "0")  # a number of 70 bits: beyond int64, read as Python reads it
@example("o" * 6 + "?" + "1")  # the longest a vectorised number gets, sign bit set
def test_any_string_reads_as_the_definition_reads_it(text: str) -> None:
    expected = _rle_runs_one_by_one(text)
    assert rle_runs(text) == expected
    if text.isascii():
        assert rle_runs(text.encode("ascii")) == expected


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    height=st.integers(1, 64),
    width=st.integers(1, 64),
    fill=st.floats(0, 1),
)
def test_a_real_masks_runs_add_up_to_its_pixels(
    seed: int, height: int, width: int, fill: float
) -> None:
    mask = np.random.default_rng(seed).random((height, width)) < fill
    counts = encode_mask(mask)["counts"]
    runs = rle_runs(counts)
    assert runs == _rle_runs_one_by_one(counts)
    assert runs is not None and sum(runs) == height * width and min(runs) >= 0
    # Column-major runs alternate background and foreground, starting with background.
    assert sum(runs[1::2]) == int(mask.sum())


def test_rle_areas_takes_more_masks_than_pycocotools_area_does() -> None:
    """pycocotools' area() fails on 256 or more RLEs at once (a uint8 count): an image with
    300 labelled objects crashed the rubric."""
    rng = np.random.default_rng(0)
    masks = [rng.random((12, 10)) < rng.random() for _ in range(600)]
    rles = [encode_mask(mask) for mask in masks]
    assert rle_areas(rles).tolist() == [int(mask.sum()) for mask in masks]


def test_a_run_with_300_objects_in_an_image_is_judged(tmp_path: Path) -> None:
    config = {
        "name": "dense", "seed": 3, "categories": ["circle"],
        "image": {"count": 1, "size": [512, 512], "objects_per_image": [300, 300],
                  "object_scale_range": [0.02, 0.03], "min_visible_fraction": 0.0},
    }  # fmt: skip
    result = run(config, out=tmp_path / "dense")
    (sample,) = result.samples("image")
    assert len(sample.objects) > 255 and sample.report is not None
