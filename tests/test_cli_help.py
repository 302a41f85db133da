"""--help prose wraps to the terminal: docstring line breaks inside paragraphs are removed,
lists keep theirs, and every command's help renders at a narrow width."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from synthgate.cli import app, command_app
from synthgate.commands import reflow

REFLOW_CASES = [
    ("one line", "one line"),
    ("Summary.\n\n    Two lines\n    of prose.\n    ", "Summary.\n\nTwo lines of prose."),
    (
        "Summary.\n\nFirst\nparagraph.\n\nSecond\none.",
        "Summary.\n\nFirst paragraph.\n\nSecond one.",
    ),
    ("Summary.\n\n- item one\n- item two", "Summary.\n\n- item one\n- item two"),
    ("Summary.\n\n1. first\n2. second", "Summary.\n\n1. first\n2. second"),
    ("Summary.\n\n\bkeep\nthese lines", "Summary.\n\n\bkeep\nthese lines"),
]


@pytest.mark.parametrize(("doc", "expected"), REFLOW_CASES)
def test_reflow(doc: str, expected: str) -> None:
    assert reflow(doc) == expected


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """(name, click command) of every command under `group`, groups included, recursively."""
    found = []
    for name, command in group.commands.items():
        found.append((" ".join((*path, name)), command))
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            found.extend(_commands(command, (*path, name)))
    return found


def test_every_command_help_is_reflowed() -> None:
    commands = _commands(typer.main.get_command(app))
    assert {"run", "export", "review stats", "users add"} <= {name for name, _ in commands}
    for name, command in commands:
        for paragraph in (command.help or "").split("\n\n"):
            lines = paragraph.split("\n")
            if len(lines) > 1:  # only lists keep their line breaks
                assert all(line.lstrip().startswith(("-", "\b")) for line in lines[1:]), (
                    name,
                    paragraph,
                )


def test_help_renders_at_80_columns() -> None:
    result = CliRunner().invoke(app, ["export", "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0
    assert "yolo: images/<subset>/<name>, labels/<subset>/<stem>.txt (class cx cy w h," in (
        result.output
    )


def test_flags_show_no_value_in_help() -> None:
    """A flag takes no value: its help line names no placeholder (typer 0.29 wrote `--wait
    <bool>` and `--help <bool>`, as if `--wait true` were the way to write it)."""
    root = typer.main.get_command(app)
    for name, command in [("", root), *_commands(root)]:
        result = CliRunner().invoke(app, [*name.split(), "--help"], terminal_width=100)
        assert result.exit_code == 0, name
        flags = [
            option
            for param in command.params
            if getattr(param, "is_flag", False)
            for option in param.opts
        ] + ["--help"]
        for line in result.output.splitlines():
            words = line.strip("│ ").split()
            if words and words[0] in flags:
                assert len(words) == 1 or not words[1].startswith("<"), (name, line)


NAMES = {  # the app's commands and groups
    *(
        c.name or typer.main.get_command_name(c.callback.__name__)
        for c in app.registered_commands
        if c.callback
    ),
    *(g.name for g in app.registered_groups),
}
CALLS = [
    ["--help"],
    ["--version"],
    ["validat"],  # misspelt: the whole app answers, with its list of commands
    *([name, "--help"] for name in ("run", "validate", "balance", "merge", "export", "serve")),
    *([name, "--help"] for name in ("worker", "submit", "status")),
    ["validate", "--bogus"],
    ["review"],
    ["review", "stats", "--help"],
    ["rubric", "--help"],
    ["users", "list", "--help"],
]


@pytest.mark.parametrize("args", CALLS, ids=[" ".join(c) for c in CALLS])
def test_a_call_answers_as_the_whole_app_would(args: list[str]) -> None:
    """main() hands typer only the command a call names (building every command's parameters
    cost 20 ms a call): the output and exit code are the whole app's."""
    chosen = command_app(args)
    held = len(chosen.registered_commands) + len(chosen.registered_groups)
    assert held == (1 if args[0] in NAMES else len(NAMES))
    ours = CliRunner().invoke(chosen, args, prog_name="synthgate", terminal_width=100)
    whole = CliRunner().invoke(app, args, prog_name="synthgate", terminal_width=100)
    assert (ours.exit_code, ours.output) == (whole.exit_code, whole.output)


def test_arguments_are_shown_in_upper_case() -> None:
    """Every command writes its arguments as CONFIG, PATH, SOURCE: status wrote {batch_id} and
    users add/remove {name}."""
    root = typer.main.get_command(app)
    for name, _ in _commands(root):
        result = CliRunner().invoke(app, [*name.split(), "--help"], terminal_width=100)
        assert result.exit_code == 0, name
        usage = next(line for line in result.output.splitlines() if "Usage:" in line)
        arguments = usage.split("[OPTIONS]", 1)[1]
        assert arguments == arguments.upper(), (name, usage)


