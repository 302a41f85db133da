"""Load a diffusers pipeline from `model.path`, once per process, with no network access.

`load_model(config, kind)` resolves `model.path` (a local folder saved by `save_pretrained`, or an
id already in the Hugging Face cache), checks that it holds the kind of pipeline a generator
needs, picks device and dtype, sets the scheduler and attention, and returns a `LoadedModel`
whose `info` is the provenance of every image it makes. `run_pipeline` calls it with one seeded
`torch.Generator` per image, so an image does not depend on the others in its batch.
Every problem a user can fix is an `InputError` that says how.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from synthgate.config import DiffusionModelConfig
from synthgate.errors import InputError
from synthgate.generators.devices import resolve_device, resolve_dtype

FIELD = "image.model"


@dataclass(frozen=True)
class PipelineKind:
    """What a generator needs from a checkpoint, and how to tell a checkpoint provides it."""

    name: str
    pipeline_class: str
    needs: str
    example: str  # a Hub id that provides it, for the "how to fetch" message
    in_channels: int
    gated: bool  # GLIGEN's gated self-attention (UNet `attention_type: gated`)

    def problem(self, unet: dict[str, Any]) -> str | None:
        channels = unet.get("in_channels")
        gated = str(unet.get("attention_type", "default")) == "gated"
        if channels != self.in_channels:
            return f"its UNet takes {channels} input channels, not {self.in_channels}"
        if self.gated and not gated:
            return "its UNet has no GLIGEN gated attention (attention_type 'gated')"
        return None


KINDS: dict[str, PipelineKind] = {
    "text2image": PipelineKind(
        "text2image",
        "StableDiffusionPipeline",
        "a Stable Diffusion text-to-image pipeline",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
        in_channels=4,
        gated=False,
    ),
    "layout": PipelineKind(
        "layout",
        "StableDiffusionGLIGENPipeline",
        "a GLIGEN text-box pipeline",
        "masterful/gligen-1-4-generation-text-box",
        in_channels=4,
        gated=True,
    ),
    "inpaint": PipelineKind(
        "inpaint",
        "StableDiffusionInpaintPipeline",
        "a Stable Diffusion inpainting pipeline",
        "stable-diffusion-v1-5/stable-diffusion-inpainting",
        in_channels=9,
        gated=False,
    ),
}

SCHEDULERS: dict[str, str] = {
    "ddim": "DDIMScheduler",
    "dpm++": "DPMSolverMultistepScheduler",
    "euler": "EulerDiscreteScheduler",
    "euler_a": "EulerAncestralDiscreteScheduler",
    "lcm": "LCMScheduler",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class LoadedModel:
    """A ready pipeline and the facts about it that go into every sample's provenance."""

    pipeline: Any
    kind: PipelineKind
    info: dict[str, Any] = field(default_factory=dict)
    size_multiple: int = 8

    def generators(self, seeds: Sequence[int]) -> list[torch.Generator]:
        # CPU generators: the same noise on every device, so a GPU and a CPU worker start alike.
        return [torch.Generator("cpu").manual_seed(int(seed)) for seed in seeds]


def resolve_model_path(path: str, *, revision: str | None, kind: PipelineKind) -> tuple[Path, str]:
    """The local folder of `path` and its revision (Hub commit, or a hash of a local folder)."""
    local = Path(path).expanduser()
    if local.exists():
        if not (local / "model_index.json").is_file():
            raise InputError(
                f"{FIELD}.path: {path} holds no model_index.json, so it is not a diffusers "
                f"pipeline folder; point it at the folder `save_pretrained` or `hf download` made"
            )
        return local.resolve(), "local-" + folder_fingerprint(local)
    if _HUB_ID.match(path):
        snapshot = _cached_snapshot(path, revision)
        if snapshot is not None and (snapshot / "model_index.json").is_file():
            return snapshot, snapshot.name
        cached = None if revision is None else _cached_snapshot(path, None)
        if cached is not None:
            raise InputError(
                f"{FIELD}.revision: {revision!r} of {path} is not in the local Hugging Face "
                f"cache (its main there is {cached.name[:12]}), and weights are never "
                "downloaded at run time. On a machine with network access run `hf download "
                f"{path} --revision {revision}` and copy its cache (HF_HOME) here, or leave "
                f"{FIELD}.revision out to use the cached one"
            )
    raise InputError(
        f"{FIELD}.path: no model at {path!r}: it is neither a local folder nor a Hugging Face "
        "id in the local cache, and weights are never downloaded at run time. On a machine "
        f"with network access run `hf download {kind.example if not _HUB_ID.match(path) else path} "
        "--local-dir <folder>` (for this generator: "
        f"{kind.needs}), copy the folder here and set {FIELD}.path to it, or fill the "
        f"Hugging Face cache (HF_HOME) and set {FIELD}.path to the id"
    )


