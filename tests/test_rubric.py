"""The rubric contract: YAML validation, levels, weighted score, routing, audit, check contract."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from synthgate.errors import InputError
from synthgate.generators.labels import PlacedObject, labels_from_masks
from synthgate.samples import CRITERIA, GeneratedSample, Provenance, Sample, SampleSpec
from synthgate.validators.checks.base import CHECKS, Measure, Measurement, register, run_check
from synthgate.validators.context import ValidationContext
from synthgate.validators.measure import judge_sample
from synthgate.validators.routing import Routing, audit_draw, route
from synthgate.validators.rubric import RUBRICS_DIR, Threshold, load_rubric, parse_rubric

DETECTION = yaml.safe_load((RUBRICS_DIR / "detection.yaml").read_text())


@pytest.mark.parametrize("name", ["detection", "ner", "classification"])
def test_shipped_rubrics_load_and_use_the_four_criteria_words(name: str) -> None:
    rubric = load_rubric(name)
    assert rubric.name == name and set(rubric.criteria) <= set(CRITERIA)
    for criterion, spec in rubric.criteria.items():
        for check in spec.checks:
            assert check.check.startswith(criterion + "_")


def edited(path: str, value: Any) -> dict[str, Any]:
    """detection.yaml with one value replaced (path 'a.b.0.c'; value None deletes the key)."""
    data = copy.deepcopy(DETECTION)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


BAD_RUBRICS = [
    ("unknown criterion", edited("criteria.beauty", {"severity": "minor", "checks": []}), "unknown criteria ['beauty']"),
    ("unknown severity", edited("criteria.clarity.severity", "major"), "criteria.clarity.severity"),
    ("unknown check", edited("criteria.precision.checks.0.check", "precision_box_tightnes"), "did you mean precision_box_tightness"),
    ("check under the wrong criterion", edited("criteria.clarity.checks.0.check", "precision_box_tightness"), "judges precision; list it there"),
    ("unknown param", edited("criteria.correctness.checks.3.params", {"blak_level": 3}), "params.blak_level: unknown param"),
    ("threshold of an unknown measure", edited("criteria.precision.checks.0.thresholds", {"box_px": {"gold": 0, "acceptable": 1}}), "measures ['box_tightness_px']"),
    ("no thresholds", edited("criteria.precision.checks.0.thresholds", {}), "give gold/acceptable"),
    ("gold worse than acceptable", edited("criteria.precision.checks.0.thresholds.box_tightness_px", {"gold": 6, "acceptable": 5}), "need gold <= acceptable"),
    ("lower-is-worse order", edited("criteria.clarity.checks.1.thresholds.visible_fraction", {"gold": 0.2, "acceptable": 0.5}), "need gold >= acceptable"),
    ("reject above accept", edited("routing.reject_below", 4.8), "must not exceed accept_at"),
    # a threshold no value reaches gives every sample one level: the check is silently off
    ("fraction written as a percentage", edited("criteria.clarity.checks.1.thresholds.visible_fraction", {"gold": 50, "acceptable": 25}), "clarity.checks[1].thresholds.visible_fraction: gold 50, acceptable 25 is out of range: visible_fraction lies between 0 and 1; write 0.85 for 85%"),
    ("IoU above 1", edited("criteria.correctness.checks.2.thresholds.duplicate_iou", {"gold": 0.5, "acceptable": 80}), "acceptable 80 is out of range: duplicate_iou lies between 0 and 1"),
    ("percentage above 100", edited("criteria.clarity.checks.3.thresholds.clipped_percent", {"gold": 40, "acceptable": 180}), "clipped_percent lies between 0 and 100"),
    ("negative count", edited("criteria.precision.checks.0.thresholds.box_tightness_px", {"gold": -2, "acceptable": 5}), "gold -2 is out of range: box_tightness_px is never negative"),
    ("routing missing", edited("routing", None), "routing is required"),
    ("unknown key", edited("criteria.clarity.weight", 2), "unknown key 'criteria.clarity.weight'"),
    ("dataset check under a criterion", edited("criteria.correctness.checks.0.check", "correctness_unique_ids"), "list it under `dataset:`"),
    ("bad on_critical", edited("routing.on_critical", "ignore"), "routing.on_critical"),
    # a value given is written as YAML spells it, as the rubric's own checks write it (was True)
    ("on_critical a YAML boolean", edited("routing.on_critical", True), "routing.on_critical: Input should be 'review' or 'reject' (got true)"),
    # each accepted without a word: the second copy's thresholds were never read, an empty
    # criterion scored 5 on every sample, an infinite cut point is never crossed
    ("check listed twice", edited("criteria.precision.checks.2", DETECTION["criteria"]["precision"]["checks"][0]), "criteria.precision.checks[2].check: precision_box_tightness is listed twice (also at criteria.precision.checks[0]); list each check once"),
    ("dataset check listed twice", edited("dataset.2", DETECTION["dataset"][1]), "dataset[2].check: correctness_unique_ids is listed twice (also at dataset[1])"),
    ("criterion without checks", edited("criteria.clarity.checks", []), "criteria.clarity.checks: clarity has no checks, so every sample would score 5 on it; list at least one check, or remove the criterion"),
    ("infinite gold", edited("criteria.precision.checks.0.thresholds.box_tightness_px", {"gold": math.inf, "acceptable": math.inf}), "precision.checks[0].thresholds.box_tightness_px: gold inf, acceptable inf is not a finite number; give a finite cut point"),
    ("infinite acceptable", edited("criteria.precision.checks.0.thresholds.box_tightness_px", {"gold": 1, "acceptable": math.inf}), "box_tightness_px: acceptable inf is not a finite number"),
    # pydantic read a quoted number, or a YAML boolean, as the number
    ("gold in quotes", edited("criteria.precision.checks.0.thresholds.box_tightness_px", {"gold": "1", "acceptable": 5}), "criteria.precision.checks[0].thresholds.box_tightness_px.gold: is text where a number goes; write the number without quotes (got '1')"),
    ("gold a boolean", edited("criteria.precision.checks.0.thresholds.box_tightness_px", {"gold": True, "acceptable": 5}), "box_tightness_px.gold: YAML read a boolean"),
    ("accept_at in quotes", edited("routing.accept_at", "4"), "routing.accept_at: is text where a number goes; write the number without quotes (got '4')"),
    ("NaN gold", edited("criteria.clarity.checks.1.thresholds.visible_fraction", {"gold": math.nan, "acceptable": 0.25}), "visible_fraction: gold nan is not a finite number"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "message"), BAD_RUBRICS, ids=[b[0] for b in BAD_RUBRICS])
def test_bad_rubrics_are_input_errors_that_name_the_field(
    name: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError) as caught:
        parse_rubric(data, source="my.yaml")
    assert message in str(caught.value) and str(caught.value).startswith("my.yaml: ")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {**edited("criteria", {}), "criteria": {"clartiy": DETECTION["criteria"]["clarity"]}},
            "my.yaml: criteria: unknown criteria ['clartiy']; did you mean clarity?; use [",
        ),
        (edited("criteria", {}), "my.yaml: criteria: criteria is empty; give at least one of"),
        (
            edited("routing.reject_below", 4.8),
            "my.yaml: routing: reject_below (4.8) must not exceed accept_at (4.4)",
        ),
    ],
    ids=["misspelt criterion", "no criteria", "reject above accept"],
)
def test_rubric_value_errors_name_their_field_and_not_the_whole_file(
    data: dict[str, Any], expected: str
) -> None:
    """A misspelt criterion was reported at an empty place ("my.yaml: : Value error, ...")
    followed by the whole rubric as a Python dict; the message names the field, on one line."""
    with pytest.raises(InputError) as caught:
        parse_rubric(data, source="my.yaml")
    message = str(caught.value)
    assert message.startswith(expected), message
    assert "Value error" not in message and "got {" not in message and "\n" not in message


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "criteria.precision.checks.0.thresholds.box_tightness_px.gold",
            "1",
            "my.yaml: criteria.precision.checks[0].thresholds.box_tightness_px.gold: is text",
        ),
        (
            "criteria.clarity.checks.1.bogus",
            1,
            "my.yaml: unknown key 'criteria.clarity.checks[1].bogus'",
        ),
        ("dataset.1.check", 3, "my.yaml: dataset[1].check: Input should be a valid string"),
        (
            "dataset.1.thresholds",
            {5: {"gold": 0, "acceptable": 1}},
            "my.yaml: dataset[1].thresholds.5.[key]:",
        ),
    ],
    ids=["threshold", "unknown key", "dataset check", "threshold named by a number"],
)
def test_pydantics_places_in_a_rubric_write_a_checks_index_as_the_rubric_does(
    path: str, value: Any, expected: str
) -> None:
    """The rubric's own messages say `criteria.precision.checks[0]` and `dataset[1]`; those from
    pydantic said `checks.0` and `dataset.1` of the same check. A number that is a key (a
    measure named 5) stays a key."""
    with pytest.raises(InputError) as caught:
        parse_rubric(edited(path, value), source="my.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (
            "criteria.correctness.severity",
            "x" * 100_000,
            "my.yaml: criteria.correctness.severity: Input should be 'critical' or 'minor' "
            f"(got '{'x' * 37}...{'x' * 38}')",
        ),
        (
            "criteria.correctness.checks.3.params",
            {"black_level": list(range(10_000))},
            "my.yaml: criteria.correctness.checks[3].params.black_level: "
            "correctness_image_valid takes a finite number (got [0, 1, 2, 3, 4, 5, ...])",
        ),
    ],
    ids=["long text", "long list"],
)
def test_a_huge_value_in_a_rubric_is_cut_short(path: str, value: Any, expected: str) -> None:
    """A rubric's value was written whole, as YAML spells it: a long string pasted where a
    severity goes made a message of 100,000 characters (a long list one of 50,000); it is cut
    short as a config's value is, a short one still as YAML spells it."""
    with pytest.raises(InputError) as caught:
        parse_rubric(edited(path, value), source="my.yaml")
    assert str(caught.value).startswith(expected), str(caught.value)[:300]