def test_no_default_is_shown_in_stray_parentheses() -> None:
    """run --out showed `[default: (runs/<name>)]`: click puts a show_default text in
    parentheses. A default that is no value is said in the help, as every other command says it."""
    root = typer.main.get_command(app)
    for name, _ in _commands(root):
        result = CliRunner().invoke(app, [*name.split(), "--help"], env={"COLUMNS": "400"})
        assert result.exit_code == 0, name
        assert "[default: (" not in result.output, (name, result.output)
    result = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "400"})
    shown = " ".join(result.output.replace("│", " ").split())
    assert "(default: runs/<name>, <name> the config's name)." in shown, shown


def test_set_k_help_names_what_annotators_meet() -> None:
    """set-k's help said "`next` gives nothing": the CLI has no `next`; an annotator meets the
    review page's "All done", a client GET /api/review/next's 204."""
    result = CliRunner().invoke(app, ["review", "set-k", "--help"], terminal_width=200)
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert '(the review page says "All done", GET /api/review/next answers 204)' in said, said
    assert "`next`" not in said


# (command, what its help says of a number's accepted range, what it must not say)
RANGE_HELP = [
    (["review", "set-k"], "needs from now on (1 or more)", None),
    (["export"], "Share of the images in train, more than 0 and at most 1", None),
    (["rubric", "calibrate"], "held out to compare before and after, more than 0 and less", None),
    (["run"], "[x>=0]", "9223372036854775807"),  # the most a seed may be: noise in the help
]


@pytest.mark.parametrize(("command", "said", "unsaid"), RANGE_HELP, ids=lambda c: str(c))
def test_help_states_each_numbers_range(command: list[str], said: str, unsaid: str | None) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.replace("│", " ").split())
    assert said in shown, result.output
    assert unsaid is None or unsaid not in shown, result.output


# (arguments, what the refusal must say: the option, the value and the range)
RANGE_REFUSALS = [
    *(
        (["review", "set-k", *given, "--db", "sqlite:///{tmp}/x.db"], [f"(got {k})", "from 1 to"])
        for given, k in ((["0"], 0), (["-1"], -1), (["-7", "--batch", "b"], -7))
    ),
    *(
        (
            ["rubric", "calibrate", "-o", "{tmp}/c.yaml", "--holdout", bad],
            [f"--holdout {shown}: must be more than 0 and less than 1"],
        )
        for bad, shown in (("0", "0.0"), ("1", "1.0"), ("1.5", "1.5"), ("nan", "nan"))
    ),
    (["run", "configs/quickstart.yaml", "--seed", "-1"], ["--seed", "-1", "x>=0"]),
    (
        ["run", "configs/quickstart.yaml", "--seed", str(2**63), "-o", "{tmp}/run"],
        ["--seed", str(2**63), "must be from 0 to"],
    ),
]


