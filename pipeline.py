"""Where the stages meet: plan -> generate -> judge (validate and route), over iterables.

Every stage is a plain function over plain data. `judged_chunks` streams one modality of a batch
as judged chunks, in index order; runners (runner.py, workers/) feed them to sinks (sinks.py)
that write the run folder or the service database. Nothing here imports a database or writes a
file, and nothing holds a whole batch in memory: specs are planned lazily, made in small chunks,
handed on and dropped. Celery tasks (workers/) call the same `plan` and `generate_specs`.
"""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthgate.arguments import callback, whole_number
from synthgate.config import (
    IMAGE_CONFIGS,
    MAX_SEED,
    TEXT_CONFIGS,
    BatchConfig,
    LanguageModelTextConfig,
    load_config,
)
from synthgate.errors import InputError
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
from synthgate.validators.rubric import Rubric
from synthgate.validators.validate import Judge, rubric_for

MODALITIES: tuple[Modality, ...] = ("image", "text")
Progress = Callable[[Modality, int, int], None]  # (modality, samples just finished, total)


def planned_total(config: BatchConfig) -> int:
    """How many samples the config asks for, every modality together."""
    return sum(getattr(config, m).count for m in MODALITIES if getattr(config, m) is not None)


@dataclass
class JudgedSample:
    """A sample with its verdict, on its way to the sinks: its pixels (made here) or its PNG
    bytes (made by a worker), and how many of its objects were too occluded to label."""

    sample: Sample
    pixels: np.ndarray | None = None
    png: bytes | None = None
    hidden_objects: int = 0
    # As stored in the shared database (failed there, or reviewed there): a database sink over
    # that database leaves its row as it is.
    kept: bool = False

    @classmethod
    def of(cls, generated: GeneratedSample) -> JudgedSample:
        return cls(
            sample=generated.sample,
            pixels=generated.pixels,
            hidden_objects=hidden_objects(generated),
        )


def hidden_objects(generated: GeneratedSample) -> int:
    """How many objects a generator placed but left unlabelled: too occluded to see."""
    return int(generated.extras.get("hidden", 0))


@dataclass
class RunStart:
    """What sinks learn when a run starts: the batch and the judges of its modalities."""

    config: BatchConfig
    batch_id: str
    judges: dict[Modality, Judge]


@dataclass
class RunTotals:
    """What sinks learn when a run ends: its counts
    ({modality: {status: samples, "generated", "audit", "hidden_objects"}}) and timings."""

    batch_id: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def batch_id_for(config: BatchConfig) -> str:
    """Deterministic batch id: the same config and seed name the same batch, on any machine.

    Files a config points to count by content, not by where they lie, nor by a UTF-8
    byte-order mark before it (Windows tools write one; every reader of them skips it): a COCO
    file with the mark makes the samples the same file without it makes.
    """
    data = config.model_dump(mode="json")
    for modality in MODALITIES:  # the rubric judges samples; it does not change what is made
        if isinstance(data.get(modality), dict):
            data[modality].pop("rubric", None)
    for modality in MODALITIES:
        section = getattr(config, modality)
        for key, value in dict(section or {}).items():
            if isinstance(value, Path) and value.is_file():
                content = value.read_bytes().removeprefix(codecs.BOM_UTF8)
                data[modality][key] = hashlib.sha1(content).hexdigest()
    snapshot = json.dumps(data, sort_keys=True)
    return f"{config.name}-{hashlib.sha1(snapshot.encode()).hexdigest()[:10]}"


def refuse_changed_inputs(config: BatchConfig, batch_id: str) -> None:
    """Refuse to make or judge batch `batch_id` from `config` once the files the config reads
    (a template file, a dataset) no longer give that id: they changed since the batch was
    submitted, or are not there on this machine. Made now, its samples would be another batch
    under the old id."""
    now = batch_id_for(config)
    if now == batch_id:
        return
    files = [
        f"{modality}.{key} {value}" + ("" if value.is_file() else " (not found here)")
        for modality in MODALITIES
        for key, value in dict(getattr(config, modality) or {}).items()
        if isinstance(value, Path) and not value.is_dir()
    ]
    read = f" ({', '.join(files)})" if files else ""
    raise InputError(
        f"batch {batch_id}: a file its config reads{read} changed since the batch was "
        "submitted (a batch id counts the files its config reads by their contents; as they "
        f"are now they make batch {now}); put the file back as it was to finish this batch, or "
        "submit the config again to make the new one"
    )


def attribute_axes(config: BatchConfig, modality: Modality) -> dict[str, list[str]]:
    """The attributes the planner balances for a modality (bias control)."""
    if modality == "text" and config.text is not None:
        if isinstance(config.text, LanguageModelTextConfig):  # rows of a class, no attributes
            return {}
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


