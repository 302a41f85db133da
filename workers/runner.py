"""The Celery backend of the runner interface (runner.py): workers make, this process judges.

`CeleryRunner.run(config, sinks=...)` submits the batch (workers/submit.py: only the chunks not
yet generated travel), then follows it chunk by chunk in index order: as soon as a chunk is
generated its samples come back from the shared database, their PNGs and the partial reports
the workers measured (workers/partial.py) from the blob store (read on a second thread while the
chunk before is judged), and the reports are finished in sample order (batch checks compare each
sample with the ones before it: hash comparisons only). The judged chunks go to the same sinks
as an in-process run, so `synthgate submit --wait` and `synthgate run` write the same bytes; a
chunk is marked done once every sink has it.

`judge_batch` is the following half alone (the batch was submitted before, e.g. by a server that
stopped); `assemble_from_store` judges a generated batch into a run folder and the shared store.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthgate.config import BatchConfig
from synthgate.errors import InputError
from synthgate.pipeline import (
    MODALITIES,
    JudgedSample,
    Progress,
    RunStart,
    build_judges,
    build_section_generator,
    planned_total,
    refuse_changed_inputs,
)
from synthgate.runner import RunResult, Sink, Stopped, drive
from synthgate.samples import Modality, Sample
from synthgate.sinks import DatabaseSink, KeepReviewed, RunFolderSink
from synthgate.storage.blobs import BlobStore
from synthgate.storage.chunks import ChunkState
from synthgate.storage.store import Store
from synthgate.validators.measure import SampleMeasurements
from synthgate.validators.validate import Judge
from synthgate.workers.app import WorkerSettings
from synthgate.workers.chunks import FINISHED, asked_to_review, files_missing
from synthgate.workers.partial import load_chunk_partials, load_partial
from synthgate.workers.submit import BatchProgress, submit_batch, wait_for_batch

WaitForChunk = Callable[[str], None]  # blocks until the chunk of that id is generated


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
            f"{chunk.stop - chunk.start} samples{why}; fix that, then submit the same config "
            "again"
        )
    items: list[tuple[Sample, bytes | None, SampleMeasurements | None, int]] = []
    missing: list[Sample] = []
    first_missing: FileNotFoundError | None = None
    documents = load_chunk_partials(blobs, chunk.id)
    for sample in samples:
        if sample.status == "failed":
            items.append((sample, None, None, 0))
            continue
        try:
            png = blobs.get(sample.uri) if sample.uri and chunk.modality == "image" else None
            items.append((sample, png, *load_partial(blobs, sample, documents)))
        except FileNotFoundError as error:
            missing.append(sample)
            first_missing = first_missing or error
    # As the chunk is now: `chunk` may have been listed before its worker made it.
    status = current.status if first_missing and (current := store.chunks.get(chunk.id)) else ""
    if first_missing is not None and status != "generated":
        # A chunk already judged into a run folder (done, or failed with some samples): its
        # samples may be accepted and merged; this process reads another blob store (a wrong
        # --blobs) more likely than its files went. Nothing is changed.
        raise InputError(
            f"batch {chunk.batch_id}: chunk {chunk.id} is {status}, but the files of "
            f"{len(missing)} of its samples are not in the blob store {blobs.url} "
            f"({first_missing.filename or first_missing}); point this process at the blob "
            "store its workers wrote ({blobs}); nothing was changed",
            options=("blobs",),
        )
    if first_missing is not None:
        # Made, but not where this process reads, and never judged: this process's --blobs
        # is wrong, or the workers' (or the files went). Which one, the files cannot tell, so
        # no row is forgotten here: the chunks are queued, and a worker makes again only the
        # samples whose files its own blob store lacks (nothing, when only this process reads
        # the wrong folder; forgetting the rows made every chunk again at every submit).
        broken = {chunk.id: missing}
        for other in store.chunks.of_batch(chunk.batch_id, statuses=["generated"]):
            if other.id != chunk.id and (lost := files_missing(store, blobs, other)):
                broken[other.id] = lost
        for chunk_id in broken:  # not one another submit judged meanwhile
            store.chunks.update(
                chunk_id, if_status="generated", status="queued", reason=None, current=None
            )
        # a chunk's ids at a time: a query binds a few hundred ids, not a batch's
        kept = sum(len(asked_to_review(store, [s.id for s in lost])) for lost in broken.values())
        reviewed = (
            f"; {kept} of them people were asked to review, and those are never made anew: "
            "put their files back in the blob store"
            if kept
            else ""
        )
        others = sum(len(lost) for lost in broken.values()) - len(missing)
        also = f", nor are those of {others} samples in {len(broken) - 1} more of its chunks"
        raise InputError(
            f"batch {chunk.batch_id}: chunk {chunk.id} was made, but the files of "
            f"{len(missing)} of its samples are not in the blob store {blobs.url} "
            f"({first_missing.filename or first_missing}){also if others else ''}. If "
            f"{blobs.url} is not where the workers write, pass their blob store as {{blobs}}; "
            "if it is, start every worker with it. Either way submit the same config again: "
            f"{'these chunks are' if others else 'the chunk is'} queued again, and a worker "
            "makes again only the files its own blob store lacks (nothing, when only this "
            "process read the wrong folder)"
            f"{reviewed}",
            options=("blobs",),
        )
    return LoadedChunk(chunk, items)


@dataclass
class BuiltElsewhere:
    """What the judges need of a generator that only the workers build (a diffusion model)."""

    categories: list[str | None]

    def quota_categories(self) -> list[str | None]:
        return list(self.categories)


def judging_generators(
    config: BatchConfig, store: Store, batch_id: str, wait_for_chunk: WaitForChunk | None
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
            built[modality] = build_section_generator(config, modality)
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


def judge_batch(
    config: BatchConfig,
    *,
    store: Store,
    blobs: BlobStore,
    batch_id: str,
    sinks: Sequence[Sink],
    wait_for_chunk: WaitForChunk | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Judge a submitted batch's chunks in index order into `sinks`, as each is generated
    (`wait_for_chunk` blocks until it is); mark each chunk done (failed: some samples failed)."""
    refuse_changed_inputs(config, batch_id)  # the judges' taxonomy comes from those files
    generators = judging_generators(config, store, batch_id, wait_for_chunk)
    judges = build_judges(config, generators)
    run = RunStart(config=config, batch_id=batch_id, judges=judges)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="load") as loader:

        def streams() -> Iterator[tuple[Modality, Iterator[list[JudgedSample]]]]:
            for modality in generators:
                chunks = [c for c in store.chunks.of_batch(batch_id) if c.modality == modality]
                yield (
                    modality,
                    _judged(chunks, judges[modality], loader, store, blobs, wait_for_chunk),
                )

        return drive(run, streams(), sinks, progress=progress, stop=stop)


