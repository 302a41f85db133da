"""`synthgate balance` and `synthgate merge`: fill a real dataset's deficits, merge a finished run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.text import Text

import synthgate
from synthgate.commands import (
    PROGRESS_FROM,
    WRITE_BAR_FROM,
    console,
    count_bar,
    counted,
    errors,
    mib_bar,
    new_table,
    print_left_out,
    print_not_accepted,
    print_undecided,
    progress_bars,
    run_progress,
    user_errors,
)
from synthgate.errors import InputError


def balance(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder (new, or an earlier balance output)."
    ),
    coco: Path | None = typer.Option(None, "--coco", help="Real COCO instances file to balance."),
    images: Path | None = typer.Option(
        None,
        "--images",
        help="Folder the COCO file_names are in (default: the --coco file's folder).",
    ),
    jsonl: Path | None = typer.Option(
        None, "--jsonl", help="Real text classification JSONL to balance."
    ),
    label_field: str = typer.Option(
        "label", "--label-field", help="JSONL field holding the label."
    ),
    text_field: str = typer.Option("text", "--text-field", help="JSONL field holding the text."),
    target: str | None = typer.Option(
        None,
        "--target",
        help="max | median | N | FILE (YAML class: target) | repeat_factor (default: the config's, median).",
    ),
    config: Path | None = typer.Option(
        None, "--config", help="Balance config YAML (generators, attributes, augment)."
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="Leave bad COCO entries out (they are listed) instead of stopping.",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="COCO: check the dataset and print the plan (instances per class, images, disk "
        "estimate); write nothing. Refused with --jsonl (a text plan needs the rewrites judged).",
    ),
) -> None:
    """Raise under-represented classes with synthetic samples and merge what the rubric accepted.

    Runs plan -> generate -> validate -> route -> merge. Writes merged.coco.json (or merged.jsonl),
    balance.json, the run folders, and report.md / report.html with plots. COCO: images/ holds
    the real and accepted synthetic images (hard links, else copies) and every file_name is
    relative to the output folder, so it loads from its path alone, wherever it is moved.
    The real images there are hard links: editing one in place edits the real dataset (copy the
    folder with cp -r first). Samples waiting for review are not merged; they are listed.
    With --dry-run nothing is written: the plan is printed.

    Example: synthgate balance --coco annotations.json --images images/ --out balanced/ --target median

    Example: synthgate balance --jsonl reviews.jsonl --label-field label --out balanced-text/ --target max
    """
    with user_errors(), progress_bars() as bars:
        if (coco is None) == (jsonl is None):
            raise InputError(
                "pass either --coco FILE [--images DIR] (images) or --jsonl FILE (text)"
            )
        if coco is not None:
            from synthgate.validators.sources import TEXT_SUFFIXES  # numpy: only when it runs

            if coco.suffix.lower() in TEXT_SUFFIXES:
                raise InputError(f"--coco {coco}: is a text JSONL file; pass it as --jsonl")
            # refused, not ignored, as --images is with --jsonl (their defaults say nothing)
            for given, value, default in (
                ("--label-field", label_field, "label"),
                ("--text-field", text_field, "text"),
            ):
                if value != default:
                    raise InputError(f"{given} applies to --jsonl; leave it out with --coco")
            outcome = synthgate.balance(
                coco,
                dry_run=dry_run,
                on_plan=_warn_of_large_plan,
                images=images,
                out=out,
                target=target,
                config=config,
                skip_invalid=skip_invalid,
                progress=run_progress(bars),
                check_progress=count_bar(bars, "checking the dataset", least=PROGRESS_FROM),
                read_progress=mib_bar(bars, "reading the COCO file"),
                reference_progress=count_bar(bars, "hashing the reference images"),
                write_progress=count_bar(bars, "writing merged.coco.json", least=WRITE_BAR_FROM),
            )
        else:
            assert jsonl is not None
            if images is not None or skip_invalid:  # refused, not ignored
                given = "--images" if images is not None else "--skip-invalid"
                raise InputError(f"{given} applies to --coco; leave it out with --jsonl")
            outcome = synthgate.balance_text(
                jsonl,
                out=out,
                label_field=label_field,
                text_field=text_field,
                target=target,
                config=config,
                progress=run_progress(bars),
                dry_run=dry_run,  # refused, saying why, before any work
            )
    summary = outcome.summary
    for warning in summary.get("warnings", []):  # class names tools would read otherwise
        errors.print(Text.assemble(("warning", "yellow"), f": {warning}"), soft_wrap=True)
    if dry_run:
        _print_plan(summary, outcome.out)
        return
    print_left_out(summary.get("skipped_input", []))  # as merge and export list them
    table = new_table(title=f"balance ({summary['target']})")
    for column in ("class", "before", "target", "filled", "after"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, entry in summary["classes"].items():
        if entry["deficit"] or entry["filled"]:
            table.add_row(name, *(str(entry[k]) for k in ("before", "target", "filled", "after")))
    if table.row_count:
        console.print(table)
    else:  # an empty table said nothing of why nothing was added
        console.print(
            f"{_none_below(summary['target'], kind=summary['kind'])}: nothing was added",
            markup=False,
            soft_wrap=True,
        )
    for name, entry in summary["classes"].items():
        if "why_not" in entry:
            errors.print(
                Text.assemble(
                    (name, "yellow"),
                    f": below target ({entry['after']}/{entry['target']}): {entry['why_not']}",
                )
            )
    waiting = summary["waiting_for_review"]
    if waiting:
        console.print(
            f"{len(waiting)} sample(s) wait for review and were not merged: {', '.join(waiting[:10])}",
            markup=False,
        )
    report = outcome.out / "report.html"
    console.print(Text.assemble("wrote ", (str(outcome.merged), "bold"), f" and {report}"))
    if summary["kind"] == "coco":
        _say_hard_links(outcome.out)


def _none_below(target: str | int, *, kind: str) -> str:
    """Why a balance of a `kind` dataset (coco, jsonl) adds nothing when every class is at its
    target."""
    held = "rows" if kind == "jsonl" else "images"
    why = (
        "; repeat_factor (LVIS) raises only classes in fewer than repeat_threshold of the "
        f"{held} (0.001 unless a --config sets it)"
        if target == "repeat_factor"
        else ""
    )
    return f"no class is below its target ({target}){why}"


def _say_hard_links(out: Path) -> None:
    """A COCO output's images/ holds hard links to the real images: the same files."""
    console.print(
        f"{out / 'images'} holds hard links to the real images: editing one there in place "
        f"edits the real dataset; copy the folder first (cp -r {out} COPY)",
        markup=False,
        soft_wrap=True,
    )


