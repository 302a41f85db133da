"""What one chunk task does, between the Celery wrapper and pipeline.py.

A chunk is a run of sample indices of one batch and modality, named by id in the `chunks` table.
`run_chunk` claims the delivery (`ChunkBook.begin`: a lease for this task, or nothing to do when
the chunk is finished or another live worker holds it), plans the chunk's specs again from the
batch config in the database (a file it reads that changed since submit fails the chunk: it
would make another batch under the old id), generates them with `pipeline.generate_specs`,
measures each one at once (the per-sample half of the judge: every check but the
order-dependent batch checks), puts its PNG and partial report (workers/partial.py: one blob
holds a chunk's) in the blob store and writes the samples,
`pending`, by their deterministic ids, so any delivery of the same chunk writes the same rows.
Reports are finished in sample order where the run folder is assembled (workers/runner.py).

The lease fences every write (`Store.put_made`, `ChunkBook.update_held`): while the chunk is
made, `HeldLease` renews it on a thread of its own; once the chunk was handed to another worker
(this one stalled or lost the database past `lease_timeout`), the next write is refused with
`LeaseLost` and the task ends having changed nothing. Blobs are written before the rows that
point at them; a stale delivery may still rewrite a blob, with the same bytes (the sample is
deterministic) by atomic rename, so no reader sees a difference.

After a delivery found the chunk lost by its worker (a crash), the chunk is made one sample at a
time, with the index in flight recorded: samples made before the crash are kept, and once the
chunk has lost its worker `max_crashes` times the sample in flight is marked failed with the
reason, and the rest goes on. A sample whose generator raises fails alone, with the error as its
reason. Time limits and a lost lease end the task (`ENDS_TASK`): no `except Exception` that
fails a sample swallows them. Past the soft time limit, the samples not made yet are marked
failed with the reason, under the lease.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from sqlalchemy import select
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from synthgate.config import BatchConfig
from synthgate.files import NoSpaceLeft, dumps
from synthgate.generators import Generator, generator_class
from synthgate.pipeline import (
    build_judges,
    build_section_generator,
    chunk_size,
    generate_specs,
    plan,
    refuse_changed_inputs,
)
from synthgate.samples import GeneratedSample, Modality, Provenance, Sample, SampleSpec, sample_id
from synthgate.sinks import sample_png
from synthgate.storage.blobs import BlobStore
from synthgate.storage.chunks import FINISHED, ChunkBook, ChunkState, Lease, LeaseLost
from synthgate.storage.database import shown_url
from synthgate.storage.store import Store
from synthgate.storage.tables import review_items
from synthgate.validators.validate import Judge
from synthgate.workers.app import WorkerSettings, queue_for
from synthgate.workers.partial import (
    load_chunk_partials,
    partial_document,
    partial_key,
    put_chunk_partials,
)

log = logging.getLogger(__name__)

# Errors worth a retry with backoff: the database, the blob store or the network hiccuped, or
# the blob store is full (space may be freed before the retries run out). Everything else is a
# property of the sample and fails it.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    ConnectionError,
    TimeoutError,
    NoSpaceLeft,
)

# What ends a task wherever it is raised, never taken for a sample's own failure: the time
# limits (Celery raises them in the task's thread) and a lease handed to another worker.
ENDS_TASK: tuple[type[BaseException], ...] = (SoftTimeLimitExceeded, TimeLimitExceeded, LeaseLost)


@dataclass
class WorkerContext:
    """What a worker process keeps between tasks: its stores, its loaded generators and judges.

    Generators are cached per batch and modality, so a diffusion model is loaded once per worker
    process, not once per task; each with the judge that measures its samples (rubric and
    per-sample context, built from the batch config as `synthgate run` builds them).
    """

    settings: WorkerSettings
    store: Store
    blobs: BlobStore
    generators: OrderedDict[tuple[str, str], tuple[BatchConfig, Generator, Judge]] = field(
        default_factory=OrderedDict
    )
    keep_generators: int = 2
    # Encodes and stores PNGs while the next sample is drawn and measured (zlib releases the
    # GIL), as the embedded runner does; made lazily, in the pool process that uses it.
    _encoder: ThreadPoolExecutor | None = None

    @property
    def encoder(self) -> ThreadPoolExecutor:
        if self._encoder is None:
            self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="png")
        return self._encoder

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> WorkerContext:
        db_url, blob_url = settings.require_shared_stores()
        return cls(settings=settings, store=Store(db_url), blobs=BlobStore(blob_url))

    def hold(self, lease: Lease) -> HeldLease:
        """The lease of a claimed chunk, to be renewed while this process makes it."""
        return HeldLease(self.store.chunks, lease, self.settings.heartbeat_interval)

    def generator(self, batch_id: str, modality: str) -> tuple[BatchConfig, Generator]:
        config, generator, _judge = self._built(batch_id, modality)
        return config, generator

    def judge(self, batch_id: str, modality: str) -> Judge:
        """The judge whose per-sample half (`Judge.measure`) this worker runs on its samples."""
        return self._built(batch_id, modality)[2]

    def _built(self, batch_id: str, modality: str) -> tuple[BatchConfig, Generator, Judge]:
        key = (batch_id, modality)
        if key in self.generators:
            self.generators.move_to_end(key)
            return self.generators[key]
        batch = self.store.get_batch(batch_id)
        if batch is None:
            raise LookupError(f"batch {batch_id} is not in the database {self.store.url}")
        config = BatchConfig.model_validate(batch["config"])
        # Built from the files as they are now: edited since submit, they make another batch
        # (checked before the build, which may load a dataset or a model).
        refuse_changed_inputs(config, batch_id)
        kind: Modality = "image" if modality == "image" else "text"
        generator = build_section_generator(config, kind)  # refused as `run` refuses it
        judge = build_judges(config, {kind: generator})[kind]
        self.generators[key] = (config, generator, judge)
        while len(self.generators) > self.keep_generators:
            self.generators.popitem(last=False)
        return self.generators[key]


def chunk_rows(
    config: BatchConfig,
    batch_id: str,
    *,
    gpu_generators: Iterable[str] = ("diffusion",),
    cpu_chunk_factor: int = 1,
) -> list[dict[str, Any]]:
    """The chunks of a batch: runs of indices, `cpu_chunk_factor` embedded chunks on `cpu`."""
    rows = []
    for modality in ("image", "text"):
        section = getattr(config, modality)
        if section is None:
            continue
        queue = queue_for(section.generator, gpu_generators)
        size = chunk_size(generator_class(section.generator), modality)
        batch_size = getattr(getattr(section, "model", None), "batch_size", None)
        if batch_size:  # a model's batch: one pipeline call per chunk, as in the embedded run
            size = int(batch_size)
        size *= cpu_chunk_factor if queue == "cpu" else 1
        for start in range(0, section.count, size):
            rows.append(
                {
                    "id": f"{batch_id}:{modality}:{start}",
                    "batch_id": batch_id,
                    "modality": modality,
                    "start": start,
                    "stop": min(start + size, section.count),
                    "queue": queue,
                }
            )
    return rows


def failed_sample(spec: SampleSpec, version: str) -> Sample:
    """The row of a sample that could not be made: its spec and provenance, status `failed`."""
    return Sample(
        id=sample_id(spec.batch_id, spec.modality, spec.index),
        spec=spec,
        provenance=Provenance(generator=spec.generator, generator_version=version, seed=spec.seed),
        status="failed",
    )


class HeldLease:
    """A lease this process holds on a chunk, renewed every `interval` seconds on a thread of
    its own while the chunk is made (`with HeldLease(...) as held:`).

    `check()` raises `LeaseLost` once a renewal was refused (the chunk went to another worker),
    so making stops at the next sample instead of at the next write; the writes are fenced
    either way. A renewal the database cannot answer is tried again at the next beat.
    """

    def __init__(self, chunks: ChunkBook, lease: Lease, interval: float) -> None:
        self.chunks = chunks
        self.lease = lease
        self.interval = interval
        self.lost = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"lease-{lease.chunk_id}", daemon=True
        )

    def __enter__(self) -> HeldLease:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join(timeout=self.interval)

    def check(self) -> None:
        if self.lost.is_set():
            raise LeaseLost(self.lease)

    def update(self, **values: Any) -> None:
        """Set fields of the chunk under this lease (`ChunkBook.update_held`)."""
        self.chunks.update_held(self.lease, **values)

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if not self.chunks.renew(self.lease):
                    if not self._done.is_set():
                        log.warning("%s", LeaseLost(self.lease))
                    self.lost.set()
                    return
            except TRANSIENT_ERRORS as error:  # the next beat tries again; the lease may run out
                log.warning("%s: lease renewal failed: %r", self.lease.chunk_id, error)


class NotInThisDatabase(LookupError):
    """A chunk the worker's database does not hold: it was submitted to another database,
    whose workers its message is for (the message names the chunk, the database and the fix)."""


def run_chunk(context: WorkerContext, chunk_id: str, *, holder: str | None = None) -> str:
    """Claim a delivery of one chunk for `holder` (the Celery task id; a fresh id when None)
    and make it under its lease (see the module docstring); returns what happened, for the
    worker log.

    Samples are stored `pending`, with their partial reports: the reports are finished in
    sample order, where the run folder is assembled, because batch checks (near-duplicates)
    compare each sample with the ones before it. A transient error (database, blob store,
    network, a full blob store) puts the chunk back to `queued` and is raised, for the task to
    retry. A chunk this database does not hold is `NotInThisDatabase`.
    """
    delivery = context.store.chunks.begin(
        chunk_id,
        holder=holder or f"local-{uuid.uuid4().hex}",
        lease_seconds=context.settings.lease_timeout,
    )
    if delivery is None:
        # Sent by a `submit` on another database: the message is a worker's on that one (the
        # task hands it back to the broker), and this worker's --db is wrong
        raise NotInThisDatabase(
            f"chunk {chunk_id} is not in this worker's database "
            f"{shown_url(context.store.url)}: its batch was submitted to another one. Start "
            "this worker with the --db (or SYNTHGATE_DB_URL) that `synthgate submit` is given"
        )
    chunk = delivery.chunk
    if delivery.lease is None:
        if chunk.status in FINISHED:
            return f"{chunk_id} already {chunk.status}"
        return f"{chunk_id} is held by task {chunk.holder} (lease {chunk.lease}); left to it"
    with context.hold(delivery.lease) as held:
        batch = context.store.get_batch(chunk.batch_id)
        if batch is not None and batch["status"] == "cancelled":
            # Cancelled after its chunks were sent: the workers made every one of them anyway
            # (and a requester could cancel and post again past their open-batch limit). Left
            # queued: posting the batch again sends it once more.
            with contextlib.suppress(*TRANSIENT_ERRORS, LeaseLost):
                held.update(status="queued")
            return f"{chunk_id}: batch {chunk.batch_id} was cancelled; left queued"
        try:
            return make_chunk(context, chunk, held)
        except LeaseLost as lost:
            log.warning("%s", lost)
            return f"{chunk_id}: lease {lost.lease.number} lost to another worker; stopped"
        except SoftTimeLimitExceeded:
            reason = f"took longer than the {context.settings.soft_time_limit:g}s soft time limit"
            try:
                fail_remaining(context, chunk, held, reason)
            except LeaseLost:
                return f"{chunk_id}: past the soft time limit, and its lease was lost"
            return f"{chunk_id} failed: {reason}"
        except TRANSIENT_ERRORS:
            # Back to `queued` for the retry, so it is not counted as a lost worker. The
            # database may be what failed: then the lease runs out and a sweep requeues it.
            with contextlib.suppress(*TRANSIENT_ERRORS, LeaseLost):
                held.update(status="queued")
            raise


def make_chunk(context: WorkerContext, chunk: ChunkState, held: HeldLease) -> str:
    """Make a claimed chunk's samples under `held`; the chunk ends `generated` (or `failed`
    when its generator cannot be built here)."""
    try:
        config, generator = context.generator(chunk.batch_id, chunk.modality)
        judge = context.judge(chunk.batch_id, chunk.modality)
        specs: list[SampleSpec] | None = remaining_specs(context, chunk, config, generator)
    except (*TRANSIENT_ERRORS, *ENDS_TASK):
        raise
    except Exception as error:
        # Not a sample's fault: the generator cannot even be built (a model missing on this
        # worker) or the batch is gone. Without the chunk marked, the batch would wait for it
        # for ever.
        reason = f"{type(error).__name__}: {error}"
        held.update(status="failed", current=None, reason=reason)
        log.error("%s failed: %s", chunk.id, reason)
        return f"{chunk.id} failed: {reason}"
    careful = chunk.crashes > 0
    if chunk.crashes >= context.settings.max_crashes:
        specs = give_up_in_flight(context, chunk, specs or [], generator, held)
    if specs and not careful:
        try:
            if chunk.queue == "gpu":  # a GPU generator batches the whole chunk
                store_made(context, generate_specs(generator, specs), judge, held)
            else:
                make_overlapped(context, generator, specs, judge, held)
            specs = []
        except (*TRANSIENT_ERRORS, *ENDS_TASK):
            raise
        except Exception as error:  # one bad sample must not sink its neighbours: go one by one
            log.warning("%s: %r; making its samples one at a time", chunk.id, error)
    failures = 0
    for spec in specs or []:
        held.check()
        held.update(current=spec.index)
        try:
            store_made(context, generate_specs(generator, [spec]), judge, held)
        except (*TRANSIENT_ERRORS, *ENDS_TASK):
            raise
        except Exception as error:
            failures += 1
            reason = f"{type(error).__name__}: {error}"
            context.store.put_made(
                [failed_sample(spec, generator.version)], lease=held.lease, reason=reason
            )
    held.update(status="generated", current=None, quota_categories=generator.quota_categories())
    return f"{chunk.id} generated" + (f", {failures} failed" if failures else "")


def remaining_specs(
    context: WorkerContext,
    chunk: ChunkState,
    config: BatchConfig,
    generator: Generator,
    *,
    remake_missing: bool = True,
) -> list[SampleSpec]:
    """The chunk's specs that have no row yet (an earlier delivery may have made some), and,
    with `remake_missing`, those made but whose files this worker's blob store lacks
    (`files_missing`: made by a worker with another --blobs, or deleted since), which are made
    again, same bytes. Failing a chunk's rest passes False: a sample only this worker cannot
    see is no sample it failed to make."""
    modality: Modality = "image" if chunk.modality == "image" else "text"
    specs = plan(
        config,
        modality,
        batch_id=chunk.batch_id,
        quota_categories=generator.quota_categories(),
        start=chunk.start,
        stop=chunk.stop,
    )
    done = context.store.stored_indices(chunk.batch_id, chunk.modality, chunk.start, chunk.stop)
    if done and remake_missing:
        # Only pending samples no one was asked to review: a judged one is not this chunk's
        # to change, and a reviewed one's files are put back by hand (another synthgate
        # version could make other pixels than the ones people saw).
        lacking = [
            s for s in files_missing(context.store, context.blobs, chunk) if s.status == "pending"
        ]
        reviewed = asked_to_review(context.store, [s.id for s in lacking])
        done -= {s.spec.index for s in lacking if s.id not in reviewed}
    return [spec for spec in specs if spec.index not in done]


def asked_to_review(store: Store, sample_ids: list[str]) -> set[str]:
    """Of `sample_ids` (a chunk's worth), those that have a review item of any kind (to
    review, gold, a honeypot's source): their rows and files are people's, not a worker's."""
    if not sample_ids:
        return set()
    query = select(review_items.c.sample_id).where(review_items.c.sample_id.in_(sample_ids))
    with store.engine.connect() as connection:
        return set(connection.execute(query).scalars())


def files_missing(store: Store, blobs: BlobStore, chunk: ChunkState) -> list[Sample]:
    """The samples a chunk made whose PNG or partial report is not in `blobs` (looked for,
    not read)."""
    documents = load_chunk_partials(blobs, chunk.id)
    return [
        sample
        for sample in store.samples_in(chunk.batch_id, chunk.modality, chunk.start, chunk.stop)
        if sample.status != "failed"
        and (
            (chunk.modality == "image" and sample.uri and not blobs.exists(sample.uri))
            or (sample.id not in documents and not blobs.exists(partial_key(sample)))
        )
    ]


def give_up_in_flight(
    context: WorkerContext,
    chunk: ChunkState,
    specs: list[SampleSpec],
    generator: Generator,
    held: HeldLease,
) -> list[SampleSpec] | None:
    """The chunk lost its worker `max_crashes` times: fail the sample in flight, keep the rest.

    Returns the specs still to make, or None when the whole chunk was given up (no sample was
    known to be in flight, so no single culprit).
    """
    settings = context.settings
    reason = (
        f"its worker was lost {chunk.crashes} times while making it (killed, out of memory, "
        f"or past the {settings.time_limit:g}s hard time limit); gave up after "
        f"{settings.max_crashes}"
    )
    culprits = [s for s in specs if s.index == chunk.current] if chunk.current is not None else []
    if not culprits:  # the whole rest, but not the samples made whose files only this worker lacks
        made = context.store.stored_indices(chunk.batch_id, chunk.modality, chunk.start, chunk.stop)
        specs = [s for s in specs if s.index not in made]
    failed = [failed_sample(s, generator.version) for s in (culprits[:1] or specs)]
    context.store.put_made(failed, lease=held.lease, reason=reason)
    if not culprits:
        held.update(reason=reason)
        return None
    held.update(crashes=0, current=None)
    return [s for s in specs if s.index != chunk.current]


def make_overlapped(
    context: WorkerContext,
    generator: Generator,
    specs: list[SampleSpec],
    judge: Judge,
    held: HeldLease,
) -> None:
    """Generate and measure specs one by one while a second thread encodes and stores each
    PNG (zlib releases the GIL; the checks, like drawing, hold it, so they run here: on the
    second thread they only took turns with the drawing, at a context switch each).

    The partial reports go into one blob for the chunk, and the rows are written once every
    blob is in the blob store, as in `store_made`.
    """
    made: list[GeneratedSample] = []
    documents: dict[str, Any] = {}
    stored: list[Future[None]] = []
    try:
        for spec in specs:
            held.check()
            for generated in generate_specs(generator, [spec]):
                made.append(generated)
                documents[generated.sample.id] = partial_document(generated, judge)
                stored.append(context.encoder.submit(put_png, context.blobs, generated))
    finally:
        wait(stored)  # nothing is left writing when a sample fails and the chunk is retried
    for future in stored:
        future.result()
    held.check()
    put_chunk_partials(context.blobs, held.lease.chunk_id, documents)
    context.store.put_made((g.sample for g in made), lease=held.lease)


def put_png(blobs: BlobStore, generated: GeneratedSample) -> None:
    """Store the PNG of an image sample (a text sample has none)."""
    png = sample_png(generated.pixels)
    if png is not None and generated.sample.uri:
        blobs.put(generated.sample.uri, png)


def put_blobs(blobs: BlobStore, generated: GeneratedSample, judge: Judge) -> None:
    """The PNG of an image sample, and its partial report (measured here) in a blob of its own."""
    document = partial_document(generated, judge)
    put_png(blobs, generated)
    blobs.put(partial_key(generated.sample), dumps(document).encode("utf-8"))


def store_made(
    context: WorkerContext, made: list[GeneratedSample], judge: Judge, held: HeldLease
) -> None:
    """Blobs first, then rows: a sample row in the database means its blobs are there."""
    held.check()
    for generated in made:
        put_blobs(context.blobs, generated, judge)
    context.store.put_made((g.sample for g in made), lease=held.lease)


def fail_remaining(context: WorkerContext, chunk: ChunkState, held: HeldLease, reason: str) -> None:
    """Mark the samples a chunk has not made failed, under its lease (soft time limit)."""
    config, generator = context.generator(chunk.batch_id, chunk.modality)
    specs = remaining_specs(context, chunk, config, generator, remake_missing=False)
    context.store.put_made(
        [failed_sample(s, generator.version) for s in specs], lease=held.lease, reason=reason
    )
    held.update(status="generated", current=None, reason=reason)


def fail_chunk(context: WorkerContext, chunk_id: str, reason: str, *, holder: str) -> str:
    """Give a chunk up (retries exhausted): claim it and mark the samples it has not made
    failed with the reason; nothing when another live worker holds it or it is finished."""
    delivery = context.store.chunks.begin(
        chunk_id, holder=holder, lease_seconds=context.settings.lease_timeout
    )
    if delivery is None or delivery.lease is None:
        return f"{chunk_id}: left to the worker that holds it"
    with context.hold(delivery.lease) as held:
        fail_remaining(context, delivery.chunk, held, reason)
    return f"{chunk_id} failed: {reason}"
