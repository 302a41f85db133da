"""Validation as functions: one sample at a time (in order), or a whole file.

- `Judge(rubric, context)`: the callable the pipeline applies to every generated sample, in order;
  `Judge.measure` (anywhere) and `Judge.finish` (in order) are its two halves (measure.py).
  `rubric_for(modality, rubric=..., task=...)` picks its rubric; `check_config_rubrics(config,
  source=...)` checks, before a batch starts, that the rubrics a config names fit its sections.
- `validate(samples, *, rubric=None)`: reports of samples in memory (the public API's).
- `validate_coco(coco, *, images=None, rubric="detection")` / `validate_file(path, ...)`: every
  sample of a COCO file or mapping (or a text JSONL file) -> a `ValidationResult`: reports,
  a `ValidationSummary` and dataset findings; `json=path` streams the `--json` document to a
  file as samples are judged (report_file.py), `keep_reports=False` keeps only the summary, so a
  file of any size is judged in bounded memory; `write_json(result, out)` writes a kept result.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthgate.arguments import callback, names_argument, optional_path, path_argument, switch
from synthgate.errors import InputError
from synthgate.files import json_text, write_atomic
from synthgate.formats.jsonl import iter_jsonl
from synthgate.outputs import check_out_file
from synthgate.samples import GeneratedSample, RubricReport, Sample
from synthgate.validators.context import (
    ValidationContext,
    folder_reference,
    text_reference_index,
)
from synthgate.validators.measure import (
    SampleMeasurements,
    finish_report,
    judge_dataset,
    measure_sample,
)
from synthgate.validators.report_file import ReportFile
from synthgate.validators.rubric import Rubric, load_rubric
from synthgate.validators.sources import TEXT_SUFFIXES, open_source
from synthgate.validators.summary import ValidationSummary

if TYPE_CHECKING:  # validate's start-up does without the batch config's models
    from synthgate.config import BatchConfig


def rubric_for(
    modality: str,
    *,
    rubric: str | Path | None = None,
    task: str | None = None,
    source: Path | str | None = None,
) -> Rubric:
    """The rubric of a batch section: the one it names, else detection for images and the
    template file's task (ner / classification) for texts. `source`: the config file, named
    with the field in the error when the rubric cannot be loaded or judges the other
    modality."""
    where = "" if source is None else f"{source}: "
    try:
        chosen = load_rubric(rubric or ("detection" if modality == "image" else task or "ner"))
    except InputError as error:
        if source is None:
            raise
        # "rubric 'nope': no such file" named neither the config file nor the field
        raise InputError(f"{where}{modality}.rubric: {error}") from None
    if chosen.modality != modality and source is None:  # a library call's parameter
        raise InputError(
            field="rubric",
            value=chosen.name,
            problem=f"judges {chosen.modality} samples, not {modality}",
            fix="pick a rubric of this modality",
        )
    if chosen.modality != modality:
        raise InputError(
            f"{where}{modality}.rubric: {chosen.name} judges {chosen.modality} samples, not "
            f"{modality}; pick a rubric of this modality"
        )
    return chosen


def check_config_rubrics(config: BatchConfig, *, source: Path | str) -> None:
    """Load the rubric each section of a config names and check that it judges that section's
    modality, before anything is made: an error names the config file `source` (the default
    rubrics are of the right modality by construction)."""
    for modality in ("image", "text"):
        section = getattr(config, modality)
        if section is not None and section.rubric is not None:
            rubric_for(modality, rubric=section.rubric, source=source)


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

    def hash_references(self, *, progress: Callable[[int, int], None] | None = None) -> None:
        """Hash the folders of real images the rubric's checks name (`reference_images`) now,
        before the first sample: a folder that is not there is bad input said up front, and a
        large one is hashed under its own `progress(files hashed, files in all)` rather than
        inside the first sample's judging."""
        for folder in reference_folders(self.rubric):
            self.context.reference_for(folder, progress=progress)


