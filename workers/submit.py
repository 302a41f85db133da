"""Submitting a batch to the workers, watching it, and writing its run folder at the end.

`submit_batch` records the batch and its chunks in the shared database and publishes one message
per unfinished chunk (a re-submit publishes only what is left, and finished chunks are never
made twice). `wait_for_batch` follows progress in the database and, when the batch stalls with
its queues empty (a broker that lost its messages in a restart), publishes the unfinished chunks
again. `assemble_from_store` reads the samples back in index order as their chunks are
generated, with their PNGs and the partial reports the workers measured (workers/partial.py)
from the blob store, finishes the reports in that order (batch checks compare each sample with
the ones before it: hash comparisons only) and writes them with `assembly.assemble_run`: the same
judge halves and writer as `synthgate run`, so the same bytes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthgate.assembly import RunAssembly, RunResult, assemble_run
from synthgate.config import BatchConfig
from synthgate.errors import InputError
from synthgate.generators import build_generator
from synthgate.pipeline import MODALITIES, batch_id_for, build_judges, record_report
from synthgate.samples import Modality, Sample
from synthgate.storage.blobs import BlobStore
from synthgate.storage.chunks import ChunkState
from synthgate.storage.store import Store
from synthgate.validators.measure import SampleMeasurements
from synthgate.validators.validate import Judge
from synthgate.workers.app import MAKE_CHUNK, QUEUES, WorkerSettings
from synthgate.workers.chunks import FINISHED, TRANSIENT_ERRORS, chunk_rows
from synthgate.workers.partial import load_partial

UNFINISHED = ("queued", "running")  # waiting for a worker; `generated` waits for submit


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
    for chunk in store.chunks.of_batch(batch_id, statuses=["failed", "generated"]):
        # A chunk with failed samples is tried again: they are made anew; the samples it made
        # (judged, perhaps reviewed since) stay as they are.
        forgotten = store.forget_failed(batch_id, chunk.modality, chunk.start, chunk.stop)
        if chunk.status == "failed" or forgotten:
            store.chunks.update(chunk.id, status="queued", crashes=0, reason=None, current=None)
    settings: WorkerSettings = app.synthgate
    store.chunks.put(
        chunk_rows(
            config,
            batch_id,
            gpu_generators=settings.gpu_generators,
            cpu_chunk_factor=settings.cpu_chunk_factor,
        )
    )
    # A `running` chunk is sent again only when its worker looks lost (quiet past the visibility
    # timeout): a second delivery to a live worker would count as a crash.
    stale = time.time() - settings.visibility_timeout
    unfinished = store.chunks.of_batch(batch_id, statuses=UNFINISHED)
    sent = publish(app, [c for c in unfinished if c.status == "queued" or c.updated < stale])
    return batch_id, sent


def progress_of(store: Store, batch_id: str, total: int) -> BatchProgress:
    counts = store.count_by_status(batch_id)
    return BatchProgress(
        batch_id=batch_id,
        total=total,
        stored=sum(counts.values()),
        failed=sum(n for (_m, status), n in counts.items() if status == "failed"),
        chunks=store.chunks.totals(batch_id),
    )


def chunk_generated(store: Store, chunk_id: str) -> bool:
    """Whether a chunk needs no worker any more (generated, or already judged)."""
    chunk = store.chunks.get(chunk_id)
    return chunk is not None and chunk.status in FINISHED


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
    until: Callable[[BatchProgress], bool] | None = None,
) -> BatchProgress:
    """Follow a batch in the database until every chunk is generated (or `until` holds).

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
        if until(progress) if until is not None else progress.finished:
            return progress
        now = time.time()
        quiet = now - max(progress.chunks["last_update"], last_resend)
        if quiet > stall_after and queued_messages(app) == 0:
            with_unfinished = store.chunks.of_batch(batch_id, statuses=UNFINISHED)
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


@dataclass
class LoadedChunk:
    """A generated chunk read back: its samples in order, with PNG bytes, the measurements
    of their partial reports and their hidden-object counts."""

    chunk: ChunkState
    items: list[tuple[Sample, bytes | None, SampleMeasurements | None, int]]  # None: failed


def load_chunk(store: Store, blobs: BlobStore, chunk: ChunkState) -> LoadedChunk:
    samples = store.samples_in(chunk.batch_id, chunk.modality, chunk.start, chunk.stop)
    if len(samples) != chunk.stop - chunk.start:
        found = store.chunks.get(chunk.id)
        why = f" ({found.reason})" if found is not None and found.reason else ""
        raise InputError(
            f"batch {chunk.batch_id}: chunk {chunk.id} holds {len(samples)} of "
            f"{chunk.stop - chunk.start} samples{why}; fix that, then run the same "
            "`synthgate submit` again"
        )
    items: list[tuple[Sample, bytes | None, SampleMeasurements | None, int]] = []
    for sample in samples:
        if sample.status == "failed":
            items.append((sample, None, None, 0))
            continue
        png = blobs.get(sample.uri) if sample.uri and chunk.modality == "image" else None
        items.append((sample, png, *load_partial(blobs, sample)))
    return LoadedChunk(chunk, items)