def generate_specs(
    generator: Generator, specs: list[SampleSpec], *, source: Path | str | None = None
) -> list[GeneratedSample]:
    """Generate a chunk of specs, not judged yet (workers generate; judging goes in order).
    `source`: the config file, named before an error about a field of the generator's section
    (a background image it cannot read), as `build_section_generator` names it."""
    if source is None:  # no file to name: a worker's chunk, a config given as a dict
        return generator.generate(specs)
    with naming_config(source, generator.modality):
        return generator.generate(specs)


@contextmanager
def naming_config(
    source: Path | str | None, modality: str, *, section: str | None = None
) -> Iterator[None]:
    """An InputError raised inside about a field of the config's `modality` section
    (`image.model.path: no model at ...`) raised again with the config file `source` before it,
    as the config's own checks name it; an error about another file (a template file, a COCO
    file) names that file, and without a `source` (a config given as a dict) nothing changes.
    `section`: where the section is in `source` when not at `modality` (`image[1]`, the second
    of a balance config's list of generator sections), which the fields of the section named in
    the rest of the message are named at too (`fields_placed`)."""
    try:
        yield
    except InputError as error:
        message = str(error)
        if source is None or not message.startswith(f"{modality}."):
            raise
        place = modality if section is None else section
        rest = fields_placed(message.removeprefix(modality), modality, place)
        raise InputError(f"{source}: {place}{rest}") from None


def fields_placed(message: str, modality: str, place: str) -> str:
    """`message` naming the fields of the `modality` section it names (`image.model.path`,
    `drop image.negative_prompt`) at the section's `place` (`image[1].model.path`) instead,
    where the section is one of a list. Only a field of a generator section of that modality is
    one: a name quoted or in a path ('image.model', /data/image.size) is left as written."""
    configs = IMAGE_CONFIGS if modality == "image" else TEXT_CONFIGS
    fields = {name for config in configs for name in config.model_fields}
    named = rf"(?<![\w./\\'\"-]){re.escape(modality)}\.({'|'.join(sorted(fields))})(?![\w-])"
    return re.sub(named, lambda field: f"{place}.{field[1]}", message)


def planned_quotas(total: int, quota_categories: list[str | None]) -> dict[str, int]:
    """How many samples `plan` asks of each category (sample i gets category i mod C)."""
    size = len(quota_categories)
    quotas: Counter[str] = Counter()
    for position, category in enumerate(quota_categories):
        if category is not None:
            quotas[category] += total // size + (1 if position < total % size else 0)
    return dict(quotas)


def section_rubric(config: BatchConfig, modality: Modality) -> Rubric:
    """The rubric a section's samples are measured and judged with, as `build_judges` picks
    it: the one it names, else its modality's default (detection; a template file's task)."""
    section = getattr(config, modality)
    templates = getattr(section, "templates", None)
    task = None
    if section.rubric is None and templates:
        # here, not at the top: the template reader imports faker (~0.1 s), which an image
        # batch never needs
        from synthgate.generators.text.templates import load_template_file

        task = load_template_file(templates).task
    return rubric_for(modality, rubric=section.rubric, task=task)


def rubric_digest(rubric: Rubric) -> str:
    """SHA-256 of the rubric as loaded, every field of it: a rubric is named by its file, which
    can be edited in place. Keys sorted: a file whose keys were only reordered judges alike."""
    content = json.dumps(rubric.model_dump(mode="json"), sort_keys=True)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


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
        # copy_paste's backgrounds keep their own objects, of the source dataset's classes
        labels = getattr(generator, "label_names", None) or list(config.categories)
        taxonomy = list(template_file.labels) if template_file else list(labels)
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


def build_generators(
    config: BatchConfig, *, source: Path | str | None = None
) -> dict[Modality, Generator]:
    """Every generator the config asks for, built (and so checked) before anything is written.
    `source`: the config file, as `build_section_generator` names it."""
    return {
        modality: build_section_generator(config, modality, source=source)
        for modality in MODALITIES
        if getattr(config, modality) is not None
    }


def build_section_generator(
    config: BatchConfig, modality: Modality, *, source: Path | str | None = None
) -> Generator:
    """The generator of one section of the config, built and checked: `run` and `generate`
    refuse the same configs. `source`: the config file, named before an error that names a
    field of the config (`image.model.path: no model at ...`), as the config's own checks
    name it; an error about another file (a template file, a COCO file) names that file."""
    section = getattr(config, modality)
    with naming_config(source, modality):
        generator = build_generator(section, categories=list(config.categories))
    unavailable = getattr(generator, "unavailable", None)
    if unavailable:  # copy_paste: a class listed that it has nothing to cut of
        have = ", ".join(getattr(generator, "categories", []))
        where = "" if source is None else f"{source}: "
        raise InputError(
            f"{where}categories: no instance of {', '.join(map(repr, unavailable))} to cut in "
            f"{section.coco} (a non-crowd annotation with a mask of at least "
            f"{section.min_source_area} px), so no sample would paste one; remove it "
            f"from categories, or use a dataset that has it (classes it can paste: {have})"
        )
    return generator


