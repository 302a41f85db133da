"""Where the stages meet: plan -> generate -> validate -> route, and the embedded runner.

Every stage is a plain function over plain data; `run_batch` calls them in-process and streams
the results into a run folder, and Celery tasks (workers/) call the same `plan` and
`generate_specs`. The run folder is written by assembly.py, whoever made the samples. Nothing here holds a whole batch in memory: specs
are planned lazily, made in small chunks, written out and dropped.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from synthgate.assembly import RunAssembly, RunResult, assemble_run, hidden_objects
from synthgate.config import BatchConfig
from synthgate.generators import Generator, build_generator
from synthgate.samples import (
    GeneratedSample,
    Modality,
    RubricReport,
    Sample,
    SampleSpec,
    sample_seed,
)
from synthgate.validators.context import ValidationContext
from synthgate.validators.validate import Judge, rubric_for

MODALITIES: tuple[Modality, ...] = ("image", "text")
Progress = Callable[[Modality, int, int], None]  # (modality, samples just finished, total)


def batch_id_for(config: BatchConfig) -> str:
    """Deterministic batch id: the same config and seed name the same batch, on any machine.

    Files a config points to count by content, not by where they lie.
    """
    data = config.model_dump(mode="json")
    for modality in MODALITIES:  # the rubric judges samples; it does not change what is made
        if isinstance(data.get(modality), dict):
            data[modality].pop("rubric", None)
    for modality in MODALITIES:
        section = getattr(config, modality)
        for key, value in dict(section or {}).items():
            if isinstance(value, Path) and value.is_file():
                data[modality][key] = hashlib.sha1(value.read_bytes()).hexdigest()
    snapshot = json.dumps(data, sort_keys=True)
    return f"{config.name}-{hashlib.sha1(snapshot.encode()).hexdigest()[:10]}"


def attribute_axes(config: BatchConfig, modality: Modality) -> dict[str, list[str]]:
    """The attributes the planner balances for a modality (bias control)."""
    if modality == "text" and config.text is not None:
        return {"locale": list(config.text.locales), "gender": ["female", "male"]}
    if modality == "image" and config.image is not None:
        # Diffusion prompts' attribute slots ({colour}, {age}, …) and their values.
        return dict(getattr(config.image, "attributes", {}))
    return {}


def plan(
    config: BatchConfig,
    modality: Modality,
    *,
    batch_id: str,
    quota_categories: list[str | None],
    start: int = 0,
    stop: int | None = None,
) -> Iterator[SampleSpec]:
    """One SampleSpec per sample: categories spread evenly, attributes balanced across them.

    Sample i gets category i mod C; each attribute axis cycles with a stride of the product of
    the sizes before it, so categories and attributes are balanced and not correlated.
    `start`/`stop` plan only indices [start, stop), the same specs as the whole plan has there
    (a worker plans just its chunk).
    """
    section = getattr(config, modality)
    axes = attribute_axes(config, modality)
    strides, stride = {}, len(quota_categories)
    for name, values in axes.items():
        strides[name] = stride
        stride *= len(values)
    for index in range(section.count)[start:stop]:
        yield SampleSpec(
            batch_id=batch_id,
            index=index,
            modality=modality,
            generator=section.generator,
            category=quota_categories[index % len(quota_categories)],
            attributes={
                name: values[(index // strides[name]) % len(values)]
                for name, values in axes.items()
            },
            seed=sample_seed(config.seed, modality, index),
        )


def judge(generated: GeneratedSample, judge_sample: Judge) -> GeneratedSample:
    """Validate and route one sample: its RubricReport is stored with it, its status is the
    route (an audited sample stays accepted; `report.audit` sends it to review as well)."""
    record_report(generated.sample, judge_sample(generated))
    return generated


def record_report(sample: Sample, report: RubricReport) -> Sample:
    """Store a sample's report with it; its status is the route."""
    sample.report = report
    sample.status = report.route
    return sample


def generate_specs(generator: Generator, specs: list[SampleSpec]) -> list[GeneratedSample]:
    """Generate a chunk of specs, not judged yet (workers generate; judging goes in order)."""
    return generator.generate(specs)


def planned_quotas(total: int, quota_categories: list[str | None]) -> dict[str, int]:
    """How many samples `plan` asks of each category (sample i gets category i mod C)."""
    size = len(quota_categories)
    quotas: Counter[str] = Counter()
    for position, category in enumerate(quota_categories):
        if category is not None:
            quotas[category] += total // size + (1 if position < total % size else 0)
    return dict(quotas)


