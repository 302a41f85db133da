"""`synthgate review …`: fill the review queue, exchange tasks with Label Studio, and print
agreement and queue statistics.

Every command works on one database: `--db URL`, else the run folder's `synthgate.db` given by
`--run DIR`, else `SYNTHGATE_DB_URL`, else `<runs dir>/synthgate.db` (the one `synthgate serve`
uses by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from synthgate.commands import PROGRESS_FROM, console, count_bar, progress_bars, user_errors
from synthgate.commands.printing import print_agreement, print_stats
from synthgate.errors import InputError
from synthgate.files import write_atomic
from synthgate.outputs import check_out_file

if TYPE_CHECKING:
    from synthgate.review.decision import Decision
    from synthgate.review.queue import ReviewQueue
    from synthgate.review.reopen import Reopened
    from synthgate.review.set_k import KChange

app = typer.Typer(
    help="Human review: fill the queue, Label Studio export/import, agreement and stats.",
    no_args_is_help=True,
)

SAMPLES_BAR_FROM = 5_000  # samples: fewer are read and ranked within a second
TASKS_BAR_FROM = 2_000  # Label Studio tasks: fewer are written within a second
RUN_HELP = "Run folder whose synthgate.db to use (e.g. runs/quickstart)."
DB_HELP = (
    "Database URL; overrides --run (default: $SYNTHGATE_DB_URL, else <runs dir>/synthgate.db)."
)


@contextmanager
def open_queue(
    run: Path | None,
    db: str | None,
    *,
    annotators_per_item: int = 2,
    gold_rate: float = 0.1,
    read_only: bool = False,
) -> Iterator[ReviewQueue]:
    """The review queue of the chosen database, its store closed when the block ends;
    `read_only` commands refuse a missing file."""
    from synthgate.review.queue import ReviewQueue  # SQLAlchemy: only when a command runs
    from synthgate.storage.database import database_url, open_store

    with open_store(database_url(run, db), must_exist=read_only) as store:
        yield ReviewQueue(store, annotators_per_item=annotators_per_item, gold_rate=gold_rate)


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
                    f"{batch_id}: {added} new review items, in {order} order", markup=False
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
            for batch_id in ids:
                if queue.store.get_batch(batch_id) is None:
                    raise InputError(f"--batch {batch_id}: no such batch in the database")
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
                    f"{batch_id}: {added} new review items, in {order} order", markup=False
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
                f"{n} open items keep the k they were enqueued with ({other}): -k {k} is for "
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
            _check_choice("--expect", verdict, ["accept", "reject", "fix"])
        if criterion is not None:
            from synthgate.samples import CRITERIA  # pydantic's models: not at start-up

            _check_choice("--criterion", criterion, list(CRITERIA))
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


@app.command("adjudicate")
def adjudicate(
    item: int | None = typer.Argument(
        None,
        metavar="[ITEM]",
        help="The item to decide, as this command lists it; without it, list the items "
        "awaiting adjudication with their decisions.",
    ),
    verdict: str | None = typer.Option(
        None, "--verdict", help="The final verdict: accept, reject or fix."
    ),
    adjudicator: str | None = typer.Option(
        None, "--as", help="Who decides (recorded with the decision); not one of its annotators."
    ),
    fix_from: str | None = typer.Option(
        None,
        "--fix-from",
        help="--verdict fix: take the corrected labels of this annotator's fix of the item.",
    ),
    level: list[str] = typer.Option(
        [], "--level", help="CRITERION=LEVEL (5, 3 or 1) for the calibration; repeat."
    ),
    comment: str = typer.Option("", "--comment", help="Why, kept with the decision."),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """List the items whose annotators split, or give one its final verdict.

    An item with no verdict of more than half its annotators waits for someone who did not
    decide it. Item numbers are the queue's (those of review gold and Label Studio tasks), not
    the opaque ids of the API and the review page (POST /api/review/{id}/adjudication).

    Example: synthgate review adjudicate --run runs/quickstart

    Example: synthgate review adjudicate 12 --verdict fix --fix-from alice --as lead --run
    runs/quickstart
    """
    with user_errors(), open_queue(run, db, read_only=True) as queue:
        if item is None:
            if verdict is not None or adjudicator is not None or fix_from is not None or level:
                raise InputError(
                    "--verdict, --as, --fix-from and --level decide an item: name it first "
                    "(synthgate review adjudicate ITEM ...), as `synthgate review adjudicate` "
                    "lists them"
                )
            _print_awaiting(queue)
            return
        decision = _adjudication(queue, item, verdict, adjudicator, fix_from, level, comment)
        queue.adjudicate(item, adjudicator or "", decision)
    console.print(f"item {item}: final verdict {verdict}, by {adjudicator}", markup=False)


def _adjudication(
    queue: ReviewQueue,
    item: int,
    verdict: str | None,
    adjudicator: str | None,
    fix_from: str | None,
    level: list[str],
    comment: str,
) -> Decision:
    """The adjudicator's decision from the options, its fix's labels from `fix_from`'s."""
    from synthgate.review.decision import Decision

    if verdict is None or adjudicator is None:
        raise InputError(
            f"item {item}: give --verdict (accept, reject or fix) and --as NAME to decide it"
        )
    _check_choice("--verdict", verdict, ["accept", "reject", "fix"])
    if (verdict == "fix") != (fix_from is not None):
        raise InputError(
            "--verdict fix takes the corrected labels of an annotator's fix: give --fix-from "
            "NAME with it, and only with it"
        )
    levels = {}
    for pair in level:
        criterion, _, value = pair.partition("=")
        if value not in ("5", "3", "1"):
            raise InputError(f"--level {pair!r}: write CRITERION=LEVEL, LEVEL 5, 3 or 1")
        levels[criterion] = int(value)
    labels: dict[str, object] = {}
    if fix_from is not None:
        try:
            labels = queue.fix_of(item, fix_from)
        except InputError as error:
            raise InputError(
                f"--fix-from {fix_from}: {error}; `synthgate review adjudicate` lists each decision"
            ) from None
    return Decision.model_validate(
        {"verdict": verdict, "levels": levels, "comment": comment, **labels}
    )