def chunk_size(generator: Generator | type[Generator], modality: Modality) -> int:
    """Samples per chunk: a generator's `chunk_size`, class or instance (submit has no instance)."""
    return int(getattr(generator, "chunk_size", 8 if modality == "image" else 64))


def specs_of(
    config: BatchConfig,
    modality: Modality,
    generator: Generator,
    *,
    batch_id: str,
    planned: list[SampleSpec] | None = None,
) -> Iterator[SampleSpec]:
    """The specs of one modality: `planned` ones (their count must be the section's), else
    `plan`'s."""
    total = getattr(config, modality).count
    if planned is None:
        return plan(
            config, modality, batch_id=batch_id, quota_categories=generator.quota_categories()
        )
    if len(planned) != total:
        raise ValueError(f"{modality}: {len(planned)} planned specs for a count of {total}")
    return iter(planned)


def judged_chunks(
    specs: Iterator[SampleSpec],
    generator: Generator,
    judge_sample: Judge,
    *,
    size: int,
    source: Path | str | None = None,
) -> Iterator[list[JudgedSample]]:
    """Generate and judge specs chunk by chunk; yield each judged chunk, in index order.
    `source`: the config file, named in a generator's error (`generate_specs`).

    For a generator whose work runs outside Python (`overlaps_judging`: a model in torch),
    two stages overlap: this thread makes chunk k while a second thread judges chunk k-1 (one
    thread keeps the batch checks in sample order). Waiting for chunk k-1 before handing over
    chunk k keeps at most two chunks of pixels alive here. Any other generator holds Python's
    GIL as much as the judge does, so the two threads would only take turns at it, and each
    turn is a context switch: a procedural run spent about 25 % more CPU that way, in the same
    wall time. Those chunks are judged on this thread, as they are made.
    """
    if not getattr(generator, "overlaps_judging", False):
        while chunk := list(itertools.islice(specs, size)):
            yield _judge_chunk(generate_specs(generator, chunk, source=source), judge_sample)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="judge") as judging:
        pending: Future[list[JudgedSample]] | None = None
        while chunk := list(itertools.islice(specs, size)):
            made = generate_specs(generator, chunk, source=source)
            if pending is not None:
                yield pending.result()
            pending = judging.submit(_judge_chunk, made, judge_sample)
        if pending is not None:
            yield pending.result()


def _judge_chunk(made: list[GeneratedSample], judge_sample: Judge) -> list[JudgedSample]:
    """A chunk's samples judged, in sample order."""
    return [JudgedSample.of(judge(generated, judge_sample)) for generated in made]


def generate(
    config: BatchConfig | Path | str | dict[str, Any],
    *,
    modality: Modality | None = None,
    limit: int | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[GeneratedSample]:
    """Make a batch's samples in memory, labelled by construction, not judged, nothing written.

    Args:
        config: a `BatchConfig`, a config YAML path or the config as a dict.
        modality: "image" or "text": which section of the config to make (default: the one
            it has; image when it has both).
        limit: make only the first `limit` samples of the section (default: its `count`).
        seed: replaces the config's seed, as `run`'s does: the same seed makes the same samples.
        progress: called with (samples made, total) after every chunk of them, once with
            (0, 0) when there are none (`limit=0`); it changes none of them.

    Returns:
        One `GeneratedSample` per sample, in index order: `.sample` (labels, provenance) and,
        for images, `.pixels` (HxWx3 uint8) and the generator's `.foreground`.

    Example:
        >>> samples = generate("configs/quickstart.yaml", limit=8)
        >>> samples[0].sample.objects[0].bbox
    """
    source = None if isinstance(config, BatchConfig | Mapping) else config
    config = load_config(config)
    if seed is not None:
        config = config.model_copy(update={"seed": whole_number(seed, "seed", maximum=MAX_SEED)})
    if modality is None:
        modality = "image" if config.image is not None else "text"
    if modality not in ("image", "text"):
        raise InputError(field="modality", value=modality, problem='must be "image" or "text"')
    section = getattr(config, modality, None)
    if section is None:
        raise InputError(
            field="modality",
            value=modality,
            problem=f"the config {config.name!r} has no {modality} section",
            fix="pass the modality it makes, or add the section",
        )
    if limit is not None:
        limit = whole_number(limit, "limit")
    progress = callback(progress, "progress")
    generator = build_section_generator(config, modality, source=source)
    specs = plan(
        config,
        modality,
        batch_id=batch_id_for(config),
        quota_categories=generator.quota_categories(),
        stop=limit,
    )
    total = len(range(section.count)[:limit])  # what `plan` makes with stop=limit
    made: list[GeneratedSample] = []
    while chunk := list(itertools.islice(specs, chunk_size(generator, modality))):
        made.extend(generate_specs(generator, chunk, source=source))
        if progress is not None:
            progress(len(made), total)
    if progress is not None and not total:  # no chunk: a caller waiting for total hears it
        progress(0, 0)
    return made