def _warn_of_large_plan(plan: dict[str, Any]) -> None:
    """One line on stderr before a plan far larger than its dataset starts (never a prompt:
    scripts run balance unattended)."""
    from synthgate.workflows.balance import large_plan_warning

    warning = large_plan_warning(plan)
    if warning is not None:
        errors.print(Text.assemble(("warning", "yellow"), f": {warning}"), soft_wrap=True)


def _print_plan(plan: dict[str, Any], out: Path) -> None:
    """The plan of a dry run: per class raised, its instances before, target and planned; then
    the images it makes and their estimated size."""
    from synthgate.workflows.balance import PNG_SHARE_OF_RGB

    table = new_table(title=f"balance plan ({plan['target']})")
    for column in ("class", "before", "target", "planned"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, entry in plan["classes"].items():
        if entry["deficit"]:
            table.add_row(name, *(str(entry[k]) for k in ("before", "target", "planned")))
    if table.row_count:
        console.print(table)
    for name, entry in plan["classes"].items():
        if "why_not" in entry:
            errors.print(Text.assemble((name, "yellow"), f": not planned: {entry['why_not']}"))
    instances = sum(entry["planned"] for entry in plan["classes"].values())
    if not plan["planned_images"]:  # "0 instances in 0 synthetic images, about 0 kB of PNGs"
        if not table.row_count:
            nothing = f"{_none_below(plan['target'], kind=plan['kind'])}: nothing needs adding"
        else:
            why = (
                "see above"
                if any("why_not" in entry for entry in plan["classes"].values())
                else "the config's classes or max_new_per_class leave them out"
            )
            nothing = f"nothing can be added to the classes below their target ({why})"
        console.print(
            f"dry run: {nothing}; nothing was written to {out}", markup=False, soft_wrap=True
        )
        return
    console.print(
        f"dry run: {counted(instances, 'instance')} in "
        f"{counted(plan['planned_images'], 'synthetic image')} "
        f"(the dataset holds {plan['dataset_images']}), about "
        f"{_size(plan['estimated_bytes'])} of PNGs (estimated at {PNG_SHARE_OF_RGB:.0%} of their raw RGB size, "
        f"at most {_size(plan['raw_bytes'])}); nothing was written to {out}",
        markup=False,
        soft_wrap=True,
    )


def _size(count: int) -> str:
    for unit, scale in (("GB", 10**9), ("MB", 10**6)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count / 10**3:.0f} kB"


def merge(
    real: Path = typer.Option(
        ..., "--real", help="Real COCO file or JSONL to merge into (read only)."
    ),
    synthetic: Path = typer.Option(
        ..., "--synthetic", help="A finished run folder (synthgate run, or submit --wait)."
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output folder (new, or an earlier merge output; never inside the run folder): "
        "merged.coco.json or merged.jsonl, images/ and merge.json.",
    ),
    images: Path | None = typer.Option(
        None,
        "--images",
        help="COCO: folder the real file_names are in (default: the --real file's folder).",
    ),
    label_field: str = typer.Option("label", "--label-field", help="JSONL: field for the label."),
    text_field: str = typer.Option("text", "--text-field", help="JSONL: field for the text."),
    add_categories: bool = typer.Option(
        False, "--add-categories", help="Append synthetic classes the real file lacks."
    ),
    skip_invalid: bool = typer.Option(
        False,
        "--skip-invalid",
        help="COCO: leave bad real entries out (they are listed) instead of stopping.",
    ),
) -> None:
    """Merge the accepted samples of a finished run into a copy of a real dataset.

    The run is read as its review left it: a sample people accepted is merged, one they
    rejected is not, one they fixed carries their labels. Writes a self-contained folder:
    merged.coco.json beside images/ (hard links, else copies, of the real and the accepted
    synthetic images) and merge.json (what was added and left out), every file_name relative
    to the folder, so it loads from its path alone and still loads after it is moved. Text:
    merged.jsonl.

    Example: synthgate merge --real annotations.json --images images/ --synthetic runs/quickstart --out merged/ --add-categories
    """
    with user_errors(), progress_bars() as bars:
        result = synthgate.merge(
            real,
            synthetic,
            out=out,
            images=images,
            text_field=text_field,
            label_field=label_field,
            add_categories=add_categories,
            skip_invalid=skip_invalid,
            progress=count_bar(bars, "images", least=PROGRESS_FROM),
            check_progress=count_bar(bars, "checking the dataset", least=PROGRESS_FROM),
            read_progress=mib_bar(bars, "reading the COCO file"),
            write_progress=count_bar(bars, "writing merged.coco.json", least=WRITE_BAR_FROM),
        )
    print_left_out(result.skipped_input)
    added = (
        counted(result.added_rows, "row")
        if result.added_rows
        else f"{counted(result.added_images, 'image')}, "
        f"{counted(result.added_annotations, 'annotation')}"
    )
    console.print(f"merged {added} into [bold]{escape(str(result.merged))}[/]", soft_wrap=True)
    if result.merged is not None and result.merged.name == "merged.coco.json":
        _say_hard_links(result.merged.parent)
    print_not_accepted(result.left_out, done="merged")
    print_undecided(result.undecided, done="merged", again="merge again")