@dataclass
class ValidationResult:
    """A judged file: every sample's report, by sample id (`reports`), and what they say
    together (`summary`: counts per route and level, mean score, findings by check, dataset
    findings). `to_json()` is the document `synthgate validate --json` writes. With
    `keep_reports=False` only the summary is kept (`reports` is empty)."""

    rubric: Rubric
    summary: ValidationSummary
    reports: dict[str, RubricReport]
    judged: list[tuple[dict[str, Any], RubricReport]] = field(default_factory=list)
    kept: bool = True

    def __repr__(self) -> str:
        # Not the dataclass's: that spells out the rubric and every report (100 KB for 80
        # images), which a notebook would print whole.
        # Each name one of its attributes (the counts are the summary's: result.summary.samples)
        kept = len(self.reports) if self.kept else "<not kept>"
        return (
            f"ValidationResult(rubric={self.rubric.name!r}, summary=<{self.summary.brief()}>, "
            f"reports={kept})"
        )

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Each sample's row of the `--json` document, in file order."""
        self._refuse_unkept("no rows to give")
        return [report_row(key, report) for key, report in self.judged]

    def to_json(self) -> str:
        self._refuse_unkept("no document to make")
        document = {
            "rubric": self.rubric.name,
            "summary": self.summary.as_dict(),
            "samples": self.rows,
        }
        return json_text(document)

    def _refuse_unkept(self, nothing: str) -> None:
        """An empty list would read as a file with no sample: refused, with how to get them."""
        if not self.kept:
            raise InputError(
                field="keep_reports",
                value=False,
                problem=f"the reports were not kept, so there is {nothing}",
                fix="pass json=PATH to write them as the samples are judged",
            )


def report_row(key: dict[str, Any], report: RubricReport) -> dict[str, Any]:
    """One sample in the `--json` document."""
    return {
        **key,
        "score": report.score,
        "route": report.route,
        "audit": report.audit,
        "levels": report.levels,
        "findings": [
            f.model_dump(
                exclude_none=True,
                exclude={"object_index"} if f.annotation_id is not None else set(),
            )
            for f in report.findings
        ],
    }


def validate(
    samples: Iterable[GeneratedSample | Sample],
    *,
    rubric: str | Path | Rubric | None = None,
    categories: Iterable[str] | None = None,
) -> list[RubricReport]:
    """Judge samples against a rubric, in order (batch checks compare each with the earlier).

    Args:
        samples: `GeneratedSample`s (pixel checks run on their pixels) or `Sample`s (labels
            only), all images or all texts.
        rubric: a shipped rubric's name (detection, ner, classification), a YAML path or a
            `Rubric`; default: detection for images, ner for texts with spans, else
            classification.
        categories: the taxonomy; labels outside it are findings (default: not checked).
            copy_paste samples keep their backgrounds' own objects: pass every class of the
            source dataset, as `run` judges them, not only the config's categories.

    Returns:
        One `RubricReport` per sample, in order: levels per criterion, score, route, findings.
        The samples are not changed.

    Example:
        >>> reports = validate(generate("configs/quickstart.yaml", limit=8))
        >>> [r.route for r in reports]
    """
    if isinstance(samples, GeneratedSample | Sample):
        raise InputError(
            field="samples",
            value=samples.id if isinstance(samples, Sample) else samples.sample.id,
            problem="is one sample; a list of them goes here",
            fix="pass validate([sample])",
        )
    if isinstance(samples, Mapping | str | os.PathLike):  # a dict's keys are no samples
        raise InputError(
            field="samples",
            value=type(samples).__name__,
            problem="is a config or a path, not samples",
            fix="make them first: validate(generate(config)); judge a file with validate_file",
        )
    items = []
    for sample in samples:
        if not isinstance(sample, GeneratedSample | Sample):
            raise InputError(
                field="samples",
                value=type(sample).__name__,
                problem="holds something that is not a sample",
                fix="pass GeneratedSamples (from generate) or Samples (RunResult.samples())",
            )
        items.append(
            sample if isinstance(sample, GeneratedSample) else GeneratedSample(sample=sample)
        )
    categories = names_argument(categories, "categories")
    if not items:
        return []
    modality = items[0].sample.spec.modality
    if any(item.sample.spec.modality != modality for item in items):
        raise InputError(
            field="samples",
            value=f"{len(items)} samples",
            problem="mixes images and texts",
            fix="validate each modality on its own",
        )
    if isinstance(rubric, Rubric):
        chosen = rubric
    else:
        task = "ner" if any(i.sample.spans for i in items) else "classification"
        chosen = rubric_for(modality, rubric=rubric, task=task)
    judge = Judge(chosen, ValidationContext.for_taxonomy(categories))
    return [judge(item) for item in items]  # Judge reads samples; it records nothing on them


