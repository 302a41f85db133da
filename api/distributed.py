"""Posted batches on Celery workers: `WorkerBatchRunner`, the twin of `BatchRunner` that a service
started with a broker (`synthgate serve --broker URL`) uses, and `check_broker`.

`submit` records the batch and its chunks in the shared database and publishes the unfinished
ones (workers/submit.py's `submit_batch`: the same config is the same batch, and a chunk is never
made twice). A follower thread then does what `synthgate submit --wait` does: it waits for the
chunks, judges them in index order into `<runs_dir>/<batch id>/` (`assemble_from_store`), marks
the batch done or failed and queues its doubtful samples for review. The workers write the
samples into the service's own database, so nothing is imported afterwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from synthgate.api.batches import InFlight
from synthgate.config import BatchConfig
from synthgate.errors import InputError
from synthgate.storage.store import Store
from synthgate.workers.app import WorkerSettings

log = logging.getLogger(__name__)

# Batches followed at once. A follower mostly sleeps between polls of the database, so a
# thread each is cheap, and a batch no worker takes (no gpu worker running) holds only its own.
FOLLOWERS = 32
POLL_SECONDS = 0.25
PROGRESS_EVERY_S = 1.0  # the batch's progress message is written at most this often
# Nothing made for this long and no chunk running: the message names the queues left waiting
# (no worker serves them, e.g. no gpu worker for a diffusion batch).
WAITING_NOTE_S = 60.0


class StopFollowing(Exception):
    """The server is shutting down: the batch stays `running`; posting it again resumes it."""


def check_broker(settings: WorkerSettings, *, timeout: float = 5.0) -> None:
    """Refuse a broker that does not answer, before a server takes batches it cannot send."""
    from synthgate.storage.database import shown_url
    from synthgate.workers.app import make_app

    shown = shown_url(settings.broker_url or "")  # the password masked
    try:
        connection = make_app(settings).connection_for_write()
        with connection:
            connection.ensure_connection(max_retries=0, timeout=timeout)
    except Exception as error:  # kombu raises several types for an unreachable broker
        raise InputError(
            f"--broker {shown}: not reachable ({type(error).__name__}: {error}); start Redis, or "
            "pass the broker URL the `synthgate worker` processes use (or set "
            "SYNTHGATE_BROKER_URL)"
        ) from None


class WorkerBatchRunner:
    """Sends submitted batches to the workers and follows each in a background thread."""

    def __init__(
        self,
        store: Store,
        queue: Any,
        runs_dir: Path,
        *,
        settings: WorkerSettings,
        followers: int = FOLLOWERS,
    ) -> None:
        from synthgate.storage.blobs import BlobStore
        from synthgate.workers.app import make_app

        _db_url, blob_url = settings.require_shared_stores()
        self.store = store
        self.queue = queue
        self.runs_dir = runs_dir
        self.settings = settings
        self.celery = make_app(settings)
        try:
            self.blobs = BlobStore(blob_url)
        except OSError as error:
            raise InputError(
                f"--blobs {blob_url}: cannot use it ({error}); pass a folder this server and "
                "every worker can write"
            ) from None
        self._pool = ThreadPoolExecutor(
            max_workers=followers, thread_name_prefix="synthgate-follow"
        )
        self.in_flight = InFlight(store)
        self._stopping = threading.Event()

    def submit(self, config: BatchConfig) -> tuple[str, bool]:
        """Send a batch to the workers; returns (batch id, whether a run was started)."""
        from synthgate.pipeline import batch_id_for
        from synthgate.workers.submit import submit_batch

        batch_id = batch_id_for(config)
        # A batch left "running" by a server that stopped is sent again, and then only its
        # unfinished chunks travel.
        if not self.in_flight.claim(batch_id, config):
            return batch_id, False
        if self._stopping.is_set():
            self.store.set_batch_status(batch_id, "failed", "the server is stopping; post again")
            self.in_flight.release(batch_id)
            return batch_id, True
        try:
            _, sent = submit_batch(self.celery, self.store, config)
            self.store.set_batch_status(batch_id, "running", f"{sent} chunks sent to the workers")
            self._pool.submit(self._follow, config, batch_id)
        except Exception as error:  # an unreachable broker: the requester sees it on the batch
            self._fail(batch_id, error)
        return batch_id, True

    def _follow(self, config: BatchConfig, batch_id: str) -> None:
        from synthgate.workers.submit import assemble_from_store, planned_total

        try:
            total = planned_total(config)
            result = assemble_from_store(
                config,
                self.runs_dir / batch_id,
                store=self.store,
                blobs=self.blobs,
                batch_id=batch_id,
                wait_for_chunk=lambda chunk_id: self._wait_for_chunk(batch_id, chunk_id, total),
                on_judged=self._judging_shown(batch_id, total),
            )
            # the run folder holds the images the review page shows
            queued = self.queue.enqueue_batch(batch_id, image_root=result.out.resolve())
            # What this assembly left out, not what the database says now: a re-submit may
            # have sent failed samples to be made again meanwhile.
            failed = sum(counts.get("failed", 0) for counts in result.counts.values())
            if failed:
                why = "".join(
                    f" (first: {first['modality']} {first['index']}: {first['reason']})"
                    for first in self.store.failures(batch_id, limit=1)
                )
                self.store.set_batch_status(
                    batch_id,
                    "failed",
                    f"{failed} of {total} samples failed{why}; the others are "
                    "in the run folder and "
                    f"{queued} new items queued for review; post the config again to retry the "
                    "failed ones",
                )
            else:
                self.store.set_batch_status(
                    batch_id, "done", f"{queued} new items queued for review"
                )
        except StopFollowing:
            self.store.set_batch_status(
                batch_id, "running", "the server stopped following it; post it again to resume"
            )
        except Exception as error:
            self._fail(batch_id, error)
        finally:
            self.in_flight.release(batch_id)

    def _judging_shown(self, batch_id: str, total: int) -> Callable[[int], None]:
        """An `on_judged` that keeps the batch's message at "judging: j of N" (once a second)."""
        judged, shown = [0], [0.0]

        def advance(count: int) -> None:
            judged[0] += count
            if time.monotonic() - shown[0] > PROGRESS_EVERY_S or judged[0] == total:
                shown[0] = time.monotonic()
                message = f"judging: {judged[0]} of {total} samples"
                self.store.set_batch_status(batch_id, "running", message)

        return advance

    def _wait_for_chunk(self, batch_id: str, chunk_id: str, total: int) -> None:
        """Block until the workers generated `chunk_id`, keeping the batch's message current."""
        from synthgate.workers.submit import BatchProgress, chunk_generated, wait_for_batch

        if self._stopping.is_set():
            raise StopFollowing
        if chunk_generated(self.store, chunk_id):
            return
        shown: list[Any] = [0.0, ""]  # when the message was last written, and what it said
        changed: list[Any] = [-1, time.monotonic()]  # samples made, and since when

        def show(progress: BatchProgress) -> None:
            now = time.monotonic()
            if progress.stored != changed[0]:
                changed[:] = [progress.stored, now]
            message = f"generating: {progress.stored} of {total} samples made"
            if now - changed[1] > WAITING_NOTE_S and not progress.chunks.get("running"):
                waiting = self.store.chunks.of_batch(batch_id, statuses=["queued"])
                queues = ", ".join(sorted({chunk.queue for chunk in waiting}))
                message += (
                    f"; nothing made for {now - changed[1]:.0f} s: is a worker serving queue "
                    f"{queues} running?"
                )
            if message != shown[1] and now - shown[0] > PROGRESS_EVERY_S:
                shown[:] = [now, message]
                self.store.set_batch_status(batch_id, "running", message)

        wait_for_batch(
            self.celery,
            self.store,
            batch_id,
            total=total,
            settings=self.settings,
            on_progress=show,
            on_resend=lambda n: log.warning("batch %s stalled: sent %d chunks again", batch_id, n),
            poll_seconds=POLL_SECONDS,
            until=lambda _p: self._stopping.is_set() or chunk_generated(self.store, chunk_id),
        )
        if self._stopping.is_set():
            raise StopFollowing

    def _fail(self, batch_id: str, error: Exception) -> None:
        """Keep an error on the batch: the user's to fix as it is, a bug with its type and log."""
        if isinstance(error, InputError):
            message = str(error)
        else:
            log.exception("batch %s failed", batch_id)
            message = f"{type(error).__name__}: {error}"
        self.store.set_batch_status(batch_id, "failed", message)
        self.in_flight.release(batch_id)

    def shutdown(self) -> None:
        # Followers stop at their next wait; batches waiting for a follower are dropped. Both stay
        # "running" in the database, saying so, and the workers finish their chunks regardless.
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for batch_id in self.in_flight.ids():
            self.store.set_batch_status(
                batch_id, "running", "the server stopped following it; post it again to resume"
            )
            self.in_flight.release(batch_id)
