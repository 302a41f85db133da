"""What a notebook prints for a report: counts and the worst few findings, never all of them."""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from synthgate.samples import (
    Finding,
    GeneratedSample,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    Span,
)


def _report(findings: int) -> RubricReport:
    return RubricReport(
        rubric="detection",
        score=2.6,
        levels={"correctness": 5, "completeness": 5, "precision": 1, "clarity": 3},
        route="rejected",
        findings=[
            Finding(
                criterion="precision" if i % 2 else "clarity",
                level=1 if i % 2 else 3,
                check="precision_box_tightness" if i % 2 else "clarity_min_size",
                message=f"box {i} is {i} px loose around its mask " + "x" * 200,
                measure="box_tightness_px",
                annotation_id=i,
            )
            for i in range(findings)
        ],
        measurements={"box_tightness_px": 9.0},
    )


def test_a_report_with_many_findings_shows_how_many_and_the_worst_few() -> None:
    report = _report(80)  # one COCO image with a loose box per object
    shown = repr(report)
    assert len(shown) < 800, shown
    assert "score=2.6" in shown and "route='rejected'" in shown and "'precision': 1" in shown
    assert "<80 findings, worst first: 1 precision_box_tightness: box 1 is 1 px" in shown
    assert "box 79 " not in shown and "… 77 more>" in shown
    assert "measurements={'box_tightness_px': 9.0}" in shown
    assert len(report.findings) == 80  # the findings themselves are all there
    assert repr(_report(0)).count("findings=[]") == 1
    assert "<1 finding, worst first" in repr(_report(1))


def test_a_sample_shows_its_report_as_short() -> None:
    spec = SampleSpec(batch_id="b", index=0, modality="image", generator="procedural", seed=1)
    sample = Sample(
        id="ima-1",
        spec=spec,
        provenance=Provenance(generator="procedural", generator_version="1", seed=1),
        report=_report(80),
        status="rejected",
    )
    assert "report=RubricReport(" in repr(sample) and len(repr(sample)) < 1500


def _mask(size: int, i: int) -> dict[str, Any]:
    pixels = np.zeros((size, size), dtype=np.uint8, order="F")
    pixels[i : i + 40, (i * 5) % 400 : (i * 5) % 400 + 30] = 1
    rle = mask_utils.encode(pixels)
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def test_a_sample_of_90_objects_shows_them_counted_by_category() -> None:
    """Every object in full (masks by size) was 12 KB for one COCO image of 90 objects."""
    spec = SampleSpec(
        batch_id="b", index=0, modality="image", generator="procedural", seed=1, category="circle"
    )
    objects = [
        ObjectLabel(
            category="circle" if i % 3 else "square",
            bbox=[float(i), 1.0, 30.0, 40.0],
            mask=_mask(512, i),
            area=1200.0,
        )
        for i in range(90)
    ]
    sample = Sample(
        id="ima-90",
        spec=spec,
        uri="images/ima-90.png",
        width=512,
        height=512,
        objects=objects,
        provenance=Provenance(generator="procedural", generator_version="1", seed=1),
        status="review",
    )
    shown = repr(sample)
    assert len(shown) < 700, shown
    assert shown.startswith("Sample(id='ima-90', ") and "status='review'" in shown
    assert "category='circle'" in shown and "objects=<90 objects: 60 circle, 30 square>" in shown
    assert "ObjectLabel(" not in shown and len(sample.objects) == 90  # all still there
    assert "objects=<90 objects: " in str(sample) and len(str(sample)) < 700  # pydantic's str
    generated = GeneratedSample(sample=sample, pixels=np.zeros((512, 512, 3), dtype=np.uint8))
    assert repr(generated).startswith("GeneratedSample(sample=<Sample ima-90 circle objects=90>")
    assert len(repr(generated)) < 200
    assert "objects=<1 object: 1 square>" in repr(
        sample.model_copy(update={"objects": objects[:1]})
    )
    assert "objects=[]" in repr(sample.model_copy(update={"objects": []}))
    many = [o.model_copy(update={"category": f"c{i % 5}"}) for i, o in enumerate(objects)]
    assert "<90 objects: 18 c0, 18 c1, 18 c2, … 36 more>" in repr(
        sample.model_copy(update={"objects": many})
    )


def test_a_text_sample_shows_its_text_cut_and_its_spans_counted_by_label() -> None:
    spec = SampleSpec(batch_id="b", index=1, modality="text", generator="templates", seed=2)
    text = "Hello, my order " + "number 1234 " * 40 + "never arrived."
    spans = [Span(start=0, end=5, label="greeting")] + [
        Span(start=16 + 12 * i, end=27 + 12 * i, label="order_id") for i in range(40)
    ]
    sample = Sample(
        id="tex-1",
        spec=spec,
        text=text,
        spans=spans,
        provenance=Provenance(generator="templates", generator_version="1", seed=2),
    )
    shown = repr(sample)
    assert len(shown) < 600, shown
    assert "text='Hello, my order number 1234 " in shown and "never arrived" not in shown
    assert "…'" in shown and "spans=<41 spans: 40 order_id, 1 greeting>" in shown
    assert sample.text == text and len(sample.spans) == 41
    short = sample.model_copy(update={"text": "Hi.", "spans": []})
    assert "text='Hi.'" in repr(short) and "spans=[]" in repr(short)
