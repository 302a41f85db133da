"""What one chunk task does, between the Celery wrapper and pipeline.py.

A chunk is a run of sample indices of one batch and modality, named by id in the `chunks` table.
`run_chunk` counts the delivery, plans the chunk's specs again from the batch config in the
database, generates them with `pipeline.generate_specs`, measures each one at once (the
per-sample half of the judge: every check but the order-dependent batch checks), puts its PNG
and partial report (workers/partial.py: one blob holds a chunk's) in the blob store and upserts
the samples, `pending`, by their deterministic ids, so any delivery of the same chunk writes the
same rows. Reports are
finished in sample order where the run folder is assembled (workers/submit.py).

After a delivery found the chunk still `running` (its worker was lost), the chunk is made one
sample at a time, committed sample by sample, with the index in flight recorded: samples made
before the crash are kept, and once the chunk has lost its worker `max_crashes` times the sample
in flight is marked failed with the reason, and the rest goes on. A sample whose generator
raises fails alone, with the error as its reason.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from synthgate.config import BatchConfig
from synthgate.generators import Generator, build_generator, generator_class
from synthgate.pipeline import build_judges, chunk_size, generate_specs, plan
from synthgate.samples import GeneratedSample, Modality, Provenance, Sample, SampleSpec, sample_id
from synthgate.sinks import sample_png
from synthgate.storage.blobs import BlobStore
from synthgate.storage.chunks import ChunkState
from synthgate.storage.store import Store
from synthgate.validators.validate import Judge
from synthgate.workers.app import WorkerSettings, queue_for
from synthgate.workers.partial import (
    encode_partial,
    partial_document,
    partial_key,
    put_chunk_partials,
)

log = logging.getLogger(__name__)

# A chunk in one of these states needs no worker: `generated` waits for the run folder's
# assembly to finish its samples' reports in order, then becomes `done` (or `failed`).
FINISHED = ("generated", "done", "failed")

# Errors worth a retry with backoff: the database, the blob store or the network hiccuped.
# Everything else is a property of the sample and fails it.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    ConnectionError,
    TimeoutError,
)


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
    # Encodes and stores PNGs while the next sample is drawn (zlib releases the GIL), as the
    # embedded runner does; made lazily, in the pool process that uses it.
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
        section = getattr(config, modality)
        generator = build_generator(section, categories=list(config.categories))
        kind: Modality = "image" if modality == "image" else "text"
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


def run_chunk(context: WorkerContext, chunk_id: str) -> str:
    """Generate one chunk (see the module docstring); returns what happened, for the worker log.

    Samples are stored `pending`, with their partial reports: the reports are finished in
    sample order, where the run folder is assembled, because batch checks (near-duplicates)
    compare each sample with the ones before it.
    """
    chunk = context.store.chunks.begin(chunk_id)
    if chunk is None:
        return f"unknown chunk {chunk_id}"
    if chunk.status in FINISHED:
        return f"{chunk_id} already {chunk.status}"
    config, generator = context.generator(chunk.batch_id, chunk.modality)
    judge = context.judge(chunk.batch_id, chunk.modality)
    specs: list[SampleSpec] | None = remaining_specs(context, chunk, config, generator)
    careful = chunk.crashes > 0
    if chunk.crashes >= context.settings.max_crashes:
        specs = give_up_in_flight(context, chunk, specs or [], generator)
    if specs and not careful:
        try:
            if chunk.queue == "gpu":  # a GPU generator batches the whole chunk
                store_made(context, generate_specs(generator, specs), judge)
            else:
                make_overlapped(context, generator, specs, judge, chunk_id)
            specs = []
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:  # one bad sample must not sink its neighbours: go one by one
            log.warning("%s: %r; making its samples one at a time", chunk_id, error)
    failures = 0
    for spec in specs or []:
        context.store.chunks.update(chunk_id, current=spec.index)
        try:
            store_made(context, generate_specs(generator, [spec]), judge)
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:
            failures += 1
            reason = f"{type(error).__name__}: {error}"
            context.store.upsert_samples([failed_sample(spec, generator.version)], reason=reason)
    context.store.chunks.update(
        chunk_id,
        status="generated",
        current=None,
        quota_categories=generator.quota_categories(),
    )
    return f"{chunk_id} generated" + (f", {failures} failed" if failures else "")


def remaining_specs(
    context: WorkerContext, chunk: ChunkState, config: BatchConfig, generator: Generator
) -> list[SampleSpec]:
    """The chunk's specs that have no row yet (an earlier delivery may have made some)."""
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
    return [spec for spec in specs if spec.index not in done]


def give_up_in_flight(
    context: WorkerContext, chunk: ChunkState, specs: list[SampleSpec], generator: Generator
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
    if not culprits:
        context.store.upsert_samples(
            [failed_sample(s, generator.version) for s in specs], reason=reason
        )
        context.store.chunks.update(chunk.id, reason=reason)
        return None
    context.store.upsert_samples([failed_sample(culprits[0], generator.version)], reason=reason)
    context.store.chunks.update(chunk.id, crashes=0, current=None)
    return [s for s in specs if s.index != chunk.current]


def make_overlapped(
    context: WorkerContext,
    generator: Generator,
    specs: list[SampleSpec],
    judge: Judge,
    chunk_id: str,
) -> None:
    """Generate specs one by one while a second thread measures each one and stores its PNG.

    The partial reports go into one blob for the chunk, and the rows are written once every
    blob is in the blob store, as in `store_made`.
    """
    made: list[GeneratedSample] = []
    stored: list[Future[dict[str, Any]]] = []
    try:
        for spec in specs:
            for generated in generate_specs(generator, [spec]):
                made.append(generated)
                stored.append(context.encoder.submit(put_image, context.blobs, generated, judge))
    finally:
        wait(stored)  # nothing is left writing when a sample fails and the chunk is retried
    documents = {g.sample.id: future.result() for g, future in zip(made, stored, strict=True)}
    put_chunk_partials(context.blobs, chunk_id, documents)
    context.store.upsert_samples(g.sample for g in made)


def put_image(blobs: BlobStore, generated: GeneratedSample, judge: Judge) -> dict[str, Any]:
    """Store the PNG of an image sample; return its partial report (measured here)."""
    document = partial_document(generated, judge)
    png = sample_png(generated.pixels)
    if png is not None and generated.sample.uri:
        blobs.put(generated.sample.uri, png)
    return document


def put_blobs(blobs: BlobStore, generated: GeneratedSample, judge: Judge) -> None:
    """The PNG of an image sample, and its partial report in a blob of its own."""
    partial = encode_partial(generated, judge)
    png = sample_png(generated.pixels)
    if png is not None and generated.sample.uri:
        blobs.put(generated.sample.uri, png)
    blobs.put(partial_key(generated.sample), partial)


def store_made(context: WorkerContext, made: list[GeneratedSample], judge: Judge) -> None:
    """Blobs first, then rows: a sample row in the database means its blobs are there."""
    for generated in made:
        put_blobs(context.blobs, generated, judge)
    context.store.upsert_samples(g.sample for g in made)


def fail_chunk(context: WorkerContext, chunk_id: str, reason: str) -> None:
    """Mark the samples a chunk has not made failed (soft time limit, retries exhausted)."""
    chunk = context.store.chunks.get(chunk_id)
    if chunk is None:
        return
    config, generator = context.generator(chunk.batch_id, chunk.modality)
    specs = remaining_specs(context, chunk, config, generator)
    context.store.upsert_samples(
        [failed_sample(s, generator.version) for s in specs], reason=reason
    )
    context.store.chunks.update(chunk_id, status="generated", current=None, reason=reason)
