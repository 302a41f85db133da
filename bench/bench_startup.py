"""`synthgate --help` against a bare typer app with the same commands: start-up cost.

The floor app is written here from synthgate's own command tree: the same groups, commands,
help texts, arguments and options (flags as flags, other values as text), each command doing
nothing; it imports typer alone. Both are fresh `python` processes timed by the kernel (wall,
and CPU: user + system), best of `--rounds`, interleaved. Target: CPU ratio <= 1.5.
Also prints what `import synthgate.cli` loads that the floor does not (heavy libraries are
deferred to the commands that use them).
Usage: python bench/bench_startup.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import typer.main
from _support import Measured, measure

from synthgate.cli import app

HEAVY = ("sqlalchemy", "pydantic_settings", "matplotlib", "fastapi", "celery", "torch", "PIL")


def _option(param: Any, number: int) -> str:
    """One parameter (click's) of the floor's command function, as source."""
    help_text = repr(getattr(param, "help", None) or "")
    if param.param_type_name == "argument":
        default = "..." if param.required else "None"
        return f"p{number}: str = typer.Argument({default}, help={help_text})"
    flags = ", ".join(repr(flag) for flag in [*param.opts, *param.secondary_opts])
    if getattr(param, "is_flag", False):
        return f"p{number}: bool = typer.Option(False, {flags}, help={help_text})"
    default = "..." if param.required else "None"
    return f"p{number}: str = typer.Option({default}, {flags}, help={help_text})"


def floor_source(group: Any) -> str:
    """A typer app with `group`'s commands, help and parameters, doing nothing."""
    lines = [
        "import typer",
        "",
        "app = typer.Typer(name='synthgate', help={!r}, no_args_is_help=True, "
        "pretty_exceptions_enable=False, rich_markup_mode='rich')".format(group.help or ""),
    ]
    number = 0

    def add(parent: str, command: Any) -> None:
        nonlocal number
        number += 1
        name = f"c{number}"
        if hasattr(command, "commands"):  # a group
            lines.append(f"{name} = typer.Typer(help={command.help!r}, no_args_is_help=True)")
            for sub in command.commands.values():
                add(name, sub)
            lines.append(f"{parent}.add_typer({name}, name={command.name!r})")
            return
        params = ", ".join(_option(p, i) for i, p in enumerate(command.params))
        lines.extend(
            [
                f"@{parent}.command({command.name!r}, help={command.help!r})",
                f"def {name}({params}) -> None:",
                "    pass",
            ]
        )

    for command in group.commands.values():
        add("app", command)
    lines += [
        "@app.callback()",
        "def main(version: bool = typer.Option(False, '--version', help='Print the version and "
        "exit.')) -> None:",
        "    pass",
        "",
        "app(prog_name='synthgate')",
    ]
    return "\n".join(lines) + "\n"


def loaded_by(code: str) -> set[str]:
    """Top-level packages a fresh process has imported after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(found.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    group = typer.main.get_command(app)
    with tempfile.TemporaryDirectory() as tmp:
        floor_file = Path(tmp) / "floor_app.py"
        floor_file.write_text(floor_source(group))
        commands: dict[str, list[str]] = {
            "bare typer app": [sys.executable, str(floor_file), "--help"],
            "synthgate --help": [sys.executable, "-m", "synthgate", "--help"],
        }
        runs: dict[str, list[Measured]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                runs[name].append(measure(command))
        best: dict[str, Any] = {}
        for name, measured in runs.items():
            wall, cpu = min(m.wall for m in measured), min(m.cpu for m in measured)
            best[name] = cpu
            print(
                f"{name:18} wall {1e3 * wall:6.0f} ms  CPU {1e3 * cpu:6.0f} ms  (best of {args.rounds})"
            )
        ratio = best["synthgate --help"] / best["bare typer app"]
        print(f"CPU ratio synthgate/floor: {ratio:.2f}   (target <= 1.5)")
        extra = loaded_by("import synthgate.cli") - loaded_by(
            floor_file.read_text().rsplit("\n", 2)[0]
        )
        heavy = sorted(name for name in extra if name in HEAVY)
        print(f"packages `import synthgate.cli` adds: {', '.join(sorted(extra)) or 'none'}")
        print(f"heavy ones among them: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
