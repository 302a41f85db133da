"""`synthgate review …`: fill the review queue, exchange tasks with Label Studio, and print
agreement and queue statistics.

Every command works on one database: `--db URL`, else the run folder's `synthgate.db` given by
`--run DIR`, else `SYNTHGATE_DB_URL`, else `<runs dir>/synthgate.db` (the one `synthgate serve`
uses by default).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from synthgate.commands import console, user_errors
from synthgate.errors import InputError

if TYPE_CHECKING:
    from synthgate.review.queue import ReviewQueue

app = typer.Typer(
    help="Human review: fill the queue, Label Studio export/import, agreement and stats.",
    no_args_is_help=True,
)

RUN_HELP = "Run folder whose synthgate.db to use (e.g. runs/quickstart)."
DB_HELP = (
    "Database URL; overrides --run (default: $SYNTHGATE_DB_URL, else <runs dir>/synthgate.db)."
)


def database_url(run: Path | None, db: str | None) -> str:
    """--db, else the run folder's database, else the settings, else the runs folder's."""
    from synthgate.config import Settings
    from synthgate.store import sqlite_url

    if db:
        return db
    if run is not None:
        path = run / "synthgate.db"
        if not path.is_file():
            raise InputError(
                f"--run {run}: no synthgate.db there; pass the folder `synthgate run` wrote"
            )
        return sqlite_url(path)
    settings = Settings()
    if settings.db_url:
        return settings.db_url
    path = settings.runs_dir / "synthgate.db"
    if not path.is_file():
        raise InputError(
            f"no database: {path} does not exist; pass --run runs/<name>, --db URL or set "
            "SYNTHGATE_DB_URL"
        )
    return sqlite_url(path)


def open_queue(
    run: Path | None, db: str | None, *, annotators_per_item: int = 2, gold_rate: float = 0.1
) -> ReviewQueue:
    from synthgate.review.queue import ReviewQueue
    from synthgate.store import Store

    store = Store(database_url(run, db))
    return ReviewQueue(store, annotators_per_item=annotators_per_item, gold_rate=gold_rate)


@app.command("enqueue")
def enqueue(
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    batch: list[str] = typer.Option(
        [], "--batch", help="Batch id to enqueue; repeat for several (default: every batch)."
    ),
    annotators_per_item: int = typer.Option(
        2, "--annotators-per-item", "-k", min=1, help="Distinct annotators each item needs."
    ),
    gold_rate: float = typer.Option(
        0.1, "--gold-rate", min=0.0, max=0.9, help="Share of an annotator's tasks that are gold."
    ),
    image_root: str | None = typer.Option(
        None,
        "--image-root",
        help="Folder or URL the image uris are relative to (default: the run folder).",
    ),
) -> None:
    """Put samples routed to review (and the audit sample of accepted ones) into the queue.

    Idempotent: running it again adds only what is new; decided items stay decided.
    """
    from sqlalchemy import select

    from synthgate.store import batches

    with user_errors():
        queue = open_queue(run, db, annotators_per_item=annotators_per_item, gold_rate=gold_rate)
        ids = batch
        if not ids:
            with queue.store.engine.connect() as connection:
                ids = list(
                    connection.execute(select(batches.c.id).order_by(batches.c.id)).scalars()
                )
        if not ids:
            raise InputError("the database holds no batch; run `synthgate run CONFIG` first")
        for batch_id in ids:
            if queue.store.get_batch(batch_id) is None:
                raise InputError(f"--batch {batch_id}: no such batch in the database")
            added = queue.enqueue_batch(batch_id, image_root=image_root)
            console.print(f"{batch_id}: {added} new review items")
        _print_stats(queue.stats())


@app.command("gold")
def add_gold(
    sample_ids: list[str] = typer.Argument(
        ..., metavar="SAMPLE_ID...", help="Samples in the database."
    ),
    expect: list[str] = typer.Option(
        ...,
        "--expect",
        help="A verdict that counts as right (accept, reject, fix); repeat for several.",
    ),
    criterion: str | None = typer.Option(
        None, "--criterion", help="The criterion a known defect breaks (for sensitivity)."
    ),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Add samples to the gold set: tasks with a known verdict, mixed in unannounced."""
    with user_errors():
        for verdict in expect:
            _check_choice("--expect", verdict, ["accept", "reject", "fix"])
        queue = open_queue(run, db)
        for sample_id in sample_ids:
            sample = queue.store.get_sample(sample_id)
            if sample is None:
                raise InputError(f"{sample_id}: no such sample in the database")
            item = queue.add_gold(sample, expected=expect, criterion=criterion)  # type: ignore[arg-type]
            console.print(f"{sample_id}: gold item {item}")


