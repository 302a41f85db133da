"""Worker settings and the worker CLI's bad input: one clear message and exit 2, nothing made."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from factories import small_config
from typer.testing import CliRunner
from workers_support import free_port

from synthgate.cli import app
from synthgate.commands import flag_of
from synthgate.config import parse_config
from synthgate.errors import InputError
from synthgate.pipeline import batch_id_for
from synthgate.storage.blobs import BlobStore
from synthgate.storage.chunks import ChunkState
from synthgate.storage.store import Store
from synthgate.workers.app import WorkerSettings, check_broker
from synthgate.workers.chunks import WorkerContext, chunk_rows, run_chunk
from synthgate.workers.runner import load_chunk
from synthgate.workers.submit import publish

SETTINGS_ERRORS = [
    ({"db_url": None}, "a database URL as db or set SYNTHGATE_DB_URL"),
    ({"blob_url": None}, "as blobs or set SYNTHGATE_BLOB_URL"),
    ({"visibility_timeout": 100.0, "time_limit": 200.0, "soft_time_limit": 100.0}, "VISIBILITY"),
    ({"soft_time_limit": 900.0, "time_limit": 900.0}, "SOFT_TIME_LIMIT"),
]


@pytest.mark.parametrize(("overrides", "words"), SETTINGS_ERRORS)
def test_settings_errors_name_the_fix(overrides: dict[str, Any], words: str) -> None:
    settings = WorkerSettings(**{"db_url": "sqlite://", "blob_url": "/tmp/b", **overrides})
    with pytest.raises(InputError, match=words):
        settings.require_shared_stores()


class NoBroker:
    """A Celery app whose broker refuses every connection."""

    conf = SimpleNamespace(broker_url="redis://127.0.0.1:1/0")

    def producer_or_acquire(self) -> Any:
        raise ConnectionRefusedError(111, "Connection refused")


def no_db() -> None:
    WorkerSettings(db_url=None, blob_url="/tmp/b").require_shared_stores()


def no_blobs() -> None:
    WorkerSettings(db_url="sqlite://", blob_url=None).require_shared_stores()


def unreachable_broker() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    check_broker(WorkerSettings(broker_url=url, db_url="sqlite://", blob_url="/tmp/b"))


def cannot_publish() -> None:
    chunk = ChunkState("b:text:0", "b", "text", 0, 1, "cpu", "queued", 0, 0, None)
    publish(NoBroker(), [chunk])


def blobs_elsewhere(tmp_path: Path) -> None:
    settings = WorkerSettings(db_url=f"sqlite:///{tmp_path / 'shared.db'}", blob_url=str(tmp_path))
    context = WorkerContext.from_settings(settings)
    config = parse_config(small_config(text=None), source=tmp_path / "batch.yaml")
    batch_id = batch_id_for(config)
    context.store.put_batch(
        batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
    )
    [row] = chunk_rows(config, batch_id)
    context.store.chunks.put([row])
    run_chunk(context, row["id"])
    made = context.store.chunks.get(row["id"])
    assert made is not None
    load_chunk(context.store, BlobStore(tmp_path / "elsewhere"), made)


# Messages of workers/ that tell the user to pass another setting: a library user (or the API)
# reads the parameter, the CLI its flag. (id, what raises, the library's words, the CLI's)
PARAMETER_ERRORS = [
    ("no-db", lambda _tmp: no_db(), "URL as db or", "URL as --db or"),
    ("no-blobs", lambda _tmp: no_blobs(), "as blobs or set", "as --blobs or set"),
    ("worker-broker", lambda _tmp: unreachable_broker(), "URL as broker (", "URL as --broker ("),
    ("publish", lambda _tmp: cannot_publish(), "URL as broker /", "URL as --broker /"),
    ("blobs-elsewhere", blobs_elsewhere, "blob store as blobs;", "blob store as --blobs;"),
]


@pytest.mark.parametrize(
    ("case", "raises", "library", "cli"), PARAMETER_ERRORS, ids=[c[0] for c in PARAMETER_ERRORS]
)
def test_worker_messages_name_the_parameter_in_python_and_the_flag_in_the_cli(
    case: str, raises: Callable[[Path], None], library: str, cli: str, tmp_path: Path
) -> None:
    with pytest.raises(InputError) as raised:
        raises(tmp_path)
    error = raised.value
    assert library in str(error) and "--" not in str(error), str(error)
    shown = error.describe(flag_of(error.field) if error.field else None, as_flag=flag_of)
    assert cli in shown, shown


CLI_ERRORS = [
    (["submit", "{config}"], "--db"),
    (["worker", "--db", "sqlite://", "--blobs", "{tmp}", "--queues", "gpu,tpu"], "tpu"),
    (["status", "nope", "--db", "sqlite:///{tmp}/x.db"], "no database at"),
]


@pytest.mark.parametrize(("args", "words"), CLI_ERRORS)
def test_cli_errors_exit_2_with_one_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], words: str
) -> None:
    for name in ("SYNTHGATE_DB_URL", "SYNTHGATE_BLOB_URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    filled = [a.format(config=config, tmp=tmp_path) for a in args]
    result = CliRunner().invoke(app, filled)
    assert result.exit_code == 2, result.output
    assert words in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists()  # reading a batch never creates a database


def test_submit_refuses_a_rubric_of_the_other_modality_naming_the_config(tmp_path: Path) -> None:
    """It was refused only while the batch was being sent (measuring_rubric), without the
    config file named; now before a store is opened."""
    config = tmp_path / "batch.yaml"
    text = small_config()["text"]
    config.write_text(yaml.safe_dump(small_config(text={**text, "rubric": "detection"})))
    result = CliRunner().invoke(app, ["submit", str(config), "--db", f"sqlite:///{tmp_path}/x.db"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "batch.yaml: text.rubric: detection judges image samples, not text" in message, message
    assert "Traceback" not in result.output and not (tmp_path / "x.db").exists()


def test_status_of_an_unknown_batch(tmp_path: Path) -> None:
    Store(f"sqlite:///{tmp_path}/x.db").close()  # an empty database
    result = CliRunner().invoke(app, ["status", "nope", "--db", f"sqlite:///{tmp_path}/x.db"])
    assert result.exit_code == 2 and "not in the database" in result.output


def test_status_of_an_unknown_batch_says_what_to_check(tmp_path: Path) -> None:
    """A mistyped id and a --db other than submit's look alike here: the message names both
    (it said 'not in the database' and no fix)."""
    Store(f"sqlite:///{tmp_path}/x.db").close()
    result = CliRunner().invoke(app, ["status", "nope", "--db", f"sqlite:///{tmp_path}/x.db"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert message.startswith(f"error: batch nope: not in the database sqlite:///{tmp_path}/x.db;")
    assert "the batch id `synthgate submit` printed" in message, message
    assert "--db the database `synthgate submit` was given" in message, message


def test_a_worker_with_no_broker_fails_at_once_naming_the_broker_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve` and `worker` alike: an unreachable broker at start is exit 2 and one line, not
    a worker that retries for ever."""
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    args = ["worker", "--broker", nobody, "--db", f"sqlite:///{tmp_path}/x.db"]
    started = time.monotonic()
    result = CliRunner().invoke(app, [*args, "--blobs", str(tmp_path / "blobs")])
    assert time.monotonic() - started < 30
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: --broker {nobody}: not reachable (")
    assert "start Redis there" in line and "SYNTHGATE_BROKER_URL" in line


def test_submit_hides_the_broker_password_and_names_a_bad_blob_folder(tmp_path: Path) -> None:
    """`submit` printed the broker URL with its password when it could not publish (`worker`
    masks it), and a --blobs path that is a file ended in a FileExistsError traceback."""
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    shared = ["--db", f"sqlite:///{tmp_path / 'shared.db'}"]
    broker = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    sent = CliRunner().invoke(
        app,
        ["submit", str(config), *shared, "--blobs", str(tmp_path / "blobs"), "--broker", broker],
    )
    assert sent.exit_code == 2 and "s3cret" not in sent.output and "user:***@" in sent.output
    (tmp_path / "afile").write_text("")
    bad = CliRunner().invoke(
        app, ["submit", str(config), *shared, "--blobs", str(tmp_path / "afile"), "--wait",
              "--out", str(tmp_path / "out"), "--broker", broker],
    )  # fmt: skip
    assert bad.exit_code == 2 and "cannot be the blob folder" in bad.output
    assert "Traceback" not in bad.output


def test_status_counts_a_failed_sample_as_failed_not_made(tmp_path: Path) -> None:
    """The made column counted failed samples: 4 failed of 4 showed 'made 4 ... failed 4'."""
    import synthgate as sg
    from synthgate.storage.store import sqlite_url

    run = sg.run(small_config(text=None), out=tmp_path / "run")
    store = Store(sqlite_url(run.out / "synthgate.db"))
    first = next(store.iter_samples(run.batch_id, "image"))
    store.upsert_samples([first.model_copy(update={"status": "failed"})], reason="broke")
    store.close()
    shown = CliRunner().invoke(
        app, ["status", run.batch_id, "--db", sqlite_url(run.out / "synthgate.db")]
    )
    assert shown.exit_code == 0, shown.output
    row = next(line for line in shown.output.splitlines() if "image" in line)
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    planned, made, failed = int(cells[1]), int(cells[2]), int(cells[-1])
    assert (planned, made, failed) == (6, 5, 1), row


def test_a_worker_that_cannot_reach_its_stores_does_not_start(tmp_path: Path) -> None:
    """It said ready, then took every task only to fail it (an unreachable database: the task
    acknowledged and dropped, never retried)."""
    broker = ["--broker", f"redis://127.0.0.1:{free_port()}/0"]
    (tmp_path / "afile").write_text("")
    cases = [
        (["--db", "sqlite:////nonexistent-folder/x.db", "--blobs", str(tmp_path / "b")],
         "cannot open the database"),
        (["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", str(tmp_path / "afile")],
         "cannot be the blob folder"),
    ]  # fmt: skip
    for options, words in cases:
        result = CliRunner().invoke(app, ["worker", *options, *broker])
        assert result.exit_code == 2 and words in result.output, result.output


def test_status_says_queued_until_a_worker_takes_a_chunk(tmp_path: Path) -> None:
    """A batch no worker had taken a chunk of showed as 'running', as if it were being made."""
    config = parse_config(small_config(), source=tmp_path / "batch.yaml")
    batch_id, db = batch_id_for(config), f"sqlite:///{tmp_path / 'shared.db'}"
    store = Store(db)
    store.put_batch(
        batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
    )
    store.set_batch_status(batch_id, "running")
    store.chunks.put(chunk_rows(config, batch_id))

    def title() -> str:
        shown = CliRunner().invoke(app, ["status", batch_id, "--db", db])
        assert shown.exit_code == 0, shown.output
        return shown.output.splitlines()[0].strip()

    assert title().endswith(f"batch {batch_id} (queued: no worker has taken any of its chunks yet)")
    store.chunks.begin(f"{batch_id}:text:0", holder="task", lease_seconds=60)
    assert title().endswith(f"batch {batch_id} (running)")
    store.close()


def test_open_store_says_the_options_its_caller_has(tmp_path: Path) -> None:
    """open_store's refusal of a missing database always named {run} ("check --db (or --run)"),
    so status, which has no --run, refused a missing file with a check of its own first. A caller
    now passes the hint with its own options; the default is the review commands' as it was."""
    from synthgate.storage.database import open_store

    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(InputError) as caught:
        open_store(url, must_exist=True, missing_hint="check {db}: it is the one you submitted to")
    assert caught.value.options == ("db",)
    assert (
        str(caught.value)
        == f"no database at {tmp_path / 'x.db'}; check db: it is the one you submitted to"
    )
    with pytest.raises(InputError) as caught:
        open_store(url, must_exist=True)
    assert caught.value.options == ("db", "run")
    assert str(caught.value).endswith(
        "; check db (or run): it must name a database that a run or batch wrote"
    )
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("empty", [False, True], ids=["missing", "empty file"])
def test_status_of_a_missing_database_names_only_its_own_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty: bool
) -> None:
    """status has --db and no --run: the shared refusal said "check --db (or --run)"."""
    monkeypatch.delenv("SYNTHGATE_DB_URL", raising=False)
    path = tmp_path / "x.db"
    if empty:
        path.touch()
    result = CliRunner().invoke(app, ["status", "nope", "--db", f"sqlite:///{path}"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    found = "an empty file, not a database," if empty else "no database"
    assert f"{found} at {path}; check --db" in message, message
    assert "--run" not in message, message
    assert path.exists() == empty  # nothing created


# (the environment variable, its bad value, words of the message)
BAD_ENVIRONMENT = [
    ("SYNTHGATE_LEASE_TIMEOUT", "abc", "SYNTHGATE_LEASE_TIMEOUT='abc': not a number"),
    ("SYNTHGATE_HEARTBEAT_INTERVAL", "-1", "SYNTHGATE_HEARTBEAT_INTERVAL='-1': must be above 0"),
    ("SYNTHGATE_CPU_CHUNK_FACTOR", "1.5", "SYNTHGATE_CPU_CHUNK_FACTOR='1.5': not a whole number"),
    ("SYNTHGATE_GPU_GENERATORS", "diffusion", "SYNTHGATE_GPU_GENERATORS='diffusion': not a JSON"),
    ("SYNTHGATE_RETRY_BACKOFF_MAX", "inf", "SYNTHGATE_RETRY_BACKOFF_MAX='inf': not a finite"),
]


@pytest.mark.parametrize(("name", "value", "words"), BAD_ENVIRONMENT)
@pytest.mark.parametrize("command", ["worker", "submit", "status"])
def test_a_bad_setting_in_the_environment_is_named_with_its_value_and_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    name: str,
    value: str,
    words: str,
) -> None:
    """It was a pydantic traceback, exit 1; and `inf` was taken (a backoff of inf never sent a
    stalled batch again)."""
    monkeypatch.setenv(name, value)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    db, broker = f"sqlite:///{tmp_path / 'x.db'}", f"redis://127.0.0.1:{free_port()}/0"
    args = {
        "worker": ["worker", "--db", db, "--blobs", str(tmp_path / "b"), "--broker", broker],
        "submit": ["submit", str(config), "--db", db, "--blobs", str(tmp_path / "b")],
        "status": ["status", "nope", "--db", db],
    }[command]
    result = CliRunner().invoke(app, args)
    message = " ".join(result.output.split())
    assert result.exit_code == 2, (message, result.exception)
    assert message.startswith(f"error: {words}"), message
    assert "unset it" in message, message
    assert not (tmp_path / "x.db").exists()  # refused before anything is opened


@pytest.mark.parametrize(
    ("blobs", "words"),
    [("s3://bucket/blobs", "Install s3fs to access S3"), ("nosuchfs://x", "nosuchfs")],
)
def test_a_worker_whose_blob_url_cannot_be_opened_does_not_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blobs: str, words: str
) -> None:
    """Checked on a cluster: the worker said ready, then each of a batch's 54 samples failed."""
    monkeypatch.setitem(sys.modules, "s3fs", None)  # not installed, wherever the test runs
    broker = ["--broker", f"redis://127.0.0.1:{free_port()}/0"]
    options = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", blobs]
    result = CliRunner().invoke(app, ["worker", *options, *broker])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert message.startswith(f"error: --blobs {blobs}: cannot be the blob store"), message
    assert words in message and "Traceback" not in message, message


