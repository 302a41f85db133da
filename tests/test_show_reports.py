"""`sg.show(sample, report)` with a report of another modality than its sample's (a notebook's
`show(texts[0], reports[0])` where the reports are the images'): one InputError saying whose
report it is, not a text drawn with an image's findings and score."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import pytest

import synthgate as sg
from synthgate.samples import Finding

matplotlib.use("Agg")

IMAGES: dict[str, Any] = {
    "name": "shapes",
    "seed": 3,
    "categories": ["circle", "square"],
    "image": {"generator": "procedural", "count": 1, "size": [64, 64]},
}
TEXTS: dict[str, Any] = {
    "name": "tickets",
    "seed": 3,
    "text": {
        "generator": "templates",
        "templates": str(Path(sg.__file__).parent / "configs/templates/support_tickets.yaml"),
        "count": 1,
    },
}


@pytest.fixture(scope="module")
def judged() -> dict[str, tuple[sg.GeneratedSample, sg.RubricReport]]:
    image, text = sg.generate(IMAGES)[0], sg.generate(TEXTS)[0]
    return {
        "image": (image, sg.validate([image])[0]),
        "text": (text, sg.validate([text])[0]),
    }


@pytest.mark.parametrize(("sample_of", "report_of"), [("text", "image"), ("image", "text")])
def test_a_report_of_another_modality_is_refused(
    sample_of: str, report_of: str, judged: dict[str, Any]
) -> None:
    sample, report = judged[sample_of][0], judged[report_of][1]
    with pytest.raises(sg.InputError) as refused:
        sg.show(sample, report)
    assert refused.value.field == "report"
    message = str(refused.value)
    assert f"is a report on {report_of} samples" in message
    assert f"sample {sample.sample.id} is a {sample_of} sample" in message
    assert "pass the sample's own report" in message


def test_a_report_of_a_rubric_of_its_own_is_known_by_what_its_findings_name(
    judged: dict[str, Any],
) -> None:
    # a rubric of the user's own: its name says nothing, its findings name objects, not spans
    text = judged["text"][0]
    finding = Finding(
        criterion="precision", level=3, check="precision_box_tightness", message="loose",
        object_index=0,
    )  # fmt: skip
    report = judged["image"][1].model_copy(update={"rubric": "mine", "findings": [finding]})
    with pytest.raises(sg.InputError, match="is a report on image samples"):
        sg.show(text, report)


def test_a_samples_own_report_is_drawn(judged: dict[str, Any]) -> None:
    for sample, report in judged.values():
        assert sg.show(sample, report) is not None
