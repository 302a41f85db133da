"""The Celery task: a thin wrapper that takes a chunk id and calls workers/chunks.py.

`make_chunk(chunk_id)` is idempotent (deterministic sample ids, upserts, finished chunks are
skipped), acknowledged late and requeued when its worker is lost (app settings). Transient
errors (database, blob store, network) are retried with exponential backoff; a chunk past its
soft time limit or out of retries has its remaining samples marked failed with the reason.
"""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from typing import Any

from celery import current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init

from synthgate.generators import REGISTRY, generator_class
from synthgate.workers.app import MAKE_CHUNK, QUEUES, queue_for
from synthgate.workers.chunks import TRANSIENT_ERRORS, WorkerContext, fail_chunk, run_chunk

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
    context = context_for(self.app)
    settings = context.settings
    try:
        return run_chunk(context, chunk_id)
    except SoftTimeLimitExceeded:
        reason = f"took longer than the {settings.soft_time_limit:g}s soft time limit"
        fail_chunk(context, chunk_id, reason)
        return f"{chunk_id} failed: {reason}"
    except TRANSIENT_ERRORS as error:
        if self.request.retries >= settings.max_retries:
            reason = (
                f"gave up after {settings.max_retries} retries: {type(error).__name__}: {error}"
            )
            fail_chunk(context, chunk_id, reason)  # if the database is still down, this raises
            return f"{chunk_id} failed: {reason}"
        # Back to `queued`, so the retry is not counted as a lost worker.
        with suppress(*TRANSIENT_ERRORS):  # the database may be what failed
            context.store.chunks.update(chunk_id, status="queued")
        countdown = min(settings.retry_backoff_max, 2.0**self.request.retries)
        raise self.retry(exc=error, countdown=countdown, max_retries=None) from error
    except Exception as error:
        # Not a sample's fault (those fail alone, in run_chunk): the generator cannot even be
        # built, e.g. a model missing on this worker. Without the chunk marked, the batch
        # would wait for it for ever.
        reason = f"{type(error).__name__}: {error}"
        context.store.chunks.update(chunk_id, status="failed", current=None, reason=reason)
        log.error("%s failed: %s", chunk_id, reason)
        return f"{chunk_id} failed: {reason}"