@pytest.mark.parametrize(("args", "words"), RANGE_REFUSALS, ids=lambda c: " ".join(c))
def test_a_number_out_of_range_is_refused_naming_option_value_and_range(
    args: list[str], words: list[str], tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[1]
    filled = [a.format(tmp=tmp_path).replace("configs/", f"{root}/configs/") for a in args]
    result = CliRunner().invoke(app, filled, terminal_width=400)
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert all(word in said for word in words), said
    assert sorted(tmp_path.iterdir()) == []  # refused before anything is written


def test_a_negative_number_argument_is_no_option() -> None:
    """set-k -1 was "No such option: -1" (click takes any word starting with "-" for an
    option): it is K, refused by the range check above; a misspelled option is still one, and
    --help after it still shows the help."""
    misspelled = CliRunner().invoke(app, ["review", "set-k", "-1", "--dbb", "x"])
    assert misspelled.exit_code == 2
    assert "No such option: --dbb" in misspelled.output, misspelled.output
    for args in (["-1", "--batch", "-2"], ["--batch", "-2", "-1"]):  # -2 is --batch's value
        refused = CliRunner().invoke(app, ["review", "set-k", *args])
        assert refused.exit_code == 2
        assert "(got -1)" in refused.output, refused.output
    helped = CliRunner().invoke(app, ["review", "set-k", "-1", "--help"], env={"COLUMNS": "200"})
    shown = " ".join(helped.output.replace("│", " ").split())
    assert helped.exit_code == 0, shown
    assert "Distinct annotators each open item needs from now on (1 or more)." in shown


def _items_given(args: list[str]) -> str:
    """What a command of NumberArgumentCommand like `review reopen` (items, an option that takes
    a value, one that takes many, a flag) read from `args`."""
    from synthgate.commands import NumberArgumentCommand

    probe = typer.Typer()

    @probe.command(cls=NumberArgumentCommand)
    def reopen(
        items: list[int] = typer.Argument(...),
        reason: str = typer.Option("", "--reason"),
        level: list[str] = typer.Option([], "--level"),
        dry_run: bool = typer.Option(False, "--dry-run"),
    ) -> None:
        typer.echo(f"{items} {reason!r} {level} {dry_run}")

    @probe.command()
    def other() -> None:  # a group, as synthgate's
        pass

    result = CliRunner().invoke(probe, ["reopen", *args])
    return f"{result.exit_code} {result.output.strip()}"


@pytest.mark.parametrize(
    ("args", "read"),
    [
        (["5", "-3", "7"], "0 [5, -3, 7] '' [] False"),
        (["-3", "7", "--", "9"], "0 [-3, 7, 9] '' [] False"),
        (["--reason", "--level", "-3"], "0 [-3] '--level' [] False"),
        (["-3", "--reason", "-2", "--level", "-5", "-6"], "0 [-3, -6] '-2' ['-5'] False"),
        (["--dry-run", "-3", "--reason=-x"], "0 [-3] '-x' [] True"),
    ],
    ids=["order kept", "order kept with --", "a value like an option", "values", "flag and ="],
)
def test_negative_items_keep_their_order_and_options_their_values(
    args: list[str], read: str
) -> None:
    """Negative numbers were moved after "--", behind the other items: reopen 5 -3 7 read
    [5, 7, -3]; and a word after an option that takes a value is that value, whatever it
    looks like (--reason --level -3 said 'No such option: -3')."""
    assert _items_given(args) == read


@pytest.mark.parametrize("command", ["adjudicate", "reopen"])
def test_a_negative_item_is_no_option(command: str, tmp_path: Path) -> None:
    """review adjudicate -3 and review reopen -3 said click's "No such option: -3", as set-k -1
    did: the item is read as one, and refused as no item of the queue."""
    from synthgate.storage.store import Store

    url = f"sqlite:///{tmp_path / 'queue.db'}"
    Store(url).close()
    args = ["review", command, "-3", "--as", "lead", "--db", url]
    if command == "adjudicate":
        args += ["--verdict", "accept"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2
    assert "no review item -3" in refused.output, refused.output


def test_examples_come_last() -> None:
    """Every command's help ends with its examples (review import put its Example before the
    description): after the first Example paragraph, each one is a synthgate command line."""
    for name, command in _commands(typer.main.get_command(app)):
        paragraphs = (command.help or "").split("\n\n")
        first = next((i for i, p in enumerate(paragraphs) if p.startswith("Example:")), None)
        if first is not None:
            for paragraph in paragraphs[first:]:
                assert "synthgate " in paragraph, (name, paragraph)


def test_export_layout_help_says_what_it_is_first_and_keeps_every_fact() -> None:
    """--layout's help began "coco only: coco (…", the option's name and a format's run
    together; it says what the option is first, and still names every file and reader."""
    (layout,) = [
        p for p in typer.main.get_command(app).commands["export"].params if p.name == "layout"
    ]
    text = layout.help
    assert text.startswith("Folder layout, with --format coco only: coco (the default: "), text
    facts = [
        "annotations/instances_<subset>.json",
        "images/<subset>/",
        "datumaro, CVAT, pycocotools and torchvision",
        "fiftyone (<subset>/labels.json and <subset>/data/",
    ]
    assert all(fact in text for fact in facts), text


DEFAULT_DB = (
    "$SYNTHGATE_DB_URL, else sqlite:///<runs dir>/synthgate.db, the runs dir being "
    "$SYNTHGATE_RUNS_DIR or runs"
)


def test_every_db_option_gives_its_default_one_way() -> None:
    """serve and users wrote the default database as sqlite:///<runs dir>/synthgate.db, the
    review commands as <runs dir>/synthgate.db; and serve's <runs dir> read as its --runs-dir,
    which the database does not follow (storage.database_url reads the settings)."""
    defaulted = set()
    for name, command in _commands(typer.main.get_command(app)):
        for param in command.params:
            if param.name == "db" and "runs dir" in (param.help or ""):
                assert DEFAULT_DB in param.help, (name, param.help)
                defaulted.add(name)
    assert {"serve", "users add", "review stats", "review import", "rubric calibrate"} <= defaulted


def test_serve_runs_dir_says_the_default_database_does_not_follow_it() -> None:
    """`serve --runs-dir /srv/runs` keeps its default database in $SYNTHGATE_RUNS_DIR or runs,
    where `synthgate users` (which has no --runs-dir) finds the same one; its help said only
    where batches run, and read beside --db's '<runs dir>/synthgate.db' as if the database
    moved with it."""
    (runs_dir,) = [
        p for p in typer.main.get_command(app).commands["serve"].params if p.name == "runs_dir"
    ]
    text = " ".join((runs_dir.help or "").split())
    assert "The default database does not follow it" in text, text
    assert "synthgate users" in text and "--db" in text, text
