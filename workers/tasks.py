"""The Celery task and the worker's recovery sweep: thin wrappers around workers/chunks.py.

`make_chunk(chunk_id)` claims the chunk under a lease held by its task id and makes it
(`run_chunk`); it is idempotent (deterministic sample ids, fenced upserts, finished chunks and
chunks another live worker holds are skipped), acknowledged late and requeued when its worker is
lost (app settings). Transient errors (database, blob store, network) are retried with
exponential backoff; a chunk out of retries has its remaining samples marked failed with the
reason. The time limits end the task inside `run_chunk` (past the soft limit the samples not
made yet fail with the reason, under the lease; the hard limit kills the pool process). A chunk
the worker's database does not hold was submitted to another database (this worker's --db is
wrong): its message is sent again a heartbeat later, for a worker on that one, with an error
naming --db each time, up to the retries transient errors get; then it is dropped, as it always
was at once, and a sweep of the workers on the database that holds the chunk sends it again (a
message whose database is gone stops there).

Every worker's main process also runs `LeaseSweeper`: every `heartbeat_interval` it hands the
chunks whose lease ran out (their worker was SIGKILLed, ran out of memory or froze) to the
workers again (`recover_lost`), so a lost chunk waits a lease timeout, not the broker's
visibility timeout; and it sends again the queued chunks whose messages the broker lost
(`resend_stalled`), so a batch submitted without `--wait` does not stay queued for good.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from celery import current_app, shared_task
from celery.signals import worker_process_init, worker_ready, worker_shutdown

from synthgate.errors import InputError, counted
from synthgate.generators import REGISTRY, generator_class
from synthgate.storage.store import Store
from synthgate.workers.app import MAKE_CHUNK, QUEUES, WorkerSettings, queue_for
from synthgate.workers.chunks import (
    TRANSIENT_ERRORS,
    NotInThisDatabase,
    WorkerContext,
    fail_chunk,
    run_chunk,
)
from synthgate.workers.submit import recover_lost, resend_stalled

log = logging.getLogger(__name__)

# One context per worker process (stores, loaded generators), made on first use in the pool
# process, never inherited across fork: database connections must not be shared by processes.
_contexts: dict[int, WorkerContext] = {}


def context_for(app: Any) -> WorkerContext:
    pid = os.getpid()
    if pid not in _contexts:
        _contexts.clear()
        _contexts[pid] = WorkerContext.from_settings(app.synthgate)
    return _contexts[pid]


@worker_process_init.connect
def warm_up(**_: Any) -> None:
    """Open the stores and import the generators of the served queues as a pool process starts.

    That happens before the worker says it is ready, not in the first task. Models are still
    loaded on first use: which one depends on the batch.
    """
    app = current_app
    if getattr(app, "synthgate", None) is None:
        return
    try:
        context_for(app)
        served = getattr(app, "synthgate_queues", QUEUES)
        for name in REGISTRY:
            if queue_for(name, app.synthgate.gpu_generators) in served:
                generator_class(name)
    except Exception as error:  # the first task tries again, and retries if it is transient
        log.warning("warm-up of a pool process failed: %r", error)


@shared_task(bind=True, name=MAKE_CHUNK)
def make_chunk(self: Any, chunk_id: str) -> str:
    """Generate a chunk of a batch into the shared database and blob store."""
    settings = self.app.synthgate
    try:
        # inside: a database that is down when the context is first built is retried too
        context = context_for(self.app)
        return run_chunk(context, chunk_id, holder=self.request.id)
    except NotInThisDatabase as error:
        if self.request.retries >= settings.max_retries:
            log.error(
                "%s; dropped after %d tries (a worker on the database that holds the chunk sends "
                "it again)",
                error,
                settings.max_retries + 1,
            )
            return str(error)
        log.error(
            "%s; sent again in %gs, for a worker on that database",
            error,
            settings.heartbeat_interval,
        )
        raise self.retry(
            countdown=settings.heartbeat_interval, max_retries=settings.max_retries
        ) from None
    except TRANSIENT_ERRORS as error:
        if self.request.retries >= settings.max_retries:
            reason = (
                f"gave up after {settings.max_retries} retries: {type(error).__name__}: {error}"
            )
            # if the database is still down, this raises
            return fail_chunk(context_for(self.app), chunk_id, reason, holder=self.request.id)
        countdown = min(settings.retry_backoff_max, 2.0**self.request.retries)
        # The cap is ours (above); None would be Celery's default of 3, which raised the
        # error out of the task at the 4th retry, leaving the chunk queued with no task.
        raise self.retry(
            exc=error, countdown=countdown, max_retries=settings.max_retries
        ) from error


class LeaseSweeper:
    """A thread of the worker's main process that runs `recover_lost` and `resend_stalled`
    every `heartbeat_interval` seconds, on a store of its own (opened after the pool forked)."""

    def __init__(self, app: Any, settings: WorkerSettings) -> None:
        self.app = app
        self.settings = settings
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sweep, name="lease-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=self.settings.heartbeat_interval + 5)

    def _sweep(self) -> None:
        db_url, _blob_url = self.settings.require_shared_stores()
        store: Store | None = None
        while not self._done.wait(self.settings.heartbeat_interval):
            try:
                if store is None:
                    store = Store(db_url)
                    # A pool process forked later must not use this process's connections.
                    os.register_at_fork(
                        after_in_child=lambda engine=store.engine: engine.dispose(close=False)
                    )
                recover_lost(self.app, store)
                if sent := resend_stalled(self.app, store, settings=self.settings):
                    log.warning(
                        "sent %s no worker took again (%s lost): %s",
                        counted(len(sent), "queued chunk"),
                        "its message was" if len(sent) == 1 else "their messages were",
                        ", ".join(sent),
                    )
            except TRANSIENT_ERRORS as error:  # the database is down or busy
                log.warning("lease sweep failed: %r; trying again", error)
            except InputError as error:  # no broker: the next sweep sends them
                log.warning("lease sweep: %s", error)
        if store is not None:
            store.close()


_sweepers: list[LeaseSweeper] = []


@worker_ready.connect
def start_sweeper(sender: Any = None, **_: Any) -> None:
    app = getattr(sender, "app", None) or current_app
    settings = getattr(app, "synthgate", None)
    if settings is None:
        return
    sweeper = LeaseSweeper(app, settings)
    sweeper.start()
    _sweepers.append(sweeper)


@worker_shutdown.connect
def stop_sweeper(**_: Any) -> None:
    while _sweepers:
        _sweepers.pop().stop()
