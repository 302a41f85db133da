"""The `text_model` text generator: new rows of a class from a local causal language model.

`LanguageModelGenerator` prompts a transformers causal LM (`model.path`: a local folder saved by
`save_pretrained`, or an id already in the Hugging Face cache; loaded with `local_files_only`,
never downloaded) with `prompt_rows` real rows of the spec's class, picked by the sample's seed,
and samples one new row after them: token by token, nucleus sampling (`top_p`, `temperature`)
from a `torch.Generator` seeded by the sample, so a row is the same whatever batch or worker made
it, until a line break or `max_new_tokens`. The label is the class's. The real rows go with every
sample to the rubric's copy check (`extras["text_reference"]`), which rejects a row the model
merely recited. torch and transformers come with the `diffusion` extra and are imported when a
generator is built, not with this module: a CPU worker imports every registered generator class
as its pool processes start, and must not pay for torch there.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from synthgate.config import LanguageModelTextConfig
from synthgate.errors import InputError
from synthgate.formats.jsonl import read_jsonl, row_class
from synthgate.generators.devices import resolve_device, resolve_dtype
from synthgate.generators.text.rows import reference_rows
from synthgate.generators.text.slots import clean_whitespace
from synthgate.samples import GeneratedSample, Provenance, Sample, SampleSpec, sample_id

if TYPE_CHECKING:
    import torch

FIELD = "text.model"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def load_language_model(config: LanguageModelTextConfig) -> tuple[Any, Any, torch.device]:
    """(model, tokenizer, device) from `model.path`, offline; a missing model says how to get it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = config.model
    local = Path(model.path).expanduser()
    if not local.exists() and not _HUB_ID.match(model.path):
        raise InputError(
            f"{FIELD}.path: no model at {model.path!r}: it is neither a local folder nor a "
            "Hugging Face id, and weights are never downloaded at run time. On a machine with "
            "network access run `hf download <id> --local-dir <folder>` for a causal language "
            f"model (e.g. distilgpt2), copy the folder here and set {FIELD}.path to it"
        )
    source = str(local) if local.exists() else model.path
    device = resolve_device(model.device, field=FIELD)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            source, revision=model.revision, local_files_only=True
        )
        loaded = AutoModelForCausalLM.from_pretrained(
            source,
            revision=model.revision,
            local_files_only=True,
            dtype=resolve_dtype(model.dtype, device),
        )
    except (OSError, ValueError) as error:
        raise InputError(
            f"{FIELD}.path: {model.path!r} holds no causal language model transformers can load "
            f"offline ({str(error).splitlines()[0]}); point it at a folder `save_pretrained` "
            "made, or fill the Hugging Face cache (HF_HOME) on a connected machine"
        ) from None
    return loaded.eval().to(device), tokenizer, device