def _cached_snapshot(path: str, revision: str | None) -> Path | None:
    """The snapshot folder of Hub id `path` at `revision` in the local cache, or None."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(path, revision=revision, local_files_only=True))
    except Exception:  # not cached, in any of the ways huggingface_hub says so
        return None


def folder_fingerprint(folder: Path) -> str:
    """A short hash of a pipeline folder: config files by content, weights by name and size.

    Hashing gigabytes of weights would cost more than the batch; a re-saved or swapped weight
    file changes its size or a config in practice.
    """
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = file.relative_to(folder).as_posix()
        if relative.startswith("."):
            continue
        digest.update(relative.encode())
        if file.suffix in {".json", ".txt"}:
            digest.update(file.read_bytes())
        else:
            digest.update(str(file.stat().st_size).encode())
    return digest.hexdigest()[:16]


def check_kind(folder: Path, kind: PipelineKind, *, path: str) -> None:
    """Refuse a checkpoint that cannot serve `kind`, or lacks a part its model_index.json lists,
    before loading gigabytes of it."""
    index = _config_file(folder, "model_index.json", path=path)
    found = index.get("_class_name", "an unknown pipeline")
    problem: str | None
    if not (folder / "unet" / "config.json").is_file():
        problem = "it has no unet/config.json"
    else:
        problem = kind.problem(_config_file(folder, "unet/config.json", path=path))
    if problem:
        raise InputError(
            f"{FIELD}.path: {path} holds a {found}, and {problem}; this generator needs "
            f"{kind.needs} ({kind.pipeline_class}), e.g. {kind.example}"
        )
    # A part left out of a copy does not always fail the load: transformers builds an empty
    # CLIP tokenizer in place of a missing one, which fails on the first prompt.
    for name, entry in index.items():
        listed = isinstance(entry, list) and len(entry) == 2 and entry[0] is not None
        if listed and not name.startswith("_") and not (folder / name).is_dir():
            raise InputError(
                f"{FIELD}.path: {path} has no {name}/ folder, which its model_index.json lists "
                f"({entry[0]} {entry[1]}); the folder is incomplete: copy or download the whole "
                "pipeline folder again"
            )


def _config_file(folder: Path, name: str, *, path: str) -> dict[str, Any]:
    """A pipeline folder's JSON config `name` as a mapping, or an InputError naming it."""
    try:
        value = json.loads((folder / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(
            f"{FIELD}.path: {path}: {name} is not valid JSON ({error}); the folder is damaged: "
            "copy or download the whole pipeline folder again"
        ) from None
    if not isinstance(value, dict):
        raise InputError(
            f"{FIELD}.path: {path}: {name} is not valid JSON for a config (a JSON object); "
            "copy or download the whole pipeline folder again"
        )
    return value


# One load per process (a worker serves many batches): keyed by everything that changes the
# loaded pipeline. Steps, guidance and prompts are per call and do not count.
_LOADED: dict[tuple[Any, ...], LoadedModel] = {}


def load_model(config: DiffusionModelConfig, kind: str) -> LoadedModel:
    """The pipeline `config` names, checked to be of `kind`, loaded once per process."""
    pipeline_kind = KINDS[kind]
    device = resolve_device(config.device, field=FIELD)
    dtype = resolve_dtype(config.dtype, device)
    folder, revision = resolve_model_path(config.path, revision=config.revision, kind=pipeline_kind)
    check_kind(folder, pipeline_kind, path=config.path)
    key = (
        str(folder),
        revision,
        config.variant,
        str(dtype),
        str(device),
        pipeline_kind.pipeline_class,
        config.scheduler,
        config.attention,
        config.compile,
    )
    if key not in _LOADED:
        _LOADED[key] = _load(config, pipeline_kind, folder, revision, device, dtype)
    return _LOADED[key]


def _load(
    config: DiffusionModelConfig,
    kind: PipelineKind,
    folder: Path,
    revision: str,
    device: torch.device,
    dtype: torch.dtype,
) -> LoadedModel:
    import diffusers
    from diffusers.utils import is_accelerate_available
    from diffusers.utils import logging as diffusers_logging
    from safetensors import SafetensorError
    from transformers.utils import logging as transformers_logging

    pipeline_class = getattr(diffusers, kind.pipeline_class)
    bars = [diffusers_logging, transformers_logging]
    shown = [module.is_progress_bar_enabled() for module in bars]
    for module in bars:  # loading bars would tear through the run's own progress bar
        module.disable_progress_bar()
    random_weights = _RandomWeights()
    for name in ("diffusers", "transformers"):
        logging.getLogger(name).addHandler(random_weights)
    try:
        pipeline = pipeline_class.from_pretrained(
            folder,
            **{_dtype_argument(): dtype},
            variant=config.variant,
            local_files_only=True,
            # Asked for without accelerate, diffusers logs five lines urging its install on
            # every load; synthgate[diffusion] does not need it.
            low_cpu_mem_usage=is_accelerate_available(),
        )
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as error:
        raise InputError(
            f"{FIELD}.path: cannot load a {kind.pipeline_class} from {folder}: "
            f"{_load_problem(error, folder)}; its files are incomplete, damaged or do not match "
            "their configs: copy or download the whole pipeline folder again"
        ) from None
    finally:
        for name in ("diffusers", "transformers"):
            logging.getLogger(name).removeHandler(random_weights)
        for module, was_shown in zip(bars, shown, strict=True):
            if was_shown:
                module.enable_progress_bar()
    if random_weights.found:
        raise InputError(
            f"{FIELD}.path: {folder}: {random_weights.found[0]}, which the model would draw at "
            "random (and differently each run); the folder is incomplete or holds another "
            "model's weights: copy or download the whole pipeline folder again"
        )
    pipeline.set_progress_bar_config(disable=True)
    if config.scheduler != "default":
        scheduler_class = getattr(diffusers, SCHEDULERS[config.scheduler])
        pipeline.scheduler = scheduler_class.from_config(pipeline.scheduler.config)
    pipeline = pipeline.to(device)
    if config.attention == "slicing":
        pipeline.enable_attention_slicing()
    compiled = config.compile and device.type == "cuda"
    if compiled:
        pipeline.unet = torch.compile(pipeline.unet)
    vae_factor = int(getattr(pipeline, "vae_scale_factor", 8))
    info = {
        "path": config.path,
        "local_path": str(folder),
        "revision": revision,
        "variant": config.variant,
        "pipeline": kind.pipeline_class,
        "dtype": str(dtype).removeprefix("torch."),
        "device": str(device),
        "scheduler": type(pipeline.scheduler).__name__,
        "steps": config.steps,
        "guidance": config.guidance,
        "attention": config.attention,
        "compiled": compiled,
    }
    return LoadedModel(
        pipeline=pipeline, kind=kind, info=info, size_multiple=math.lcm(8, vae_factor)
    )


class _RandomWeights(logging.Handler):
    """Collects what diffusers and transformers only log: weights a checkpoint lacks, which
    they draw at random from torch's unseeded generator and load anyway."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "| MISSING" in message:  # transformers 5: a LOAD REPORT table
            head = _ANSI.sub("", message.splitlines()[0]).strip()
            self.found.append(f"{head}: {message.count('| MISSING')} weights MISSING")
        elif "newly initialized" in message:  # diffusers: "Some weights of X were not ..."
            self.found.append(message.split(" and are newly initialized")[0].strip())


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _load_problem(error: Exception, folder: Path) -> str:
    """What `from_pretrained`'s `error` means, naming the file where the library did not."""
    from safetensors import SafetensorError, safe_open

    if isinstance(error, SafetensorError):  # a weights file cut short, or not safetensors
        for file in sorted(folder.rglob("*.safetensors")):
            try:
                with safe_open(file, framework="pt"):
                    pass
            except (SafetensorError, OSError) as broken:
                return f"{file.relative_to(folder).as_posix()} is not a whole safetensors file ({broken})"
    text = str(error).strip()
    if "ignore_mismatched_sizes" in text:  # transformers' advice is for its own callers
        return "weights of other shapes than its config.json files give"
    return (text.splitlines()[0] if text else type(error).__name__).rstrip(".")


def _dtype_argument() -> str:
    """diffusers renamed `torch_dtype` to `dtype` (the old name warns); older ones know only it."""
    from diffusers.utils import deprecation_utils

    return "dtype" if hasattr(deprecation_utils, "_resolve_dtype") else "torch_dtype"


def check_size(
    size: tuple[int, int], model: LoadedModel, *, field_name: str = "image.size"
) -> None:
    width, height = size
    step = model.size_multiple
    if width % step or height % step:
        raise InputError(
            f"{field_name}: {list(size)} is not a multiple of {step} in both sides, which "
            f"{model.kind.pipeline_class} needs; use e.g. {[width // step * step or step, height // step * step or step]}"
        )


def to_uint8(images: np.ndarray) -> list[np.ndarray]:
    """diffusers' float images in [0, 1] (NxHxWx3) as HxWx3 uint8 arrays."""
    return [np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8) for image in images]


def run_pipeline(
    model: LoadedModel,
    config: DiffusionModelConfig,
    *,
    seeds: Sequence[int],
    size: tuple[int, int],
    negative_prompt: str | None,
    **inputs: Any,
) -> list[np.ndarray]:
    """Call the pipeline once for len(seeds) images, each with its own seeded generator."""
    width, height = size
    output = model.pipeline(
        **inputs,
        height=height,
        width=width,
        num_inference_steps=config.steps,
        guidance_scale=config.guidance,
        negative_prompt=None if negative_prompt is None else [negative_prompt] * len(seeds),
        generator=model.generators(seeds),
        output_type="np",
    )
    return to_uint8(np.asarray(output.images))