def test_a_yaml_infinity_threshold_names_the_file_and_the_field(tmp_path: Path) -> None:
    """`gold: .inf` passed: box_tightness_px has no most, so inf was inside its range."""
    text = (RUBRICS_DIR / "detection.yaml").read_text()
    bad = tmp_path / "loose.yaml"
    bad.write_text(text.replace("box_tightness_px: {gold: 1,", "box_tightness_px: {gold: .inf,"))
    with pytest.raises(InputError) as caught:
        load_rubric(bad)
    assert str(caught.value).startswith(
        f"{bad}: criteria.precision.checks[0].thresholds.box_tightness_px: gold inf is not a "
        "finite number"
    )


def test_unknown_rubric_name_lists_the_shipped_ones() -> None:
    with pytest.raises(InputError, match=r"\['classification', 'detection', 'ner'\]"):
        load_rubric("detecton")


@pytest.mark.parametrize(
    ("gold", "acceptable", "worse", "value", "level"),
    [
        (1, 5, "higher", 0, 5),
        (1, 5, "higher", 1, 5),
        (1, 5, "higher", 1.5, 3),
        (1, 5, "higher", 5, 3),
        (1, 5, "higher", 7, 1),
        (0.5, 0.25, "lower", 0.9, 5),
        (0.5, 0.25, "lower", 0.3, 3),
        (0.5, 0.25, "lower", 0.1, 1),
        (0, 0, "higher", 0, 5),
        (0, 0, "higher", 1, 1),
    ],
)
def test_threshold_levels(
    gold: float, acceptable: float, worse: str, value: float, level: int
) -> None:
    assert Threshold(gold=gold, acceptable=acceptable).level(value, worse) == level


