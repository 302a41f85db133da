"""Submitting a batch to the workers, watching it, and writing its run folder at the end.

`submit_batch` records the batch and its chunks in the shared database and publishes one message
per unfinished chunk (a re-submit publishes only what is left, and finished chunks are never
made twice). `wait_for_batch` follows progress in the database and, when the batch stalls with
its queues empty (a broker that lost its messages in a restart), publishes the unfinished chunks
again. `assemble_from_store` reads the samples back in index order, and the PNGs from the blob
store, into `pipeline.assemble_run`: the same writer as `synthgate run`, so the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthgate.config import BatchConfig
from synthgate.errors import InputError
from synthgate.pipeline import MODALITIES, RunResult, assemble_run, batch_id_for
from synthgate.store import BlobStore, ChunkState, Store
from synthgate.workers.app import MAKE_CHUNK, QUEUES, WorkerSettings
from synthgate.workers.chunks import TRANSIENT_ERRORS, chunk_rows

UNFINISHED = ("queued", "running", "generated")  # generated: made on gpu, awaiting judging


@dataclass
class BatchProgress:
    batch_id: str
    total: int  # samples planned
    stored: int  # samples with a row (made or failed)
    failed: int
    chunks: dict[str, Any]

    @property
    def finished(self) -> bool:
        return not any(self.chunks.get(status, 0) for status in UNFINISHED)


def planned_total(config: BatchConfig) -> int:
    return sum(getattr(config, m).count for m in MODALITIES if getattr(config, m) is not None)


def publish(app: Any, chunks: list[ChunkState]) -> int:
    """One message per chunk, on the chunk's queue, over one broker connection."""
    if not chunks:
        return 0
    try:
        with app.producer_or_acquire() as producer:
            for chunk in chunks:
                app.send_task(MAKE_CHUNK, args=[chunk.id], queue=chunk.queue, producer=producer)
    except Exception as error:  # kombu raises several types for an unreachable broker
        raise InputError(
            f"broker {app.conf.broker_url}: cannot publish ({type(error).__name__}: {error}); "
            "start Redis or pass --broker URL / set SYNTHGATE_BROKER_URL. Nothing was lost: "
            "run the same `synthgate submit` again to send what is left"
        ) from None
    return len(chunks)


def submit_batch(app: Any, store: Store, config: BatchConfig) -> tuple[str, int]:
    """Record the batch and its chunks; publish the unfinished ones. Returns (batch id, sent)."""
    batch_id = batch_id_for(config)
    store.put_batch(
        batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
    )
    store.set_batch_status(batch_id, "running")
    settings: WorkerSettings = app.synthgate
    store.put_chunks(
        chunk_rows(
            config,
            batch_id,
            gpu_generators=settings.gpu_generators,
            cpu_chunk_factor=settings.cpu_chunk_factor,
        )
    )
    sent = publish(app, store.chunks_of(batch_id, statuses=UNFINISHED))
    return batch_id, sent


def progress_of(store: Store, batch_id: str, total: int) -> BatchProgress:
    counts = store.count_by_status(batch_id)
    return BatchProgress(
        batch_id=batch_id,
        total=total,
        stored=sum(counts.values()),
        failed=sum(n for (_m, status), n in counts.items() if status == "failed"),
        chunks=store.chunk_totals(batch_id),
    )


def queued_messages(app: Any) -> int | None:
    """Messages waiting in the broker's queues (None when the broker cannot be asked)."""
    from kombu.exceptions import ChannelError

    waiting = 0
    try:
        with app.connection_for_read() as connection:
            channel = connection.default_channel
            for queue in QUEUES:
                try:
                    waiting += channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:
                    continue  # never declared, or forgotten in a broker restart: empty
    except Exception:  # an unreachable broker: no answer
        return None
    return waiting


def wait_for_batch(
    app: Any,
    store: Store,
    batch_id: str,
    *,
    total: int,
    settings: WorkerSettings,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_resend: Callable[[int], None] | None = None,
    poll_seconds: float = 0.5,
    timeout: float | None = None,
) -> BatchProgress:
    """Follow a batch in the database until every chunk is finished.

    A batch whose chunks have not changed for longer than the visibility timeout (plus two
    restore sweeps), while the broker's queues are empty, has lost its messages (a broker
    restarted without persistence): its unfinished chunks are published again. That is safe
    because chunks are idempotent; a chunk found `running` counts one crash.
    """
    stall_after = settings.visibility_timeout + 2 * settings.restore_interval
    started = time.monotonic()
    last_resend = time.time()
    while True:
        try:
            progress = progress_of(store, batch_id, total)
        except TRANSIENT_ERRORS:  # the database restarts or is busy: the workers wait too
            time.sleep(poll_seconds)
            continue
        if on_progress is not None:
            on_progress(progress)
        if progress.finished:
            return progress
        now = time.time()
        quiet = now - max(progress.chunks["last_update"], last_resend)
        if quiet > stall_after and queued_messages(app) == 0:
            with_unfinished = store.chunks_of(batch_id, statuses=UNFINISHED)
            try:
                sent = publish(app, with_unfinished)
            except InputError:
                sent = 0  # still no broker; try again after the next quiet period
            last_resend = now
            if on_resend is not None and sent:
                on_resend(sent)
        if timeout is not None and time.monotonic() - started > timeout:
            raise InputError(
                f"batch {batch_id}: not finished after {timeout:g}s ({progress.stored} of "
                f"{total} samples); `synthgate status {batch_id}` shows where it stands"
            )
        time.sleep(poll_seconds)


def assemble_from_store(
    config: BatchConfig, out: Path, *, store: Store, blobs: BlobStore, batch_id: str
) -> RunResult:
    """Write the run folder from the shared database and blob store, as `synthgate run` would."""
    with assemble_run(config, out, batch_id=batch_id) as run:
        for modality in MODALITIES:
            if getattr(config, modality) is None:
                continue
            started = time.perf_counter()
            for sample in store.iter_samples(batch_id, modality):
                png = (
                    blobs.get(sample.uri)
                    if sample.uri and sample.status != "failed" and modality == "image"
                    else None
                )
                run.add(sample, png)
            run.count(modality, "hidden_objects", store.hidden_objects(batch_id, modality))
            run.result.timings[f"{modality}_assemble_seconds"] = round(
                time.perf_counter() - started, 3
            )
    return run.result
