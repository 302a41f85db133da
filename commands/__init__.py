"""CLI commands, one module per subsystem; cli.py registers them on the typer app.

Shared here: the consoles, `progress_bars()` for long work, `user_errors()`, which turns an
`InputError` into one clear message on stderr and exit code 2, `new_table()` for a command's
table (names in it shown as they are, not read as markup), `counted()` ("1 image", "2 images"),
`reflow_help`, which lets --help wrap docstring prose to the terminal,
`name_missing_extras`, which turns a missing optional dependency into one line naming the extra
to install (exit 2), and `NumberArgumentCommand` for a command whose one argument is a number
that may be written negative (`review set-k -1`). Command modules import heavy libraries inside
the command functions, so `synthgate --help` stays fast and a base install (`pip install
synthgate`) runs every command that needs no extra.
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import shlex
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
import typer.core
from rich.console import Console
from rich.text import Text

from synthgate.errors import InputError, lone_surrogate
from synthgate.errors import counted as counted  # the commands' spelling of every layer's one

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

# Names from users' files (classes, sample ids, paths) are printed as they are: no ":name:"
# emoji codes. Messages that use markup escape such values (rich.markup.escape).
console = Console(emoji=False)
errors = Console(stderr=True, emoji=False)


def progress_bars() -> Progress:
    """The progress display every long command shows, on stderr: description, bar, done/total,
    time."""
    from rich.progress import (  # not at start-up: commands without long work never need it
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    class Bars(Progress):
        """Shown from the first bar on: a command that refuses its input before any work prints
        no bar, nor the empty line a stopped display leaves on a stream that is no terminal."""

        def __enter__(self) -> Bars:
            return self

        def add_task(self, *args: Any, **kwargs: Any) -> TaskID:
            if not self.live.is_started:
                self.start()
            return super().add_task(*args, **kwargs)

        def __exit__(self, *exc: object) -> None:
            if self.live.is_started:
                self.stop()

    return Bars(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,  # stderr (as tqdm's): `validate x.json > summary.txt` holds the summary
        transient=False,
        # Output printed while a bar shows goes above it when both are on the terminal; stdout
        # sent to a file stays there.
        redirect_stdout=console.is_terminal,
    )


PROGRESS_FROM = 200  # images: a bar only for many (a few are checked or placed in a blink)
# entries (images, annotations) of a JSON file written: fewer are written within a second
WRITE_BAR_FROM = 50_000


def count_bar(bars: Progress, name: str, *, least: int = 0) -> Callable[[int, int | None], None]:
    """A library's `progress(done, total)` as a bar, added at its first step (input refused
    before any work shows none); none at all for a count whose total is under `least` (done in
    a blink). A count that starts again (it goes back, or goes on after its total: a second
    reference folder) gets a bar of its own. A count may end short of its total by giving a
    smaller one (fewer gold tasks fit than were wanted): its bar ends there, finished."""
    current: list[tuple[TaskID, int, int | None]] = []  # the bar shown last, its count, total

    def advance(done: int, total: int | None) -> None:
        last = current[-1] if current else None
        starts = last is None or done < last[1] or done == last[1] == last[2]
        if starts and total is not None and total < least:
            return
        task = bars.add_task(name, total=total) if starts or last is None else last[0]
        bars.update(task, completed=done, total=total)
        current[:] = [(task, done, total)]

    return advance


READ_BAR_FROM = 16 << 20  # bytes: a smaller COCO file is read and parsed within a second


def mib_bar(bars: Progress, name: str) -> Callable[[int, int], None]:
    """A library's `progress(bytes done, bytes in all)` as a count_bar in MiB, moved as a whole
    MiB is done (the last one when all is); none for less than READ_BAR_FROM bytes in all."""
    advance = count_bar(bars, f"{name} (MiB)")
    shown = [-1]  # the MiB count shown last

    def in_mib(done: int, total: int) -> None:
        if total < READ_BAR_FROM:
            return
        whole = -(-total // 2**20)
        now = whole if done >= total else done // 2**20
        if now != shown[0]:  # count_bar takes a count given again at its end for a new one
            shown[0] = now
            advance(now, whole)

    return in_mib


def print_left_out(problems: Iterable[str]) -> None:
    """The bad input entries a command left out (--skip-invalid), one a line, on stderr."""
    for problem in problems:
        errors.print(Text.assemble(("left out", "yellow"), f": {problem}"), soft_wrap=True)


# How a run's status reads in "N sample(s) <status>, not merged".
STATUS_WORDS = {"review": "under review", "rejected": "rejected"}


def print_not_accepted(left_out: dict[str, list[str]], *, done: str) -> None:
    """A run's samples a merge or export left out because they are not accepted, by status
    (`done`: "merged", "exported"), with the first ten ids."""
    for status, ids in left_out.items():
        console.print(
            f"{len(ids)} sample(s) {STATUS_WORDS.get(status, status)}, not {done}: "
            f"{_first_ids(ids)}",
            markup=False,
            soft_wrap=True,
        )


def print_undecided(undecided: dict[str, list[str]], *, done: str, again: str) -> None:
    """The accepted samples a merge or export took in while people still review them (an audit
    of the rubric's accept): their review may yet reject them. `undecided`: item status (open,
    adjudication) -> sample ids; `done`: "merged", "exported"; `again`: how to do it again
    ("merge again")."""
    ids = [sample_id for found in undecided.values() for sample_id in found]
    if not ids:
        return
    split = undecided.get("adjudication", [])
    awaiting = (
        f"; {len(split)} of them await adjudication (their annotators split: synthgate review "
        f"adjudicate lists them): {_first_ids(split)}"
        if split
        else ""
    )
    console.print(
        f"{len(ids)} sample(s) {done} as the rubric accepted them while people still review "
        f"them: {_first_ids(ids)}{awaiting}; {again} once their review is final to leave out "
        "any that people reject",
        markup=False,
        soft_wrap=True,
    )


def _first_ids(ids: list[str]) -> str:
    return ", ".join(ids[:10]) + (", ..." if len(ids) > 10 else "")


def run_progress(bars: Progress) -> Callable[[str, int, int], None]:
    """A runner's `progress(modality, just finished, total)` as bars: one per modality and run
    (balance runs one per generator section, each with its own total)."""
    tasks: dict[str, TaskID] = {}
    left: dict[str, int] = {}

    def advance(modality: str, done: int, total: int) -> None:
        if left.get(modality, 0) <= 0:  # the first samples of a run
            tasks[modality] = bars.add_task(f"{modality:>5}", total=total)
            left[modality] = total
        bars.advance(tasks[modality], done)
        left[modality] -= done

    return advance


def new_table(*columns: str, title: str | None = None) -> Table:
    """A rich table for a command's output whose title and text cells show as they are: a class
    named "[/x]" is a name, not markup (rich.table is not imported at start-up: most commands
    print no table)."""
    shown = None if title is None else Text(title, style="table.title")
    return _plain_table()(*columns, title=shown)


@functools.cache
def _plain_table() -> type[Table]:
    from rich.table import Table

    class PlainTable(Table):
        def add_row(self, *cells: Any, **options: Any) -> None:
            super().add_row(*(Text(c) if isinstance(c, str) else c for c in cells), **options)

    return PlainTable


EXIT_BAD_INPUT = 2

# The database of a command given no --db (storage.database.database_url), in every --db help:
# serve's own --runs-dir does not move it.
DEFAULT_DB = (
    "$SYNTHGATE_DB_URL, else sqlite:///<runs dir>/synthgate.db, the runs dir being "
    "$SYNTHGATE_RUNS_DIR or runs"
)


# The options whose flag is not their parameter's name: each --annotator-email adds one entry,
# each --batch one batch.
IRREGULAR_FLAGS = {"annotator_emails": "--annotator-email", "batches": "--batch"}


def flag_of(field: str) -> str:
    """The command-line flag of a library parameter: `out` -> `--out`, `label_field` ->
    `--label-field` (every command names its options after the parameters it passes on); one
    written with its value (an `InputError`'s options) as the flag that passes it:
    `force=True` -> `--force`, `copy_images=False` -> `--no-copy-images`, `format=coco` ->
    `--format coco`; a library call (errors.call_of) as the command of the same name that makes
    it: `sg.merge(real='a.jsonl', out='m/')` -> `synthgate merge --real a.jsonl --out m/`, each
    value quoted where a shell would split it or read a quote in it (`--synthetic 'my run'`)."""
    if field.startswith("sg."):
        call = ast.parse(field, mode="eval").body
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
            raise TypeError(f"flag_of: {field!r} is not a call errors.call_of wrote")
        # call_of's arguments are strings, each the value of its flag
        arguments = [
            f"{flag_of(str(a.arg))} {shlex.quote(ast.literal_eval(a.value))}" for a in call.keywords
        ]
        return " ".join(["synthgate", call.func.attr.replace("_", "-"), *arguments])
    name, _, value = field.partition("=")
    flag = IRREGULAR_FLAGS.get(name, "--" + name.replace("_", "-"))
    if value == "True":
        return flag
    if value == "False":
        return "--no-" + flag.removeprefix("--")
    return f"{flag} {value}" if value else flag


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn input errors into one clear message, fields named as flags, and exit code 2."""
    try:
        yield
    except InputError as error:
        message = error.describe(flag_of(error.field) if error.field else None, as_flag=flag_of)
        fail(_with_notes(message, error))
    except UnicodeEncodeError as error:  # a lone surrogate no check of its input caught
        said = lone_surrogate(error)
        if said is None:
            raise
        fail(_with_notes(said, error))


def _with_notes(message: str, error: BaseException) -> str:
    """The message and the notes added on the error's way up (what a long operation had done
    when it stopped: review reopen's committed chunks), which the one error line would drop."""
    return "\n".join([message, *getattr(error, "__notes__", ())])


def fail(message: str) -> NoReturn:
    """Print `message` as one error line on stderr and exit with code 2 (bad input)."""
    # Plain text, not markup: messages quote user values such as "[x, y, w, h]".
    errors.print(Text("error: ", style="bold red") + Text(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code=EXIT_BAD_INPUT) from None


NEGATIVE_NUMBER = re.compile(r"-\d+")


class NumberArgumentCommand(typer.core.TyperCommand):
    """A command whose one argument is a number, written negative too: `review set-k -1`.

    Click reads every word that starts with "-" as an option, and said "No such option: -1";
    here a negative number that is no option's value is the argument, so the command's own
    range check refuses it, naming the value and the range. A misspelled option is still
    refused as one, and --help still shows the help."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's own click Context
        takes_value = {
            name
            for param in self.params
            if isinstance(param, typer.core.TyperOption) and not (param.is_flag or param.count)
            for name in param.opts
        }
        # read left to right as click does: the word after an option that takes a value is
        # that value, whatever it looks like; the arguments keep their order
        options: list[str] = []
        arguments: list[str] = []
        i = 0
        while i < len(args) and args[i] != "--":
            word = args[i]
            if word in takes_value:
                options += args[i : i + 2]
                i += 2
                continue
            is_option = word.startswith("-") and not NEGATIVE_NUMBER.fullmatch(word)
            (options if is_option else arguments).append(word)
            i += 1
        if any(NEGATIVE_NUMBER.fullmatch(word) for word in arguments):
            # after "--" a word is an argument, whatever it starts with
            args = [*options, "--", *arguments, *args[i + 1 :]]
        return super().parse_args(ctx, args)


# A line that starts a list item or is indented keeps its line break in --help.
_KEEP_LINE = re.compile(r"^(\s|[-*•]\s|\d+[.)]\s)")


def reflow(doc: str) -> str:
    """A docstring with the single line breaks inside its prose paragraphs removed.

    Typer keeps them, so text wrapped at 100 columns in the source would break again at the
    terminal's width. Lists, indented lines and `\\b` paragraphs keep their lines.
    """
    paragraphs = []
    for paragraph in inspect.cleandoc(doc).split("\n\n"):
        lines = paragraph.split("\n")
        if paragraph.startswith("\b") or any(_KEEP_LINE.match(line) for line in lines):
            paragraphs.append(paragraph)
        else:
            paragraphs.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(paragraphs)


def reflow_help(app: typer.Typer) -> None:
    """Reflow the help of every command and group registered on `app`, recursively."""
    if app.info.help:
        app.info.help = reflow(str(app.info.help))
    for command in app.registered_commands:
        doc = command.help or inspect.getdoc(command.callback) or ""
        command.help = reflow(doc)
    for group in app.registered_groups:
        if group.help:
            group.help = reflow(str(group.help))
        if group.typer_instance is not None:
            reflow_help(group.typer_instance)


# The extra (pyproject's optional-dependencies) that brings each optional top-level module.
EXTRA_OF_MODULE = {
    "fastapi": "serve",
    "fastapi_offline": "serve",
    "starlette": "serve",
    "uvicorn": "serve",
    "multipart": "serve",
    "python_multipart": "serve",
    "jinja2": "serve",
    "celery": "workers",
    "kombu": "workers",
    "redis": "workers",
    "psycopg": "workers",
    "fsspec": "workers",
    "sklearn": "review",
    "statsmodels": "review",
    "krippendorff": "review",
    "torch": "diffusion",
    "diffusers": "diffusion",
    "transformers": "diffusion",
    "safetensors": "diffusion",
    "huggingface_hub": "diffusion",
    "matplotlib": "notebook",
}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """The extra whose module `error` did not find, or None when it is not an extra's."""
    return EXTRA_OF_MODULE.get((error.name or "").split(".")[0])


def needs_extra(command: Callable[..., Any], name: str) -> Callable[..., Any]:
    """`command`, with a missing optional dependency shown as one line naming its extra."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ModuleNotFoundError as error:
            extra = missing_extra(error)
            if extra is None:
                raise
            fail(
                f"synthgate {name} needs the {extra} extra ({error.name} is not installed): "
                f"pip install 'synthgate[{extra}]'"
            )

    return run


def name_missing_extras(app: typer.Typer, prefix: str = "") -> None:
    """Wrap every command registered on `app` (recursively) with `needs_extra`."""
    for command in app.registered_commands:
        if command.callback is not None:
            name = command.name or command.callback.__name__.rstrip("_").replace("_", "-")
            command.callback = needs_extra(command.callback, f"{prefix}{name}")
    for group in app.registered_groups:
        if group.typer_instance is not None:
            name = group.name or group.typer_instance.info.name or ""
            name_missing_extras(group.typer_instance, f"{prefix}{name} ")
