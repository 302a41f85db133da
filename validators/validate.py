"""Validation as functions: one sample at a time (in order), or a whole file.

- `Judge(rubric, context)`: the callable the pipeline applies to every generated sample, in order;
  `Judge.measure` (anywhere) and `Judge.finish` (in order) are its two halves (measure.py).
  `rubric_for(modality, rubric=..., task=...)` picks its rubric.
- `validate_file(path, *, images=None, rubric=None, reference=None)`: what `synthgate validate`
  runs on a COCO or JSONL file: per-sample rows, a `ValidationSummary` and dataset findings.
- `write_json(result, out)`: the `--json` document, written to a temporary name, then renamed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthgate.errors import InputError
from synthgate.files import write_atomic
from synthgate.samples import GeneratedSample, RubricReport
from synthgate.validators.checks.dataset import DatasetTally
from synthgate.validators.context import ValidationContext, image_files, reference_index
from synthgate.validators.measure import (
    SampleMeasurements,
    finish_report,
    judge_dataset,
    measure_sample,
)
from synthgate.validators.rubric import Rubric, load_rubric
from synthgate.validators.sources import open_source
from synthgate.validators.summary import ValidationSummary


def rubric_for(
    modality: str, *, rubric: str | Path | None = None, task: str | None = None
) -> Rubric:
    """The rubric of a batch section: the one it names, else detection for images and the
    template file's task (ner / classification) for texts."""
    chosen = load_rubric(rubric or ("detection" if modality == "image" else task or "ner"))
    if chosen.modality != modality:
        raise InputError(
            f"{modality}.rubric: {chosen.name} judges {chosen.modality} samples, not {modality}; "
            "pick a rubric of this modality"
        )
    return chosen


@dataclass
class Judge:
    """A rubric and the batch state it needs: call it on each sample, in order."""

    rubric: Rubric
    context: ValidationContext = field(default_factory=ValidationContext)

    def __call__(self, generated: GeneratedSample) -> RubricReport:
        return self.finish(self.measure(generated))

    def measure(self, generated: GeneratedSample) -> SampleMeasurements:
        """The per-sample half: any order, anywhere (a worker); reads no batch state."""
        return measure_sample(generated, self.rubric, self.context)

    def finish(self, measured: SampleMeasurements) -> RubricReport:
        """The batch half and the verdict: call it on each sample, in order."""
        return finish_report(measured, self.rubric, self.context)


@dataclass
class FileValidation:
    rubric: Rubric
    summary: ValidationSummary
    rows: list[dict[str, Any]]


def report_row(key: dict[str, Any], report: RubricReport) -> dict[str, Any]:
    """One sample in the `--json` document."""
    return {
        **key,
        "score": report.score,
        "route": report.route,
        "audit": report.audit,
        "levels": report.levels,
        "findings": [
            f.model_dump(exclude_none=True, exclude={"object_index"} if f.annotation_id else set())
            for f in report.findings
        ],
    }


def validate_file(
    path: Path,
    *,
    images: Path | None = None,
    rubric: str | Path | None = None,
    reference: Path | None = None,
    progress: Callable[[int, int | None], None] | None = None,
) -> FileValidation:
    """Validate every sample of a COCO JSON or text JSONL file (real or synthetic)."""
    source = open_source(path, images=images)
    chosen = load_rubric(rubric or source.rubric)
    if chosen.modality == "image" and source.kind != "coco":
        raise InputError(f"--rubric {chosen.name} judges images; {path} is a text JSONL file")
    if chosen.modality == "text" and source.kind != "jsonl":
        raise InputError(f"--rubric {chosen.name} judges texts; {path} is a COCO file")
    context = ValidationContext.for_taxonomy(
        source.categories, reference=reference_index(image_files(reference)) if reference else None
    )
    summary = ValidationSummary(chosen)
    if source.coco is not None:
        summary.dataset = judge_dataset(DatasetTally.of(source.coco), chosen, context)
    rows = []
    judge = Judge(chosen, context)
    for done, (key, generated) in enumerate(source.items, start=1):
        report = judge(generated)
        summary.add(str(key["id"]), report)
        rows.append(report_row(key, report))
        if progress is not None:
            progress(done, source.count)
    return FileValidation(rubric=chosen, summary=summary, rows=rows)


def write_json(result: FileValidation, out: Path) -> None:
    document = {
        "rubric": result.rubric.name,
        "summary": result.summary.as_dict(),
        "samples": result.rows,
    }
    write_atomic(out, json.dumps(document, ensure_ascii=False), option="--json")
