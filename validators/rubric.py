"""Rubric YAML -> typed `Rubric` -> a `RubricReport` for each sample.

A rubric (configs/rubrics/*.yaml) names, per criterion (correctness, completeness, precision,
clarity), a severity (critical weighs 3x, minor 1x) and the checks that judge it, each with its
params and the thresholds that turn a measurement into a level: 5 gold, 3 acceptable, 1 needs
re-annotation. A criterion's level is the worst level of its measurements (5 when nothing was
measured: missing inputs are not failures); the score is the severity-weighted mean of the
criterion levels. validators/measure.py applies it to samples; routing is validators/routing.py.

Everything a rubric file can get wrong is an `InputError` naming the file, the field and the fix,
check params included: each takes what `PARAM_RULES` says, else a value like its default. A
criterion lists at least one check, each once; every cut point is a finite number.
`rubric_yaml(rubric, header=...)` writes a rubric back as YAML (a calibrated one, review/), with
a comment header; `load_rubric` reads it back to the same `Rubric`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from synthgate.arguments import home_expanded, type_named
from synthgate.errors import InputError, counted, list_indexes, quoted, validation_message
from synthgate.files import path_problem
from synthgate.samples import CRITERIA, Finding, Level
from synthgate.validators.checks import CHECKS
from synthgate.validators.checks.base import (
    CheckDef,
    Measure,
    Measurement,
)
from synthgate.validators.routing import Routing
from synthgate.yaml_files import load_yaml, written_as_number

RUBRICS_DIR = Path(__file__).resolve().parents[1] / "configs" / "rubrics"
SEVERITY_WEIGHTS = {"critical": 3, "minor": 1}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Threshold(_Strict):
    """Cut points of one measure: at or better than `gold` -> 5, than `acceptable` -> 3, else 1."""

    gold: float
    acceptable: float

    _numbers = field_validator("gold", "acceptable", mode="before")(written_as_number)

    def level(self, value: float, worse: str) -> Level:
        if worse == "higher":
            return 5 if value <= self.gold else 3 if value <= self.acceptable else 1
        return 5 if value >= self.gold else 3 if value >= self.acceptable else 1

    def describe(self, level: Level, measure: Measure) -> str:
        """The rubric's descriptor of a level, e.g. 'needs re-annotation: > 5 px'."""
        unit = f" {measure.unit}" if measure.unit else ""
        if self.gold == self.acceptable == 0 and measure.worse == "higher":
            return "gold: none" if level == 5 else "needs re-annotation: any"
        worse, better = (">", "≤") if measure.worse == "higher" else ("<", "≥")
        if level == 5:
            return f"gold: {better} {self.gold:g}{unit}"
        if level == 3:
            return f"acceptable: {worse} {self.gold:g}, {better} {self.acceptable:g}{unit}"
        return f"needs re-annotation: {worse} {self.acceptable:g}{unit}"


class CheckSpec(_Strict):
    check: str
    params: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)

    @property
    def definition(self) -> CheckDef:
        return CHECKS[self.check]

    def with_defaults(self) -> dict[str, Any]:
        return {**self.definition.defaults, **self.params}

    @cached_property
    def call_params(self) -> Mapping[str, Any]:
        """`with_defaults()`, made once and read-only: what the check is called with."""
        return MappingProxyType(self.with_defaults())


class Criterion(_Strict):
    severity: Literal["critical", "minor"]
    description: str = ""
    checks: list[CheckSpec] = Field(default_factory=list)

    @property
    def weight(self) -> int:
        return SEVERITY_WEIGHTS[self.severity]