def _judged(
    chunks: list[ChunkState],
    judge_sample: Judge,
    loader: ThreadPoolExecutor,
    store: Store,
    blobs: BlobStore,
    wait_for_chunk: WaitForChunk | None,
) -> Iterator[list[JudgedSample]]:
    """The chunks' samples with their reports finished in order; each chunk is marked done once
    the sinks have it (the generator resumes after they took it)."""
    loading: Future[LoadedChunk] | None = None
    for chunk in [*chunks, None]:
        following = None
        if chunk is not None:
            if wait_for_chunk is not None:
                wait_for_chunk(chunk.id)
            following = loader.submit(load_chunk, store, blobs, chunk)
        if loading is not None:
            loaded = loading.result()
            judged = [_finish(item, judge_sample) for item in loaded.items]
            yield judged
            failed = any(j.sample.status == "failed" for j in judged)
            store.chunks.update(loaded.chunk.id, status="failed" if failed else "done")
        loading = following


def _finish(
    item: tuple[Sample, bytes | None, SampleMeasurements | None, int], judge_sample: Judge
) -> JudgedSample:
    """One stored sample with its report finished (the batch context sees every sample, in
    order); a failed sample as it is."""
    sample, png, measured, hidden = item
    if measured is None:  # failed: its row keeps the reason
        return JudgedSample(sample=sample, kept=True)
    rubric = judge_sample.rubric
    if not measured.measured_as(rubric):
        # e.g. the rubric's file was edited after the workers measured with it
        raise InputError(
            f"batch {sample.spec.batch_id}: its samples were measured by the workers with "
            f"rubric {measured.rubric}, and rubric {rubric.name} measures otherwise (other "
            "checks, or other check params: was its file edited since?); a rubric does not "
            "change a batch's id, so this batch cannot be judged with it: judge it with the "
            "rubric it was measured with, or give the config another name to make the batch "
            f"anew with {rubric.name}"
        )
    report = judge_sample.finish(measured)
    sample.report = report
    sample.status = report.route
    return JudgedSample(sample=sample, png=png, hidden_objects=hidden)


