"""`synthgate users add|list|remove` and `synthgate serve`: tokens shown once, stored hashed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthgate.cli import app
from synthgate.storage.store import Store
from synthgate.storage.users import Users, hash_token

runner = CliRunner()


def test_users_add_prints_the_token_once_and_stores_its_hash(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'users.db'}"
    result = runner.invoke(app, ["users", "add", "alice", "--role", "annotator", "--db", db])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert len(token) >= 40 and "\n" not in token
    users = Users(Store(db).engine)
    assert users.authenticate(token).name == "alice"
    with sqlite3.connect(tmp_path / "users.db") as connection:
        dump = "\n".join(connection.iterdump())
    assert token not in dump and hash_token(token) in dump
    listed = runner.invoke(app, ["users", "list", "--db", db])
    assert "alice" in listed.stdout and "annotator" in listed.stdout and token not in listed.stdout
    removed = runner.invoke(app, ["users", "remove", "alice", "--db", db])
    assert removed.exit_code == 0 and users.authenticate(token) is None


def test_users_errors_exit_2_with_a_clear_message(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'users.db'}"
    runner.invoke(app, ["users", "add", "bob", "--role", "admin", "--db", db])
    cases = [
        (["users", "add", "bob", "--role", "admin"], "exists already"),
        (["users", "add", "carol", "--role", "boss"], "choose one of annotator, requester, admin"),
        (["users", "remove", "nobody"], "no user 'nobody'"),
    ]
    for args, words in cases:
        result = runner.invoke(app, [*args, "--db", db])
        assert result.exit_code == 2, result.output
        assert words in result.stderr and "Traceback" not in result.output


def test_names_print_as_they_are_not_as_markup_or_emoji(tmp_path: Path):
    """A user name is shown as given: "[/x]" is not a closing tag (it was a MarkupError
    traceback) and ":cat:" not an emoji, in messages and in tables."""
    db = f"sqlite:///{tmp_path / 'users.db'}"
    name = "[/x] :cat: [bold] \\"
    added = runner.invoke(app, ["users", "add", name, "--role", "annotator", "--db", db])
    assert added.exit_code == 0, added.output
    assert f"created annotator {name!r}" in added.stderr
    listed = runner.invoke(app, ["users", "list", "--db", db])
    assert listed.exit_code == 0, listed.output
    assert name in listed.stdout
    removed = runner.invoke(app, ["users", "remove", name, "--db", db])
    assert removed.exit_code == 0, removed.output
    assert removed.stdout.strip() == f"removed {name!r}"


def test_removing_an_annotator_who_holds_review_tasks_names_review_release(tmp_path: Path):
    """cy asked for an item and was removed before deciding it: the item's slot stays theirs,
    so once the others are done `review stats` reads '1 open ... 0 assignments still to hand
    out' with nothing saying why. The removal says it and names the command that frees it."""
    from review_fixtures import fill

    from synthgate.review.queue import ReviewQueue

    db = f"sqlite:///{tmp_path / 'synthgate.db'}"
    store = Store(db)
    fill(store, review=2, audit=0, accepted=0)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.0)
    queue.enqueue_batch("b1")
    for who in ("ann", "cy"):
        runner.invoke(app, ["users", "add", who, "--role", "annotator", "--db", db])
    assert queue.next_item("cy") is not None
    removed = runner.invoke(app, ["users", "remove", "cy", "--db", db])
    assert removed.exit_code == 0, removed.output
    assert "cy holds 1 review task undecided" in removed.stdout, removed.stdout
    assert f"synthgate review release --annotator cy --db {db}" in removed.stdout
    gone = runner.invoke(app, ["users", "remove", "ann", "--db", db])  # held nothing
    assert gone.stdout.strip() == "removed 'ann'"
    store.close()


def test_serve_offers_db_host_and_port():
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--db", "--host", "--port"):
        assert option in result.stdout


@pytest.mark.parametrize("command", [["serve", "--port", "8765"], ["worker"]])
def test_a_bad_pixel_limit_stops_the_service_at_start(
    command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SYNTHGATE_MAX_IMAGE_PIXELS that is no number is the server's to fix: it stops serve
    and worker at start, rather than failing every requester's batch that reads an image."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    monkeypatch.setenv("SYNTHGATE_MAX_IMAGE_PIXELS", "lots")
    result = runner.invoke(app, command)
    assert result.exit_code == 2, result.output
    assert "SYNTHGATE_MAX_IMAGE_PIXELS='lots': not a number of pixels" in result.output
