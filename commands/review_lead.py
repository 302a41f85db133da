"""The review lead's corrections, `synthgate review adjudicate | release | set-k | reopen`: decide
the items whose annotators split, take back tasks nobody decided, change how many annotators
the open items need, take decisions back. commands/review.py registers them on the `review`
group, where `synthgate review --help` lists them.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from synthgate.commands import console, counted, user_errors
from synthgate.commands.review_options import DB_HELP, RUN_HELP, check_choice, open_queue
from synthgate.errors import InputError, quoted

if TYPE_CHECKING:
    from synthgate.review.decision import Decision
    from synthgate.review.queue import ReviewQueue
    from synthgate.review.reopen import Reopened
    from synthgate.review.set_k import KChange


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
        if adjudicator is not None:
            adjudicator = _named_as(adjudicator, "decides")
        decision = _adjudication(queue, item, verdict, adjudicator, fix_from, level, comment)
        queue.adjudicate(item, adjudicator or "", decision)
    console.print(f"item {item}: final verdict {verdict}, by {adjudicator}", markup=False)


def _named_as(name: str, does: str) -> str:
    """--as NAME, checked as the queue checks a name, the error naming --as: 'annotator name
    must be ...' named no option, and reopen took `--as ''` for no --as at all (a dry run's
    'dry-run')."""
    from synthgate.review.decision import ANNOTATOR_MAX, check_annotator

    try:
        return check_annotator(name)
    except InputError:
        raise InputError(
            field="as",
            value=quoted(name),
            problem=f"names who {does}, in 1 to {ANNOTATOR_MAX} characters",
            fix="give a name, e.g. --as lead",
        ) from None


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
    check_choice("--verdict", verdict, ["accept", "reject", "fix"])
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
    """Each item awaiting adjudication with its sample, why it waits and every decision on it."""
    from synthgate.review.adjudication import resolve

    waiting = queue.awaiting_with_decisions()
    if not waiting:
        console.print("no item awaits adjudication")
        return
    for item in waiting:
        verdicts = [d["verdict"] for d in item.decisions if d["role"] == "annotator"]
        split = f"{item.k} annotators split"
        if resolve(verdicts) == "fix":  # most chose fix, with no fix of a majority
            split = (
                f"{verdicts.count('fix')} of {len(verdicts)} annotators chose fix, with "
                "different labels"
            )
        console.print(
            f"item {item.item_id}: sample {item.sample_id} ({item.modality}), {split}",
            markup=False,
            highlight=False,
        )
        for said in item.decisions:
            levels = ", ".join(f"{c} {v}" for c, v in (said["levels"] or {}).items())
            labels = said["objects"] if said["objects"] is not None else said["spans"]
            fixed = f" ({counted(len(labels), 'label')})" if labels is not None else ""
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
        console.print(f"released {counted(released, 'assignment')}")
        return
    older = f" undecided for longer than {older_than:g} minutes" if older_than is not None else ""
    console.print(
        f"released {counted(released, 'assignment')} of {annotator}{older}",
        markup=False,
        highlight=False,
    )


def set_k(
    k: int = typer.Argument(
        ...,
        metavar="K",  # no min: -1 and 0 are refused below, as is a k above MAX_K
        help="Distinct annotators each open item needs from now on (1 or more).",
    ),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    batch: list[str] = typer.Option(
        [], "--batch", help="Only this batch's open items; repeat for several (default: all)."
    ),
) -> None:
    """Change how many annotators the open items need (the k of `review enqueue -k`).

    With k larger than the team, items wait for someone new: the annotators who decided them
    are handed nothing (the review page says "All done", GET /api/review/next answers 204).
    Lowering k finishes every open item that has its k decisions now, as its k-th decision
    would (agreement: the final verdict; a split: adjudication). An item someone holds
    undecided waits for their decision, or gets the new k when `review release` takes it back.
    Raising k reopens nothing: final items and those awaiting adjudication keep their result.
    Items enqueued later get their own -k.

    Example: synthgate review set-k 2 --run runs/quickstart
    """
    from synthgate.review.set_k import check_k

    with user_errors():
        check_k(k)  # before the database is opened: its range, not a missing database
        with open_queue(run, db, read_only=True) as queue:
            change = queue.set_annotators_per_item(k, batches=batch)
    _print_k_change(change)


def _print_k_change(change: KChange) -> None:
    where = f"batch {', '.join(change.batches)}" if change.batches else "the queue"
    console.print(
        f"k {change.k}: {counted(change.changed, 'open item')} of {where} changed; "
        f"{change.final} final "
        f"(more than half agreed), {change.adjudication} to adjudication (split); "
        f"{change.still_open} still open",
        markup=False,
        highlight=False,
    )
    if change.held:
        console.print(
            f"{counted(change.held, 'item keeps', 'items keep')} a larger k until "
            f"{', '.join(change.holders)} decide "
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
            f"the queue has given work to {counted(len(change.team), 'annotator')}: "
            "open items needing "
            f"{change.k} wait for someone new",
            markup=False,
            highlight=False,
        )
    console.print(
        "items enqueued later need the -k of their `synthgate review enqueue` (2 by default)",
        markup=False,
        highlight=False,
    )


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
        if taken_by is not None:
            taken_by = _named_as(taken_by, "takes the decisions back")
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
    if done.holding and (who := done.annotator) is not None:  # holding is only an annotator's
        held = ", ".join(str(item) for item in done.holding)
        say(
            f"{done.annotator} holds {counted(len(done.holding), 'item')} undecided ({held}): "
            "a decision "
            f"of theirs there counts; `synthgate review release --annotator {shlex.quote(who)}` "
            "hands their undecided tasks to someone else"
        )
    if not done.items:
        stay = "stays" if done.gold_kept == 1 else "stay"
        kept = f" ({done.gold_kept} on gold tasks {stay} scored)" if done.gold_kept else ""
        say(f"nothing to reopen: no decision{whose} is left to take back{kept}")
        return
    verb = "would take back" if done.dry_run else "took back"
    say(
        f"{verb} {counted(done.decisions, 'decision')}{whose} on {counted(len(done.items), 'item')}"
    )
    for change in done.items:
        before, after = (" ".join(filter(None, state)) for state in (change.before, change.after))
        say(
            f"  item {change.item_id} (sample {change.sample_id}): {before} -> {after} "
            f"({', '.join(change.annotators)})"
        )
    opened, waiting = done.now("open"), done.now("adjudication")
    if opened:
        say(f"{counted(len(opened), 'item')} open: `next` hands them out as any open item")
    if waiting:
        say(
            f"{counted(len(waiting), 'item awaits', 'items await')} adjudication: "
            "`synthgate review adjudicate` lists them"
        )
    if done.gold_kept:
        say(
            f"{counted(done.gold_kept, 'decision')}{whose} on gold tasks "
            f"{'stays: it scores' if done.gold_kept == 1 else 'stay: they score'} "
            f"{done.annotator}'s gold accuracy (`synthgate review stats`)"
        )
    if done.were_final:
        say(
            f"{len(done.were_final)} of these items "
            f"{'was' if len(done.were_final) == 1 else 'were'} final: datasets made from the run "
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
