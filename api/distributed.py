"""Posted batches on Celery workers: `worker_runner`, the service's `BatchRunner` with the
Celery backend (workers/runner.py), used by `synthgate serve --broker URL`, and `check_broker`.

The backend records the batch and its chunks in the shared database and publishes the unfinished
ones (the same config is the same batch, and a chunk is never made twice); the batch's thread
then does what `synthgate submit --wait` does: it waits for the chunks and judges them in index
order into `<runs_dir>/<batch id>/` and the service's database, which is the workers' own.
`WorkerMessages` keeps the batch's message saying where it stands.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from synthgate.api.batch_runner import PROGRESS_EVERY_S, BatchRunner
from synthgate.config import RequesterLimits
from synthgate.errors import InputError, counted
from synthgate.storage.blobs import BlobStore
from synthgate.storage.store import Store
from synthgate.workers.app import WorkerSettings, make_app
from synthgate.workers.app import check_broker as workers_check_broker
from synthgate.workers.runner import CeleryRunner
from synthgate.workers.submit import BatchProgress, IdleNote

log = logging.getLogger(__name__)

# Batches followed at once. A follower mostly sleeps between polls of the database, so a
# thread each is cheap, and a batch no worker takes (no gpu worker running) holds only its own.
FOLLOWERS = 32
POLL_SECONDS = 0.25


def check_broker(settings: WorkerSettings) -> None:
    """Refuse a broker that does not answer, before a server takes batches it cannot send."""
    workers_check_broker(
        settings,
        fix="start Redis, or pass the broker URL the `synthgate worker` processes use (or set "
        "SYNTHGATE_BROKER_URL)",
    )


# What a batch's message says once the broker does not answer: the requester reading it can
# neither see nor start the server's broker.
BROKER_DOWN = (
    "the server's broker does not answer; the batch goes on once it answers (tell the "
    "server's operator if it does not)"
)
# And while no worker takes its chunks: the requester can neither see nor start the server's
# workers, so it is not asked whether one runs (`submit --wait` asks its user that).
NO_WORKER = (
    "no worker has taken its chunks (queue {queues}); the batch goes on once one does (tell "
    "the server's operator if it does not)"
)


class WorkerMessages:
    """Keeps a followed batch's message current while the workers make it: "N chunks sent",
    then "generating: n of N samples made" (at most once a second), and, when nothing was made
    for a while with no chunk running, that no worker took the chunks of the queues left
    waiting, or, given the Celery `app`, that the broker does not answer (`IdleNote` asks it),
    both said for the requester, who can start neither (NO_WORKER, BROKER_DOWN)."""

    def __init__(self, store: Store, *, app: Any = None) -> None:
        self.store = store
        self._shown: dict[str, tuple[float, str]] = {}  # batch: when written, what it said
        self._idle = IdleNote(store, app=app, broker_down=BROKER_DOWN, no_worker=NO_WORKER)

    def sent(self, batch_id: str, chunks: int) -> None:
        self.store.set_batch_status(
            batch_id, "running", f"{counted(chunks, 'chunk')} sent to the workers"
        )

    def watch(self, progress: BatchProgress) -> None:
        batch_id, now = progress.batch_id, time.monotonic()
        message = f"generating: {progress.stored} of {progress.total} samples made"
        idle = self._idle.check(progress)
        if idle is not None:
            message += f"; {idle}"
        when, said = self._shown.get(batch_id, (0.0, ""))
        if message != said and now - when > PROGRESS_EVERY_S:
            self._shown[batch_id] = (now, message)
            self.store.set_batch_status(batch_id, "running", message)


def worker_runner(
    store: Store,
    queue: Any,
    runs_dir: Path,
    *,
    settings: WorkerSettings,
    followers: int = FOLLOWERS,
    limits: RequesterLimits | None = None,
) -> BatchRunner:
    """The service's batch runner with the Celery backend: posted batches go to the workers."""
    _db_url, blob_url = settings.require_shared_stores()
    try:
        blobs = BlobStore(blob_url)
    except OSError as error:
        raise InputError(
            field="blobs",
            value=blob_url,
            problem=f"cannot use it ({error}); pass a folder this server and "
            "every worker can write",
        ) from None
    app = make_app(settings)
    messages = WorkerMessages(store, app=app)
    backend = CeleryRunner(
        app,
        store,
        blobs,
        settings,
        on_sent=messages.sent,
        watch=messages.watch,
        on_resend=lambda n: log.warning("a stalled batch: sent %d chunks again", n),
        poll_seconds=POLL_SECONDS,
    )
    return BatchRunner(store, queue, runs_dir, backend=backend, threads=followers, limits=limits)
