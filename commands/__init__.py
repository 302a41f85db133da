"""CLI commands, one module per subsystem; cli.py registers them on the typer app.

Shared here: the consoles and `user_errors()`, which turns an `InputError` into one clear
message on stderr and exit code 2. Command modules import heavy libraries inside the command
functions, so `synthgate --help` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.text import Text

from synthgate.errors import InputError

console = Console()
errors = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn input errors into one clear message and exit code 2."""
    try:
        yield
    except InputError as error:
        # Plain text, not markup: messages quote user values such as "[x, y, w, h]".
        errors.print(
            Text("error: ", style="bold red") + Text(str(error)), highlight=False, soft_wrap=True
        )
        raise typer.Exit(code=InputError.exit_code) from None