def test_a_worker_with_an_unknown_log_level_does_not_start(tmp_path: Path) -> None:
    """Checked on a cluster, the broker up: the worker ended in click's BadParameter traceback.
    The level is checked with the other options, before any store or the broker is reached."""
    broker = ["--broker", f"redis://127.0.0.1:{free_port()}/0"]
    options = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", str(tmp_path / "b")]
    result = CliRunner().invoke(app, ["worker", *options, *broker, "--loglevel", "bogus"])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert "--loglevel bogus" in message and "INFO" in message, message
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("given", [["--out", "{tmp}/run"], ["--timeout", "30"]])
def test_submit_refuses_an_option_of_wait_without_wait(tmp_path: Path, given: list[str]) -> None:
    """Checked on a redis cluster: `submit small.yaml --out dist/never` sent the batch and
    exit 0; dist/never was never written (nothing said). Refused before anything is recorded
    or sent."""
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    shared = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", str(tmp_path / "b")]
    broker = ["--broker", f"redis://127.0.0.1:{free_port()}/0"]
    options = [option.format(tmp=tmp_path) for option in given]
    result = CliRunner().invoke(app, ["submit", str(config), *shared, *broker, *options])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert message.startswith(f"error: {given[0]} is for --wait"), message
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize("seconds", ["nan", "inf"])
def test_submit_refuses_a_timeout_that_is_no_number_of_seconds(
    tmp_path: Path, seconds: str
) -> None:
    """`--timeout nan` passed click's min=0 and meant no limit at all (a NaN deadline is never
    reached); it and inf are refused before anything is recorded or sent."""
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    shared = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", str(tmp_path / "b")]
    broker = ["--broker", f"redis://127.0.0.1:{free_port()}/0"]
    result = CliRunner().invoke(
        app, ["submit", str(config), *shared, *broker, "--wait", "--timeout", seconds]
    )
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert message.startswith(f"error: --timeout {seconds}: is no number of seconds"), message
    assert not (tmp_path / "x.db").exists()


