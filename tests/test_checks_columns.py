"""Checks that measure every object at once (`ObjectMeasurements`) judge exactly as the same
measurements one by one: a report finished from columns equals the report finished from their
rows (the form workers store), findings, their order and the worst values included."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgate.masks import encode_mask
from synthgate.samples import GeneratedSample, ObjectLabel, Provenance, Sample, SampleSpec
from synthgate.validators.checks.base import CHECKS, ObjectMeasurements
from synthgate.validators.checks.objects import ROW_COLUMNS, ObjectTable
from synthgate.validators.context import ValidationContext
from synthgate.validators.measure import (
    SampleMeasurements,
    _judge_columns,
    finish_report,
    measure_sample,
)
from synthgate.validators.rubric import finding_for, load_rubric

H, W = 24, 32
RUBRIC = load_rubric("detection")

coordinate = st.floats(min_value=-4, max_value=36, allow_nan=False).map(lambda v: round(v, 2))
box = st.one_of(
    st.lists(coordinate, min_size=4, max_size=4),
    st.just([]),
    st.just([1.0, 2.0, 3.0]),
    st.just([5.0, 5.0, 0.0, 4.0]),
)
rect = st.tuples(
    st.integers(0, H - 1), st.integers(0, W - 1), st.integers(0, 12), st.integers(0, 12)
)


@st.composite
def objects(draw: Any) -> list[ObjectLabel]:
    found = []
    for n in range(draw(st.integers(0, 7))):
        y, x, h, w = draw(rect)
        mask = np.zeros((H, W), dtype=bool)
        mask[y : y + h, x : x + w] = True
        kind = draw(st.sampled_from(["mask", "mask", "none", "wrong size", "error"]))
        attributes: dict[str, Any] = {"iscrowd": draw(st.booleans()), "annotation_id": 100 + n}
        if kind == "error":
            attributes["segmentation_error"] = "no polygon with at least 3 finite points"
        rle = (
            encode_mask(mask)
            if kind == "mask"
            else encode_mask(np.zeros((4, 4), bool))
            if kind == "wrong size"
            else None
        )
        found.append(
            ObjectLabel(
                category=draw(st.sampled_from(["cat", "dog", "unicorn"])),
                bbox=draw(box),
                mask=rle,
                area=float(mask.sum()),
                visible_fraction=draw(st.floats(0, 1)),
                attributes=attributes,
            )
        )
    return found


@settings(max_examples=150, deadline=None)
@given(objects())
def test_columns_judge_as_their_rows(labels: list[ObjectLabel]) -> None:
    sample = Sample(
        id="s",
        spec=SampleSpec(batch_id="b", index=0, modality="image", generator="g", seed=3),
        width=W,
        height=H,
        objects=labels,
        provenance=Provenance(generator="g", generator_version="1", seed=3),
    )
    generated = GeneratedSample(sample=sample)
    context = ValidationContext.for_taxonomy(["cat", "dog"])
    measured = measure_sample(generated, RUBRIC, context)
    columns = [m for found in measured.measured if found for m in found]
    if any(not label.attributes["iscrowd"] for label in labels):  # visible fractions at least
        assert any(isinstance(m, ObjectMeasurements) for m in columns)
    stored = json.loads(json.dumps(measured.as_json()))
    by_rows = SampleMeasurements.from_json(sample, stored)
    assert not any(
        isinstance(m, ObjectMeasurements) for found in by_rows.measured if found for m in found
    )
    direct = finish_report(measured, RUBRIC, context)
    from_rows = finish_report(by_rows, RUBRIC, ValidationContext.for_taxonomy(["cat", "dog"]))
    assert direct.model_dump_json() == from_rows.model_dump_json()
    assert list(direct.measurements) == list(from_rows.measurements)


def test_a_view_slices_every_column_of_the_table() -> None:
    names = {f.name for f in fields(ObjectTable)}
    sparse = {"problem_at", "problems", "other_id_at", "other_ids", "left_out_at", "left_out"}
    assert names == {*ROW_COLUMNS, *sparse}


def test_columns_of_several_measures_judge_as_their_rows() -> None:
    """A check may mix measures in one column; worst values keep the order rows gave them."""
    check = CHECKS["correctness_bbox_valid"]
    spec = next(s for _, s in RUBRIC.steps if s.check == check.name)
    columns = ObjectMeasurements(
        measures=("bbox_invalid", "bbox_outside_px"),
        which=np.array([1, 0, 1, 1]),
        values=np.array([0.4, 1.0, 7.0, 2.0]),
        objects=np.array([0, 1, 2, 3]),
        annotation_ids=[None, 5, None, 6],
        describe=lambda k: f"row {k}",
    )
    worst: dict[str, float] = {}
    findings: list[Any] = []
    level = _judge_columns(check, spec, "correctness", columns, worst, findings)
    row_worst: dict[str, float] = {}
    row_findings = []
    for m in columns.rows():
        measure = check.measures[m.measure]
        previous = row_worst.get(m.measure)
        if previous is None or (m.value > previous) == (measure.worse == "higher"):
            row_worst[m.measure] = m.value
        found = spec.thresholds[m.measure].level(m.value, measure.worse)
        if found < 5:
            row_findings.append(finding_for(check, spec, m, found, "correctness"))
    assert (
        list(worst.items())
        == list(row_worst.items())
        == [
            ("bbox_outside_px", 7.0),
            ("bbox_invalid", 1.0),
        ]
    )
    assert findings == row_findings and level == 1
    assert [f.object_index for f in findings] == [1, 2, 3]


def test_measurements_stored_before_keys_finish_only_under_their_rubrics_name() -> None:
    """Partial reports stored before measurement keys were kept (key None) do not say which
    check params made them: a rubric of another name with the same checks took them (it may
    measure otherwise); as before keys, only the rubric of their name does."""
    sample = Sample(
        id="s",
        spec=SampleSpec(batch_id="b", index=0, modality="image", generator="g", seed=3),
        width=W,
        height=H,
        provenance=Provenance(generator="g", generator_version="1", seed=3),
    )
    context = ValidationContext.for_taxonomy(["cat"])
    stored = measure_sample(GeneratedSample(sample=sample), RUBRIC, context).as_json()
    legacy = SampleMeasurements.from_json(sample, {**stored, "key": None})
    assert legacy.measured_as(RUBRIC)
    assert not legacy.measured_as(RUBRIC.model_copy(update={"name": "tuned"}))
    keyed = SampleMeasurements.from_json(sample, stored)
    assert keyed.measured_as(RUBRIC.model_copy(update={"name": "tuned"}))  # same key
