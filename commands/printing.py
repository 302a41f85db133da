"""Rich tables for the review CLI: the agreement report (`print_agreement`) and the queue's
statistics (`print_stats`), printed on the shared console."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from synthgate.commands import console, counted, new_table

if TYPE_CHECKING:
    from rich.table import Table

BLOCKED_SHOWN = 5  # item ids a line of blocked items names


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
    table = new_table(title=title)
    for column in ("statistic", "value", "items", "ratings", "observed", "note"):
        table.add_column(column, justify="left" if column in ("statistic", "note") else "right")
    return table


def print_agreement(report: dict[str, Any]) -> None:
    """The report as tables; tables with nothing in them are left out."""
    if "excluded" in report:
        excluded = report["excluded"]
        who = ", ".join(
            f"{name} ({counted(n, 'decision')})" for name, n in excluded["decisions"].items()
        )
        console.print(
            f"left out: {who}: {counted(excluded['dropped'], 'decision')} on real items dropped; "
            f"{excluded['note']}",
            highlight=False,
            markup=False,
        )
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
    # image and text samples both reviewed: each modality's rubric against people, apart
    for modality, each in validator.get("modalities", {"": validator}).items():
        _print_validator(each, of=f" ({modality} samples)" if modality else "")


def _print_validator(validator: dict[str, Any], *, of: str = "") -> None:
    """Rubric vs humans: kappa, the confusion table, the cut-offs and suggestions (`of`: which
    samples, where the report has one of these for each modality)."""
    if validator["confusion"]:
        table = _agreement_table(f"rubric route vs final human verdict{of}")
        _agreement_row(table, "Cohen's kappa", validator["kappa"])
        console.print(table)
        console.print(_confusion_table(validator["confusion"], of=of))
    cutoffs = validator.get("cutoffs", {})
    if cutoffs.get("source"):
        console.print(
            f"cut-offs compared with{of}: accept_at {_cutoff(cutoffs['accept_at'])}, reject_below "
            f"{_cutoff(cutoffs['reject_below'])} ({cutoffs['source']})",
            highlight=False,
            markup=False,
        )
    if cutoffs.get("note"):
        console.print(f"note{of}: {cutoffs['note']}", highlight=False, markup=False)
    for note in validator["suggestions"]["notes"]:
        console.print(f"suggestion{of}: {note}", highlight=False, markup=False)


def _cutoff(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _gold_table(rows: dict[str, Any]) -> Table:
    table = new_table(title="gold tasks")
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


def _confusion_table(confusion: dict[str, dict[str, int]], *, of: str = "") -> Table:
    table = new_table(
        title=f"rubric route (rows) vs the route the human verdict implies (columns){of}"
    )
    columns = ["accepted", "review", "rejected"]
    table.add_column("rubric")
    for column in columns:
        table.add_column(column, justify="right")
    for route, row in confusion.items():
        table.add_row(route, *(str(row.get(c, 0)) for c in columns))
    return table


def _print_blocked(blocked: list[dict[str, Any]]) -> None:
    """The blocked items, a line for those blocked alike (the same why and fix): a reopen at
    k = 3 blocks every item it touched, and a line each buried the rest of the stats."""
    alike: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for each in blocked:
        alike[each["why"], each["fix"]].append(each)
    for (why, fix), group in alike.items():
        first = group[0]
        if len(group) == 1:
            said = f"item {first['item']} (sample {first['sample']}) is blocked"
            item = str(first["item"])
        else:
            shown = ", ".join(str(each["item"]) for each in group[:BLOCKED_SHOWN])
            more = ", ..." if len(group) > BLOCKED_SHOWN else ""
            said = f"{len(group)} items are blocked alike (items {shown}{more}), each"
            item = "ITEM"
        console.print(
            f"{said}: {why}; {fix} (`synthgate review adjudicate {item} --verdict ... --as "
            "NAME`, or POST /api/review/ID/adjudication, ID as GET /api/review/stats names it)",
            markup=False,
            highlight=False,
        )


def print_stats(numbers: dict[str, Any]) -> None:
    """One line of queue totals, then a table per annotator (when there are any)."""
    items = numbers["items"]
    adjudications = numbers.get("adjudications", 0)
    console.print(
        f"items: {items['open']} open, {items['adjudication']} awaiting adjudication, "
        f"{items['final']} final; {numbers['gold_items']} gold; "
        f"{counted(numbers['queue_depth'], 'assignment')} still to hand out; "
        f"{counted(numbers['decisions'], 'decision')}"
        + (
            f" ({counted(adjudications, 'by an adjudicator', 'by adjudicators')})"
            if adjudications
            else ""
        )
    )
    _print_blocked(numbers.get("blocked", []))
    for each in numbers.get("short_of_annotators", []):
        console.print(f"{each['why']}: {each['fix']}", markup=False, highlight=False)
    if items["adjudication"]:
        console.print(
            "someone who did not decide an item adjudicates it: `synthgate review adjudicate` "
            "lists them and decides one; over the API, GET /api/review/adjudication, GET "
            "/api/review/{id} and .../decisions, POST /api/review/{id}/adjudication",
            highlight=False,
            markup=False,
        )
    changes = numbers.get("route_changes")
    if changes and changes["with_route"]:
        moves = ", ".join(f"{move}: {n}" for move, n in changes["moves"].items())
        console.print(
            f"verdicts changed the rubric's route on {changes['changed']} of "
            f"{counted(changes['with_route'], 'final item')}" + (f" ({moves})" if moves else ""),
            highlight=False,
        )
    if not numbers["annotators"]:
        return
    table = new_table(title="annotators")
    for column in ("annotator", "assigned", "decided", "gold", "gold accuracy", "decisions/h"):
        table.add_column(column, justify="left" if column == "annotator" else "right")
    for who, row in numbers["annotators"].items():
        table.add_row(
            who,
            str(row["assigned"]),
            str(row["decided"]),
            str(row["gold_decided"]),
            # no gold decided yet: nothing to measure, as the admin page shows it
            "-" if row["gold_accuracy"] is None else _number(row["gold_accuracy"], 2),
            "-" if row["decisions_per_hour"] is None else str(row["decisions_per_hour"]),
        )
    console.print(table)
    untimed = {who: row["untimed"] for who, row in numbers["annotators"].items() if row["untimed"]}
    if untimed:
        console.print(
            "decisions/h leaves out decisions imported with no time on the task (no created_at "
            "and lead_time in the Label Studio export): "
            + ", ".join(f"{who} {n}" for who, n in untimed.items()),
            highlight=False,
            markup=False,
        )
