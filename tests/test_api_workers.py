"""`synthgate serve --broker`: batches posted to /api/batches run on Celery workers.

A real redis-server and one real `synthgate worker` (tests/workers_support.py) make the posted
batch; the service judges it into its run folder and queues its doubtful samples, and the result
must match `synthgate run` of the same config and the in-process `BatchRunner`. Errors while a
batch is followed land on the batch; a misconfigured `serve` exits 2 before it starts.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from api_support import bearer, token_for
from factories import small_config
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner
from workers_support import Cluster, RedisServer, free_port

from synthgate.api.app import create_app
from synthgate.api.inputs import SOURCE
from synthgate.cli import app as cli_app
from synthgate.config import parse_config
from synthgate.errors import InputError
from synthgate.pipeline import batch_id_for
from synthgate.runner import run_batch
from synthgate.storage.tables import review_items
from synthgate.workers import runner as worker_runner
from synthgate.workers import submit as worker_submit
from synthgate.workers.app import WorkerSettings
from synthgate.workers.runner import CeleryRunner

pytestmark = pytest.mark.timeout(180)


def posted_config() -> dict[str, Any]:
    """The shared small config, with its templates named as a posted config must name them and
    images enough that the rubric picks one accepted sample for audit (procedural images are
    too clean to need review)."""
    config = small_config()
    config["image"]["count"] = 16
    config["text"]["templates"] = "configs/templates/support_tickets.yaml"
    return config


STATUSES = ("pending", "accepted", "review", "rejected", "failed")
# Seconds, not the production hour, as the worker tests use (workers_support.WORKER_SETTINGS).
FAST = {
    "visibility_timeout": 6,
    "time_limit": 5,
    "soft_time_limit": 4,
    "restore_interval": 1,
    "max_crashes": 2,
    "cpu_chunk_factor": 1,
}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """redis-server and one worker for the module (a worker takes seconds to start)."""
    folder = tmp_path_factory.mktemp("cluster")
    redis = RedisServer(folder / "redis")
    redis.start()
    made = Cluster(folder, redis)
    try:
        made.start_worker()
        yield made
    finally:
        made.stop()
        redis.stop()


def worker_settings(broker: str, db_url: str, blobs: Path) -> WorkerSettings:
    return WorkerSettings(broker_url=broker, db_url=db_url, blob_url=str(blobs), **FAST)


def wait_until_done(client: TestClient, url: str, token: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.get(url, headers=bearer(token)).json()
        if batch["status"] != "running":
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch still running: {batch}")


def post_and_wait(app: FastAPI, client: TestClient, config: dict[str, Any]) -> tuple[Any, Any]:
    token = token_for(app, "req", "requester")
    posted = client.post("/api/batches", json=config, headers=bearer(token))
    assert posted.status_code == 202, posted.text
    return posted.json(), wait_until_done(client, f"/api/batches/{posted.json()['id']}", token)


def review_item_count(app: FastAPI, batch_id: str) -> int:
    with app.state.store.engine.connect() as connection:
        query = select(func.count()).select_from(review_items)
        return int(connection.execute(query.where(review_items.c.batch_id == batch_id)).scalar())


def statuses(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """A run's counts by modality, sample statuses only (no hidden objects, audits, …)."""
    return {m: {s: n for s, n in c.items() if s in STATUSES and n} for m, c in counts.items()}


