"""Celery tasks: thin wrappers that take a chunk id and call workers/chunks.py (-> pipeline.py).

`make_chunk(chunk_id)` is idempotent (deterministic sample ids, upserts, finished chunks are
skipped), acknowledged late and requeued when its worker is lost (app settings). Transient
errors (database, blob store, network) are retried with exponential backoff; a chunk past its
soft time limit or out of retries has its remaining samples marked failed with the reason.
"""

from __future__ import annotations

import os
from contextlib import suppress
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from synthgate.workers.app import MAKE_CHUNK
from synthgate.workers.chunks import TRANSIENT_ERRORS, WorkerContext, fail_chunk, run_chunk

# One context per worker process (stores, loaded generators), made on first use in the pool
# process, never inherited across fork: database connections must not be shared by processes.
_contexts: dict[int, WorkerContext] = {}


def context_for(app: Any) -> WorkerContext:
    pid = os.getpid()
    if pid not in _contexts:
        _contexts.clear()
        _contexts[pid] = WorkerContext.from_settings(app.synthgate)
    return _contexts[pid]


@shared_task(bind=True, name=MAKE_CHUNK)
def make_chunk(self: Any, chunk_id: str) -> str:
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
            context.store.update_chunk(chunk_id, status="queued")
        countdown = min(settings.retry_backoff_max, 2.0**self.request.retries)
        raise self.retry(exc=error, countdown=countdown, max_retries=None) from error
