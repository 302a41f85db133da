"""The database a `review`, `serve` or `users` command names: bad, unreachable or non-database
URLs are one clear message with exit code 2, read-only commands never create an empty database,
Label Studio imports refuse what is not a task list, and the help texts say what they should."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthgate.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "200", "SYNTHGATE_DB_URL": "", "NO_COLOR": "1"}


def invoke(*args: str):
    return runner.invoke(app, list(args), env=ENV)


def flat(text: str) -> str:
    return " ".join(text.split())


COMMANDS = [
    ["review", "stats"],
    ["review", "agreement"],
    ["review", "enqueue"],
    ["users", "list"],
    ["users", "add", "x", "--role", "admin"],
    ["serve"],
]
BAD_URLS = [
    # (id, url, words the message must hold)
    ("not-a-url", "nonsense", ["'nonsense'", "not a database URL", "sqlite:///"]),
    ("unknown-dialect", "foo://x", ["not a database URL", "postgresql://"]),
    ("unreachable", "postgresql://u:secret@127.0.0.1:1/x", ["cannot open the database", "127.0.0.1"]),
    ("not-a-database", "sqlite:///{tmp}/file.json", ["not a usable database", "file.json"]),
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
@pytest.mark.parametrize(("case", "url", "words"), BAD_URLS, ids=[c[0] for c in BAD_URLS])
def test_bad_db_urls_are_input_errors(tmp_path: Path, command, case, url, words):
    (tmp_path / "file.json").write_text('{"a": 1}\n' * 100)
    result = invoke(*command, "--db", url.replace("{tmp}", str(tmp_path)))
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    message = flat(result.stderr)
    for word in words:
        assert word in message
    assert "secret" not in message  # passwords are masked


@pytest.mark.parametrize(
    "command",
    [
        ["review", "stats"],
        ["review", "agreement"],
        ["review", "export", "--out", "{tmp}/tasks.json"],
    ],
    ids=lambda c: c[1],
)
def test_read_only_commands_refuse_a_missing_database(tmp_path: Path, command):
    missing = tmp_path / "typo" / "synthgate.db"
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    result = invoke(*args, "--db", f"sqlite:///{missing}")
    assert result.exit_code == 2, result.output
    assert f"no database at {missing}" in flat(result.stderr)
    assert "check --db (or --run)" in flat(result.stderr)
    assert not missing.exists() and not missing.parent.exists()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]))
@pytest.mark.parametrize(("case", "url", "words"), BAD_URLS, ids=[c[0] for c in BAD_URLS])
def test_a_bad_db_url_from_the_environment_is_named_as_the_variable(
    tmp_path: Path, command, case, url, words
):
    """SYNTHGATE_DB_URL=foo://x, no --db given: the refusal read "--db 'foo://x': not a
    database URL", an option nobody passed, and the variable that holds the value went
    unnamed (as SYNTHGATE_BROKER_URL's and SYNTHGATE_BLOB_URL's refusals name theirs)."""
    (tmp_path / "file.json").write_text('{"a": 1}\n' * 100)
    env = {**ENV, "SYNTHGATE_DB_URL": url.replace("{tmp}", str(tmp_path))}
    result = runner.invoke(app, command, env=env)
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert message.startswith("error: SYNTHGATE_DB_URL="), message
    assert "--db" not in message, message
    for word in words:
        assert word in message
    assert "secret" not in message  # passwords are masked


def test_a_missing_database_from_the_environment_is_named_as_the_variable(tmp_path: Path):
    """A read-only command whose database is SYNTHGATE_DB_URL's, not there: it said "check
    --db (or --run)" to a user who passed neither."""
    missing = tmp_path / "typo" / "synthgate.db"
    env = {**ENV, "SYNTHGATE_DB_URL": f"sqlite:///{missing}"}
    result = runner.invoke(app, ["review", "stats"], env=env)
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert message.startswith("error: SYNTHGATE_DB_URL='sqlite:///"), message
    assert f"': no database at {missing}; point it at a database" in message, message
    assert "--db" not in message, message
    assert not missing.exists() and not missing.parent.exists()


def test_import_refuses_a_folder_and_a_single_object(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'review.db'}"
    folder = invoke("review", "import", str(tmp_path), "--db", db)
    assert folder.exit_code == 2 and "is a folder" in flat(folder.stderr), folder.output
    single = tmp_path / "one.json"
    single.write_text('{"id": 1, "data": {"item_id": 1}, "annotations": []}')
    one = invoke("review", "import", str(single), "--db", db)
    assert one.exit_code == 2, one.output
    assert "a Label Studio export is a JSON list of tasks" in flat(one.stderr)


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (["serve"], ["$SYNTHGATE_DB_URL", "<runs dir>/synthgate.db", "--data-root", "--max-samples", "10000", "SYNTHGATE_MAX_OBJECTS", "Example:"]),
        (["review", "import"], ["needing the number of annotators it was enqueued with", "Example:"]),
        # The quickstart's queue holds images and texts: an example without --modality failed
        (["review", "export"], ["Example: synthgate review export", "--run runs/quickstart --modality image --include all --email-domain"]),
        (["review", "agreement"], ["Example: synthgate review agreement"]),
        (["review", "stats"], ["$SYNTHGATE_DB_URL", "<runs dir>/synthgate.db"]),
        (["rubric", "calibrate"], ["$SYNTHGATE_DB_URL", "<runs dir>/synthgate.db"]),
        (["users", "add"], ["Example: synthgate users add"]),
        (["users", "list"], ["$SYNTHGATE_DB_URL", "<runs dir>/synthgate.db"]),
    ],
    ids=lambda c: "-".join(c) if isinstance(c, list) and c[0] in ("serve", "review", "rubric", "users") else "",
)  # fmt: skip
def test_help_texts_keep_their_defaults_and_examples(command, words):
    result = invoke(*command, "--help")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    for word in words:
        assert word in text, f"{word!r} missing from {' '.join(command)} --help"