class Rubric(_Strict):
    """A validated rubric: criteria with checks and thresholds, routing, dataset checks."""

    name: str
    modality: Literal["image", "text"]
    description: str = ""
    criteria: dict[str, Criterion]
    routing: Routing
    dataset: list[CheckSpec] = Field(default_factory=list)

    @field_validator("criteria")
    @classmethod
    def _known_criteria(cls, criteria: dict[str, Criterion]) -> dict[str, Criterion]:
        # A field validator, so an error is placed at `criteria` (not at the rubric's root).
        unknown = sorted(set(criteria) - set(CRITERIA))
        if unknown:
            close = [difflib.get_close_matches(name, CRITERIA, n=1) for name in unknown]
            hint = "".join(f"; did you mean {c[0]}?" for c in close if c)
            raise ValueError(f"unknown criteria {unknown}{hint}; use {list(CRITERIA)}")
        if not criteria:
            raise ValueError("criteria is empty; give at least one of " + ", ".join(CRITERIA))
        # One order everywhere (reports, tables, JSON), whatever order the file used.
        return {name: criteria[name] for name in CRITERIA if name in criteria}

    def __repr_args__(self) -> Any:
        # Each criterion by its severity and how many checks it has, the dataset checks counted:
        # every check's params and thresholds in full was 3.7 KB on one line for `detection`,
        # which a notebook prints whole (`sg.load_rubric(...)`, `calibrate(...).rubric`).
        for name, value in super().__repr_args__():
            if name == "criteria":
                shown = {
                    key: f"<{c.severity}, {counted(len(c.checks), 'check')}>"
                    for key, c in value.items()
                }
                yield name, {key: _Shown(text) for key, text in shown.items()}
            elif name == "dataset":
                yield name, _Shown(f"<{counted(len(value), 'check')}>")
            elif name == "description" and len(value) > _DESCRIPTION_CHARS:
                yield name, value[: _DESCRIPTION_CHARS - 1] + "…"
            else:
                yield name, value

    def threshold_of(self, check: str, measure: str) -> Threshold | None:
        for spec in self.all_checks():
            if spec.check == check:
                return spec.thresholds.get(measure)
        return None

    def all_checks(self) -> list[CheckSpec]:
        return [spec for c in self.criteria.values() for spec in c.checks] + list(self.dataset)

    @cached_property
    def steps(self) -> list[tuple[str, CheckSpec]]:
        """(criterion, check) in judging order: criteria in CRITERIA order, their checks in
        file order."""
        return [(name, spec) for name, c in self.criteria.items() for spec in c.checks]

    @cached_property
    def check_names(self) -> list[str]:
        return [spec.check for _, spec in self.steps]

    @cached_property
    def measured_steps(self) -> list[tuple[str, dict[str, Any] | None]]:
        """What a sample's measurements (measure.py `measure_sample`) depend on: each check in
        judging order with the params it is called with; None for a batch check's, which it
        is called with when the report is finished. Thresholds, severities and routing apply
        afterwards: rubrics with the same steps measure every sample alike."""
        return [
            (spec.check, None if CHECKS[spec.check].prepare else dict(spec.call_params))
            for _, spec in self.steps
        ]

    @cached_property
    def measurement_key(self) -> str:
        """`measured_steps` as a short digest, kept with stored measurements."""
        text = json.dumps(self.measured_steps, sort_keys=True, default=str)
        return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]

    @cached_property
    def weights(self) -> dict[str, int]:
        return {name: c.weight for name, c in self.criteria.items()}

    @cached_property
    def total_weight(self) -> int:
        return sum(self.weights.values())

    @cached_property
    def critical(self) -> list[str]:
        return [name for name, c in self.criteria.items() if c.severity == "critical"]


ParamRule = Callable[[Any], str | None]  # None: the value will do; else what the param takes


def _is_number(value: Any) -> bool:
    """An int or a float, finite: a bool is no number here, nor an int past the float range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _number(value: Any) -> str | None:
    return None if _is_number(value) else "a finite number"


def _tolerance(value: Any) -> str | None:
    return None if _is_number(value) and value >= 0 else "a finite number >= 0"


def _count(value: Any) -> str | None:
    whole = isinstance(value, int) and not isinstance(value, bool)
    return None if whole and value >= 0 else "a whole number >= 0"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else "a string"


def _slot_pattern(value: Any) -> str | None:
    if not isinstance(value, str):
        return "a regular expression (a string)"
    try:
        pattern = re.compile(value)
    except (re.error, OverflowError, RecursionError) as error:
        name = "re.error" if isinstance(error, re.error) else type(error).__name__
        return f"a regular expression that compiles ({name}: {error})"
    if pattern.match("") is not None:  # findall would count a slot between every two characters
        return "a regular expression that matches no empty text"
    return None


def _document_label(value: Any) -> str | None:
    return None if value in ("required", "optional") else "required or optional"


def _folder_or_null(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():  # Path("") is the working directory
        return "a folder of images (a path) or null"
    problem = path_problem(value)
    return None if problem is None else f"a folder of images (a path) or null ({problem})"


# What a param takes where its default cannot say: an int default is a count or a pixel level,
# a str default free text or a pattern, a None default anything. Every other param takes a value
# like its default: a finite number for a number, a string for a string.
PARAM_RULES: dict[str, ParamRule] = {
    "max_chars": _count,
    "min_edge_px": _count,
    "colour_tolerance": _tolerance,
    "slot_pattern": _slot_pattern,
    "reference_images": _folder_or_null,
    "document_label": _document_label,
}


def param_rule(name: str, default: Any) -> ParamRule:
    """What a check param takes: its entry in `PARAM_RULES`, else a value like its default."""
    if name in PARAM_RULES:
        return PARAM_RULES[name]
    if _is_number(default):
        return _number
    if isinstance(default, str):
        return _text
    raise TypeError(f"param {name!r} (default {default!r}): say in PARAM_RULES what it takes")


# The longest text a message writes whole (errors.quoted cuts the same).
SHOWN_TEXT = 80


def _shown(value: Any) -> str:
    """A value as a YAML file spells it, for messages: null, true, 'text', 2000; a long one
    cut short (`quoted`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str) and value.isprintable() and len(value) <= SHOWN_TEXT:
        return "'" + value.replace("'", "''") + "'"  # YAML's single quotes: no escapes
    return quoted(value)


