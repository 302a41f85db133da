"""`synthgate rubric …`: rubrics learning from people. `calibrate` refits a rubric's thresholds
and routing cut-offs on the final human verdicts of a review database (review/calibration.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from synthgate.commands import console, new_table, user_errors
from synthgate.commands.review_options import DB_HELP, RUN_HELP
from synthgate.errors import InputError
from synthgate.files import write_atomic
from synthgate.outputs import check_out_file

if TYPE_CHECKING:
    from synthgate.review.calibration import Calibration, CheckFit, RouteAgreement

app = typer.Typer(help="Rubrics that learn from reviewers: calibrate.", no_args_is_help=True)


@app.command("calibrate")
def calibrate(
    rubric: str = typer.Option(
        "detection", "--rubric", help="The rubric the samples were judged by: a name or YAML."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Calibrated rubric YAML to write."),
    run: Path | None = typer.Option(None, "--run", help=RUN_HELP),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    batch: list[str] = typer.Option(
        [], "--batch", help="Only the items of this batch; repeat for several (default: all)."
    ),
    holdout: float = typer.Option(
        0.3,
        "--holdout",
        help="Share of reviewed samples held out to compare before and after, more than 0 and "
        "less than 1.",
    ),
    seed: int = typer.Option(0, "--seed", min=0, help="Seed of the fitted / held-out split."),
    min_verdicts: int = typer.Option(
        30, "--min-verdicts", min=1, help="Fitted samples a check needs to be refit."
    ),
    json_out: Path | None = typer.Option(
        None, "--json", help="Also write the table and what it was fitted on as JSON here."
    ),
) -> None:
    """Refit a rubric's thresholds and routing cut-offs on people's final verdicts.

    Each check's gold/acceptable thresholds and the routing (accept_at, reject_below,
    on_critical) move to where the rubric's route agrees most with the verdicts (and the levels
    people gave per criterion) of a seeded share of the reviewed samples; the rest are held out
    to show, per check, how many the rubric routes as people did, Cohen's kappa and
    precision/recall of "rejected" before and after.
    A check is refit once --min-verdicts fitted samples measured it (30 by default: a
    quickstart's few audit items are not enough). Needs the review extra (scikit-learn,
    statsmodels, krippendorff).

    Example: synthgate rubric calibrate --run runs/quickstart --rubric detection -o calibrated.yaml
    """
    from synthgate.review.calibration import calibrate as fit  # SQLAlchemy, scikit-learn
    from synthgate.review.calibration import holdout_share
    from synthgate.storage.database import database_url, open_store

    with user_errors():
        holdout = holdout_share(holdout)  # NaN too; before the database is read (a while)
        if json_out is not None:  # before any work: never a database, nor the calibrated rubric
            check_out_file(json_out, field="json")
            if json_out.resolve() == out.resolve():
                raise InputError(
                    field="json",
                    value=json_out,
                    problem="is the file the calibrated rubric goes to (--out)",
                    fix="give the JSON a name of its own",
                )
        # opened here: a missing database's hint names --db and --run, the library's db alone
        store = open_store(database_url(run, db), must_exist=True)
        try:
            result = fit(
                store,
                rubric=rubric,
                out=out,
                batches=batch or None,
                holdout=holdout,
                seed=seed,
                min_verdicts=min_verdicts,
            )
        finally:
            store.close()
        if json_out is not None:
            write_atomic(json_out, json.dumps(result.as_dict(), indent=1) + "\n", field="json")
    print_calibration(result)
    also = f" and [bold]{escape(str(json_out))}[/]" if json_out else ""
    console.print(f"wrote [bold]{escape(str(out))}[/]{also}")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_calibration(result: Calibration) -> None:
    """Per check: old and new thresholds, fitted samples, and on the held-out samples it
    measured: how many the rubric routes as people did, kappa and precision/recall of
    "rejected", before -> after."""
    for line in result.header():
        console.print(line, highlight=False, markup=False)
    table = new_table(
        title='per check, on held-out samples: routed as people did, kappa, and "rejected" '
        "precision/recall"
    )
    columns = ("check / measure", "gold/acceptable", "fitted", "held out", "agreed", "kappa", "P/R")
    for column in columns:
        table.add_column(column, justify="left" if column[0] in "cg" else "right", overflow="fold")
    unmeasured = []
    for fit in [*result.checks, None]:
        if fit is not None and fit.fitted_items == 0:
            unmeasured.append(fit.check)
            continue
        name, thresholds, entries = _row(result, fit)
        before, after = entries
        table.add_row(
            name,
            thresholds,
            str(fit.fitted_items if fit else result.fitted),
            str(after.items),
            f"{before.agreed} -> {after.agreed}",
            f"{_number(before.kappa)} -> {_number(after.kappa)}",
            f"{_number(before.reject_precision)}/{_number(before.reject_recall)} -> "
            f"{_number(after.reject_precision)}/{_number(after.reject_recall)}",
        )
    console.print(table)
    if unmeasured:
        console.print(
            f"not measured on any fitted sample, kept: {', '.join(unmeasured)}",
            highlight=False,
            markup=False,
        )
    old, new = result.old.routing, result.rubric.routing
    console.print(
        f"routing: accept_at {old.accept_at:g} -> {new.accept_at:g}, reject_below "
        f"{old.reject_below:g} -> {new.reject_below:g}, on_critical {old.on_critical} -> "
        f"{new.on_critical}",
        highlight=False,
    )
    for reason, count in result.skipped.items():
        console.print(f"left out: {count} items ({reason})", highlight=False, markup=False)


def _row(
    result: Calibration, fit: CheckFit | None
) -> tuple[str, str, tuple[RouteAgreement, RouteAgreement]]:
    if fit is None:
        return "all samples", "", (result.before, result.after)
    lines = []
    for measure, old in fit.old.items():
        new = fit.new[measure]
        moved = f" -> {new.gold:g}/{new.acceptable:g}" if new != old else ""
        lines.append(f"{measure}: {old.gold:g}/{old.acceptable:g}{moved}")
    note = f" ({fit.note})" if fit.note else ""
    return fit.check + note, "\n".join(lines), (fit.before, fit.after)