@dataclass
class BuiltElsewhere:
    """What the judges need of a generator that only the workers build (a diffusion model)."""

    categories: list[str | None]

    def quota_categories(self) -> list[str | None]:
        return list(self.categories)


def judging_generators(
    config: BatchConfig,
    store: Store,
    batch_id: str,
    wait_for_chunk: Callable[[str], None] | None,
) -> dict[Modality, Any]:
    """The generators the judges are built from: CPU ones here, GPU ones as a worker saw them.

    Building a GPU generator would load its model in this process; the worker that made the
    first chunk recorded the generator's quota categories instead.
    """
    built: dict[Modality, Any] = {}
    first = {c.modality: c for c in reversed(store.chunks.of_batch(batch_id))}
    for modality in MODALITIES:
        section = getattr(config, modality)
        if section is None:
            continue
        chunk = first.get(modality)
        if chunk is None or chunk.queue != "gpu":
            built[modality] = build_generator(section, categories=list(config.categories))
            continue
        if wait_for_chunk is not None:
            wait_for_chunk(chunk.id)
        recorded = store.chunks.get(chunk.id)
        if recorded is None or recorded.quota_categories is None:
            raise InputError(
                f"batch {batch_id}: chunk {chunk.id} is not generated yet; "
                "run `synthgate submit --wait` to wait for the workers"
            )
        built[modality] = BuiltElsewhere(list(recorded.quota_categories))
    return built


def assemble_from_store(
    config: BatchConfig,
    out: Path,
    *,
    store: Store,
    blobs: BlobStore,
    batch_id: str,
    wait_for_chunk: Callable[[str], None] | None = None,
    on_judged: Callable[[int], None] | None = None,
) -> RunResult:
    """Judge the batch's samples in index order and write its run folder, as `synthgate run` does.

    Chunk by chunk, as soon as each one is generated (`wait_for_chunk` blocks until it is):
    the samples come from the shared database, their PNGs and partial reports from the blob
    store (read on a second thread while the chunk before is finished), and the judged samples
    go back to the database, their chunk marked done.
    """
    generators = judging_generators(config, store, batch_id, wait_for_chunk)
    judges = build_judges(config, generators)
    with (
        assemble_run(config, out, batch_id=batch_id, judges=judges) as run,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="load") as loader,
    ):
        for modality in generators:
            started = time.perf_counter()
            loading: Future[LoadedChunk] | None = None
            for chunk in store.chunks.of_batch(batch_id):
                if chunk.modality != modality:
                    continue
                if wait_for_chunk is not None:
                    wait_for_chunk(chunk.id)
                following = loader.submit(load_chunk, store, blobs, chunk)
                if loading is not None:
                    judge_chunk(run, store, loading.result(), judges[modality], on_judged)
                loading = following
            if loading is not None:
                judge_chunk(run, store, loading.result(), judges[modality], on_judged)
            run.result.timings[f"{modality}_seconds"] = round(time.perf_counter() - started, 3)
    return run.result


def judge_chunk(
    run: RunAssembly,
    store: Store,
    loaded: LoadedChunk,
    judge_sample: Judge,
    on_judged: Callable[[int], None] | None = None,
) -> None:
    """Finish one generated chunk's reports in order into the run folder and the database.

    Every sample goes through the batch's checks in order and gets the verdict written, except
    one people were asked to review since an earlier assembly: it keeps its stored status and
    report (the reviewers' to change), in the database and in the run folder.
    """
    judged_before = [sample.id for sample, *_ in loaded.items if sample.status != "pending"]
    reviewed = store.reviewed_samples(judged_before)
    fresh: list[Sample] = []
    judged = 0
    for sample, png, measured, hidden in loaded.items:
        if measured is None:
            run.add(sample, None)
            continue
        report = judge_sample.finish(measured)  # the batch context sees every sample, in order
        if sample.id not in reviewed:
            record_report(sample, report)
            fresh.append(sample)
        run.add(sample, png, hidden_objects=hidden)
        judged += 1
    store.upsert_samples(fresh)
    store.chunks.update(loaded.chunk.id, status="done" if judged == len(loaded.items) else "failed")
    if on_judged is not None:
        on_judged(len(loaded.items))