def build_judges(
    config: BatchConfig,
    generators: dict[Modality, Generator],
    plans: dict[Modality, list[SampleSpec]] | None = None,
) -> dict[Modality, Judge]:
    """A rubric and a fresh batch context per modality, loaded before anything is written.

    With precomputed `plans` the quotas are what the plan asks of each category.
    """
    judges: dict[Modality, Judge] = {}
    for modality, generator in generators.items():
        section = getattr(config, modality)
        template_file = getattr(generator, "template_file", None)  # text generators know the task
        taxonomy = list(template_file.labels) if template_file else list(config.categories)
        rubric = rubric_for(
            modality, rubric=section.rubric, task=getattr(template_file, "task", None)
        )
        planned = (plans or {}).get(modality)
        quotas = (
            dict(Counter(s.category for s in planned if s.category is not None))
            if planned is not None
            else planned_quotas(section.count, generator.quota_categories())
        )
        context = ValidationContext.for_taxonomy(taxonomy, quotas=quotas)
        judges[modality] = Judge(rubric, context)
    return judges


def build_generators(config: BatchConfig) -> dict[Modality, Generator]:
    """Every generator the config asks for, built (and so checked) before anything is written."""
    built: dict[Modality, Generator] = {}
    for modality in MODALITIES:
        section = getattr(config, modality)
        if section is not None:
            built[modality] = build_generator(section, categories=list(config.categories))
    return built


def chunk_size(generator: Generator | type[Generator], modality: Modality) -> int:
    """Samples per chunk: a generator's `chunk_size`, class or instance (submit has no instance)."""
    return int(getattr(generator, "chunk_size", 8 if modality == "image" else 64))


def run_batch(
    config: BatchConfig,
    out: Path,
    *,
    progress: Progress | None = None,
    plans: dict[Modality, list[SampleSpec]] | None = None,
    generators: dict[Modality, Generator] | None = None,
) -> RunResult:
    """The embedded runner: the whole batch in this process, into the run folder `out`.

    `plans` replaces `plan()` for a modality with precomputed specs (balancing computes its own
    quotas); their count must equal the section's `count`. `generators` replaces
    `build_generators(config)` (e.g. a generator wrapped with augmentation).
    """
    generators = generators if generators is not None else build_generators(config)
    judges = build_judges(config, generators, plans)
    batch_id = batch_id_for(config)
    with assemble_run(config, out, batch_id=batch_id, judges=judges) as run:
        for modality, generator in generators.items():
            started = time.perf_counter()
            _run_modality(config, modality, generator, run, progress, (plans or {}).get(modality))
            run.result.timings[f"{modality}_seconds"] = round(time.perf_counter() - started, 3)
    return run.result


def _run_modality(
    config: BatchConfig,
    modality: Modality,
    generator: Generator,
    run: RunAssembly,
    progress: Progress | None,
    planned: list[SampleSpec] | None = None,
) -> None:
    total = getattr(config, modality).count
    if planned is not None and len(planned) != total:
        raise ValueError(f"{modality}: {len(planned)} planned specs for a count of {total}")
    specs = (
        iter(planned)
        if planned is not None
        else plan(
            config,
            modality,
            batch_id=run.result.batch_id,
            quota_categories=generator.quota_categories(),
        )
    )
    # Three stages overlap on two cores: this thread draws chunk k while one thread judges chunk
    # k-1 (a single thread keeps the batch checks in sample order) and another encodes PNGs
    # (zlib and most numpy work release the GIL). Waiting for chunk k-1 before handing over
    # chunk k keeps at most two chunks of pixels alive.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge") as judging,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="png") as encoding,
    ):
        pending: tuple[Future[list[GeneratedSample]], list[Future[None]]] | None = None
        while chunk := list(itertools.islice(specs, chunk_size(generator, modality))):
            made = generate_specs(generator, chunk)
            if pending is not None:
                _finish_chunk(pending, run, modality, total, progress)
            pending = (
                judging.submit(_judge_chunk, made, run.judges[modality]),
                [encoding.submit(run.write_png, generated) for generated in made],
            )
        if pending is not None:
            _finish_chunk(pending, run, modality, total, progress)


def _judge_chunk(made: list[GeneratedSample], judge_sample: Judge) -> list[GeneratedSample]:
    """The judging thread's share of a chunk, in sample order."""
    return [judge(generated, judge_sample) for generated in made]


def _finish_chunk(
    pending: tuple[Future[list[GeneratedSample]], list[Future[None]]],
    run: RunAssembly,
    modality: Modality,
    total: int,
    progress: Progress | None,
) -> None:
    """Wait for a chunk's judging and PNGs, then count, summarise, write and store it in order."""
    judged, pngs = pending
    made = judged.result()
    for png in pngs:
        png.result()
    for generated in made:
        run.add(generated.sample, None, hidden_objects=hidden_objects(generated))
    if progress is not None:
        progress(modality, len(made), total)