def assemble_from_store(
    config: BatchConfig,
    out: Path,
    *,
    store: Store,
    blobs: BlobStore,
    batch_id: str,
    wait_for_chunk: WaitForChunk | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """Judge a generated batch into the run folder `out` and back into the shared store;
    samples people were asked to review keep their verdict in both."""
    sinks = [KeepReviewed(store, [RunFolderSink(out), DatabaseSink(store)])]
    result = judge_batch(
        config,
        store=store,
        blobs=blobs,
        batch_id=batch_id,
        sinks=sinks,
        wait_for_chunk=wait_for_chunk,
        progress=progress,
    )
    result.out = out
    return result


def chunk_generated(store: Store, chunk_id: str) -> bool:
    """Whether a chunk needs no worker any more (generated, or already judged)."""
    chunk = store.chunks.get(chunk_id)
    return chunk is not None and chunk.status in FINISHED


class CeleryRunner:
    """Runs batches on Celery workers (see module doc): `run` submits, then follows.

    `on_sent(batch_id, chunks sent)` is told once the chunks are published; `watch` sees the
    batch's progress while a chunk is awaited; `on_resend(n)` is told when a stalled batch's
    chunks were published again. `timeout` bounds the whole wait (an InputError).
    """

    def __init__(
        self,
        app: Any,
        store: Store,
        blobs: BlobStore,
        settings: WorkerSettings,
        *,
        on_sent: Callable[[str, int], None] | None = None,
        watch: Callable[[BatchProgress], None] | None = None,
        on_resend: Callable[[int], None] | None = None,
        poll_seconds: float = 0.25,
        timeout: float | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.blobs = blobs
        self.settings = settings
        self.on_sent = on_sent
        self.watch = watch
        self.on_resend = on_resend
        self.poll_seconds = poll_seconds
        self.timeout = timeout

    def run(
        self,
        config: BatchConfig,
        *,
        sinks: Sequence[Sink],
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> RunResult:
        batch_id, sent = submit_batch(self.app, self.store, config)
        if self.on_sent is not None:
            self.on_sent(batch_id, sent)
        total = planned_total(config)

        def wait_for_chunk(chunk_id: str) -> None:
            if stop is not None and stop.is_set():
                raise Stopped(f"batch {batch_id}: stopped while waiting for the workers")
            if chunk_generated(self.store, chunk_id):
                return
            wait_for_batch(
                self.app,
                self.store,
                batch_id,
                total=total,
                settings=self.settings,
                on_progress=self.watch,
                on_resend=self.on_resend,
                poll_seconds=self.poll_seconds,
                timeout=self.timeout,
                until=lambda _p: (
                    (stop is not None and stop.is_set()) or chunk_generated(self.store, chunk_id)
                ),
            )
            if stop is not None and stop.is_set():
                raise Stopped(f"batch {batch_id}: stopped while waiting for the workers")

        return judge_batch(
            config,
            store=self.store,
            blobs=self.blobs,
            batch_id=batch_id,
            sinks=sinks,
            wait_for_chunk=wait_for_chunk,
            progress=progress,
            stop=stop,
        )