def validate_coco(
    coco: Path | str | dict[str, Any],
    *,
    images: Path | str | None = None,
    rubric: str | Path | Rubric | None = "detection",
    reference: Path | str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    json: Path | str | None = None,
    keep_reports: bool = True,
    reference_progress: Callable[[int, int], None] | None = None,
    read_progress: Callable[[int, int], None] | None = None,
    size_progress: Callable[[int, int], None] | None = None,
) -> ValidationResult:
    """Judge every image of a COCO file (real or synthetic) against a rubric.

    The file is read as it streams: memory holds its annotations as columns (a few hundred
    bytes each), not its JSON; with `keep_reports=False` it holds no report either.

    Args:
        coco: a COCO JSON path, or the COCO dict itself.
        images: the folder its `file_name`s are relative to: the pixel checks run on the images
            (default: labels only).
        rubric: a shipped rubric's name, a YAML path or a `Rubric` (e.g. `calibrate(...).rubric`).
        reference: a folder of real images; samples that copy one are found.
        progress: called with (images judged, total) as it goes.
        json: write the `--json` document here as the samples are judged (through a temporary
            file and a rename; InputError and nothing written if there is no sample).
        keep_reports: keep every report in the result (False: the summary only).
        reference_progress: called with (reference images hashed, total) as they are, before
            any sample is judged (a folder of 100k real images takes minutes): the folder
            `reference` names first, then those the rubric's checks name (`reference_images`),
            which are hashed only when there are `images` to compare.
        read_progress: called with (bytes read, bytes in all) as the file streams in, before
            the first image is judged (about half the time of a large file).
        size_progress: with `images`, called with (image files whose header was read, those
            to read) for the entries without a width or height, which take their file's size
            before any image is judged (100k such images: about 15 s).

    Returns:
        A `ValidationResult`: `.reports` by sample id, `.summary` (`.mean_score`, routes,
        levels, findings), `.to_json()`.

    Example:
        >>> result = validate_coco("annotations.json", images="images/")
        >>> result.summary.mean_score, result.summary.routes
    """
    source = coco if isinstance(coco, dict) else path_argument(coco, "coco")
    if isinstance(source, Path) and source.suffix.lower() in TEXT_SUFFIXES:
        raise InputError(
            field="coco",
            value=source,
            problem="is a text JSONL file",
            fix="pass a COCO JSON file, or use validate_file for texts",
        )
    return validate_file(
        source,
        images=images,
        rubric=rubric,
        reference=reference,
        progress=progress,
        json=json,
        keep_reports=keep_reports,
        reference_progress=reference_progress,
        read_progress=read_progress,
        size_progress=size_progress,
    )


