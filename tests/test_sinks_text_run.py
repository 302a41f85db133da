"""A text-only run folder holds what it made and nothing else: no empty images/ folder."""

from __future__ import annotations

from pathlib import Path

import yaml
from factories import small_config
from typer.testing import CliRunner

from synthgate.cli import app

runner = CliRunner()


def test_a_text_only_run_writes_no_images_folder(tmp_path: Path) -> None:
    config = small_config()
    del config["image"]
    (tmp_path / "texts.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "texts"
    result = runner.invoke(app, ["run", str(tmp_path / "texts.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.json",
        "report.md",
        "synthgate.db",
        "text.jsonl",
    ]
    # what reads a run folder tells a text run as it did: export refuses it with merge's advice
    exported = runner.invoke(app, ["export", str(out), "-f", "yolo", "--out", str(tmp_path / "y")])
    assert exported.exit_code == 2 and "a text run" in " ".join(exported.output.split())


def test_an_image_run_still_writes_its_images(tmp_path: Path) -> None:
    config = small_config()
    del config["text"]
    (tmp_path / "shapes.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "shapes"
    result = runner.invoke(app, ["run", str(tmp_path / "shapes.yaml"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(list((out / "images").glob("*.png"))) == config["image"]["count"]
