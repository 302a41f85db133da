"""The rubric inside `synthgate run`: every sample carries its report, routing decides
accepted.coco.json, report.md explains the findings, `rubric:` in a config picks the rubric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from factories import small_config
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.validators.rubric import RUBRICS_DIR

runner = CliRunner()


def run(tmp_path: Path, config: dict[str, Any], name: str = "run") -> tuple[int, str, Path]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / name
    result = runner.invoke(app, ["run", str(path), "--out", str(out)])
    return result.exit_code, result.output, out


def strict_rubric(tmp_path: Path, *, accept_at: float = 4.7) -> Path:
    """detection.yaml that calls any object less than fully visible needs re-annotation."""
    data = yaml.safe_load((RUBRICS_DIR / "detection.yaml").read_text())
    for spec in data["criteria"]["clarity"]["checks"]:
        if spec["check"] == "clarity_visible_fraction":
            spec["thresholds"]["visible_fraction"] = {"gold": 1.0, "acceptable": 0.99}
    data["routing"].update(accept_at=accept_at, audit_rate=0.0)
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def strict_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("strict")
    config = small_config()
    config["image"].update(count=12, objects_per_image=[3, 5], rubric="strict.yaml")
    strict_rubric(tmp_path)
    code, output, out = run(tmp_path, config)
    assert code == 0, output
    return out


def test_every_sample_carries_its_report(strict_run: Path) -> None:
    coco = json.loads((strict_run / "coco.json").read_text())
    for image in coco["images"]:
        report = image["synthgate"]["report"]
        assert report["rubric"] == "detection" and 1 <= report["score"] <= 5
        assert set(report["levels"]) == {"correctness", "completeness", "precision", "clarity"}
        assert image["synthgate"]["status"] == report["route"]
    for line in (strict_run / "text.jsonl").read_text().splitlines():
        row = json.loads(line)
        assert row["report"]["rubric"] == "ner" and row["status"] == row["report"]["route"]


def test_routing_decides_what_is_accepted(strict_run: Path) -> None:
    coco = json.loads((strict_run / "coco.json").read_text())
    accepted = json.loads((strict_run / "accepted.coco.json").read_text())
    routes = {
        i["synthgate"]["sample_id"]: i["synthgate"]["report"]["route"] for i in coco["images"]
    }
    assert "review" in routes.values(), "3-5 objects per image: some are occluded"
    kept = {i["synthgate"]["sample_id"] for i in accepted["images"]}
    assert kept == {s for s, r in routes.items() if r == "accepted"}
    kept_ids = {i["id"] for i in accepted["images"]}
    assert {a["image_id"] for a in accepted["annotations"]} <= kept_ids
    manifest = json.loads((strict_run / "manifest.json").read_text())
    assert manifest["counts"]["image"]["review"] == list(routes.values()).count("review")


def test_report_md_explains_why(strict_run: Path) -> None:
    report = (strict_run / "report.md").read_text()
    assert "Error analysis (rubric `detection`)" in report
    assert "| clarity | clarity_visible_fraction | visible_fraction | 1 |" in report
    assert "Error analysis (rubric `ner`)" in report
    # Samples sent to review leave their classes short of the planned quota (4 per class).
    assert "`completeness_class_quotas`: class" in report and "of 4 requested" in report


def test_a_run_that_accepts_nothing_has_no_schema_finding(tmp_path: Path) -> None:
    # accepted.coco.json then holds empty lists; report.md said "correctness_coco_schema:
    # missing or not a list: ['images', 'annotations']" (level 1), as if the file were broken.
    path = strict_rubric(tmp_path)
    data = yaml.safe_load(path.read_text())
    for spec in data["criteria"]["clarity"]["checks"]:
        if spec["check"] == "clarity_image_quality":  # no image is this sharp: clarity 1
            spec["thresholds"]["laplacian_variance"] = {"gold": 1e12, "acceptable": 1e12}
    path.write_text(yaml.safe_dump(data))
    config = small_config(text=None)
    config["image"].update(count=2, rubric="strict.yaml")
    code, output, out = run(tmp_path, config)
    assert code == 0, output
    assert json.loads((out / "accepted.coco.json").read_text())["images"] == []
    report = (out / "report.md").read_text()
    assert "`completeness_class_quotas`" in report  # the dataset checks ran
    assert "correctness_coco_schema" not in report


def test_default_rubric_of_a_classification_file(tmp_path: Path) -> None:
    config = small_config(image=None)
    config["text"]["templates"] = str(RUBRICS_DIR.parents[1] / "configs/templates/reviews.yaml")
    code, output, out = run(tmp_path, config)
    assert code == 0, output
    row = json.loads((out / "text.jsonl").read_text().splitlines()[0])
    assert row["report"]["rubric"] == "classification"


@pytest.mark.parametrize(
    ("section", "rubric", "message"),
    [
        ("image", "missing.yaml", "image.rubric: file not found"),
        ("image", "ner", "image.rubric: ner judges text samples"),
        ("text", "nonexistent", "rubric 'nonexistent': no such file"),
    ],
)
def test_bad_rubric_in_config_exits_2_before_writing(
    tmp_path: Path, section: str, rubric: str, message: str
) -> None:
    config = small_config()
    config[section]["rubric"] = rubric
    code, output, out = run(tmp_path, config)
    assert code == 2 and message in output and not out.exists()
