"""`synthgate validate`: judge any COCO file or text JSONL against a rubric (validators/)."""

from __future__ import annotations

from pathlib import Path

import typer

import synthgate
from synthgate.commands import (
    PROGRESS_FROM,
    console,
    count_bar,
    errors,
    mib_bar,
    progress_bars,
    user_errors,
)
from synthgate.errors import InputError
from synthgate.files import write_atomic
from synthgate.outputs import check_out_file


def validate(
    path: Path = typer.Argument(
        ..., metavar="PATH", help="A COCO JSON file (real or synthetic) or a text JSONL file."
    ),
    images: Path | None = typer.Option(
        None, "--images", help="Folder of the COCO file's images: enables the pixel checks."
    ),
    rubric: str | None = typer.Option(
        None,
        "--rubric",
        help="Rubric YAML, or the name of a shipped one (detection, ner, classification). "
        "Default: detection for COCO; ner or classification (by what the rows hold) for JSONL.",
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Write every sample's score, levels, route and findings here."
    ),
    fail_under: float | None = typer.Option(
        None, "--fail-under", min=1, max=5, help="Exit 1 when the mean score is below this."
    ),
    reference: Path | None = typer.Option(
        None,
        "--reference",
        help="Real data samples must not copy (privacy): for COCO a folder of real images, for "
        "JSONL a JSONL file of real rows (their text). Image fingerprints are kept between runs "
        "(SYNTHGATE_CACHE_DIR, default $XDG_CACHE_HOME/synthgate or ~/.cache/synthgate; off: none).",
    ),
    coco: Path | None = typer.Option(
        None,
        "--coco",
        help="PATH is a COCO results file (model predictions: image_id, category_id, bbox, "
        "score): the COCO file of the images they were made on.",
    ),
    min_score: float = typer.Option(
        0.0, "--min-score", help="With --coco: judge only predictions scoring at least this."
    ),
    text_field: str = typer.Option(
        "text", "--text-field", help="JSONL: field holding the text (of --reference rows too)."
    ),
    label_field: str = typer.Option("label", "--label-field", help="JSONL: field for the label."),
) -> None:
    """Score every sample against a rubric; print levels per criterion and the top findings.

    Works on any COCO file (polygons, RLE, crowd regions) or text JSONL, real or synthetic.
    Exit codes: 0 ok, 1 mean score under --fail-under, 2 bad input (or nothing to judge).

    Example: synthgate validate annotations.json --images images/ --json report.json --fail-under 4

    Text rows with other fields: synthgate validate reviews.jsonl --text-field review --label-field sentiment

    Pre-labels QA: synthgate validate predictions.json --coco instances.json --images images/
    --json report.json, then synthgate review enqueue --from-validate report.json.
    """
    # predictions need the validators at once; --help need not load them
    from synthgate.validators.predictions import (
        is_results_file,
        list_file_problem,
        predictions_json,
        validate_predictions,
    )

    with user_errors(), progress_bars() as bars:
        advance = count_bar(bars, "judging")
        hashed = count_bar(bars, "hashing the reference images")

        if coco is None and min_score != 0.0:
            raise InputError(
                field="min_score",
                value=min_score,
                problem="applies to a COCO results file (predictions, with --coco) only",
                fix="leave it out, or pass --coco",
            )
        if coco is not None:  # refused, not ignored: PATH is a results file, not rows of text
            for name, value, default in (
                ("text_field", text_field, "text"),
                ("label_field", label_field, "label"),
            ):
                if value != default:
                    raise InputError(
                        field=name,
                        value=value,
                        problem=f"applies to text JSONL files; {path} is a COCO results file",
                        fix="leave it out",
                    )
        if json_out is not None:
            # before any work: never a database, nor a file it reads
            reads = [p for p in (path, coco, reference) if p is not None]
            check_out_file(json_out, field="json", inputs=reads)
        if coco is None and path.suffix.lower() == ".json" and is_results_file(path):
            other = list_file_problem(path)
            if other is not None:
                raise InputError(other)
            raise InputError(
                field="coco",
                problem=f"{path} is a COCO results file (a list of predictions)",
                fix="pass the COCO file of the images they were made on with --coco",
            )
        if coco is not None:
            result = validate_predictions(
                path,
                coco,
                images=images,
                rubric=rubric,
                reference=reference,
                min_score=min_score,
                progress=advance,
                reference_progress=hashed,
                read_progress=mib_bar(bars, "reading the COCO file"),
                size_progress=count_bar(bars, "reading image sizes", least=PROGRESS_FROM),
            )
        else:
            # The document is streamed to its file and no report is kept: any size, bounded memory.
            result = synthgate.validate_file(
                path,
                images=images,
                rubric=rubric,
                reference=reference,
                json=json_out,
                keep_reports=False,
                text_field=text_field,
                label_field=label_field,
                progress=advance,
                reference_progress=hashed,
                read_progress=mib_bar(bars, "reading the COCO file"),
                # entries without a width or height: their files' headers, before judging
                size_progress=count_bar(bars, "reading image sizes", least=PROGRESS_FROM),
            )
        if result.summary.samples == 0:
            raise InputError(f"{path}: holds no samples (no images or rows) to judge")
        if json_out is not None and coco is not None:
            document = predictions_json(
                result, results=path, coco=coco, images=images, min_score=min_score
            )
            write_atomic(json_out, document, field="json")
    console.print(result.summary.table(), highlight=False, markup=False, soft_wrap=True)
    # what was written, and why the exit status is 1, go to stderr: stdout holds the summary
    # alone (`synthgate validate x.json > summary.txt`); one line each, however long the path
    # (rich wraps at 80 columns where stderr is no terminal: "wrote \n/long/path")
    if json_out is not None:
        errors.print(f"wrote {json_out}", highlight=False, markup=False, soft_wrap=True)
    mean = result.summary.mean_score
    if fail_under is not None and mean < fail_under:
        errors.print(
            f"mean score {mean:.2f} is under --fail-under {fail_under:g}",
            markup=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=1)