class LanguageModelGenerator:
    """One new row of the spec's class per spec, continued from real rows of that class."""

    name: ClassVar[str] = "text_model"
    version: ClassVar[str] = "1"
    modality: ClassVar[str] = "text"
    chunk_size: ClassVar[int] = 8
    overlaps_judging: ClassVar[bool] = True  # the model runs in torch, the GIL released

    def __init__(
        self,
        config: LanguageModelTextConfig,
        *,
        categories: list[str],
        rows: list[dict[str, Any]] | None = None,
        model: Any = None,
        tokenizer: Any = None,
    ) -> None:
        self.config = config
        self.rows = rows if rows is not None else read_jsonl(config.source)
        self.by_label: dict[str, list[str]] = defaultdict(list)
        for number, row in enumerate(self.rows, start=1):
            text, label = row.get(config.text_field), row_class(row, config.label_field)
            if not isinstance(text, str) or label is None:
                raise InputError(
                    f"{config.source}: row {number} needs a text `{config.text_field}` "
                    f"and a label `{config.label_field}`"
                )
            self.by_label[str(label)].append(clean_whitespace(text))
        # The judge's taxonomy: every class of the rows (what the model is asked to write)
        self.label_names = list(dict.fromkeys([*categories, *self.by_label]))
        if model is None or tokenizer is None:
            model, tokenizer, self.device = load_language_model(config)
        else:
            self.device = next(model.parameters()).device
        self.model, self.tokenizer = model, tokenizer
        self.reference = reference_rows(
            self.rows, text_field=config.text_field, source=config.source.name
        )

    def quota_categories(self) -> list[str | None]:
        return list(self.by_label)

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        return [
            GeneratedSample(sample=self._make(spec), extras={"text_reference": self.reference})
            for spec in specs
        ]

    def prompt(self, label: str, rng: np.random.Generator) -> str:
        examples = self.by_label[label]
        count = min(self.config.model.prompt_rows, len(examples))
        chosen = [examples[i] for i in rng.choice(len(examples), size=count, replace=False)]
        return "".join(f"A {label} text: {text}\n" for text in chosen) + f"A {label} text:"

    def _make(self, spec: SampleSpec) -> Sample:
        rng = np.random.default_rng(spec.seed)
        labels = list(self.by_label)
        label = spec.category or labels[int(rng.integers(len(labels)))]
        if label not in self.by_label:
            raise InputError(
                f"{self.config.source}: no row with {self.config.label_field} {label!r} to "
                "show the model"
            )
        prompt = self.prompt(label, rng)
        text = clean_whitespace(self._continue(prompt, seed=spec.seed))
        model = self.config.model
        return Sample(
            id=sample_id(spec.batch_id, "text", spec.index),
            spec=spec,
            text=text,
            doc_label=label,
            provenance=Provenance(
                generator=self.name,
                generator_version=self.version,
                seed=spec.seed,
                model={
                    "id": model.path,
                    "revision": model.revision,
                    "dtype": str(next(self.model.parameters()).dtype).removeprefix("torch."),
                    "device": str(self.device),
                },
                prompt=prompt,
                params={
                    "source": self.config.source.name,
                    "temperature": model.temperature,
                    "top_p": model.top_p,
                    "max_new_tokens": model.max_new_tokens,
                },
            ),
        )

    def _continue(self, prompt: str, *, seed: int) -> str:
        """Sample tokens after `prompt` until a line break: nucleus sampling, seeded per row.

        transformers' `generate` runs the loop (and its key-value cache, whatever its version);
        the sampling is ours, from a per-row `torch.Generator`: `generate`'s own sampling draws
        from torch's global RNG, which would tie a row to the rows made before it.
        """
        import torch

        tokenizer, settings = self.tokenizer, self.config.model
        ids = tokenizer(prompt, return_tensors="pt").input_ids.to(self.device)
        with torch.inference_mode():
            output = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,  # greedy over the one token the sampler leaves
                max_new_tokens=settings.max_new_tokens,
                logits_processor=[_SeededSampler(settings.temperature, settings.top_p, seed)],
                stopping_criteria=[_LineEnd(tokenizer, ids.shape[1])],
                pad_token_id=tokenizer.eos_token_id,
            )
        text = tokenizer.decode(output[0, ids.shape[1] :], skip_special_tokens=True)
        return str(text).split("\n")[0]


class _SeededSampler:
    """A logits processor (transformers calls it like its own) that draws the next token
    (temperature, then the smallest set of tokens whose probability reaches top_p) from its own
    generator and leaves only that token possible."""

    def __init__(self, temperature: float, top_p: float, seed: int) -> None:
        import torch

        self.temperature, self.top_p = temperature, top_p
        self.generator = torch.Generator("cpu").manual_seed(int(seed))

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        import torch

        probabilities = torch.softmax(scores[0].float().cpu() / self.temperature, dim=-1)
        ordered, order = torch.sort(probabilities, descending=True)
        kept = ordered * (torch.cumsum(ordered, dim=0) - ordered < self.top_p)
        token = order[torch.multinomial(kept / kept.sum(), 1, generator=self.generator)]
        chosen = torch.full_like(scores, float("-inf"))
        chosen[0, token.to(scores.device)] = 0.0
        return chosen


class _LineEnd:
    """A stopping criterion: stop once the new text holds a line break (decoded whole: a
    character may span byte-level tokens)."""

    def __init__(self, tokenizer: Any, prompt_length: int) -> None:
        self.tokenizer, self.prompt_length = tokenizer, prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **_: Any) -> torch.Tensor:
        import torch

        new = self.tokenizer.decode(input_ids[0, self.prompt_length :])
        return torch.tensor([("\n" in new)], device=input_ids.device)
