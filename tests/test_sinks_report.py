"""A run's report.md: what the data names (a real dataset's class names) is shown in Markdown
viewers, never run as HTML, and the rubric's own text ("< 8 px") reads as it did."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.validators.rubric import RUBRICS_DIR
from synthgate.validators.summary import markdown_text

EVIL = "<img src=x onerror=alert(1)>"


def test_a_class_name_holding_html_is_shown_in_report_md_not_run(tmp_path: Path) -> None:
    rubric = yaml.safe_load((RUBRICS_DIR / "detection.yaml").read_text())
    rubric["routing"].update(accept_at=5.0, audit_rate=0.0)  # anything short of gold waits
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(rubric))
    config = {
        "name": "evil",
        "seed": 3,
        "categories": [EVIL, "square"],
        "image": {
            "generator": "procedural",
            "count": 6,
            "size": [96, 64],
            "objects_per_image": [3, 5],
            "rubric": "strict.yaml",
        },
    }
    (tmp_path / "evil.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(tmp_path / "evil.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text(encoding="utf-8")
    # the class quota check names the class that fell short of its quota
    assert "class '&lt;img src=x onerror=alert(1)>'" in report
    assert re.search(r"<[A-Za-z/!?]", report) is None, "no tag can open anywhere"
    assert "< 8" in report  # the rubric's rule for min_side_px, as the golden run has it


def test_only_a_less_than_that_can_open_a_tag_is_escaped() -> None:
    assert markdown_text("< 8 px, <= 5, a<b") == "< 8 px, <= 5, a&lt;b"
    assert markdown_text("</p><!-- x --><?php <https://x>") == (
        "&lt;/p>&lt;!-- x -->&lt;?php &lt;https://x>"
    )