def test_a_posted_batch_runs_on_the_workers_like_run_and_the_in_process_runner(
    cluster: Cluster, tmp_path: Path
) -> None:
    config = posted_config()
    in_process = create_app(
        db_url=f"sqlite:///{tmp_path / 'in_process.db'}",
        runs_dir=tmp_path / "in_process",
        gold_rate=0.0,
    )
    with TestClient(in_process) as local_client:
        _, local = post_and_wait(in_process, local_client, config)
        local_items = review_item_count(in_process, local["id"])

    service = create_app(
        db_url=cluster.db_url,
        runs_dir=tmp_path / "runs",
        gold_rate=0.0,
        workers=worker_settings(cluster.redis.url, cluster.db_url, cluster.blob_dir),
    )
    celery = service.state.runner.backend.app
    sent: list[Any] = []
    real_send = celery.send_task
    celery.send_task = lambda *a, **k: sent.append(a) or real_send(*a, **k)
    started = time.perf_counter()
    with TestClient(service) as client:
        token = token_for(service, "req", "requester")
        # the batch is the requester's own: `synthgate run` of the config with their key
        key = service.state.users.authenticate(token).requester_key
        mine = {**config, "requester": key}
        embedded = run_batch(parse_config(mine, source=SOURCE), tmp_path / "embedded")
        posted = client.post("/api/batches", json=config, headers=bearer(token))
        assert posted.status_code == 202, posted.text
        batch_id = posted.json()["id"]
        assert batch_id == embedded.batch_id
        assert local["id"] != batch_id  # another service's requester: another batch
        url = f"/api/batches/{batch_id}"
        done = wait_until_done(client, url, token)
        elapsed = time.perf_counter() - started
        assert sent  # the chunks went to the workers

        assert done["status"] == "done", done
        assert done["counts"] == statuses(embedded.counts) == local["counts"]
        coco = client.get(done["coco_url"], headers=bearer(token))
        assert coco.status_code == 200, coco.text
        served = json.loads(coco.content)
        expected = json.loads((embedded.out / "coco.json").read_text())
        assert served["images"] == expected["images"]
        assert served["annotations"] == expected["annotations"]

        doubtful = sum(c.get("review", 0) + c.get("audit", 0) for c in embedded.counts.values())
        assert doubtful > 0  # the config must give the queue something to compare
        assert review_item_count(service, batch_id) == local_items == doubtful
        assert done["message"] == local["message"] == f"{doubtful} new items queued for review"

        published = len(sent)
        again = client.post("/api/batches", json=config, headers=bearer(token))
        assert again.status_code == 200 and again.json()["id"] == batch_id
        assert again.json()["status"] == "done" and len(sent) == published  # nothing new sent
    print(f"worker batch of {sum(map(sum, (c.values() for c in done['counts'].values())))} "
          f"samples done in {elapsed:.1f}s")  # fmt: skip


def follow_outcomes(monkeypatch: pytest.MonkeyPatch, case: str, tmp_path: Path) -> None:
    """Stand in for the workers' side as `case` says (no broker is reached but in `no-broker`)."""

    def submitted(app: Any, store: Any, config: Any) -> tuple[str, int]:
        batch_id = batch_id_for(config)
        store.put_batch(batch_id, name=config.name, seed=config.seed, config={})
        return batch_id, 1

    def raises(error: Exception) -> Any:
        def assemble(*_args: Any, **_kwargs: Any) -> Any:
            raise error

        return assemble

    if case != "no-broker":
        monkeypatch.setattr(worker_runner, "submit_batch", submitted)
    if case == "input-error":
        monkeypatch.setattr(
            worker_runner, "judge_batch", raises(InputError("chunk c1 holds 0 of 4"))
        )
    elif case == "bug":
        monkeypatch.setattr(worker_runner, "judge_batch", raises(KeyError("boom")))
    elif case == "failed-samples":
        monkeypatch.setattr(
            worker_runner,
            "judge_batch",
            lambda *a, **k: SimpleNamespace(out=tmp_path, counts={"text": {"failed": 2}}),
        )


FOLLOW_CASES = [
    # (case, words the failed batch's message must hold, logged)
    ("no-broker", ["cannot publish", "Connection refused", "submit the same config again"], False),
    ("input-error", ["chunk c1 holds 0 of 4"], False),
    ("bug", ["KeyError: 'boom'"], True),
    ("failed-samples", ["2 of 28 samples failed", "text 0: r", "post the config again"], False),
]


