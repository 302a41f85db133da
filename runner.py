"""The runner interface: a batch config in, judged samples out to sinks, a `RunResult` back.

A runner plans, generates and judges a batch and hands every judged chunk, in index order, to
each of its sinks (sinks.py: the run folder, the service database); it does not know what they
write. Two backends share the interface: `InProcessRunner` (here: the stages of pipeline.py in
this process) and `CeleryRunner` (workers/runner.py: chunks made by Celery workers, judged here
in order). So `synthgate run`, `synthgate submit --wait` and the API write the same bytes.

    runner.run(config, sinks=[RunFolderSink(out)], progress=..., stop=...) -> RunResult

`stop` (a threading.Event) ends a run between chunks with `Stopped`; sinks are aborted, so
nothing half-written is left. `run_batch(config, out)` is the common case: in this process, into
a run folder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from synthgate.arguments import callback, path_argument, whole_number
from synthgate.config import MAX_SEED, BatchConfig, find_config_file, input_files, load_config
from synthgate.errors import InputError
from synthgate.generators import Generator
from synthgate.outputs import refuse_out_holding
from synthgate.pipeline import (
    JudgedSample,
    Progress,
    RunStart,
    RunTotals,
    batch_id_for,
    build_generators,
    build_judges,
    chunk_size,
    judged_chunks,
    specs_of,
)
from synthgate.samples import Modality, Sample, SampleSpec
from synthgate.sinks import RunFolderSink
from synthgate.storage.store import Store, sqlite_url
from synthgate.validators.validate import check_config_rubrics


class Stopped(Exception):
    """A run was asked to stop (`stop` was set) before it finished; nothing was published."""


@dataclass
class RunResult:
    """What a run made: where its run folder is (set by whoever gave it a `RunFolderSink`;
    None without one), its batch, counts
    ({modality: {status: samples, "generated", "audit", "hidden_objects"}}) and timings."""

    out: Path | None
    batch_id: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:  # its folder as the other results show theirs: a str
        out = None if self.out is None else str(self.out)
        return (
            f"RunResult(out={out!r}, batch_id={self.batch_id!r}, counts={self.counts}, "
            f"timings={self.timings})"
        )

    def __fspath__(self) -> str:
        """The run folder, so that a result goes where a path does: `sg.export(run, ...)`."""
        return str(self._folder())

    def _folder(self) -> Path:
        if self.out is None:
            raise InputError(
                field="run",
                value=self.batch_id,
                problem="wrote no run folder (it ran into other sinks only)",
            )
        return self.out

    def samples(self, modality: Modality | None = None) -> Iterator[Sample]:
        """The run's samples, in index order (images first), read from its run folder. What
        cannot be read is refused here, at the call, not at the first sample."""
        if modality not in (None, "image", "text"):
            raise InputError(field="modality", value=modality, problem='must be "image" or "text"')
        database = self._folder() / "synthgate.db"
        if not database.is_file():  # never made here: opening a Store would create one
            raise InputError(
                field="run",
                value=self.out,
                problem="has no synthgate.db (moved, or not a run folder any more)",
            )
        store = Store(sqlite_url(database))
        if store.get_batch(self.batch_id) is None:
            store.close()
            raise InputError(
                field="run",
                value=self.out,
                problem=f"no longer holds batch {self.batch_id} (run again since?)",
                fix="run it again, or read the folder's new result",
            )
        return self._read(store, modality)

    def _read(self, store: Store, modality: Modality | None) -> Iterator[Sample]:
        try:
            for kind in (modality,) if modality else ("image", "text"):
                yield from store.iter_samples(self.batch_id, kind)
        finally:
            store.close()


class Sink(Protocol):
    """Consumes a run's judged samples: `start`, chunks in index order, then `finish` or
    `abort` (sinks.py has the run folder's and the database's)."""

    def start(self, run: RunStart) -> None: ...

    def add(self, chunk: list[JudgedSample]) -> None: ...

    def finish(self, totals: RunTotals) -> None: ...

    def abort(self) -> None: ...


class Runner(Protocol):
    """Runs a batch config into sinks."""

    def run(
        self,
        config: BatchConfig,
        *,
        sinks: Sequence[Sink],
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> RunResult: ...


def counts_of(chunk: Iterable[JudgedSample], counts: dict[str, dict[str, int]]) -> None:
    """Add a chunk to a run's counts: statuses, generated (not failed), audits, hidden objects."""
    for judged in chunk:
        sample = judged.sample
        row = counts.setdefault(sample.spec.modality, {})
        row[sample.status] = row.get(sample.status, 0) + 1
        row["hidden_objects"] = row.get("hidden_objects", 0) + judged.hidden_objects
        if sample.report is not None:
            row["audit"] = row.get("audit", 0) + int(sample.report.audit)
        if sample.status != "failed":
            row["generated"] = row.get("generated", 0) + 1


