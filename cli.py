"""The `synthgate` command line: run, validate, balance, merge, review, serve, worker, submit.

Commands are thin: they parse options, call one function of the library and print with rich.
Bad input (`InputError`) prints one clear message and exits 2, never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from synthgate import __version__
from synthgate.errors import InputError

app = typer.Typer(
    name="synthgate",
    help=(
        "Make labelled synthetic data, judge every sample against a rubric, and merge what "
        "passed into real datasets.\n\nStart with: synthgate run configs/quickstart.yaml"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
errors = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn input errors into one clear message and exit code 2."""
    try:
        yield
    except InputError as error:
        errors.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=InputError.exit_code) from None


def _version(value: bool) -> None:
    if value:
        console.print(f"synthgate {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """synthgate: synthetic data you can trust."""


@app.command()
def run(
    config_path: Path = typer.Argument(
        ..., metavar="CONFIG", help="Batch config YAML, e.g. configs/quickstart.yaml."
    ),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Run folder to write [default: runs/<name>]. Replaced if it holds an earlier run."
    ),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="Override the config's seed (every sample's seed derives from it)."
    ),
) -> None:
    """Generate a labelled synthetic batch in this process and write a run folder.

    The folder holds images/*.png, coco.json (every image sample, with its status and report),
    accepted.coco.json (ready to merge), text.jsonl, synthgate.db and manifest.json.
    Same config and seed give byte-identical data.
    """
    from synthgate.config import load_config
    from synthgate.pipeline import run_batch

    with user_errors():
        config = load_config(config_path)
        if seed is not None:
            config = config.model_copy(update={"seed": seed})
        target = out if out is not None else Path("runs") / config.name
        with _progress() as bars:
            tasks: dict[str, int] = {}

            def advance(modality: str, done: int, total: int) -> None:
                if modality not in tasks:
                    tasks[modality] = bars.add_task(f"{modality:>5}", total=total)
                bars.advance(tasks[modality], done)

            result = run_batch(config, target, progress=advance)
    _print_summary(result.counts, result.timings)
    console.print(f"wrote [bold]{result.out}[/] (batch {result.batch_id})")


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _print_summary(counts: dict[str, dict[str, int]], timings: dict[str, float]) -> None:
    table = Table(title="batch summary")
    for column in ("modality", "generated", "accepted", "review", "rejected", "failed", "samples/s"):
        table.add_column(column, justify="right" if column != "modality" else "left")
    for modality, row in counts.items():
        seconds = timings.get(f"{modality}_seconds", 0.0)
        rate = f"{row.get('generated', 0) / seconds:.1f}" if seconds else "-"
        table.add_row(
            modality,
            *(str(row.get(k, 0)) for k in ("generated", "accepted", "review", "rejected", "failed")),
            rate,
        )
    console.print(table)
    hidden = counts.get("image", {}).get("hidden_objects", 0)
    if hidden:
        console.print(f"{hidden} objects were too occluded to label and were left out.")


def main() -> None:
    app(prog_name="synthgate")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