@app.command("stats")
def stats(
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Queue depth, decisions, and each annotator's throughput and accuracy on gold tasks."""
    with user_errors():
        numbers = open_queue(run, db).stats()
    if as_json:
        console.print_json(json.dumps(numbers))
    else:
        _print_stats(numbers)


@app.command("release")
def release(
    older_than: float = typer.Option(
        ..., "--older-than-minutes", min=0.0, help="Undecided for longer than this many minutes."
    ),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Take back assignments nobody decided in time, so the items go to other annotators."""
    with user_errors():
        released = open_queue(run, db).release_stale(older_than * 60)
    console.print(f"released {released} assignments")


@app.command("export")
def export(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Tasks JSON to write; the labeling config goes beside it."
    ),
    output_format: str = typer.Option(
        "labelstudio", "--format", help="Export format: labelstudio."
    ),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    include: str = typer.Option(
        "open",
        "--include",
        help="open: items still waiting, no decisions; all: every item with its decisions.",
    ),
    modality: str | None = typer.Option(
        None, "--modality", help="image or text (one Label Studio project each)."
    ),
    shapes: str = typer.Option(
        "rectangles", "--shapes", help="rectangles, or polygons from masks."
    ),
    image_url: str = typer.Option(
        "/data/local-files/?d={uri}",
        "--image-url",
        help="Image URL template; {uri} is the path in the run folder, {item_id} the item.",
    ),
) -> None:
    """Write review items as Label Studio tasks with predictions, plus the labeling config."""
    from synthgate.review.interop import export_tasks

    with user_errors():
        _check_choice("--format", output_format, ["labelstudio"])
        _check_choice("--include", include, ["open", "all"])
        _check_choice("--shapes", shapes, ["rectangles", "polygons"])
        if modality is not None:
            _check_choice("--modality", modality, ["image", "text"])
        result = export_tasks(
            open_queue(run, db),
            out,
            include=include,  # type: ignore[arg-type]
            modality=modality,
            shapes=shapes,  # type: ignore[arg-type]
            image_url=image_url,
        )
    console.print(
        f"wrote {result.count} {result.modality} tasks to [bold]{result.tasks}[/] and the "
        f"labeling config to [bold]{result.config}[/]"
    )


@app.command("import")
def import_(
    path: Path = typer.Argument(..., metavar="FILE", help="Label Studio JSON export."),
    input_format: str = typer.Option("labelstudio", "--format", help="Import format: labelstudio."),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    annotators_per_item: int = typer.Option(2, "--annotators-per-item", "-k", min=1),
) -> None:
    """Read a Label Studio JSON export back as decisions.

    Decisions already recorded and equal are left alone; different ones are reported as
    conflicts and never overwritten.
    """
    from synthgate.review.interop import import_annotations

    with user_errors():
        _check_choice("--format", input_format, ["labelstudio"])
        queue = open_queue(run, db, annotators_per_item=annotators_per_item)
        result = import_annotations(queue, path)
    console.print(
        f"decided {result.decided}, adjudicated {result.adjudicated}, unchanged "
        f"{result.unchanged}, conflicts {len(result.conflicts)}, skipped {len(result.skipped)}"
    )
    for line in result.conflicts + result.skipped:
        console.print(f"  {line}", highlight=False)


@app.command("agreement")
def agreement(
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write the tables as JSON here ('-' for stdout only)."
    ),
    accept_at: float | None = typer.Option(
        None, "--accept-at", help="The rubric's accept_at, to compare."
    ),
    reject_below: float | None = typer.Option(
        None, "--reject-below", help="The rubric's reject_below, to compare."
    ),
    min_items: int = typer.Option(
        10, "--min-items", min=1, help="Reviewed samples a threshold suggestion needs."
    ),
) -> None:
    """Print agreement tables: annotators, gold tasks, and rubric vs humans.

    Cohen's kappa per pair, Fleiss' kappa and Krippendorff's alpha on verdicts, alpha (ordinal)
    per criterion level, accuracy and sensitivity on gold, and kappa between the rubric's route
    and the human verdict with suggestions for accept_at / reject_below.
    """
    from synthgate.review.report import agreement_report

    with user_errors():
        queue = open_queue(run, db)
        report = agreement_report(
            queue.store, accept_at=accept_at, reject_below=reject_below, min_items=min_items
        )
        text = json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
        if json_out is not None and str(json_out) == "-":
            typer.echo(text, nl=False)
            return
        if json_out is not None:
            _write(json_out, text)
    print_agreement(report)
    if json_out is not None:
        console.print(f"wrote [bold]{json_out}[/]")


def _check_choice(option: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise InputError(f"{option} {value!r}: choose one of {', '.join(choices)}")


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.part")
        partial.write_text(text, encoding="utf-8")
        partial.replace(path)
    except OSError as error:
        raise InputError(f"--json {path}: cannot write there ({error.strerror})") from None


def _number(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undefined"
    return f"{value:.{digits}f}"


def _agreement_row(table: Table, name: str, entry: dict[str, Any]) -> None:
    table.add_row(
        name,
        _number(entry["value"]),
        str(entry["n_items"]),
        str(entry["n_ratings"]),
        _number(entry["observed"]),
        entry["note"],
    )


def _agreement_table(title: str) -> Table:
    table = Table(title=title)
    for column in ("statistic", "value", "items", "ratings", "observed", "note"):
        table.add_column(column, justify="left" if column in ("statistic", "note") else "right")
    return table


def print_agreement(report: dict[str, Any]) -> None:
    """The report as tables; tables with nothing in them are left out."""
    verdicts = report["verdicts"]
    if verdicts["alpha_nominal"]["n_ratings"] == 0 and not report["gold"]:
        console.print("no item has two decisions yet: nothing to compare")
    else:
        table = _agreement_table("verdict agreement (accept / reject / fix)")
        for pair in verdicts["cohen_pairs"]:
            _agreement_row(table, "Cohen's kappa " + " vs ".join(pair["raters"]), pair)
        _agreement_row(table, "Fleiss' kappa", verdicts["fleiss"])
        _agreement_row(table, "Krippendorff's alpha (nominal)", verdicts["alpha_nominal"])
        console.print(table)
    if report["levels"]:
        table = _agreement_table("level agreement per criterion (Krippendorff's alpha, ordinal)")
        for criterion, entry in report["levels"].items():
            _agreement_row(table, criterion, entry)
        console.print(table)
    if report["gold"]:
        console.print(_gold_table(report["gold"]))
    validator = report["validator"]
    if validator["confusion"]:
        table = _agreement_table("rubric route vs final human verdict")
        _agreement_row(table, "Cohen's kappa", validator["kappa"])
        console.print(table)
        console.print(_confusion_table(validator["confusion"]))
    for note in validator["suggestions"]["notes"]:
        console.print(f"suggestion: {note}", highlight=False)


def _gold_table(rows: dict[str, Any]) -> Table:
    table = Table(title="gold tasks")
    for column in (
        "annotator",
        "decided",
        "correct",
        "accuracy",
        "sensitivity (flagged / honeypots)",
    ):
        table.add_column(column, justify="left" if column[0] in "as" else "right")
    for who, row in rows.items():
        sensitivity = ", ".join(
            f"{c} {s['flagged']}/{s['honeypots']}" for c, s in row["sensitivity"].items()
        )
        table.add_row(
            who, str(row["decided"]), str(row["correct"]), _number(row["accuracy"]), sensitivity
        )
    return table


def _confusion_table(confusion: dict[str, dict[str, int]]) -> Table:
    table = Table(title="rubric route (rows) vs the route the human verdict implies (columns)")
    columns = ["accepted", "review", "rejected"]
    table.add_column("rubric")
    for column in columns:
        table.add_column(column, justify="right")
    for route, row in confusion.items():
        table.add_row(route, *(str(row.get(c, 0)) for c in columns))
    return table


def _print_stats(numbers: dict[str, Any]) -> None:
    items = numbers["items"]
    console.print(
        f"items: {items['open']} open, {items['adjudication']} awaiting adjudication, "
        f"{items['final']} final; {numbers['gold_items']} gold; {numbers['queue_depth']} "
        f"assignments still to hand out; {numbers['decisions']} decisions"
    )
    if not numbers["annotators"]:
        return
    table = Table(title="annotators")
    for column in ("annotator", "assigned", "decided", "gold", "gold accuracy", "decisions/h"):
        table.add_column(column, justify="left" if column == "annotator" else "right")
    for who, row in numbers["annotators"].items():
        table.add_row(
            who,
            str(row["assigned"]),
            str(row["decided"]),
            str(row["gold_decided"]),
            _number(row["gold_accuracy"], 2),
            "-" if row["decisions_per_hour"] is None else str(row["decisions_per_hour"]),
        )
    console.print(table)
