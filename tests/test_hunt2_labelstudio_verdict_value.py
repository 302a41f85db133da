"""`review import` of an annotation whose verdict choice is not one synthgate knows (a hand
edit, or a labeling config changed in Label Studio: "Accept"): the message must name the value
it got, not say that no verdict was chosen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import SUPPORT_TICKETS
from typer.testing import CliRunner

from synthgate.cli import app

runner = CliRunner()


@pytest.mark.xfail(
    strict=True,
    reason="review/labelstudio.py _result_decision says 'no verdict chosen' for any verdict "
    "not in accept/reject/fix, never naming the value it read",
)
def test_an_unknown_verdict_choice_is_named(tmp_path: Path) -> None:
    config = tmp_path / "tickets.yaml"
    config.write_text(
        "name: tickets\nseed: 7\ncategories: [circle]\n"
        f"text: {{generator: templates, templates: {SUPPORT_TICKETS}, count: 10, "
        "locales: [en_US]}\n"
    )
    run = tmp_path / "run"
    assert runner.invoke(app, ["run", str(config), "--out", str(run)]).exit_code == 0
    assert runner.invoke(app, ["review", "enqueue", "--run", str(run)]).exit_code == 0
    tasks = tmp_path / "tasks.json"
    exported = runner.invoke(
        app, ["review", "export", "--run", str(run), "--modality", "text", "--out", str(tasks)]
    )
    assert exported.exit_code == 0, exported.output
    task = json.loads(tasks.read_text())[0]
    verdict = {"choices": ["Accept"]}
    region = {"from_name": "verdict", "to_name": "text", "type": "choices", "value": verdict}
    task["annotations"] = [
        {"id": 7, "completed_by": {"email": "zed@example.org"}, "result": [region]}
    ]
    export = tmp_path / "export.json"
    export.write_text(json.dumps([task]))

    result = runner.invoke(
        app, ["review", "import", str(export), "--run", str(run), "--email-domain", "example.org"]
    )
    output = " ".join(result.output.split())  # rich wraps lines
    assert "'Accept'" in output, output
    assert "no verdict chosen" not in output, output
