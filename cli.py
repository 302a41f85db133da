"""The `synthgate` command line: run, validate, balance, merge, review, serve, worker, submit.

Commands are thin: they parse options, call one function of the library and print with rich.
Each subsystem's commands live in commands/<name>.py and are registered below. Bad input
(`InputError`) prints one clear message and exits 2, never a traceback; so does a command that
needs an extra that is not installed (it names the extra).
"""

from __future__ import annotations

import copy
import functools
import gc
import os
import signal
import sys
import threading
from collections.abc import Mapping, Sequence

import typer
import typer.main
from typer.models import CommandInfo

from synthgate import __version__
from synthgate.commands import balance as balance_commands
from synthgate.commands import console, name_missing_extras, reflow_help
from synthgate.commands import export as export_commands
from synthgate.commands import review as review_commands
from synthgate.commands import rubric as rubric_commands
from synthgate.commands import run as run_commands
from synthgate.commands import serve as serve_commands
from synthgate.commands import validate as validate_commands
from synthgate.commands import workers as worker_commands

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


# run (runner.py)
app.command()(run_commands.run)

# validate (validators/)
app.command()(validate_commands.validate)

# worker, submit, status (workers/)
app.command()(worker_commands.worker)
app.command()(worker_commands.submit)
app.command()(worker_commands.status)

# review, users, serve (review/, api/)
app.add_typer(review_commands.app, name="review")
app.add_typer(rubric_commands.app, name="rubric")
app.command()(serve_commands.serve)
app.add_typer(serve_commands.users, name="users")

# balance, merge (workflows/)
app.command()(balance_commands.balance)
app.command()(balance_commands.merge)

# export (workflows/export.py)
app.command()(export_commands.export)

reflow_help(app)
name_missing_extras(app)  # an extra's missing module: one line naming the extra, exit 2


# numpy's OpenBLAS starts a thread per core when numpy is imported, and its threads spin
# waiting for work after each call: 100-200 ms of CPU per command on two cores, for nothing,
# since synthgate's matrix products are tiny (pHash's 8x32 cosines). One thread, unless the
# user says otherwise (an empty value is none: OpenBLAS reads it as unset); read when numpy is
# first imported, which `import synthgate.cli` does not do. torch's x86 wheels use MKL with
# OpenMP threads, not OpenBLAS: diffusion keeps its threads (an aarch64 torch built on OpenBLAS
# would get one).
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "1")


def blas_threads(environ: Mapping[str, str]) -> str:
    """The OpenBLAS threads a synthgate command runs with in this environment."""
    name, default = BLAS_THREADS
    return environ.get(name) or default


def command_app(args: Sequence[str]) -> typer.Typer:
    """`app` holding only the command or group that `args` call, when they call one: typer
    builds the parameters of every command an app holds on each call (20 ms for all of
    synthgate's, 2 ms for one), and a call runs one. Anything else (no command, --version, a
    misspelt command) gets the whole app, whose help lists every command."""
    called = args[0] if args else None
    commands = [c for c in app.registered_commands if _command_name(c) == called]
    groups = [g for g in app.registered_groups if g.name == called]
    if not commands and not groups:
        return app
    only = copy.copy(app)
    only.registered_commands, only.registered_groups = commands, groups
    return only


def _command_name(command: CommandInfo) -> str:
    assert command.callback is not None
    return command.name or typer.main.get_command_name(command.callback.__name__)