def _check_errors(rubric: Rubric) -> list[str]:
    """What the registry knows that pydantic cannot: names, placement, params, measures."""
    errors: list[str] = []
    places = [(f"criteria.{name}", name, c.checks) for name, c in rubric.criteria.items()]
    for where, name, specs in places:
        if not specs:  # nothing measured is level 5: the criterion would pass every sample
            errors.append(
                f"{where}.checks: {name} has no checks, so every sample would score 5 on "
                "it; list at least one check, or remove the criterion"
            )
    for where, criterion, specs in [*places, ("dataset", None, rubric.dataset)]:
        first: dict[str, str] = {}  # check -> where it is first listed here
        for n, spec in enumerate(specs):
            at = f"{where}.checks[{n}]" if criterion else f"dataset[{n}]"
            if spec.check in first:  # findings and thresholds are told apart by check name only
                errors.append(
                    f"{at}.check: {spec.check} is listed twice (also at {first[spec.check]}); "
                    "list each check once, with one set of params and thresholds"
                )
                continue
            first[spec.check] = at
            check = CHECKS.get(spec.check)
            if check is None:
                close = difflib.get_close_matches(spec.check, list(CHECKS), n=3)
                hint = f"did you mean {', '.join(close)}? " if close else ""
                errors.append(f"{at}.check: unknown check {spec.check!r}; {hint}see `CHECKS`")
                continue
            if criterion is not None and check.criterion != criterion:
                errors.append(f"{at}.check: {spec.check} judges {check.criterion}; list it there")
            if (check.scope == "dataset") != (criterion is None):
                errors.append(
                    f"{at}.check: {spec.check} is a {check.scope} check; "
                    + (
                        "list it under `dataset:`"
                        if check.scope == "dataset"
                        else "list it under its criterion"
                    )
                )
            for key in sorted(set(spec.params) - set(check.defaults)):
                allowed = list(check.defaults) or "none"
                errors.append(f"{at}.params.{key}: unknown param; {spec.check} takes {allowed}")
            for key, value in spec.params.items():
                if key not in check.defaults:
                    continue
                default = check.defaults[key]
                needs = param_rule(key, default)(value)
                if needs is not None:
                    errors.append(
                        f"{at}.params.{key}: {spec.check} takes {needs} (got {_shown(value)}); "
                        f"give one, or leave the param out for the default {_shown(default)}"
                    )
            if not spec.thresholds:
                errors.append(
                    f"{at}.thresholds: give gold/acceptable for one of {list(check.measures)}"
                )
            for measure, threshold in spec.thresholds.items():
                declared = check.measures.get(measure)
                if declared is None:
                    errors.append(
                        f"{at}.thresholds.{measure}: {spec.check} measures {list(check.measures)}"
                    )
                    continue
                cut_points = (("gold", threshold.gold), ("acceptable", threshold.acceptable))
                infinite = [
                    f"{key} {value:g}" for key, value in cut_points if not _is_number(value)
                ]
                if infinite:  # .inf was in range for a measure that has no most
                    errors.append(
                        f"{at}.thresholds.{measure}: {', '.join(infinite)} is not a finite "
                        "number; give a finite cut point (no measurement crosses an infinite "
                        "one, so its level would be given always or never)"
                    )
                    continue
                outside = [
                    f"{key} {value:g}"
                    for key, value in cut_points
                    if not 0 <= value <= declared.most
                ]
                if outside:
                    takes = (
                        "is never negative"
                        if math.isinf(declared.most)
                        else f"lies between 0 and {declared.most:g}"
                    )
                    scale = "; write 0.85 for 85%" if declared.most == 1 else ""
                    errors.append(
                        f"{at}.thresholds.{measure}: {', '.join(outside)} is out of range: "
                        f"{measure} {takes}{scale} (there every sample would get the same level)"
                    )
                    continue
                ordered = (
                    threshold.gold <= threshold.acceptable
                    if declared.worse == "higher"
                    else threshold.gold >= threshold.acceptable
                )
                if not ordered:
                    relation = "<=" if declared.worse == "higher" else ">="
                    errors.append(
                        f"{at}.thresholds.{measure}: need gold {relation} acceptable "
                        f"({declared.worse} is worse; got gold {threshold.gold:g}, "
                        f"acceptable {threshold.acceptable:g})"
                    )
    return errors