def test_a_submit_out_of_time_names_the_database_status_needs(tmp_path: Path) -> None:
    """Checked on a redis cluster with no worker: the status command it named, run as said,
    answered 'no database: pass --db URL or set SYNTHGATE_DB_URL'."""
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    shared = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", str(tmp_path / "b")]
    result = CliRunner().invoke(
        app,
        ["submit", str(config), *shared, "--broker", "memory://", "--wait", "--timeout", "0.5",
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert "not finished after 0.5s (0 of 6 samples)" in message, message
    assert "` (with the same --db) shows where it stands" in message, message
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("command", "broker"),
    [("worker", "http://127.0.0.1:6379/0"), ("worker", "localhost:6379"),
     ("submit", "http://127.0.0.1:6379/0"), ("submit", "localhost:6379")],
)  # fmt: skip
def test_a_broker_that_is_no_broker_url_is_named_so_before_anything_is_recorded(
    tmp_path: Path, command: str, broker: str
) -> None:
    """Checked on a redis cluster: `worker --broker http://foo` said "not reachable (KeyError:
    'No such transport: http'); start Redis there"; `submit --broker localhost:6379` (the
    scheme left out) recorded the batch and said the broker's host was not known."""
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    shared = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", str(tmp_path / "b")]
    first = [command] if command == "worker" else [command, str(config)]
    result = CliRunner().invoke(app, [*first, *shared, "--broker", broker])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert message.startswith(f"error: --broker {broker}: not a broker URL"), message
    assert "redis://localhost:6379/0" in message and "start Redis" not in message, message
    assert not (tmp_path / "x.db").exists()


def test_a_followed_batch_whose_broker_does_not_answer_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checked on a redis cluster: redis shut down 2 s into a `submit --wait`, a worker
    running; after 60 s it asked whether a worker served queue cpu, and never named the broker.
    The broker is stood in for: sent to, then silent (`queued_messages` has no answer)."""
    from synthgate.workers import submit as worker_submit

    monkeypatch.setattr(worker_submit, "WAITING_NOTE_S", 0.2)
    monkeypatch.setattr(worker_submit, "queued_messages", lambda *_a, **_k: None)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config(text=None)))
    shared = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", str(tmp_path / "b")]
    result = CliRunner().invoke(
        app,
        ["submit", str(config), *shared, "--broker", "memory://", "--wait", "--timeout", "1.5",
         "--out", str(tmp_path / "run")],
    )  # fmt: skip
    message = " ".join(result.output.split())
    assert "s: the broker memory:// does not answer; start it again" in message, message
    assert "is a worker serving" not in message, message


@pytest.mark.parametrize(
    ("command", "broker", "words"),
    [("worker", "localhost:6379", "not a broker URL"),
     ("submit", "localhost:6379", "not a broker URL"),
     ("worker", "redis://127.0.0.1:{port}/0", "not reachable")],
)  # fmt: skip
def test_a_bad_broker_url_from_the_environment_is_named_as_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, broker: str, words: str
) -> None:
    """SYNTHGATE_BROKER_URL=localhost:6379 (the scheme left out), or one where no broker
    listens, no --broker given: the refusal read "--broker localhost:6379: not a broker URL",
    an option nobody passed, and the variable that holds the value went unnamed."""
    broker = broker.format(port=free_port())
    monkeypatch.setenv("SYNTHGATE_BROKER_URL", broker)
    config = tmp_path / "batch.yaml"
    config.write_text(yaml.safe_dump(small_config()))
    shared = ["--db", f"sqlite:///{tmp_path / 'x.db'}", "--blobs", str(tmp_path / "b")]
    first = [command] if command == "worker" else [command, str(config)]
    result = CliRunner().invoke(app, [*first, *shared])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert message.startswith(f"error: SYNTHGATE_BROKER_URL='{broker}': {words}"), message
    assert f"--broker {broker}" not in message, message


def test_a_blob_url_from_the_environment_that_cannot_be_opened_is_named_as_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SYNTHGATE_BLOB_URL=s3://... in a worker's environment, s3fs not installed, no --blobs
    given: eea0287's refusal read "--blobs s3://bucket/blobs: cannot be the blob store", an
    option nobody passed."""
    monkeypatch.setitem(sys.modules, "s3fs", None)  # not installed, wherever the test runs
    monkeypatch.setenv("SYNTHGATE_BLOB_URL", "s3://bucket/blobs")
    broker = ["--broker", f"redis://127.0.0.1:{free_port()}/0"]
    result = CliRunner().invoke(app, ["worker", "--db", f"sqlite:///{tmp_path / 'x.db'}", *broker])
    message = " ".join(result.output.split())
    assert result.exit_code == 2, message
    assert message.startswith(
        "error: SYNTHGATE_BLOB_URL='s3://bucket/blobs': cannot be the blob store"
    ), message
    assert "--blobs s3://" not in message and "Install s3fs" in message, message