def printable_streams() -> None:
    """Let stdout print any str: a lone surrogate read from a user's file (an unpaired
    \\ud800-\\udfff escape, valid in JSON, in an id or a name) shows as that escape instead of
    ending the command with UnicodeEncodeError (stdout's "strict", or "surrogateescape" in the
    C locale, which writes only \\udc80-\\udcff). Python's stderr does so already."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # absent on a test's captured stream
        if reconfigure is not None and getattr(stream, "errors", None) != "backslashreplace":
            reconfigure(errors="backslashreplace")


def _stopping(signum: int, stopped: list[int]) -> None:
    """Say that the command stops, before it cleans up: removing a large unfinished output
    (a run's 256k images) takes a while, and the command sat silent meanwhile. A second signal
    of the same kind now quits at once (its default action). `stopped` keeps the signal for
    `main`."""
    stopped.append(signum)
    signal.signal(signum, signal.SIG_DFL)
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    print(
        f"\nsynthgate: stopped by {name}; cleaning up what it had not finished, if anything "
        f"({name} again quits at once; an unfinished output left is removed by the next command)",
        file=sys.stderr,
        flush=True,
    )


def _terminated(stopped: list[int], signum: int, frame: object) -> None:
    """SIGTERM (`kill`, a job scheduler, a container stopping) ends the command as Ctrl-C does:
    by an exception, so what it was building is cleaned up (a run's `.NAME.partial` folder, a
    temporary file, an open transaction) instead of being left behind. Exit status 143, as if
    killed by the signal; a second SIGTERM kills the process outright."""
    _stopping(signum, stopped)
    raise SystemExit(128 + signum)


def _interrupted(stopped: list[int], signum: int, frame: object) -> None:
    """Ctrl-C: Python's KeyboardInterrupt (exit status 130), said first (`_stopping`)."""
    _stopping(signum, stopped)
    raise KeyboardInterrupt


def _notes_along(error: BaseException) -> list[str]:
    """The notes of `error` and of the exceptions it came from (typer raises its exit 130 from
    the KeyboardInterrupt, and exits while handling that); not past a `from None`."""
    notes: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        notes += getattr(current, "__notes__", ())
        suppressed = current.__suppress_context__
        current = current.__cause__ or (None if suppressed else current.__context__)
    return notes


def main() -> None:
    os.environ[BLAS_THREADS[0]] = blas_threads(os.environ)
    printable_streams()
    stopped: list[int] = []  # the signal that stopped the command, once one came
    handlers = {
        signal.SIGTERM: functools.partial(_terminated, stopped),
        signal.SIGINT: functools.partial(_interrupted, stopped),
    }
    previous = {}
    if threading.current_thread() is threading.main_thread():
        # `serve` and `worker` install their own handlers for a graceful stop over these.
        previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        command_app(sys.argv[1:])(prog_name="synthgate")
    except BaseException as error:
        if not stopped:
            raise
        # What the command had done when it stopped, noted on the exception's way up (review
        # reopen's committed chunks): typer turns a KeyboardInterrupt into exit 130 and a
        # SystemExit leaves with its code alone, and either drops the notes.
        for note in _notes_along(error):
            print(f"synthgate: {note}", file=sys.stderr)
        if not isinstance(error, Exception):
            raise
        # The command was stopping: the exception the handler raised went up through every
        # cleanup (finally blocks, the run's .partial folder), but a library on the way may
        # have answered it with an error of its own (numpy gives the TypeError of pycocotools'
        # Masks.__array__, which it calls again without `copy` in every mask decode, for a
        # KeyboardInterrupt or SystemExit raised meanwhile). Exit as the signal says, without
        # a traceback.
        raise SystemExit(128 + stopped[0]) from None
    finally:
        for signum, handler in previous.items():
            # ours, or the default ours left after a first signal (`_stopping`)
            if signal.getsignal(signum) in (handlers[signum], signal.SIG_DFL):
                signal.signal(signum, handler)
        # At exit Python collects garbage over every object still alive, the libraries' too:
        # 0.08 s of CPU after a tiny `validate`, 0.15 s after a `balance`, for memory the
        # process hands back anyway. Frozen objects are left out of that collection. What must
        # happen at exit does not depend on it: files are closed where they are written,
        # atexit handlers still run (they dispose any database engine left open, see
        # storage/store.py), and objects no cycle holds are still freed with their modules.
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
