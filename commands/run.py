"""`synthgate run`: make a batch in this process and write its run folder."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

import synthgate
from synthgate.commands import (
    console,
    count_bar,
    counted,
    new_table,
    progress_bars,
    run_progress,
    user_errors,
)


def run(
    config_path: Path = typer.Argument(
        ..., metavar="CONFIG", help="Batch config YAML, e.g. configs/quickstart.yaml."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Run folder to write (default: runs/<name>, <name> the config's name). Replaced if "
        "it holds an earlier run (never one with review decisions).",
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        min=0,  # the most (2**63 - 1) is the library's to refuse: 19 digits of noise in --help
        help="Override the config's seed (every sample's seed derives from it).",
    ),
) -> None:
    """Generate a labelled synthetic batch in this process and write a run folder.

    The folder holds images/*.png, coco.json (every image sample, with its status and report),
    accepted.coco.json (ready to merge), text.jsonl, synthgate.db (samples, reports, the review
    queue), report.md (counts, routes, findings by check) and manifest.json. Same config and
    seed give byte-identical data.

    Example: synthgate run configs/quickstart.yaml (writes runs/quickstart/)
    """
    with user_errors(), progress_bars() as bars:
        result = synthgate.run(
            config_path,
            out=out,
            seed=seed,
            progress=run_progress(bars),
            reference_progress=count_bar(bars, "hashing the reference images"),
        )
    _print_summary(result.counts, result.timings)
    console.print(f"wrote [bold]{escape(str(result.out))}[/] (batch {escape(result.batch_id)})")


def _print_summary(counts: dict[str, dict[str, int]], timings: dict[str, float]) -> None:
    table = new_table(title="batch summary")
    for column in (
        "modality",
        "generated",
        "accepted",
        "review",
        "rejected",
        "failed",
        "samples/s",
    ):
        table.add_column(column, justify="right" if column != "modality" else "left")
    for modality, row in counts.items():
        seconds = timings.get(f"{modality}_seconds", 0.0)
        rate = f"{row.get('generated', 0) / seconds:.1f}" if seconds else "-"
        table.add_row(
            modality,
            *(
                str(row.get(k, 0))
                for k in ("generated", "accepted", "review", "rejected", "failed")
            ),
            rate,
        )
    console.print(table)
    hidden = counts.get("image", {}).get("hidden_objects", 0)
    if hidden:
        were = "was" if hidden == 1 else "were"
        console.print(
            f"{counted(hidden, 'object')} {were} too occluded to label and {were} left out."
        )