def validate_file(
    path: Path | str | dict[str, Any],
    *,
    images: Path | str | None = None,
    rubric: str | Path | Rubric | None = None,
    reference: Path | str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    json: Path | str | None = None,
    keep_reports: bool = True,
    reference_progress: Callable[[int, int], None] | None = None,
    read_progress: Callable[[int, int], None] | None = None,
    size_progress: Callable[[int, int], None] | None = None,
    text_field: str = "text",
    label_field: str = "label",
) -> ValidationResult:
    """Judge every sample of a COCO JSON file or a text JSONL file (by its suffix) against a
    rubric: detection for COCO; ner or classification, by what the rows hold, for JSONL.

    Args:
        path: a COCO JSON file, a text JSONL file (.jsonl or .ndjson), or the COCO dict itself.
        images: COCO: the folder its `file_name`s are relative to: the pixel checks run on the
            images (default: labels only).
        rubric: a shipped rubric's name, a YAML path or a `Rubric` (default: detection for
            COCO; ner for rows with spans, classification for rows with a label, ner for rows
            with neither, refused where another field of theirs holds a class: name it with
            `label_field`, or pass rubric="ner").
        reference: COCO: a folder of real images; JSONL: a JSONL file of real rows (their
            `text_field`). Samples that copy one are found.
        progress: called with (samples judged, total) as it goes.
        json: write the `--json` document here as the samples are judged (through a temporary
            file and a rename; InputError and nothing written if there is no sample).
        keep_reports: keep every report in the result (False: the summary only).
        reference_progress: COCO: called with (reference images hashed, total), before any
            sample is judged, as `validate_coco` says.
        read_progress: COCO: called with (bytes read, bytes in all) as the file streams in,
            before the first sample is judged (about half the time of a large file).
        size_progress: COCO with `images`: called with (image files whose header was read,
            those to read) for the entries without a width or height.
        text_field, label_field: JSONL: the fields of each row's text and label (the
            reference rows' text is read from `text_field` too).

    Returns:
        A `ValidationResult`: `.reports` by sample id, `.summary` (`.mean_score`, routes,
        levels, findings), `.to_json()`.

    Example:
        >>> result = validate_file("runs/quickstart/text.jsonl")
        >>> result.rubric.name, result.summary.routes
    """
    source_path = path if isinstance(path, dict) else path_argument(path, "path")
    images, reference = optional_path(images, "images"), optional_path(reference, "reference")
    keep_reports = switch(keep_reports, "keep_reports")
    progress = callback(progress, "progress")
    reference_progress = callback(reference_progress, "reference_progress")
    read_progress = callback(read_progress, "read_progress")
    size_progress = callback(size_progress, "size_progress")
    json = optional_path(json, "json")
    if json is not None:  # before any work: never a database, nor a file it reads
        read = [p for p in (source_path, reference) if p is not None and not isinstance(p, dict)]
        check_out_file(json, field="json", inputs=read)
    texts = not isinstance(source_path, dict) and source_path.suffix.lower() in TEXT_SUFFIXES
    if images is not None and texts:  # before open_source asks for an existing folder
        raise InputError(
            field="images",
            value=images,
            problem=f"applies to COCO files; {source_path} is a text JSONL file",
            fix="leave it out",
        )
    shown = "the COCO mapping" if isinstance(path, dict) else path
    for name, value, default in (
        ("text_field", text_field, "text"),
        ("label_field", label_field, "label"),
    ):
        if value != default and not texts:  # refused, not ignored, as `images` for texts
            raise InputError(
                field=name,
                value=value,
                problem=f"applies to text JSONL files; {shown} is a COCO file",
                fix="leave it out",
            )
    document = ReportFile(json) if json is not None else None
    with contextlib.ExitStack() as stack:
        if document is not None:
            stack.enter_context(document)
        source = open_source(
            source_path,
            images=images,
            progress=read_progress,
            size_progress=size_progress,
            text_field=text_field,
            label_field=label_field,
            rubric_given=rubric is not None,
        )
        stack.callback(source.items.close)  # stopped early: its image decoders stop too
        chosen = rubric if isinstance(rubric, Rubric) else load_rubric(rubric or source.rubric)
        if chosen.modality == "image" and source.kind != "coco":
            raise InputError(
                field="rubric",
                value=chosen.name,
                problem=f"judges images; {shown} is a text JSONL file",
            )
        if chosen.modality == "text" and source.kind != "jsonl":
            raise InputError(
                field="rubric", value=chosen.name, problem=f"judges texts; {shown} is a COCO file"
            )
        context = ValidationContext.for_taxonomy(
            source.categories,
            **_references(
                reference,
                text=source.kind == "jsonl",
                text_field=text_field,
                progress=reference_progress,
            ),
        )
        judge = Judge(chosen, context)
        if images is not None and source.count:  # a rubric's own folders, before judging
            judge.hash_references(progress=reference_progress)
        summary = ValidationSummary(chosen)
        if source.tally is not None:
            summary.dataset = judge_dataset(source.tally, chosen, context)
        result = ValidationResult(rubric=chosen, summary=summary, reports={}, kept=keep_reports)
        for done, (key, generated) in enumerate(source.items, start=1):
            report = judge(generated)
            summary.add(str(key["id"]), report)
            if document is not None:
                document.add(report_row(key, report))
            if keep_reports:
                result.judged.append((key, report))
                result.reports[str(key["id"])] = report
            if progress is not None:
                progress(done, source.count)
        if document is not None:
            if not summary.samples:
                raise InputError(f"{shown}: holds no samples (no images or rows) to judge")
            document.close(chosen.name, summary.as_dict())
    return result


def reference_folders(rubric: Rubric) -> list[str]:
    """The folders of real images a rubric's checks name (`reference_images`), each once."""
    named = (spec.call_params.get("reference_images") for spec in rubric.all_checks())
    return list(dict.fromkeys(folder for folder in named if folder is not None))


def _references(
    reference: Path | str | None,
    *,
    text: bool,
    text_field: str = "text",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """The context's real data that samples must not copy: for images a folder of real images
    (`reference`, hashed with `progress`), for texts a JSONL file of real rows
    (`text_reference`, their text, in `text_field`)."""
    if not reference:
        return {}
    path = Path(reference)
    if not text:
        return {"reference": folder_reference(path, progress=progress)}
    if path.is_dir():
        raise InputError(
            field="reference",
            value=path,
            problem="is a folder (real images are a reference for COCO files)",
            fix="pass the JSONL file of the real rows the texts must not copy",
        )
    rows = iter_jsonl(path, what="reference JSONL file")
    index = text_reference_index(rows, text_field=text_field, source=path.name)
    if not len(index):  # else every text would be new, the copy check silently of no use
        raise InputError(
            field="reference",
            value=path,
            problem=f'holds no row with a text (a string "{text_field}" field): nothing to '
            "compare with",
            fix=f'pass the JSONL file of the real rows, each with its text under "{text_field}"',
        )
    return {"text_reference": index}


def write_json(result: ValidationResult, out: Path) -> None:
    write_atomic(out, result.to_json(), field="json")
