"""Generator registry: a name in a config -> a class with one way to run.

A generator is built from its config (and injected components, e.g. a diffusers pipeline in
tests) and runs as `generate(specs) -> list[GeneratedSample]`. It owns its randomness: every
sample draws from its own seed (`spec.seed`), never from global RNGs, so a sample is the same
whatever batch or worker made it. Classes are imported lazily: naming `procedural` must not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Protocol

from synthgate.errors import InputError
from synthgate.samples import GeneratedSample, SampleSpec

REGISTRY: dict[str, str] = {
    "procedural": "synthgate.generators.procedural:ProceduralGenerator",
    "templates": "synthgate.generators.text.templates:TemplateGenerator",
    "copy_paste": "synthgate.generators.copy_paste:CopyPasteGenerator",
    "counterfactual": "synthgate.generators.text.counterfactual:CounterfactualGenerator",
    "text_model": "synthgate.generators.text.model:LanguageModelGenerator",
    "diffusion_object_paste": "synthgate.generators.diffusion.object_paste:ObjectPasteGenerator",
    "diffusion_layout": "synthgate.generators.diffusion.layout:LayoutGenerator",
    "diffusion_inpaint": "synthgate.generators.diffusion.inpaint:InpaintGenerator",
}


class Generator(Protocol):
    """What the pipeline calls. Optional attributes it reads with a default: `chunk_size`
    (specs per `generate` call; 8 images or 64 texts), `overlaps_judging` (True where
    `generate` runs mostly outside Python, e.g. a torch model: the pipeline then judges the
    previous chunk on a second thread meanwhile; default False), `label_names` (the classes
    its samples may hold, the judge's taxonomy; default the config's categories: copy_paste's
    backgrounds keep the dataset's own), `unavailable` (classes asked for that it cannot make,
    which `run` refuses), `template_file` (text generators: the task and its labels) and
    `assign_sources(specs)` (a plan made whole before it runs, as balance makes it: the specs
    with what each one draws from, so that the plan draws without replacement; counterfactual's
    real rows)."""

    name: ClassVar[str]
    version: ClassVar[str]
    modality: ClassVar[str]

    def quota_categories(self) -> list[str | None]:
        """The classes the planner spreads samples over (a quota per class)."""
        ...

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]: ...


def generator_class(name: str) -> type[Any]:
    try:
        target = REGISTRY[name]
    except KeyError:
        raise InputError(
            f"unknown generator {name!r}; choose one of {', '.join(sorted(REGISTRY))}"
        ) from None
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build_generator(config: Any, *, categories: list[str], **components: Any) -> Generator:
    """Build the generator a modality config names (`config.generator`)."""
    return generator_class(config.generator)(config, categories=categories, **components)