def _print_awaiting(queue: ReviewQueue) -> None:
    """Each item awaiting adjudication with its sample and every decision on it."""
    waiting = queue.awaiting_with_decisions()
    if not waiting:
        console.print("no item awaits adjudication")
        return
    for item in waiting:
        console.print(
            f"item {item.item_id}: sample {item.sample_id} ({item.modality}), "
            f"{item.k} annotators split",
            markup=False,
            highlight=False,
        )
        for said in item.decisions:
            levels = ", ".join(f"{c} {v}" for c, v in (said["levels"] or {}).items())
            labels = said["objects"] if said["objects"] is not None else said["spans"]
            fixed = f" ({len(labels)} labels)" if labels is not None else ""
            console.print(
                f"  {said['annotator']}: {said['verdict']}{fixed}"
                + (f"; {levels}" if levels else "")
                + (f"; {said['comment']!r}" if said["comment"] else ""),
                markup=False,
                highlight=False,
            )
    console.print(
        f"{len(waiting)} items; decide one with: synthgate review adjudicate ITEM --verdict "
        "accept|reject|fix [--fix-from ANNOTATOR] --as NAME",
        markup=False,
        highlight=False,
    )


@app.command("release")
def release(
    older_than: float | None = typer.Option(
        None,
        "--older-than-minutes",
        min=0.0,
        help="Undecided for longer than this many minutes (anyone's, or --annotator's).",
    ),
    annotator: str | None = typer.Option(
        None,
        "--annotator",
        help="Only this annotator's undecided assignments, of any age unless "
        "--older-than-minutes is given too.",
    ),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Take back assignments nobody decided in time, or one person's undecided ones, so the
    items go to other annotators.

    A decision on a task taken back that arrives afterwards is refused; one that arrived first
    is kept.

    Example: synthgate review release --run runs/quickstart --older-than-minutes 120

    Example: synthgate review release --run runs/quickstart --annotator bob
    """
    with user_errors():
        if older_than is None and annotator is None:
            raise InputError(
                "name the undecided assignments to take back: --older-than-minutes N (anyone's "
                "left longer than N minutes), --annotator NAME (theirs, of any age), or both"
            )
        with open_queue(run, db) as queue:
            released = queue.release_stale(
                older_than * 60 if older_than is not None else None, annotator=annotator
            )
    if annotator is None:
        console.print(f"released {released} assignments")
        return
    older = f" undecided for longer than {older_than:g} minutes" if older_than is not None else ""
    console.print(
        f"released {released} assignments of {annotator}{older}", markup=False, highlight=False
    )


@app.command("set-k")
def set_k(
    k: int = typer.Argument(
        ..., metavar="K", min=1, help="Distinct annotators each open item needs from now on."
    ),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    batch: list[str] = typer.Option(
        [], "--batch", help="Only this batch's open items; repeat for several (default: all)."
    ),
) -> None:
    """Change how many annotators the open items need (the k of `review enqueue -k`).

    With k larger than the team, items wait for someone new and `next` gives nothing: lowering
    k finishes every open item that has its k decisions now, as its k-th decision would
    (agreement: the final verdict; a split: adjudication). An item someone holds undecided
    waits for their decision, or gets the new k when `review release` takes it back. Raising k reopens nothing: final items and those awaiting
    adjudication keep their result. Items enqueued later get their own -k.

    Example: synthgate review set-k 2 --run runs/quickstart
    """
    with user_errors(), open_queue(run, db, read_only=True) as queue:
        change = queue.set_annotators_per_item(k, batches=batch)
    _print_k_change(change)


def _print_k_change(change: KChange) -> None:
    where = f"batch {', '.join(change.batches)}" if change.batches else "the queue"
    console.print(
        f"k {change.k}: {change.changed} open items of {where} changed; {change.final} final "
        f"(more than half agreed), {change.adjudication} to adjudication (split); "
        f"{change.still_open} still open",
        markup=False,
        highlight=False,
    )
    if change.held:
        console.print(
            f"{change.held} items keep a larger k until {', '.join(change.holders)} decide "
            "what they hold (their decision then finishes the item; an item `synthgate review "
            f"release` takes back drops to k {change.k}, as far as the people still on it allow, "
            "and is finished if its decisions are enough)",
            markup=False,
            highlight=False,
        )
    if change.adjudication:
        console.print(
            "`synthgate review adjudicate` lists the split items and decides one",
            markup=False,
            highlight=False,
        )
    kept = ", ".join(f"{n} {status}" for status, n in sorted(change.kept.items()))
    if kept:
        console.print(f"unchanged: {kept} (a new k reopens no item)", markup=False, highlight=False)
    if change.team and change.k > len(change.team) and change.still_open:
        console.print(
            f"the queue has given work to {len(change.team)} annotators: open items needing "
            f"{change.k} wait for someone new",
            markup=False,
            highlight=False,
        )
    console.print(
        "items enqueued later need the -k of their `synthgate review enqueue` (2 by default)",
        markup=False,
        highlight=False,
    )


@app.command("reopen")
def reopen(
    items: list[int] = typer.Argument(
        None,
        metavar="[ITEM]...",
        help="Items whose decisions to take back (all of them, or --annotator's), numbered as "
        "`review adjudicate` and `review gold` number them.",
    ),
    annotator: str | None = typer.Option(
        None,
        "--annotator",
        help="Take back this annotator's decisions (on the ITEMs given, else on every item; "
        "those on gold tasks stay scored).",
    ),
    taken_by: str | None = typer.Option(
        None, "--as", help="Who takes them back (recorded with them), e.g. lead."
    ),
    reason: str = typer.Option("", "--reason", help="Why, recorded with them."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would change; change nothing."
    ),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Take decisions back and reopen their items: every decision of a careless annotator, or
    those on some items.

    The decisions are kept apart (review_taken_back, with --as, the time and --reason) and
    count nowhere; each item is made again from the decisions left: with fewer than its k it
    is open again and handed out as any open item, its sample back to how review found it, but
    not to the annotator named with --annotator. Decisions on gold tasks stay: they score the
    annotator.

    Example: synthgate review reopen --annotator bob --as lead --reason "failed gold" --run
    runs/quickstart --dry-run

    Example: synthgate review reopen 12 15 --as lead --run runs/quickstart
    """
    with user_errors():
        if taken_by is None and not dry_run:
            raise InputError(
                field="as",
                problem="names who takes the decisions back, kept with them",
                fix="add --as NAME, e.g. --as lead (or --dry-run to see what would change)",
            )
        with open_queue(run, db, read_only=True) as queue:
            done = queue.reopen(
                items or [],
                annotator=annotator,
                by=taken_by or "dry-run",
                reason=reason,
                dry_run=dry_run,
            )
    _print_reopened(done)


def _print_reopened(done: Reopened) -> None:
    def say(text: str) -> None:
        console.print(text, markup=False, highlight=False)

    whose = f" of {done.annotator}" if done.annotator is not None else ""
    if done.holding:
        held = ", ".join(str(item) for item in done.holding)
        say(
            f"{done.annotator} holds {len(done.holding)} items undecided ({held}): a decision "
            f"of theirs there counts; `synthgate review release --annotator {done.annotator}` "
            "hands their undecided tasks to someone else"
        )
    if not done.items:
        kept = f" ({done.gold_kept} on gold tasks stay scored)" if done.gold_kept else ""
        say(f"nothing to reopen: no decision{whose} is left to take back{kept}")
        return
    verb = "would take back" if done.dry_run else "took back"
    say(f"{verb} {done.decisions} decisions{whose} on {len(done.items)} items")
    for change in done.items:
        before, after = (" ".join(filter(None, state)) for state in (change.before, change.after))
        say(
            f"  item {change.item_id} (sample {change.sample_id}): {before} -> {after} "
            f"({', '.join(change.annotators)})"
        )
    opened, waiting = done.now("open"), done.now("adjudication")
    if opened:
        say(f"{len(opened)} items open: `next` hands them out as any open item")
    if waiting:
        say(f"{len(waiting)} items await adjudication: `synthgate review adjudicate` lists them")
    if done.gold_kept:
        say(
            f"{done.gold_kept} decisions{whose} on gold tasks stay: they score "
            f"{done.annotator}'s gold accuracy (`synthgate review stats`)"
        )
    if done.were_final:
        say(
            f"{len(done.were_final)} of these items were final: datasets made from the run "
            "since (`synthgate export RUN`, `synthgate merge --synthetic RUN`, `synthgate "
            "review export --include all`, `synthgate rubric calibrate`) hold their old "
            "verdicts; make them again once the items are decided again"
        )
    if done.dry_run:
        say("nothing was changed: run it again without --dry-run (with --as NAME)")
        return
    say(
        "the decisions are kept in the database (review_taken_back), with who took them back, "
        "when and why"
    )
    people = sorted({who for change in done.items for who in change.annotators})
    if done.annotator is not None:
        say(
            f"{done.annotator} is not handed these items again (another annotator takes them; "
            "`review stats` lists an item nobody else may take as blocked): `synthgate users "
            "remove NAME --db ...` ends an annotator's access"
        )
    else:
        say(
            f"{', '.join(people)} may be handed these items again if they ask for work (the "
            "item's fault, not theirs: reopen with --annotator NAME keeps NAME off them)"
        )


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
        _check_choice("--format", output_format, ["labelstudio"])
        _check_choice("--include", include, ["open", "all"])
        _check_choice("--shapes", shapes, ["rectangles", "polygons"])
        if modality is not None:
            _check_choice("--modality", modality, ["image", "text"])
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
        f"wrote {result.count} {result.modality} tasks to [bold]{escape(str(result.tasks))}[/] "
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

    Example: synthgate review import export.json --run runs/quickstart

    Decisions already recorded and equal are left alone; different ones are reported as
    conflicts and never overwritten. Annotations Label Studio imported from `review export`
    (it keeps their ids) are known as the decisions they came from, whoever it credits now; so
    are those of a `review export --include all` file imported as it is.

    The decisions go to items already in the queue, each needing the number of annotators it
    was enqueued with (`review enqueue -k`).
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
        _check_choice("--format", input_format, ["labelstudio"])
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


def _check_choice(option: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise InputError(f"{option} {value!r}: choose one of {', '.join(choices)}")
