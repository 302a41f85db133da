"""`review import` of a Label Studio export made from another run: its tasks name their sample
(`data.sample_id`), and an item number of this run's queue holding another sample must not take
the decision, or people's verdicts land on samples they never saw."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from factories import SUPPORT_TICKETS
from sqlalchemy import func, select
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.tables import decisions

runner = CliRunner()


def _text_run(tmp_path: Path, name: str, seed: int) -> Path:
    config = tmp_path / f"{name}.yaml"
    config.write_text(
        f"name: {name}\nseed: {seed}\ncategories: [circle]\n"
        f"text: {{generator: templates, templates: {SUPPORT_TICKETS}, count: 10, "
        "locales: [en_US]}\n"
    )
    run = tmp_path / name
    assert runner.invoke(app, ["run", str(config), "--out", str(run)]).exit_code == 0
    assert runner.invoke(app, ["review", "enqueue", "--run", str(run)]).exit_code == 0
    return run


@pytest.mark.xfail(
    strict=True,
    reason="review import never reads a task's data.sample_id: a decision on item 1 of run A "
    "is recorded on item 1 of run B, another sample",
)
def test_import_of_another_runs_export_is_refused(tmp_path: Path) -> None:
    first = _text_run(tmp_path, "first", 7)
    second = _text_run(tmp_path, "second", 9)  # its queue has an item 1 too
    tasks = tmp_path / "ls" / "tasks.json"
    exported = runner.invoke(
        app,
        ["review", "export", "--run", str(first), "--modality", "text", "--out", str(tasks)],
    )
    assert exported.exit_code == 0, exported.output
    task = json.loads(tasks.read_text())[0]
    task["annotations"] = [
        {
            "id": 601,
            "completed_by": {"email": "gina@example.org"},
            "result": [
                {
                    "id": "v",
                    "from_name": "verdict",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["accept"]},
                }
            ],
        }
    ]
    export = tmp_path / "ls" / "export.json"
    export.write_text(json.dumps([task]))

    result = runner.invoke(
        app,
        ["review", "import", str(export), "--run", str(second), "--email-domain", "example.org"],
    )
    store = Store(sqlite_url(second / "synthgate.db"))
    try:
        with store.engine.connect() as connection:
            recorded = connection.execute(select(func.count()).select_from(decisions)).scalar()
    finally:
        store.close()
    assert recorded == 0, "gina's verdict on first's sample was recorded on second's item"
    assert result.exit_code == 2, result.output
    assert task["data"]["sample_id"] in result.output
