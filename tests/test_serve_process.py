"""`synthgate serve` as its own process: SIGTERM ends it within 10 s while a batch runs, the batch
is left resumable (posting it again resumes it), and a token sent in a URL is refused and never
written to the server's log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from api_support import free_port

from synthgate.storage.store import Store

pytestmark = pytest.mark.timeout(240)

BIG = {
    "name": "long",
    "seed": 4,
    "categories": ["circle", "square"],
    # thousands of small images: far longer than the test, chunks of 8 well under a second
    "image": {"generator": "procedural", "count": 5000, "size": [128, 128]},
}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "synthgate", *args], capture_output=True, text=True, timeout=120
    )


@contextmanager
def served(db: str, runs: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`synthgate serve` on a free port; a port taken between the probe and the bind (other
    test processes pick ports too) is tried again on another."""
    for _attempt in range(3):
        port = free_port()
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "synthgate", "serve", "--db", db, "--runs-dir",
                 str(runs), "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "SYNTHGATE_BATCH_THREADS": "2"},
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        if _started(process, url, log):
            break
        assert "address already in use" in log.read_text(), log.read_text()[-3000:]
    try:
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _started(process: subprocess.Popen[bytes], url: str, log: Path) -> bool:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/login", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            return False
        time.sleep(0.2)
    raise AssertionError(f"serve did not start: {log.read_text()[-3000:]}")


def stop_in_time(process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    return time.monotonic() - started


def test_sigterm_stops_the_server_in_time_and_leaves_its_batch_resumable(tmp_path: Path):
    db = f"sqlite:///{tmp_path / 'service.db'}"
    added = cli("users", "add", "req", "--role", "requester", "--db", db)
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {token}"}
    log = tmp_path / "serve.log"

    with served(db, tmp_path / "runs", log) as (process, url):
        refused = httpx.get(f"{url}/api/batches?token={token}")
        assert refused.status_code == 400 and token not in refused.text
        # a token is no batch id: 404, or 422 when it starts with '-' or '_' (no id does)
        assert httpx.get(f"{url}/api/batches/{token}", headers=headers).status_code in (404, 422)
        posted = httpx.post(f"{url}/api/batches", json=BIG, headers=headers)
        assert posted.status_code == 202, posted.text
        batch_url = f"{url}/api/batches/{posted.json()['id']}"
        deadline = time.monotonic() + 60
        while "judging" not in (httpx.get(batch_url, headers=headers).json()["message"] or ""):
            assert time.monotonic() < deadline, "the batch never started"
            time.sleep(0.2)
        took = stop_in_time(process)
        print(f"SIGTERM with a batch running: the server exited in {took:.2f}s")
        # uvicorn shuts down cleanly, then re-raises the signal it caught: killed by SIGTERM
        assert process.returncode in (0, -signal.SIGTERM), log.read_text()[-2000:]
        assert "Application shutdown complete" in log.read_text()
        assert took < 10

    store = Store(db)
    batch = store.get_batch(posted.json()["id"])
    made = sum(store.counts_of([batch["id"]])[batch["id"]].get("image", {}).values())
    store.close()
    assert batch["status"] == "running" and "post it again to resume" in batch["message"]
    assert 0 < made < 5000, made

    with served(db, tmp_path / "runs", log) as (process, url):
        again = httpx.post(f"{url}/api/batches", json=BIG, headers=headers)
        assert again.status_code == 202 and again.json()["id"] == batch["id"]  # resumed
        cancelled = httpx.delete(f"{url}/api/batches/{batch['id']}", headers=headers)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert stop_in_time(process) < 10

    written = log.read_text()
    assert "GET /api/batches?token=***" in written  # the request was logged, its token not
    assert token not in written


def test_serve_started_outside_the_main_thread_starts_without_a_signal_handler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the main thread may set a signal handler: `serve` called from another thread (an
    embedding app, a notebook's helper thread) starts the server instead of failing on it."""
    import threading

    import uvicorn

    from synthgate.commands.serve import serve

    started: list[int] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(options["port"]))
    port = free_port()  # serve binds it once before uvicorn (a port in use is refused)
    before = signal.getsignal(signal.SIGTERM)
    failed: list[BaseException] = []

    def start() -> None:
        try:
            serve(
                db=f"sqlite:///{tmp_path / 'served.db'}",
                host="127.0.0.1",
                port=port,
                runs_dir=tmp_path / "runs",
                data_root=None,
                max_samples=None,
                annotators_per_item=2,
                gold_rate=0.1,
                broker=None,
                blobs=None,
            )
        except BaseException as error:  # the test reports whatever escaped
            failed.append(error)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join(60)
    assert failed == [] and started == [port]
    assert signal.getsignal(signal.SIGTERM) is before


def test_ctrl_c_stops_the_server_without_the_command_lines_cleanup_line(tmp_path: Path):
    """uvicorn shuts down on Ctrl-C, then raises SIGINT again with the handler it found: the
    command line's, which then said 'stopped by Ctrl-C; cleaning up' after a clean shutdown."""
    log = tmp_path / "serve.log"
    with served(f"sqlite:///{tmp_path / 'service.db'}", tmp_path / "runs", log) as (process, _):
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    written = log.read_text()
    assert "Application shutdown complete" in written
    assert "stopped by Ctrl-C" not in written and "Traceback" not in written, written[-2000:]