def parse_rubric(data: Any, *, source: Path | str) -> Rubric:
    if not isinstance(data, dict):
        raise InputError(f"{source}: a rubric must be a YAML mapping (got {type(data).__name__})")
    try:
        rubric = Rubric.model_validate(data)
    except ValidationError as error:
        # our validators' messages about a whole criterion or routing say what they found
        message = validation_message(
            error,
            source=source,
            location=list_indexes("dataset", "checks"),
            shown=_shown,
            quote_sections=False,
        )
        raise InputError(message) from None
    errors = _check_errors(rubric)
    if errors:
        raise InputError("\n".join(f"{source}: {e}" for e in errors))
    return rubric


def shipped_rubrics() -> list[str]:
    """The names of the rubrics shipped in configs/rubrics/."""
    return sorted(p.stem for p in RUBRICS_DIR.glob("*.yaml"))


def rubric_path(name_or_path: str | Path) -> Path:
    """A rubric file: the name of one shipped in configs/rubrics/, or a path as given. A shipped
    name is never a file of the working directory (a stray file named `detection` there had
    replaced the shipped rubric, and a server read its working directory's files so)."""
    names = shipped_rubrics()
    if not isinstance(name_or_path, str | Path):  # str() of a list is no file name to look for
        raise InputError(
            field="rubric",
            value=quoted(name_or_path),
            problem=f"is {type_named(name_or_path)}, not a rubric name or path",
            fix=f"pass a rubric YAML or one of {names}",
        )
    given = str(name_or_path)
    problem = path_problem(given)
    if problem is None:
        if given in names:
            return RUBRICS_DIR / f"{given}.yaml"
        path = home_expanded(Path(given))
        if path.is_file():
            return path
    why = "no such file" if problem is None else f"not a usable file name ({problem})"
    raise InputError(f"rubric {given!r}: {why}; pass a rubric YAML or one of {names}")


def load_rubric(name_or_path: str | Path) -> Rubric:
    """A rubric: a shipped one by name ("detection", "ner", ...: configs/rubrics/) or a YAML
    file, checked as it is read (unknown keys, thresholds out of order and checks that do not
    exist are errors naming the file and key). Pass it as `rubric=` to `validate`,
    `validate_coco`, `validate_file` or `calibrate`.

    Args:
        name_or_path: a shipped rubric's name (detection, ner, classification) or the path of
            a rubric YAML file.

    Returns:
        The `Rubric`: `.criteria` (each with its severity and checks), `.routing`, `.dataset`.

    Example:
        >>> rubric = load_rubric("detection")
        >>> rubric.routing.accept_at
    """
    path = rubric_path(name_or_path)
    return parse_rubric(load_yaml(path, what="rubric"), source=path)


def finding_for(
    check: CheckDef, spec: CheckSpec, m: Measurement, level: Level, criterion: str
) -> Finding:
    threshold = spec.thresholds[m.measure]
    return Finding(
        criterion=criterion,
        level=level,
        check=check.name,
        measure=m.measure,
        message=f"{m.message} ({threshold.describe(level, check.measures[m.measure])})",
        annotation_id=m.annotation_id,
        object_index=m.object_index,
        span_index=m.span_index,
    )


_DESCRIPTION_CHARS = 80


class _Shown:
    """A part of a rubric as its repr shows it: the text given (`<minor, 5 checks>`)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _RubricDumper(yaml.SafeDumper):
    """YAML as the shipped rubrics read: thresholds inline, whole numbers without '.0'."""


def _represent_float(dumper: yaml.SafeDumper, value: float) -> yaml.Node:
    """A whole threshold as an int (3, not 3.0), while it has few digits: 1e308 stays a float
    (as an int, 309 digits, more than a rubric file may hold: yaml_files.MAX_INT_DIGITS)."""
    if value.is_integer() and abs(value) < 2**53:
        return dumper.represent_int(int(value))
    return dumper.represent_float(value)


def _represent_dict(dumper: yaml.SafeDumper, value: dict[str, Any]) -> yaml.Node:
    inline = set(value) == {"gold", "acceptable"}
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=inline or None)


_RubricDumper.add_representer(float, _represent_float)
_RubricDumper.add_representer(dict, _represent_dict)


def rubric_yaml(rubric: Rubric, *, header: list[str] | None = None) -> str:
    """The rubric as a YAML document, `header` lines first as comments."""
    data = rubric.model_dump(mode="json")
    for criterion in data["criteria"].values():
        for spec in criterion["checks"]:
            if not spec["params"]:
                del spec["params"]
    for spec in data["dataset"]:
        if not spec["params"]:
            del spec["params"]
    body = yaml.dump(data, Dumper=_RubricDumper, sort_keys=False, allow_unicode=True, width=100)
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header or [])
    return comments + body