ROUTING = Routing(accept_at=4.4, reject_below=3.5, on_critical="review", audit_rate=0.0)
CRITICAL = ["correctness", "completeness", "precision"]


@pytest.mark.parametrize(
    ("score", "levels", "routing", "expected"),
    [
        (5.0, {"precision": 5}, ROUTING, "accepted"),
        (4.4, {"precision": 3}, ROUTING, "accepted"),
        (4.2, {"precision": 3, "clarity": 3}, ROUTING, "review"),
        (3.8, {"completeness": 1}, ROUTING, "review"),
        (
            3.8,
            {"completeness": 1},
            ROUTING.model_copy(update={"on_critical": "reject"}),
            "rejected",
        ),
        (4.6, {"clarity": 1}, ROUTING, "accepted"),  # minor criterion: weighed, never blocking
        (3.4, {"correctness": 1, "clarity": 1}, ROUTING, "rejected"),
        # A critical failure is never accepted, whatever the weights and cut points.
        (4.9, {"precision": 1}, Routing(accept_at=4.0, reject_below=1.0), "review"),
    ],
)
def test_routing(score: float, levels: dict[str, int], routing: Routing, expected: str) -> None:
    assert route(score, levels, routing, critical=CRITICAL, seed=1)[0] == expected


def test_audit_is_deterministic_per_seed_and_near_its_rate() -> None:
    routing = ROUTING.model_copy(update={"audit_rate": 0.1})
    audits = [route(5.0, {}, routing, critical=CRITICAL, seed=s)[1] for s in range(4000)]
    assert 0.08 < sum(audits) / len(audits) < 0.12
    assert audits == [route(5.0, {}, routing, critical=CRITICAL, seed=s)[1] for s in range(4000)]
    assert route(4.0, {}, routing, critical=CRITICAL, seed=int(audits.index(True)))[1] is False
    assert 0 <= audit_draw(7) < 1


