"""`synthgate review …`: fill the review queue, exchange tasks with Label Studio, and print
agreement and queue statistics; the lead's corrections (adjudicate, release, set-k, reopen) are
commands/review_lead.py's, registered here. The database every command works on:
commands/review_options.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from synthgate.commands import (
    PROGRESS_FROM,
    NumberArgumentCommand,
    console,
    count_bar,
    counted,
    progress_bars,
    review_lead,
    user_errors,
)
from synthgate.commands.printing import print_agreement, print_stats
from synthgate.commands.review_options import DB_HELP, RUN_HELP, check_choice, open_queue
from synthgate.errors import InputError
from synthgate.files import write_atomic
from synthgate.outputs import check_out_file

if TYPE_CHECKING:
    from synthgate.review.queue import ReviewQueue

app = typer.Typer(
    help="Human review: fill the queue, Label Studio export/import, agreement and stats.",
    no_args_is_help=True,
)

SAMPLES_BAR_FROM = 5_000  # samples: fewer are read and ranked within a second
TASKS_BAR_FROM = 2_000  # Label Studio tasks: fewer are written within a second


@app.command("enqueue")
def enqueue(
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    batch: list[str] = typer.Option(
        [], "--batch", help="Batch id to enqueue; repeat for several (default: every batch)."
    ),
    annotators_per_item: int = typer.Option(
        2,
        "--annotators-per-item",
        "-k",
        min=1,
        help="Distinct annotators each new item needs (items already queued keep theirs).",
    ),
    gold_rate: float = typer.Option(
        0.1,
        "--gold-rate",
        min=0.0,
        max=0.9,
        help="Sizes the gold set: honeypots (a known defect in an accepted sample) for about "
        "this share of the review items. How often an annotator meets gold is serve's "
        "--gold-rate.",
    ),
    image_root: str | None = typer.Option(
        None,
        "--image-root",
        help="Folder or URL the image uris are relative to (default: the run folder).",
    ),
    order: str = typer.Option(
        "uncertainty",
        "--order",
        help="uncertainty: items whose measures sit nearest a threshold, whose checks people "
        "overrule most, first; random; fifo.",
    ),
    rubric: str | None = typer.Option(
        None,
        "--rubric",
        help="Rubric (name or YAML) whose thresholds --order uncertainty measures against, e.g. "
        "a calibrated one (default: the batch's).",
    ),
    from_validate: Path | None = typer.Option(
        None,
        "--from-validate",
        help="A `synthgate validate PREDICTIONS --coco FILE --json` report: queue the "
        "predictions the rubric doubts (pre-labels QA) instead of a run's batches.",
    ),
) -> None:
    """Put samples routed to review (and the audit sample of accepted ones) into the queue.

    Idempotent: running it again adds only what is new; decided items stay decided. Open items
    nobody has started take their place in the --order given now (run it again with a
    calibrated --rubric to review next what the new thresholds are least sure of).

    Example: synthgate review enqueue --run runs/quickstart --order uncertainty

    Example: synthgate review enqueue --db sqlite:///qa.db --from-validate report.json
    """
    from sqlalchemy import select

    from synthgate.review.prelabels import enqueue_prelabels
    from synthgate.review.priority import check_order
    from synthgate.storage.tables import batches
    from synthgate.validators.rubric import load_rubric

    with user_errors():
        check_order(order)
        chosen = load_rubric(rubric) if rubric is not None else None
        with open_queue(
            run, db, annotators_per_item=annotators_per_item, gold_rate=gold_rate
        ) as queue:
            if from_validate is not None:
                if batch:
                    raise InputError(
                        field="batch",
                        value=batch[0],
                        problem="names a run's batch; --from-validate makes its own",
                        fix="drop --batch",
                    )
                with progress_bars() as bars:
                    batch_id, added = enqueue_prelabels(
                        queue,
                        from_validate,
                        order=order,
                        rubric=chosen,
                        progress=count_bar(bars, "reading samples", least=SAMPLES_BAR_FROM),
                        gold_progress=count_bar(bars, "making gold tasks", least=PROGRESS_FROM),
                    )
                console.print(
                    f"{batch_id}: {counted(added, 'new review item')}, in {order} order",
                    markup=False,
                )
                print_stats(queue.stats())
                return
            ids = batch
            if not ids:
                with queue.store.engine.connect() as connection:
                    ids = list(
                        connection.execute(select(batches.c.id).order_by(batches.c.id)).scalars()
                    )
            if not ids:
                raise InputError("the database holds no batch; run `synthgate run CONFIG` first")
            for batch_id in ids:  # one the database lacks is refused (queue.check_batch)
                with progress_bars() as bars:
                    added = queue.enqueue_batch(
                        batch_id,
                        image_root=image_root,
                        order=order,
                        rubric=chosen,
                        progress=count_bar(bars, "reading samples", least=SAMPLES_BAR_FROM),
                        gold_progress=count_bar(bars, "making gold tasks", least=PROGRESS_FROM),
                    )
                console.print(
                    f"{batch_id}: {counted(added, 'new review item')}, in {order} order",
                    markup=False,
                )
            _print_other_k(queue, ids, annotators_per_item)
            print_stats(queue.stats())


def _print_other_k(queue: ReviewQueue, ids: list[str], k: int) -> None:
    """Say which open items keep another k than -k gives new ones (a lead re-running enqueue
    with a smaller -k expects it to reach them), and the command that does."""
    from synthgate.review.set_k import open_ks

    batches = " ".join(f"--batch {batch_id}" for batch_id in ids)  # those enqueued now only
    for other, n in open_ks(queue, ids).items():
        if other != k:
            console.print(
                f"{counted(n, 'open item keeps the k it was', 'open items keep the k they were')} "
                f"enqueued with ({other}): -k {k} is for "
                f"new items; `synthgate review set-k {k} {batches}` gives it to the open ones",
                markup=False,
                highlight=False,
            )


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
    batch: str | None = typer.Option(
        None,
        "--batch",
        help="The enqueued batch the gold is tied to: its Fix form lists that batch's labels "
        "and its image is looked for in that batch's folder when its own batch is not enqueued "
        "(default: the sample's own batch, else the one batch it fits; kept when correcting "
        "an answer). Gold is not drawn by batch: any annotator may meet it beside any batch's "
        "work.",
    ),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Add samples to the gold set: tasks with a known verdict, mixed in unannounced.

    Each is tied to a batch in the queue and lists its labels as the batch's real tasks do; a
    sample with a label the batch lacks is refused. The tie chooses the Fix form's labels (and
    the image folder), not whose work the gold rides with: gold is drawn from the whole gold
    set. Given a sample that is gold already, corrects its answer, unless decisions were scored
    against it (then it is refused, naming the answer kept); it stays tied to its batch unless
    --batch names another.

    Example: synthgate review gold ima-0429bc8bfbaf69b6 --expect reject --criterion precision --run runs/quickstart
    """
    with user_errors():
        for verdict in expect:
            check_choice("--expect", verdict, ["accept", "reject", "fix"])
        if criterion is not None:
            from synthgate.samples import CRITERIA  # pydantic's models: not at start-up

            check_choice("--criterion", criterion, list(CRITERIA))
        with open_queue(run, db) as queue:
            for sample_id in sample_ids:
                sample = queue.store.get_sample(sample_id)
                if sample is None:
                    raise InputError(f"{sample_id}: no such sample in the database")
                item = queue.add_gold(sample, expected=expect, criterion=criterion, batch=batch)  # type: ignore[arg-type]
                expected = " or ".join(expect)
                tied = queue.labels_batch(item)
                console.print(
                    f"{sample_id}: gold item {item}, expecting {expected}, "
                    + (
                        f"tied to batch {tied} (its Fix form lists {tied}'s labels)"
                        if tied is not None
                        else "tied to no batch of the queue yet (its Fix form lists every "
                        f"batch's labels of its kind until its batch {sample.spec.batch_id} is "
                        "enqueued)"
                    ),
                    markup=False,
                    highlight=False,
                )


