"""Judging in two steps: what one sample shows on its own, then what the batch makes of it.

- `measure_sample(generated, rubric, context) -> SampleMeasurements`: every per-sample check of
  the rubric (pixels, masks, taxonomy, reference copies), plus what the order-dependent batch
  checks will need (the image fingerprint, the text digest: a check's `prepare`). It reads no
  batch state, so it can run anywhere, in any order: in a worker, right after generation.
- `finish_report(measured, rubric, context) -> RubricReport`: the batch checks (near-duplicates
  of earlier images, duplicate texts) against the context, then levels, score, route and audit.
  Cheap (hash comparisons), and it must run in sample order.

`judge_sample` is `finish_report(measure_sample(...))`; `judge_dataset` runs a rubric's dataset
checks on a `DatasetTally` (checks/dataset.py). A check may hand over a column of measurements
(`ObjectMeasurements`, one row per object); it is levelled exactly as its rows one by one would
be. `SampleMeasurements` goes to and from JSON (`as_json` / `from_json`, columns as their rows)
losslessly, so a report finished from stored measurements is the one `synthgate run` writes,
byte for byte: by any rubric that measures as the one that measured them (the same checks and
check params, `Rubric.measurement_key`; its name, thresholds and routing may differ).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from synthgate.samples import Finding, GeneratedSample, Level, RubricReport, Sample
from synthgate.validators.checks import CHECKS
from synthgate.validators.checks.base import (
    CheckDef,
    CheckInput,
    Found,
    Measurement,
    ObjectMeasurements,
    run_check,
)
from synthgate.validators.checks.dataset import DatasetInput, DatasetTally
from synthgate.validators.routing import route
from synthgate.validators.rubric import CheckSpec, Rubric, finding_for


@dataclass
class SampleMeasurements:
    """A sample's partial report: per rubric check in order (criteria, then their checks), its
    measurements, or None for a batch check, measured by `finish_report`; and what the batch
    checks prepared (fingerprint, text digest). `key` is the measuring rubric's
    `measurement_key` (None in partial reports stored before keys were kept)."""

    sample: Sample
    rubric: str
    checks: list[str]
    measured: list[list[Found] | None]
    prepared: dict[str, Any] = field(default_factory=dict)
    key: str | None = None

    def measured_as(self, rubric: Rubric) -> bool:
        """Whether `rubric` measures samples as these measurements were made (its name,
        thresholds and routing may differ: they apply when the report is finished). Stored
        before keys were kept, they are taken only by the rubric of the same name, as then:
        without a key, the check params they were made with are not known."""
        if self.checks != rubric.check_names:
            return False
        if self.key is None:
            return self.rubric == rubric.name
        return self.key == rubric.measurement_key

    def as_json(self) -> dict[str, Any]:
        """Everything but the sample (stored with it elsewhere), as JSON values."""
        return {
            "rubric": self.rubric,
            "key": self.key,
            "checks": self.checks,
            "measured": [
                None if found is None else [_measurement_json(m) for m in _rows(found)]
                for found in self.measured
            ],
            "prepared": {key: _encode(value) for key, value in self.prepared.items()},
        }

    @classmethod
    def from_json(cls, sample: Sample, data: dict[str, Any]) -> SampleMeasurements:
        return cls(
            sample=sample,
            rubric=data["rubric"],
            checks=list(data["checks"]),
            measured=[
                None if found is None else [Measurement(**m) for m in found]
                for found in data["measured"]
            ],
            prepared={key: _decode(value) for key, value in data["prepared"].items()},
            key=data.get("key"),
        )


def _rows(found: list[Found]) -> list[Measurement]:
    """Measurements one by one, columns expanded (messages made)."""
    rows: list[Measurement] = []
    for m in found:
        rows.extend(m.rows() if isinstance(m, ObjectMeasurements) else [m])
    return rows


def _measurement_json(m: Measurement) -> dict[str, Any]:
    return {key: value for key, value in asdict(m).items() if value is not None}


def _encode(value: Any) -> Any:
    """JSON for prepared values: numpy scalars and arrays keep their dtype, bytes go as hex."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, np.generic):
        return {"dtype": str(value.dtype), "value": value.item()}
    if isinstance(value, np.ndarray):
        return {"dtype": str(value.dtype), "array": value.tolist()}
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    raise TypeError(f"prepared value {value!r} cannot be stored as JSON")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_decode(item) for item in value)
    if not isinstance(value, dict):
        return value
    if "hex" in value:
        return bytes.fromhex(value["hex"])
    if "array" in value:
        return np.array(value["array"], dtype=value["dtype"])
    return np.dtype(value["dtype"]).type(value["value"])


def measure_sample(generated: GeneratedSample, rubric: Rubric, context: Any) -> SampleMeasurements:
    """Every per-sample check of the rubric on one sample, and what its batch checks need."""
    sample = generated.sample
    item = CheckInput.of(generated, context)
    objects, spans = len(sample.objects), len(sample.spans)
    measured: list[list[Found] | None] = []
    prepared: dict[str, Any] = {}
    for _, spec in rubric.steps:
        check = CHECKS[spec.check]
        if check.prepare is not None:
            prepared.update(check.prepare(item))
            measured.append(None)
        elif check.applies is not None and not check.applies(item):
            measured.append([])  # its inputs are missing: it would measure nothing
        else:
            measured.append(run_check(check, item, spec.call_params, objects=objects, spans=spans))
    return SampleMeasurements(
        sample, rubric.name, rubric.check_names, measured, prepared, rubric.measurement_key
    )