def test_no_audit_draw_at_rate_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """At audit_rate 0 nothing is drawn (a draw is never below 0): the answer is the same."""

    def no_draw(seed: int) -> float:
        raise AssertionError(f"drew for seed {seed} at audit rate 0")

    monkeypatch.setattr("synthgate.validators.routing.audit_draw", no_draw)
    assert route(5.0, {}, ROUTING, critical=CRITICAL, seed=3) == ("accepted", False)


def test_score_is_the_severity_weighted_mean() -> None:
    """An unlabelled object (completeness 1) and a 3 px loose box (precision 3)."""
    rubric = load_rubric("detection")  # correctness/completeness/precision critical, clarity minor
    masks = [np.zeros((40, 40), dtype=bool) for _ in range(2)]
    masks[0][5:15, 5:15] = True
    masks[1][20:35, 20:35] = True
    scene = labels_from_masks(
        [PlacedObject("a", m, {}) for m in masks], shape=(40, 40), min_visible_fraction=0.25
    )
    kept = scene.objects[1]
    kept.bbox = [17.0, 17.0, 21.0, 21.0]
    sample = Sample(
        id="s",
        spec=SampleSpec(batch_id="b", index=0, modality="image", generator="g", seed=0),
        width=40,
        height=40,
        objects=[kept],
        provenance=Provenance(generator="g", generator_version="1", seed=0),
    )
    generated = GeneratedSample(sample=sample, foreground=scene.foreground, ignore=scene.ignore)
    report = judge_sample(generated, rubric, ValidationContext())
    assert report.levels == {"correctness": 5, "completeness": 1, "precision": 3, "clarity": 5}
    assert report.score == pytest.approx((3 * 5 + 3 * 1 + 3 * 3 + 1 * 5) / 10)
    assert report.route == "rejected"  # 3.2 < reject_below 3.5


@register("clarity_test_contract", measures=[Measure("things", "thing")])
def _contract_probe(item: Any, params: Mapping[str, Any]) -> Iterator[Measurement]:
    yield from params["emit"]


@pytest.mark.parametrize(
    ("emitted", "error"),
    [
        ([Measurement("nonsense", 1, "x")], "undeclared 'nonsense'"),
        ([Measurement("things", float("nan"), "x")], "not a finite number"),
        ([Measurement("things", 1, "x", object_index=3)], "object_index 3 out of range"),
        ([Measurement("things", 1, "x", span_index=0)], "span_index 0 out of range"),
    ],
)
def test_run_check_enforces_the_contract(emitted: list[Measurement], error: str) -> None:
    with pytest.raises(RuntimeError, match=error):
        run_check(CHECKS["clarity_test_contract"], None, {"emit": emitted}, objects=1)


def test_check_names_carry_their_criterion() -> None:
    with pytest.raises(ValueError, match="<criterion>_<what>"):
        register("beauty_contest", measures=[])
    for name, check in CHECKS.items():
        assert name.startswith(check.criterion + "_") and check.criterion in CRITERIA
