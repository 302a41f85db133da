"""Check params in a rubric are typed when it is read: a bad value is an `InputError` naming the
file, the check, the param, the value and what it takes, never a crash inside the check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.errors import InputError
from synthgate.validators.checks import CHECKS
from synthgate.validators.rubric import (
    RUBRICS_DIR,
    load_rubric,
    param_rule,
    rubric_path,
    rubric_yaml,
)

SHIPPED = ["detection", "ner", "classification"]


def rubric_with(tmp_path: Path, rubric: str, check: str, param: str, value: Any) -> Path:
    """A copy of a shipped rubric with one param of one check set to `value`."""
    data = yaml.safe_load((RUBRICS_DIR / f"{rubric}.yaml").read_text())
    specs = [s for c in data["criteria"].values() for s in c["checks"]] + data.get("dataset", [])
    spec = next(s for s in specs if s["check"] == check)
    spec.setdefault("params", {})[param] = value
    path = tmp_path / "my_rubric.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


NUMBER, COUNT, TOLERANCE = "a finite number", "a whole number >= 0", "a finite number >= 0"
FOLDER = "a folder of images (a path) or null"

BAD_PARAMS = [
    ("ner", "clarity_text_length", "max_chars", "abc", COUNT),
    ("ner", "clarity_text_length", "max_chars", None, COUNT),
    ("ner", "clarity_text_length", "max_chars", float("nan"), COUNT),
    ("ner", "clarity_text_length", "max_chars", float("inf"), COUNT),
    ("ner", "clarity_text_length", "max_chars", [], COUNT),
    ("ner", "clarity_text_length", "max_chars", -1, COUNT),
    ("ner", "clarity_text_length", "max_chars", True, COUNT),
    ("ner", "clarity_text_length", "max_chars", 2.7, COUNT),
    ("ner", "completeness_unfilled_slots", "slot_pattern", "(", "re.error: missing )"),
    ("ner", "completeness_unfilled_slots", "slot_pattern", "a{4294967296}", "repetition number"),
    ("ner", "completeness_unfilled_slots", "slot_pattern", [], "a regular expression"),
    ("ner", "completeness_unfilled_slots", "slot_pattern", 5, "a regular expression"),
    ("ner", "completeness_unfilled_slots", "slot_pattern", "", "matches no empty text"),
    ("ner", "precision_span_boundaries", "allowed_edge_chars", 5, "a string"),
    ("ner", "precision_span_boundaries", "allowed_edge_chars", None, "a string"),
    ("detection", "correctness_image_valid", "black_level", "dark", NUMBER),
    ("detection", "correctness_image_valid", "black_level", True, NUMBER),
    ("detection", "correctness_image_valid", "black_level", float("nan"), NUMBER),
    ("detection", "clarity_image_quality", "edge_level", "sharp", NUMBER),
    ("detection", "clarity_image_quality", "edge_level", float("-inf"), NUMBER),
    ("detection", "clarity_image_quality", "min_edge_px", "many", COUNT),
    ("detection", "clarity_image_quality", "min_edge_px", -1, COUNT),
    ("detection", "clarity_image_quality", "min_edge_px", 2.5, COUNT),
    ("detection", "clarity_image_quality", "dark_level", "x", NUMBER),
    ("detection", "clarity_image_quality", "bright_level", [], NUMBER),
    ("detection", "clarity_near_duplicate", "colour_tolerance", "high", TOLERANCE),
    ("detection", "clarity_near_duplicate", "colour_tolerance", -1, TOLERANCE),
    ("detection", "correctness_reference_copy", "colour_tolerance", float("nan"), TOLERANCE),
    ("detection", "correctness_reference_copy", "reference_images", 0, FOLDER),
    ("detection", "correctness_reference_copy", "reference_images", [], FOLDER),
    ("detection", "correctness_reference_copy", "reference_images", True, FOLDER),
    ("detection", "correctness_reference_copy", "reference_images", "", FOLDER),
    ("detection", "correctness_reference_copy", "reference_images", "x" * 300, "too long"),
    ("detection", "correctness_reference_copy", "reference_images", "a\0b", "NUL byte"),
]


@pytest.mark.parametrize(
    ("rubric", "check", "param", "value", "takes"),
    BAD_PARAMS,
    ids=[f"{b[2]}={str(b[3])[:12]!r}" for b in BAD_PARAMS],
)
def test_a_bad_param_value_is_an_input_error_naming_file_check_param_value_and_fix(
    tmp_path: Path, rubric: str, check: str, param: str, value: Any, takes: str
) -> None:
    path = rubric_with(tmp_path, rubric, check, param, value)
    with pytest.raises(InputError) as caught:
        load_rubric(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and f"params.{param}: {check} takes " in message
    assert takes in message and "(got " in message
    assert "leave the param out for the default" in message


GOOD_PARAMS = [
    ("ner", "clarity_text_length", "max_chars", 0),
    ("ner", "clarity_text_length", "max_chars", 10**12),
    ("ner", "completeness_unfilled_slots", "slot_pattern", r"\[[A-Z_]+\]"),
    ("ner", "precision_span_boundaries", "allowed_edge_chars", ""),
    ("detection", "correctness_image_valid", "black_level", 0.5),
    ("detection", "clarity_image_quality", "edge_level", 8.5),
    ("detection", "clarity_image_quality", "min_edge_px", 0),
    ("detection", "clarity_image_quality", "bright_level", 250.5),
    ("detection", "clarity_near_duplicate", "colour_tolerance", 0),
    ("detection", "correctness_reference_copy", "colour_tolerance", 2.5),
    ("detection", "correctness_reference_copy", "reference_images", None),
    ("detection", "correctness_reference_copy", "reference_images", "not/made/yet"),
]


@pytest.mark.parametrize(("rubric", "check", "param", "value"), GOOD_PARAMS)
def test_good_param_values_load_and_reach_the_check(
    tmp_path: Path, rubric: str, check: str, param: str, value: Any
) -> None:
    loaded = load_rubric(rubric_with(tmp_path, rubric, check, param, value))
    spec = next(spec for spec in loaded.all_checks() if spec.check == check)
    assert spec.call_params[param] == value


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_rubric_loads_with_its_params(name: str) -> None:
    assert load_rubric(name).name == name


def test_every_registered_param_has_a_rule_its_default_passes() -> None:
    for check in CHECKS.values():
        for name, default in check.defaults.items():
            assert param_rule(name, default)(default) is None, (check.name, name)


@pytest.mark.parametrize(
    ("given", "why"),
    [("x" * 300, "not a usable file name (File name too long)"), ("a\0b", "NUL byte")],
)
def test_a_rubric_name_no_file_can_have_is_an_input_error(given: str, why: str) -> None:
    with pytest.raises(InputError, match=r"pass a rubric YAML or one of") as caught:
        rubric_path(given)
    assert why in str(caught.value)


def test_validate_with_a_bad_param_exits_2_with_the_message(tmp_path: Path) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text(json.dumps({"text": "Ana Lima flew to Porto.", "spans": []}) + "\n")
    bad = rubric_with(tmp_path, "ner", "clarity_text_length", "max_chars", "abc")
    runner = CliRunner()
    for rubric, message in [
        (bad, f"{bad}: criteria.clarity.checks[0].params.max_chars: clarity_text_length takes"),
        ("x" * 300, "not a usable file name"),
    ]:
        result = runner.invoke(app, ["validate", str(texts), "--rubric", str(rubric)])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_a_rubric_written_back_reads_back_with_huge_thresholds(tmp_path: Path) -> None:
    """calibrate writes whole thresholds as ints: 1e308 as an int has 309 digits, more than a
    rubric file may hold, so it stays a float and the written rubric loads again."""
    data = yaml.safe_load((RUBRICS_DIR / "detection.yaml").read_text())
    spec = next(s for s in data["criteria"]["precision"]["checks"])
    spec["thresholds"] = {"box_tightness_px": {"gold": 1e308, "acceptable": 1.7e308}}
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    rubric = load_rubric(path)
    written = tmp_path / "again.yaml"
    written.write_text(rubric_yaml(rubric))
    assert load_rubric(written) == rubric
    assert "box_tightness_px: {gold: 1.0e+308, acceptable: 1.7e+308}" in written.read_text()
    shipped = rubric_yaml(load_rubric("detection"))
    assert "box_tightness_px: {gold: 1, acceptable: 5}" in shipped  # whole ones stay ints
