"""Second read (5a50865): report.md escapes a '<' that could open a tag in class names, criteria,
findings and the run's name, but the rubric's name goes out raw inside a code span; a backtick
in it closes the span and what follows is live HTML in any Markdown viewer."""

from __future__ import annotations

import re

from synthgate.validators.rubric import load_rubric
from synthgate.validators.summary import ValidationSummary, run_report_markdown

EVIL = "detection` <img src=x onerror=alert(1)> `"


def test_a_rubric_name_cannot_open_a_tag_in_report_md() -> None:
    rubric = load_rubric("detection").model_copy(update={"name": EVIL})
    report = run_report_markdown("run", "b1", {"image": ValidationSummary(rubric)})
    assert re.search(r"<[A-Za-z/!?]", report) is None, report.splitlines()[6]
