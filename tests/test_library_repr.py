"""What a notebook prints for a report: counts and the worst few findings, never all of them."""

from __future__ import annotations

from synthgate.samples import Finding, Provenance, RubricReport, Sample, SampleSpec


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