def finish_report(measured: SampleMeasurements, rubric: Rubric, context: Any) -> RubricReport:
    """The batch checks on one measured sample (in sample order), then levels, score, route."""
    sample = measured.sample
    if not measured.measured_as(rubric):
        raise ValueError(
            f"sample {sample.id} was measured for rubric {measured.rubric} {measured.checks}, "
            f"which measures otherwise than {rubric.name}; measure it again"
        )
    # The batch checks see what `prepare` kept, as they would have in one pass over the sample.
    item = CheckInput(sample=sample, context=context, cache=dict(measured.prepared))
    levels: dict[str, Level] = dict.fromkeys(rubric.criteria, 5)  # no checks: gold
    findings: list[Finding] = []
    worst: dict[str, float] = {}
    for (criterion, spec), found in zip(rubric.steps, measured.measured, strict=True):
        check = CHECKS[spec.check]
        if found is None:
            found = run_check(
                check,
                item,
                spec.call_params,
                objects=len(sample.objects),
                spans=len(sample.spans),
            )
        level = levels[criterion]
        for m in found:
            if isinstance(m, ObjectMeasurements):
                level = min(level, _judge_columns(check, spec, criterion, m, worst, findings))
                continue
            measure = check.measures[m.measure]
            previous = worst.get(m.measure)
            if previous is None or (m.value > previous) == (measure.worse == "higher"):
                worst[m.measure] = m.value
            threshold = spec.thresholds.get(m.measure)
            if threshold is None:
                continue
            level_found = threshold.level(m.value, measure.worse)
            if level_found < 5:
                findings.append(finding_for(check, spec, m, level_found, criterion))
                level = min(level, level_found)
        levels[criterion] = level
    score = round(sum(rubric.weights[c] * levels[c] for c in levels) / rubric.total_weight, 3)
    chosen, audit = route(
        score, levels, rubric.routing, critical=rubric.critical, seed=sample.spec.seed
    )
    return RubricReport(
        rubric=rubric.name,
        score=score,
        levels=levels,
        route=chosen,
        audit=audit,
        findings=findings,
        measurements=worst,
    )


def _judge_columns(
    check: CheckDef,
    spec: CheckSpec,
    criterion: str,
    m: ObjectMeasurements,
    worst: dict[str, float],
    findings: list[Finding],
) -> Level:
    """Levels of a column of measurements, exactly as the scalar path above gives them row by
    row (a sample has few objects: plain Python over the values beats numpy calls): the worst
    value per measure, findings in row order; returns the lowest level (5: all gold)."""
    values = m.values.tolist()
    which = [0] * len(values) if m.which is None else m.which.tolist()
    below: list[tuple[int, Level]] = []  # (row, level) of the rows below gold
    # Measures in the order of their first row: `worst` keeps the order the rows gave it.
    for j in [0] if m.which is None else sorted(set(which), key=which.index):
        name = m.measures[j]
        rows = range(len(values)) if m.which is None else [k for k, w in enumerate(which) if w == j]
        if not rows:
            continue
        chosen = values if m.which is None else [values[k] for k in rows]
        higher = check.measures[name].worse == "higher"
        # Row by row, a later value replaces the worst so far when strictly higher (higher is
        # worse) or not higher (lower is worse): the extreme, as max / min give it.
        extreme = max(chosen) if higher else min(chosen)
        previous = worst.get(name)
        if previous is None or (extreme > previous) == higher:
            worst[name] = extreme
        threshold = spec.thresholds.get(name)
        if threshold is None:
            continue
        gold, acceptable = threshold.gold, threshold.acceptable
        for k, value in zip(rows, chosen, strict=True):
            if value > gold if higher else value < gold:
                good = value <= acceptable if higher else value >= acceptable
                below.append((k, 3 if good else 1))
    if not below:
        return 5
    below.sort()
    for k, level in below:
        findings.append(finding_for(check, spec, m.row(k), level, criterion))
    return min(level for _, level in below)


def judge_sample(generated: GeneratedSample, rubric: Rubric, context: Any) -> RubricReport:
    """Every check of the rubric on one sample -> levels, score, findings and route: the
    per-sample checks, then the batch checks and the verdict."""
    return finish_report(measure_sample(generated, rubric, context), rubric, context)


def judge_dataset(tally: DatasetTally, rubric: Rubric, context: Any) -> list[Finding]:
    """The rubric's dataset checks on a tallied COCO file: findings only (no score)."""
    subject = DatasetInput(tally=tally, context=context)
    findings: list[Finding] = []
    for spec in rubric.dataset:
        check = spec.definition
        for m in _rows(run_check(check, subject, spec.with_defaults())):
            threshold = spec.thresholds.get(m.measure)
            if threshold is None:
                continue
            level = threshold.level(m.value, check.measures[m.measure].worse)
            if level < 5:
                findings.append(finding_for(check, spec, m, level, check.criterion))
    return findings