@pytest.mark.parametrize(
    ("case", "words", "logged"), FOLLOW_CASES, ids=[c[0] for c in FOLLOW_CASES]
)
def test_errors_while_following_a_batch_fail_it_with_the_reason(
    case: str,
    words: list[str],
    logged: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    follow_outcomes(monkeypatch, case, tmp_path)
    db_url = f"sqlite:///{tmp_path / 'service.db'}"
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(
        db_url=db_url,
        runs_dir=tmp_path / "runs",
        workers=worker_settings(dead_broker, db_url, tmp_path / "blobs"),
    )
    if case == "failed-samples":
        failure = {"modality": "text", "index": 0, "id": "x", "reason": "r"}
        monkeypatch.setattr(
            app.state.store, "failures", lambda _id, limit=None: [failure, failure][:limit]
        )
    with caplog.at_level(logging.ERROR), TestClient(app) as client:
        _, failed = post_and_wait(app, client, posted_config())
    assert failed["status"] == "failed", failed
    for word in words:
        assert word.format(id=failed["id"]) in failed["message"], failed["message"]
    assert "synthgate submit" not in failed["message"]  # a command the API user never ran
    assert ("batch %s failed" in [r.msg for r in caplog.records]) == logged
    shown = {"modality": "text", "index": 0, "reason": "r"}
    assert failed["failures"] == ([shown, shown] if case == "failed-samples" else [])
    assert not app.state.runner.in_flight  # a failed batch may be posted again


SERVE_ERRORS = [
    # (id, arguments after `serve`, words of the one error message)
    ("broker-without-db", ["--broker", "{broker}"], ["--broker", "no database", "URL as --db"]),
    ("broker-without-blobs", ["--broker", "{broker}", "--db", "{db}"], ["no blob store", "as --blobs or"]),
    ("blobs-without-broker", ["--blobs", "{blobs}"], ["--blobs", "pass --broker URL too"]),
    ("unreachable-broker", ["--broker", "{broker}", "--db", "{db}", "--blobs", "{blobs}"], ["not reachable", "start Redis"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "args", "words"), SERVE_ERRORS, ids=[c[0] for c in SERVE_ERRORS])
def test_serve_refuses_a_broken_worker_setup_before_it_starts(
    case: str, args: list[str], words: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BROKER", "DB", "BLOB"):
        monkeypatch.delenv(f"SYNTHGATE_{name}_URL", raising=False)
    monkeypatch.setenv("SYNTHGATE_RUNS_DIR", str(tmp_path / "runs"))
    values = {
        "broker": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "db": f"sqlite:///{tmp_path / 'shared.db'}",
        "blobs": str(tmp_path / "blobs"),
    }
    result = CliRunner().invoke(cli_app, ["serve", *(a.format(**values) for a in args)])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.output
    for word in words:
        assert word in result.stderr, result.stderr


def test_serve_takes_the_broker_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTHGATE_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.delenv("SYNTHGATE_DB_URL", raising=False)
    result = CliRunner().invoke(cli_app, ["serve"])
    assert result.exit_code == 2 and "no database" in result.stderr, result.output
    help_text = CliRunner().invoke(cli_app, ["serve", "--help"], env={"COLUMNS": "200"}).stdout
    for words in ("--broker", "--blobs", "in this process", "synthgate worker"):
        assert words in help_text


def test_serve_with_a_live_broker_sends_batches_to_workers(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: list[FastAPI] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **_options: served.append(app))
    args = ["--broker", cluster.redis.url, "--db", cluster.db_url, "--blobs", str(cluster.blob_dir)]
    result = CliRunner().invoke(
        cli_app, ["serve", *args, "--runs-dir", str(tmp_path / "runs")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "batches run on redis://127.0.0.1" in result.stdout
    (app,) = served
    assert isinstance(app.state.runner.backend, CeleryRunner)
    assert app.state.runner.backend.settings.blob_url == str(cluster.blob_dir)
    app.state.runner.shutdown()
    app.state.store.close()


def test_a_batch_no_worker_takes_says_which_queue_waits(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Images routed to the gpu queue, which no worker of this module serves: the batch keeps
    running, and its message says what it waits for instead of a frozen count (for its
    requester: not asking whether a worker runs, which only the server's operator can tell)."""
    monkeypatch.setattr(worker_submit, "WAITING_NOTE_S", 0.3)
    config = posted_config()
    config["seed"] = 99  # a batch of its own in the module's database
    settings = worker_settings(cluster.redis.url, cluster.db_url, cluster.blob_dir)
    service = create_app(
        db_url=cluster.db_url,
        runs_dir=tmp_path / "runs",
        gold_rate=0.0,
        workers=settings.model_copy(update={"gpu_generators": ["procedural"]}),
    )
    with TestClient(service) as client:
        token = token_for(service, "req-gpu", "requester")
        posted = client.post("/api/batches", json=config, headers=bearer(token))
        assert posted.status_code == 202, posted.text
        url = f"/api/batches/{posted.json()['id']}"
        deadline, batch = time.monotonic() + 30, {}
        while time.monotonic() < deadline:
            batch = client.get(url, headers=bearer(token)).json()
            if "no worker has taken its chunks (queue gpu)" in (batch["message"] or ""):
                break
            time.sleep(0.1)
        assert batch["status"] == "running", batch
        assert "no worker has taken its chunks (queue gpu)" in batch["message"], batch
        assert batch["counts"].get("image", {}) == {}  # nothing made on the gpu queue
    stopped = service.state.store.get_batch(posted.json()["id"])
    assert stopped["message"] == "the server stopped following it; post it again to resume"