@app.command("stats")
def stats(
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Queue depth, decisions, and each annotator's throughput and accuracy on gold tasks.

    Also how many final verdicts changed the rubric's route.

    Example: synthgate review stats --run runs/quickstart
    """
    with user_errors(), open_queue(run, db, read_only=True) as queue:
        numbers = queue.stats()
    if as_json:
        console.print_json(json.dumps(numbers))
    else:
        print_stats(numbers)


# The lead's corrections (commands/review_lead.py), where --help has always listed them
app.command("adjudicate", cls=NumberArgumentCommand)(review_lead.adjudicate)
app.command("release")(review_lead.release)
app.command("set-k", cls=NumberArgumentCommand)(review_lead.set_k)
app.command("reopen", cls=NumberArgumentCommand)(review_lead.reopen)


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
        help="open: items still waiting for their k decisions, gold left out (one with fewer "
        "than k decisions goes out without them); all: every item with its decisions.",
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
        help="Image URL template; {uri} is the image's path (relative to --image-root), "
        "{item_id} the item. The default is Label Studio's local file serving.",
    ),
    image_root: Path | None = typer.Option(
        None,
        "--image-root",
        help="The folder {uri} is relative to: Label Studio's LOCAL_FILES_DOCUMENT_ROOT "
        "(default: the run folder).",
    ),
    annotators: bool = typer.Option(
        True,
        "--annotators/--no-annotators",
        help="--include all: name each decision's annotator (Label Studio needs their email "
        "and the user), or leave them out (the importing user is credited).",
    ),
    annotator_email: list[str] = typer.Option(
        [],
        "--annotator-email",
        help="NAME=EMAIL: the Label Studio user of an annotator; repeat for several.",
    ),
    email_domain: str | None = typer.Option(
        None, "--email-domain", help="Annotators without --annotator-email: NAME@DOMAIN."
    ),
) -> None:
    """Write review items as Label Studio tasks with predictions, plus the labeling config.

    Import the tasks into a Label Studio project whose labeling interface is the .config.xml
    written beside them; the README's "Label Studio" section goes from an empty Label Studio to
    imported tasks and back with `synthgate review import`.

    Example: synthgate review export --run runs/quickstart --modality image -o tasks.json

    Example: synthgate review export --run runs/quickstart --modality image --include all
    --email-domain example.org -o all.json
    """
    from synthgate.review.interop import export_tasks

    with user_errors():
        check_out_file(out)  # before the database is opened
        check_choice("--format", output_format, ["labelstudio"])
        check_choice("--include", include, ["open", "all"])
        check_choice("--shapes", shapes, ["rectangles", "polygons"])
        if modality is not None:
            check_choice("--modality", modality, ["image", "text"])
        emails = _email_pairs(annotator_email)
        with open_queue(run, db, read_only=True) as queue, progress_bars() as bars:
            result = export_tasks(
                queue,
                out,
                include=include,  # type: ignore[arg-type]
                modality=modality,
                shapes=shapes,  # type: ignore[arg-type]
                image_url=image_url,
                image_root=image_root,
                annotators=annotators,
                annotator_emails=emails,
                email_domain=email_domain,
                progress=count_bar(bars, "tasks", least=TASKS_BAR_FROM),
            )
    console.print(
        f"wrote {counted(result.count, result.modality + ' task')} to "
        f"[bold]{escape(str(result.tasks))}[/] "
        f"and the labeling config to [bold]{escape(str(result.config))}[/]"
    )


@app.command("import")
def import_(
    path: Path = typer.Argument(
        ..., metavar="FILE", help="Label Studio JSON export (a list of tasks)."
    ),
    input_format: str = typer.Option("labelstudio", "--format", help="Import format: labelstudio."),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    annotators_per_item: int | None = typer.Option(
        None,
        "--annotators-per-item",
        "-k",
        hidden=True,  # taken only to refuse it: it never did anything here (see below)
    ),
    annotator_email: list[str] = typer.Option(
        [],
        "--annotator-email",
        help="NAME=EMAIL as given to `review export`: that email's annotations are NAME's.",
    ),
    email_domain: str | None = typer.Option(
        None, "--email-domain", help="As given to `review export`: NAME@DOMAIN is NAME."
    ),
) -> None:
    """Read a Label Studio JSON export back as decisions.

    Decisions already recorded and equal are left alone; different ones are reported as
    conflicts and never overwritten. Annotations Label Studio imported from `review export`
    (it keeps their ids) are known as the decisions they came from, whoever it credits now; so
    are those of a `review export --include all` file imported as it is.

    The decisions go to items already in the queue, each needing the number of annotators it
    was enqueued with (`review enqueue -k`).

    Example: synthgate review import export.json --run runs/quickstart
    """
    from synthgate.review.interop import import_annotations

    with user_errors():
        if annotators_per_item is not None:
            # An import makes no item: the k of open_queue reached nothing, and the items went
            # on needing the k they were enqueued with
            raise InputError(
                field="annotators_per_item",
                value=annotators_per_item,
                problem="an import records decisions on items already in the queue, and each "
                "needs the number of annotators it was enqueued with (`review enqueue -k`)",
                fix="drop -k",
            )
        check_choice("--format", input_format, ["labelstudio"])
        emails = _email_pairs(annotator_email)
        with open_queue(run, db) as queue, progress_bars() as bars:
            result = import_annotations(
                queue,
                path,
                annotator_emails=emails,
                email_domain=email_domain,
                progress=count_bar(bars, "tasks", least=TASKS_BAR_FROM),
            )
    console.print(
        f"decided {result.decided}, adjudicated {result.adjudicated}, unchanged "
        f"{result.unchanged}, conflicts {len(result.conflicts)}, skipped {len(result.skipped)}"
    )
    for line in result.conflicts + result.skipped:
        console.print(f"  {line}", highlight=False, markup=False)


@app.command("agreement")
def agreement(
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write the tables as JSON here ('-' for stdout only)."
    ),
    accept_at: float | None = typer.Option(
        None, "--accept-at", help="An accept_at to compare with (default: the rubric's)."
    ),
    reject_below: float | None = typer.Option(
        None, "--reject-below", help="A reject_below to compare with (default: the rubric's)."
    ),
    rubric: str | None = typer.Option(
        None,
        "--rubric",
        help="Rubric (name or YAML) whose routing cut-offs to compare with, e.g. a calibrated "
        "one (default: the rubric that routed the reviewed samples).",
    ),
    min_items: int = typer.Option(
        10, "--min-items", min=1, help="Reviewed samples a threshold suggestion needs."
    ),
    exclude: list[str] = typer.Option(
        [],
        "--exclude",
        help="An annotator (a careless one) to leave out of the agreement between annotators; "
        "repeat it for more.",
    ),
) -> None:
    """Print agreement tables: annotators, gold tasks, and rubric vs humans.

    Cohen's kappa per pair, Fleiss' kappa and Krippendorff's alpha on verdicts, alpha (ordinal)
    per criterion level, accuracy and sensitivity on gold, and kappa between the rubric's route
    and the human verdict with suggestions for accept_at / reject_below, compared with the
    routing of the rubric that routed the samples (or --rubric's). --exclude NAME leaves
    an annotator out of the agreement between annotators. Needs the review extra
    (scikit-learn, statsmodels, krippendorff).

    Example: synthgate review agreement --run runs/quickstart --json agreement.json
    """
    from synthgate.review.report import agreement_report
    from synthgate.validators.rubric import load_rubric

    with user_errors():
        if json_out is not None and str(json_out) != "-":
            check_out_file(json_out, field="json")  # before any work: never a database
        chosen = load_rubric(rubric) if rubric is not None else None
        with open_queue(run, db, read_only=True) as queue:
            report = agreement_report(
                queue.store,
                accept_at=accept_at,
                reject_below=reject_below,
                rubric=chosen,
                min_items=min_items,
                exclude=exclude,
            )
        text = json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False) + "\n"
        if json_out is not None and str(json_out) == "-":
            typer.echo(text, nl=False)
            return
        if json_out is not None:
            write_atomic(json_out, text, field="json")
    print_agreement(report)
    if json_out is not None:
        console.print(f"wrote [bold]{escape(str(json_out))}[/]")


def _email_pairs(pairs: list[str]) -> dict[str, str]:
    """--annotator-email NAME=EMAIL options as {NAME: EMAIL}."""
    emails = {}
    for pair in pairs:
        name, sep, email = pair.partition("=")
        if not sep or not name or not email:
            raise InputError(
                f"--annotator-email {pair!r}: write NAME=EMAIL, e.g. alice=alice@example.org"
            )
        emails[name] = email
    return emails