def drive(
    run: RunStart,
    streams: Iterable[tuple[Modality, Iterator[list[JudgedSample]]]],
    sinks: Sequence[Sink],
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> RunResult:
    """Feed each modality's judged chunks to every sink, then finish them (or abort them all).

    The part every backend shares: counts, timings per modality, progress and stopping.
    """
    totals = RunTotals(batch_id=run.batch_id)
    counts: dict[str, dict[str, int]] = {}
    try:
        for sink in sinks:
            sink.start(run)
        for modality, chunks in streams:
            started = time.perf_counter()
            total = getattr(run.config, modality).count
            for chunk in chunks:
                if stop is not None and stop.is_set():
                    raise Stopped(f"batch {run.batch_id}: stopped before it finished")
                for sink in sinks:
                    sink.add(chunk)
                counts_of(chunk, counts)
                if progress is not None:
                    progress(modality, len(chunk), total)
            totals.timings[f"{modality}_seconds"] = round(time.perf_counter() - started, 3)
        totals.counts = {m: dict(sorted(c.items())) for m, c in counts.items()}
        for sink in sinks:
            sink.finish(totals)
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return RunResult(
        out=None, batch_id=totals.batch_id, counts=totals.counts, timings=totals.timings
    )


class InProcessRunner:
    """The embedded backend: every stage in this process, chunk by chunk.

    `plans` replaces `plan()` for a modality with precomputed specs (balancing computes its own
    quotas); their count must equal the section's `count`. `generators` replaces
    `build_generators(config)` (e.g. a generator wrapped with augmentation).
    `reference_progress(files hashed, files in all)`: while the folders of real images a rubric
    names are hashed, before the first sample is made. `source`: the config file, named in an
    error about one of its fields that building or running a generator finds (a model not
    there, a background image it cannot read).
    """

    def __init__(
        self,
        *,
        plans: dict[Modality, list[SampleSpec]] | None = None,
        generators: dict[Modality, Generator] | None = None,
        reference_progress: Callable[[int, int], None] | None = None,
        source: Path | str | None = None,
    ) -> None:
        self.plans = plans or {}
        self.generators = generators
        self.reference_progress = reference_progress
        self.source = source

    def run(
        self,
        config: BatchConfig,
        *,
        sinks: Sequence[Sink],
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> RunResult:
        generators = self.generators
        if generators is None:
            generators = build_generators(config, source=self.source)
        judges = build_judges(config, generators, self.plans or None)
        for judge in judges.values():  # before anything is made or written
            judge.hash_references(progress=self.reference_progress)
        run = RunStart(config=config, batch_id=batch_id_for(config), judges=judges)

        def streams() -> Iterator[tuple[Modality, Iterator[list[JudgedSample]]]]:
            for modality, generator in generators.items():
                specs = specs_of(
                    config,
                    modality,
                    generator,
                    batch_id=run.batch_id,
                    planned=self.plans.get(modality),
                )
                size = chunk_size(generator, modality)
                yield (
                    modality,
                    judged_chunks(
                        specs, generator, judges[modality], size=size, source=self.source
                    ),
                )

        return drive(run, streams(), sinks, progress=progress, stop=stop)


def run_batch(
    config: BatchConfig,
    out: Path,
    *,
    progress: Progress | None = None,
    plans: dict[Modality, list[SampleSpec]] | None = None,
    generators: dict[Modality, Generator] | None = None,
    stop: threading.Event | None = None,
    reference_progress: Callable[[int, int], None] | None = None,
    source: Path | str | None = None,
) -> RunResult:
    """The whole batch in this process, into the run folder `out` (see `InProcessRunner`)."""
    sink = RunFolderSink(out)
    runner = InProcessRunner(
        plans=plans, generators=generators, reference_progress=reference_progress, source=source
    )
    result = runner.run(config, sinks=[sink], progress=progress, stop=stop)
    result.out = out
    return result


def run(
    config: BatchConfig | Path | str | dict[str, Any],
    *,
    out: Path | str | None = None,
    seed: int | None = None,
    progress: Progress | None = None,
    reference_progress: Callable[[int, int], None] | None = None,
) -> RunResult:
    """Make a batch, judge every sample and write its run folder.

    Args:
        config: a `BatchConfig`, a config YAML path or the config as a dict.
        out: the run folder (default: runs/<config name>). An earlier run there is replaced,
            never one that holds human review decisions or a file synthgate did not write
            (those are refused, naming what to move: foreign_files.py).
        seed: replaces the config's seed (every sample's seed derives from it).
        progress: called with (modality, samples just finished, total) after every chunk.
        reference_progress: called with (files hashed, files in all) while the folders of real
            images the rubric names (`reference_images`) are hashed, before the first sample.

    Returns:
        A `RunResult`: `.out`, `.batch_id`, `.counts` ({modality: {status: n}}), `.timings`
        and `.samples()`, the run's samples read back in order.

    Example:
        >>> result = run("configs/quickstart.yaml", out="runs/quickstart")
        >>> result.counts["image"]["accepted"]
    """
    given = config
    config = load_config(config)  # refuses a config of the wrong type first
    progress = callback(progress, "progress")
    reference_progress = callback(reference_progress, "reference_progress")
    config_file = None if isinstance(given, BatchConfig | Mapping) else find_config_file(given)
    check_config_rubrics(config, source=config_file or "<config>")
    if seed is not None:
        config = config.model_copy(update={"seed": whole_number(seed, "seed", maximum=MAX_SEED)})
    target = path_argument(out, "out") if out is not None else Path("runs") / config.name
    refuse_out_holding(target, config_file, *input_files(config))  # replacing it deletes them
    return run_batch(
        config,
        target,
        progress=progress,
        reference_progress=reference_progress,
        source=config_file,
    )
