"""Typed batch configs (configs/*.yaml) and the limits the API service puts on a requester.

`load_config(path)` reads a YAML batch config and returns a `BatchConfig`, or raises `InputError`
with a message that names the file, the field, the value and the fix. Unknown keys are errors.
Image generator configs form a union keyed by `generator`; add a model here to add a generator.

Every number in a config is written as one (`count: '3'` and `count: yes` are refused) and
finite (NaN and Infinity are refused with the field named), every string is free of NUL bytes
and at most MAX_TEXT_CHARS long, every path component at most MAX_NAME_BYTES, every locale one
Faker has, listed once, and counts and objects per image have ceilings, so a config can never
make a run hang or crash on a value no generator can honour. `RequesterLimits` are the limits
the API service puts on each requester; process settings (env `SYNTHGATE_*`) are in settings.py.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import string
from collections.abc import Mapping
from locale import normalize as normalize_locale
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from synthgate.arguments import home_expanded, path_argument
from synthgate.class_names import category_name_problem
from synthgate.errors import InputError, lone_surrogate_in, quoted, validation_message
from synthgate.files import path_problem
from synthgate.yaml_files import load_yaml, quote_hint, written_as_number

PACKAGE_ROOT = Path(__file__).resolve().parent
MAX_SEED = 2**63 - 1  # seeds are stored as signed 64-bit integers
MAX_NAME = 53  # characters of a batch's name: its id (name, "-", 10 hex digits) fits 64
REFERENCE_DATE = dt.date(2026, 6, 30)  # text templates' dates count from it (reference_date)
MAX_COUNT = 2**31 - 1  # a sample's index is a 32-bit column (storage/tables.py)
# Objects a generator may place on one image (the API's default limit is far lower). Each is
# drawn with a full-size mask and its visible part copied, so with the image's size they are
# also bounded by MAX_MASK_BYTES: 1,000 objects at 8192x8192 would need 125 GiB.
MAX_OBJECTS = 1000
MAX_MASK_BYTES = 4 << 30
MAX_TEXT_CHARS = 4096  # any string of a config: names, prompts, paths (PATH_MAX on Linux)
MAX_NAME_BYTES = 255  # one component of a path (NAME_MAX on Linux and macOS)
# String fields that name files (Path-typed fields are checked as paths anyway).
STRING_PATH_FIELDS = frozenset({"rubric", "path"})


def _strings(value: Any) -> list[str]:
    """Every string (and path) inside a field's value: lists, tuples and mappings opened."""
    found: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | Path):
            found.append(str(item))
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def path_as_text(value: Any) -> Any:
    """A path-like value (a `pathlib.Path` in a notebook's dict) as the text a YAML file gives,
    for a field that names a file in a string (a rubric, a model folder); else `value`."""
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def _numeric(annotation: Any) -> bool:
    """Whether a field's type is a number or holds numbers (a [min, max] tuple)."""
    if annotation in (int, float):
        return True
    return any(_numeric(argument) for argument in get_args(annotation))


class StrictModel(BaseModel):
    # allow_inf_nan=False: NaN and Infinity (YAML .nan/.inf, JSON NaN) are refused by name.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None or not _numeric(cls.model_fields[info.field_name].annotation):
            return value
        return written_as_number(value)

    @field_validator(*STRING_PATH_FIELDS, mode="before", check_fields=False)
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        """`rubric: Path(...)` was "Input should be a valid string", where `coco:` took one."""
        return path_as_text(value)

    @field_validator("*", mode="after")
    @classmethod
    def _plain_text(cls, value: Any, info: ValidationInfo) -> Any:
        """No NUL bytes, no over-long strings, no over-long path components: each would fail
        deep inside the OS or a library instead of here, with the field named."""
        is_path = isinstance(value, Path) or info.field_name in STRING_PATH_FIELDS
        for text in _strings(value):
            if "\x00" in text:
                raise ValueError("contains a NUL byte; remove it")
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(f"is {len(text)} characters long; the limit is {MAX_TEXT_CHARS}")
            if is_path and any(
                len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES
                for part in text.split("/")
            ):
                raise ValueError(
                    f"has a path component over {MAX_NAME_BYTES} bytes; no file system allows it"
                )
        return value


class ProceduralImageConfig(StrictModel):
    """Shapes and textures on varied backgrounds, with exact masks."""

    generator: Literal["procedural"] = "procedural"
    count: int = Field(gt=0, le=MAX_COUNT)
    size: tuple[Annotated[int, Field(ge=16, le=8192)], Annotated[int, Field(ge=16, le=8192)]] = (
        512,
        512,
    )
    objects_per_image: tuple[
        Annotated[int, Field(ge=1, le=MAX_OBJECTS)], Annotated[int, Field(ge=1, le=MAX_OBJECTS)]
    ] = (1, 5)
    min_visible_fraction: float = Field(0.25, ge=0.0, le=1.0)
    # an object's size as a fraction of the shorter image side
    object_scale_range: tuple[
        Annotated[float, Field(ge=0, le=10)], Annotated[float, Field(ge=0, le=10)]
    ] = (0.08, 0.35)
    rubric: str | None = None  # a rubric name (configs/rubrics/) or YAML path [default: detection]

    @field_validator("objects_per_image", "object_scale_range")
    @classmethod
    def _ordered(cls, value: tuple[Any, Any]) -> tuple[Any, Any]:
        if value[0] > value[1]:
            raise ValueError("[min, max] must have min <= max")
        return value

    @model_validator(mode="after")
    def _fits_in_memory(self) -> ProceduralImageConfig:
        _masks_fit(self.size, self.objects_per_image)
        return self


def _masks_fit(size: tuple[int, int], objects_per_image: tuple[int, int]) -> None:
    """Refuse a size and object count whose masks (two bytes a pixel an object: the mask and
    its visible part) would pass MAX_MASK_BYTES for one image."""
    width, height = size
    most = objects_per_image[1]
    if 2 * most * width * height > MAX_MASK_BYTES:
        fits = MAX_MASK_BYTES // (2 * width * height)
        raise ValueError(
            f"objects_per_image up to {most} at size {list(size)} would need "
            f"{2 * most * width * height / 2**30:.0f} GiB of masks for one image (each object "
            f"has a full-size mask); at this size use at most {fits} objects, or a smaller size"
        )


def _tagged_union(*models: type[StrictModel], default: str) -> Any:
    """A union of configs picked by their `generator` key (`default` when it is left out)."""

    def tag_of(value: Any) -> str:
        if isinstance(value, dict):
            return str(value.get("generator", default))
        return str(getattr(value, "generator", default))

    members = tuple(Annotated[m, Tag(_generator_name(m))] for m in models)
    return Annotated[Union[members], Discriminator(tag_of)]  # noqa: UP007


def _generator_name(model: type[StrictModel]) -> str:
    return str(model.model_fields["generator"].default)


class CopyPasteImageConfig(StrictModel):
    """Instances cut from a real COCO dataset by their masks, pasted into other real images."""

    generator: Literal["copy_paste"] = "copy_paste"
    count: int = Field(gt=0, le=MAX_COUNT)
    coco: Path  # the real COCO file the instances and backgrounds come from
    images: Path  # the folder its file_names are relative to
    instances_per_image: tuple[
        Annotated[int, Field(ge=1, le=MAX_OBJECTS)], Annotated[int, Field(ge=1, le=MAX_OBJECTS)]
    ] = (1, 3)
    # Large-scale jitter: each pasted instance is resized by a factor drawn from this range.
    scale_range: tuple[
        Annotated[float, Field(gt=0, le=100)], Annotated[float, Field(gt=0, le=100)]
    ] = (0.1, 2.0)
    flip_probability: float = Field(0.5, ge=0.0, le=1.0)
    min_visible_fraction: float = Field(0.25, ge=0.0, le=1.0)
    min_source_area: int = Field(64, ge=1, le=MAX_COUNT)  # mask pixels a source instance needs
    min_pasted_size: int = Field(8, ge=1, le=8192)  # shortest side of a pasted instance, in px
    # fewest_objects: backgrounds from the quarter of images with the fewest labelled objects, so
    # balancing a rare class copies few instances of common ones along with the background.
    background: Literal["fewest_objects", "random"] = "fewest_objects"
    rubric: str | None = None  # a rubric name (configs/rubrics/) or YAML path [default: detection]

    @field_validator("instances_per_image", "scale_range")
    @classmethod
    def _ordered(cls, value: tuple[Any, Any]) -> tuple[Any, Any]:
        if value[0] > value[1]:
            raise ValueError("[min, max] must have min <= max")
        return value


class DiffusionModelConfig(StrictModel):
    """A local diffusers pipeline and how to sample from it (never downloaded at run time)."""

    path: str = Field(min_length=1)  # a local folder, or an id already in the Hugging Face cache
    revision: str | None = None  # Hub cache only: a branch, tag or commit
    variant: str | None = None  # weight file variant, e.g. "fp16"
    scheduler: Literal["default", "ddim", "dpm++", "euler", "euler_a", "lcm"] = "default"
    steps: int = Field(30, ge=1, le=1000)
    guidance: float = Field(7.5, ge=0.0)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    batch_size: int = Field(4, ge=1, le=256)
    attention: Literal["sdpa", "slicing"] = "sdpa"
    compile: bool = False  # torch.compile the UNet; applies on CUDA only


class BackgroundConfig(StrictModel):
    """Where backgrounds come from: drawn procedurally, or images in a folder (recursively)."""

    source: Literal["procedural", "folder"] = "procedural"
    folder: Path | None = None

    @model_validator(mode="after")
    def _folder_given(self) -> BackgroundConfig:
        if self.source == "folder" and self.folder is None:
            raise ValueError("source 'folder' needs `folder:` (a directory of images)")
        return self


# Stable Diffusion's VAE turns 8x8 pixel blocks into one latent: every pipeline synthgate runs
# refuses another size. A VAE of more levels needs a larger multiple, read from a local
# folder's vae/config.json when the config is read, and from a Hub id's model once it loads.
VAE_BLOCK = 8


def _off_vae_blocks(
    section: type[BaseModel], data: Any, *, invalid: set[int | str]
) -> dict[str, Any] | None:
    """The problem (as pydantic_core's InitErrorDetails: pydantic's own dependency, not
    imported here) of the size a diffusion `section`'s pipeline makes (its instance_size, when
    given), off VAE_BLOCK in the mapping `data`; None when it is on, or `invalid` (a field
    pydantic refused)."""
    if not isinstance(data, Mapping):
        return None
    given = data.get("instance_size") if "instance_size" in section.model_fields else None
    name = "size" if given is None else "instance_size"
    value = data.get(name)
    if value is None or name in invalid:
        return None
    try:
        sides = [int(side) for side in value]
    except (TypeError, ValueError):  # pydantic read it otherwise: its own check of it stands
        return None
    if not (sides[0] % VAE_BLOCK or sides[1] % VAE_BLOCK):
        return None
    rounded = [side // VAE_BLOCK * VAE_BLOCK for side in sides]  # sides are >= 16
    problem = ValueError(
        f"is not a multiple of {VAE_BLOCK} in both sides, which Stable Diffusion pipelines need "
        f"(their VAE works on {VAE_BLOCK}x{VAE_BLOCK} pixel blocks); use e.g. {rounded}"
    )
    return {"type": "value_error", "loc": (name,), "input": value, "ctx": {"error": problem}}


def _as_raised(item: Mapping[str, Any]) -> dict[str, Any]:
    """One of pydantic's problems (`ValidationError.errors()`) as it can be raised again, with
    others."""
    raised = {"type": item["type"], "loc": item["loc"], "input": item["input"]}
    if "ctx" in item:
        raised["ctx"] = item["ctx"]
    return raised


class _DiffusionImageConfig(StrictModel):
    """What every diffusion generator shares: the model, prompts and their attribute slots."""

    count: int = Field(gt=0, le=MAX_COUNT)
    size: tuple[Annotated[int, Field(ge=16, le=8192)], Annotated[int, Field(ge=16, le=8192)]] = (
        512,
        512,
    )
    model: DiffusionModelConfig
    prompt: str = "a photo of a {category}"
    negative_prompt: str | None = None
    # Values for the prompt's attribute slots ({colour}, {age}, …); a sample takes the value the
    # planner gave it (`SampleSpec.attributes`), else one drawn from its own seed.
    attributes: dict[str, list[str]] = Field(default_factory=dict)
    segmenter: str = "border"  # a registered name, or "module:function" (RGB HxWx3 -> bool HxW)
    rubric: str | None = None  # a rubric name (configs/rubrics/) or YAML path [default: detection]
    _slots: ClassVar[dict[str, tuple[str, ...]]] = {"prompt": ("category",)}

    @field_validator("negative_prompt")
    @classmethod
    def _guidance_uses_it(cls, value: str | None, info: ValidationInfo) -> str | None:
        # diffusers encodes a negative prompt only for classifier-free guidance, which its
        # Stable Diffusion pipelines run only when guidance_scale > 1: below that the prompt
        # went into provenance and nowhere else.
        model = info.data.get("model")  # absent when it was refused itself
        if value and model is not None and model.guidance <= 1:
            raise ValueError(
                f"with image.model.guidance {model.guidance} classifier-free guidance is off, "
                "and the pipeline ignores a negative prompt (diffusers uses one only when "
                "guidance_scale > 1), though provenance would record it; raise "
                "image.model.guidance above 1 (e.g. 7.5), or drop image.negative_prompt"
            )
        return value

    @field_validator("attributes")
    @classmethod
    def _values_given(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        empty = [name for name, values in value.items() if not values]
        if empty:
            raise ValueError(f"attributes {empty} have no values; list at least one each")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _sizes_on_vae_blocks(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        """Refuse a size its Stable Diffusion pipeline would be asked to make off VAE_BLOCK,
        when the config is read (found by the pipeline, it was refused only once the model had
        loaded), as one of the section's problems, in its fields' order. object_paste's
        pipeline makes its instances only, at instance_size when given (else size): the images
        they are pasted into may then be of any size."""
        refused: ValidationError | None = None
        problems: list[Any] = []
        try:
            section = handler(data)
        except ValidationError as error:
            refused, problems = error, [_as_raised(item) for item in error.errors()]
        off = _off_vae_blocks(
            cls, data, invalid={item["loc"][0] for item in problems if item["loc"]}
        )
        if off is None:
            if refused is not None:
                raise refused
            return section
        name = off["loc"][0]
        fields = list(cls.model_fields)
        later = [
            at
            for at, item in enumerate(problems)
            if item["loc"][0] not in fields
            or fields.index(str(item["loc"][0])) > fields.index(str(name))
        ]
        problems.insert(later[0] if later else len(problems), off)
        raise ValidationError.from_exception_data(cls.__name__, problems) from None

    @model_validator(mode="after")
    def _known_slots(self) -> _DiffusionImageConfig:
        for field_name, builtin in self._slots.items():
            template = getattr(self, field_name)
            try:
                slots = {name for _, name, _, _ in string.Formatter().parse(template) if name}
            except ValueError as error:
                raise ValueError(
                    f"{field_name} {template!r} is not a valid template: {error}"
                ) from None
            unknown = sorted(slots - set(builtin) - set(self.attributes))
            if unknown:
                raise ValueError(
                    f"{field_name} {template!r} has unknown slots {unknown}; use "
                    f"{sorted(builtin)} or add them to `attributes:` with their values"
                )
        return self


class ClipFilterConfig(StrictModel):
    """Keep an instance only if a local CLIP model scores it against its prompt."""

    path: str = Field(min_length=1)
    text: str = "a photo of a {category}"
    min_score: float = Field(0.2, ge=-1.0, le=1.0)  # cosine similarity of image and text


class DiffusionObjectPasteConfig(_DiffusionImageConfig):
    """X-Paste: one object per generated image, segmented, filtered, pooled and pasted."""

    generator: Literal["diffusion_object_paste"] = "diffusion_object_paste"
    prompt: str = "a photo of a single {category}"
    instance_size: (
        tuple[Annotated[int, Field(ge=16, le=8192)], Annotated[int, Field(ge=16, le=8192)]] | None
    ) = None  # [w, h] to generate instances at; default size
    objects_per_image: tuple[
        Annotated[int, Field(ge=1, le=MAX_OBJECTS)], Annotated[int, Field(ge=1, le=MAX_OBJECTS)]
    ] = (1, 3)
    object_scale_range: tuple[float, float] = (0.3, 0.7)  # longer side / shorter image side
    flip_probability: float = Field(0.5, ge=0.0, le=1.0)
    min_visible_fraction: float = Field(0.25, ge=0.0, le=1.0)
    mask_area_range: tuple[float, float] = (0.05, 0.95)  # of the generated image
    clip: ClipFilterConfig | None = None
    pool_dir: Path | None = None  # keep instances on disk, shared across runs; None: in memory
    pool_size: int = Field(16, ge=1, le=MAX_COUNT)  # distinct instances per (category, prompt)
    pool_seed: int = Field(0, ge=0, le=MAX_SEED)
    max_attempts: int = Field(3, ge=1, le=1000)  # generations per instance before it is given up
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)

    @field_validator("objects_per_image", "object_scale_range", "mask_area_range")
    @classmethod
    def _ordered(cls, value: tuple[Any, Any]) -> tuple[Any, Any]:
        if value[0] > value[1] or value[0] < 0:
            raise ValueError("[min, max] must have 0 <= min <= max")
        return value

    @model_validator(mode="after")
    def _fits_in_memory(self) -> DiffusionObjectPasteConfig:
        _masks_fit(self.size, self.objects_per_image)
        return self


class DiffusionLayoutConfig(_DiffusionImageConfig):
    """GLIGEN: boxes + phrases -> image; labels from a foreground test inside every box."""

    generator: Literal["diffusion_layout"] = "diffusion_layout"
    prompt: str = "a photo of {categories}"
    phrase: str = "a {category}"
    objects_per_image: tuple[
        Annotated[int, Field(ge=1, le=30)], Annotated[int, Field(ge=1, le=30)]
    ] = (1, 3)
    box_scale_range: tuple[float, float] = (0.25, 0.6)  # box side / image side
    grounding_fraction: float = Field(0.3, ge=0.0, le=1.0)  # GLIGEN scheduled-sampling beta
    _slots: ClassVar[dict[str, tuple[str, ...]]] = {
        "prompt": ("category", "categories"),
        "phrase": ("category",),
    }

    @field_validator("objects_per_image", "box_scale_range")
    @classmethod
    def _ordered(cls, value: tuple[Any, Any]) -> tuple[Any, Any]:
        if value[0] > value[1] or value[0] <= 0:
            raise ValueError("[min, max] must have 0 < min <= max")
        return value

    @field_validator("box_scale_range")
    @classmethod
    def _boxes_fit(cls, value: tuple[float, float]) -> tuple[float, float]:
        # A box wider than the image has no place on it (the layout draw failed deep in numpy).
        if value[1] > 1:
            raise ValueError("a box side is at most the image side: max must be <= 1")
        return value


class DiffusionInpaintConfig(_DiffusionImageConfig):
    """Paint one object into a background inside a chosen box."""

    generator: Literal["diffusion_inpaint"] = "diffusion_inpaint"
    box_scale_range: tuple[float, float] = (0.3, 0.6)  # box side / image side
    mask_shape: Literal["box", "ellipse"] = "box"
    strength: float = Field(1.0, gt=0.0, le=1.0)
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)

    @field_validator("box_scale_range")
    @classmethod
    def _ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if value[0] > value[1] or value[0] <= 0 or value[1] > 1:
            raise ValueError("[min, max] must have 0 < min <= max <= 1")
        return value

    @field_validator("strength")
    @classmethod
    def _a_step_to_run(cls, value: float, info: ValidationInfo) -> float:
        # The pipeline runs int(steps x strength) of its steps; none failed deep in diffusers.
        model = info.data.get("model")  # absent when it was refused itself
        if model is not None and int(model.steps * value) < 1:
            enough = math.ceil(1 / value)
            while int(enough * value) < 1:
                enough += 1
            raise ValueError(
                f"with model.steps {model.steps} it leaves no denoising step (the pipeline runs "
                f"int(steps x strength) = 0 of them); set image.model.steps to at least "
                f"{enough}, or raise image.strength"
            )
        return value


IMAGE_CONFIGS: tuple[type[StrictModel], ...] = (
    ProceduralImageConfig,
    CopyPasteImageConfig,
    DiffusionObjectPasteConfig,
    DiffusionLayoutConfig,
    DiffusionInpaintConfig,
)
ImageConfig = _tagged_union(*IMAGE_CONFIGS, default="procedural")


def _faker_locale(name: str) -> str:
    """The locale Faker makes of `name` (en-US and en are en_US), as faker.Factory.create
    spells it; a name it does not know stays as it is."""
    return normalize_locale(name.replace("-", "_")).split(".")[0]


def _faker_locales(locales: list[str]) -> list[str]:
    """Locales Faker has, each once. A blank one would fall back to Faker's default (en_US)
    while provenance recorded ''; an unknown one failed only once the generator was built,
    without the config file named; one listed twice weighted the plan's locale quotas and
    counted each counterfactual rewrite twice."""
    from faker.config import AVAILABLE_LOCALES  # a text section's generator imports it anyway

    seen: dict[str, str] = {}
    for locale in locales:
        if not locale.strip() or locale != locale.strip():
            raise ValueError(
                f"{locale!r} is not a locale name; use one such as en_US, de_DE or ja_JP"
            )
        made = _faker_locale(locale)
        if made not in AVAILABLE_LOCALES:
            raise ValueError(
                f"{locale!r} is not a Faker locale; use one such as en_US, de_DE, ja_JP, fr_FR, "
                "es_ES or hi_IN (faker.config.AVAILABLE_LOCALES lists them all)"
            )
        if made in seen:
            twice = (
                "is listed twice"
                if seen[made] == locale
                else f"is Faker's {made}, listed already as {seen[made]!r}"
            )
            raise ValueError(f"locale {locale!r} {twice}; list each locale once")
        seen[made] = locale
    return locales


class TemplateTextConfig(StrictModel):
    """Templates with typed slots filled from Faker providers and lexicons."""

    generator: Literal["templates"] = "templates"
    templates: Path
    count: int = Field(gt=0, le=MAX_COUNT)
    locales: list[str] = Field(default_factory=lambda: ["en_US"], min_length=1)
    rubric: str | None = None  # a rubric name or YAML path [default: the template file's task]
    # The day Faker's date providers count from (date_this_year, future_date, ...), recorded in
    # provenance: fixed, so that a seed makes the same text on any day; set it for recent dates.
    reference_date: dt.date = REFERENCE_DATE

    _locales = field_validator("locales")(_faker_locales)


class TextModelConfig(StrictModel):
    """A local causal language model (transformers), loaded offline: never downloaded."""

    path: str = Field(min_length=1)  # a local folder, or an id already in the Hugging Face cache
    revision: str | None = None  # Hub cache only: a branch, tag or commit
    device: str = Field("auto", pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    prompt_rows: int = Field(6, ge=1, le=64)  # real rows of the class shown as examples
    max_new_tokens: int = Field(64, ge=1, le=1024)
    temperature: float = Field(0.9, gt=0.0, le=5.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)


class CounterfactualTextConfig(StrictModel):
    """Label-preserving rewrites of real rows: names and gendered terms swapped."""

    generator: Literal["counterfactual"] = "counterfactual"
    count: int = Field(gt=0, le=MAX_COUNT)
    source: Path  # JSONL of real rows to rewrite
    text_field: str = "text"
    label_field: str = "label"
    locales: list[str] = Field(default_factory=lambda: ["en_US"], min_length=1)
    rubric: str | None = "classification"  # a rubric name or YAML path
    # Balancing only: what fills a class the rewrites cannot fill without repeating themselves.
    # auto: the model when one is given, else mined_templates (templates mined from the class's
    # rows); none: the class stays short, and the report says by how much.
    fallback: Literal["auto", "mined_templates", "model", "none"] = "auto"
    model: TextModelConfig | None = None  # for fallback model (auto picks it when given)

    _locales = field_validator("locales")(_faker_locales)

    @model_validator(mode="after")
    def _model_given(self) -> CounterfactualTextConfig:
        if self.fallback == "model" and self.model is None:
            raise ValueError("fallback 'model' needs `model:` with the path of a local model")
        return self


class LanguageModelTextConfig(StrictModel):
    """New rows of a class from a local causal language model prompted with real rows of it."""

    generator: Literal["text_model"] = "text_model"
    count: int = Field(gt=0)
    source: Path  # JSONL of real rows: the examples in the prompt, and the copy check's reference
    text_field: str = "text"
    label_field: str = "label"
    model: TextModelConfig
    rubric: str | None = "classification"  # a rubric name or YAML path


TEXT_CONFIGS: tuple[type[StrictModel], ...] = (
    TemplateTextConfig,
    CounterfactualTextConfig,
    LanguageModelTextConfig,
)
TextConfig = _tagged_union(*TEXT_CONFIGS, default="templates")
GENERATOR_NAMES = {_generator_name(m) for m in IMAGE_CONFIGS + TEXT_CONFIGS}


class BatchConfig(StrictModel):
    """A batch request: what to make, how much, and from which seed."""

    # The batch id is the name, "-" and 10 hex digits, kept in columns of 64 characters: a
    # longer name made an id PostgreSQL refuses and the API's paths cannot name.
    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    categories: list[str] = Field(default_factory=list)
    # The unions are built from IMAGE_CONFIGS / TEXT_CONFIGS, which mypy cannot follow.
    image: ImageConfig | None = None  # type: ignore[valid-type]
    text: TextConfig | None = None  # type: ignore[valid-type]
    # Whose batch this is, set by the API service (an opaque key per account): two requesters
    # posting the same config get two batches, and neither learns what the other ran.
    requester: str | None = Field(None, pattern=r"^[0-9a-f]{1,64}$")

    @field_validator("categories")
    @classmethod
    def _category_names(cls, names: list[str]) -> list[str]:
        """Names every export can hold, each naming one class (`category_name_problem`); a name
        given twice would make labels that tools read wrongly."""
        seen: set[str] = set()
        for name in names:
            problem = category_name_problem(name)
            if problem is not None:
                raise ValueError(f"category {name!r} {problem}")
            if name in seen:
                raise ValueError(f"category {name!r} is listed twice; list each class once")
            seen.add(name)
        return names

    @model_serializer(mode="wrap")
    def _requester_only_when_set(self, handler: SerializerFunctionWrapHandler) -> Any:
        # Configs without a requester (every CLI run) dump exactly as before it existed, so
        # their batch ids and run folders do not change.
        data = handler(self)
        if isinstance(data, dict) and data.get("requester") is None:
            data.pop("requester", None)
        return data


class RequesterLimits(BaseModel):
    """What one requester may ask of the API service; a post over a limit gets a 4xx naming it.

    Each field's env variable is in `synthgate.settings.Settings` (SYNTHGATE_MAX_SAMPLES, SYNTHGATE_MAX_PIXELS,
    SYNTHGATE_MAX_OBJECTS, SYNTHGATE_MAX_OPEN_BATCHES, SYNTHGATE_MAX_SAMPLES_PER_HOUR).
    """

    samples_per_batch: int = Field(default=10_000, ge=1)  # every modality together
    pixels_per_image: int = Field(default=2048 * 2048, ge=16 * 16)  # width x height
    objects_per_image: int = Field(default=50, ge=1, le=MAX_OBJECTS)
    open_batches: int = Field(default=4, ge=1)  # queued or running at once
    samples_per_hour: int = Field(default=50_000, ge=1)  # in batches started in the last hour


def resolve_path(value: Path, *, config_dir: Path | None) -> Path | None:
    """Find a path a config names: as given (`~` is the home folder), next to the config, or in
    the shipped configs."""
    value = home_expanded(value)
    candidates = [value] if value.is_absolute() else [Path.cwd() / value]
    if not value.is_absolute():
        if config_dir is not None:
            candidates.append(config_dir / value)
        candidates.append(PACKAGE_ROOT / value)
    return next((c for c in candidates if _exists(c)), None)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def _without_union_tag(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A problem's place without a generator's union tag, which follows its section
    (image.procedural.count); a field of the same name as its generator
    (text.templates.templates) is kept."""
    if len(loc) > 1 and loc[0] in ("image", "text") and loc[1] in GENERATOR_NAMES:
        return (loc[0], *loc[2:])
    return loc


def refuse_lone_surrogates(data: Any, *, source: Path | str) -> None:
    """A config string that holds a lone surrogate (an unpaired \\ud800-\\udfff escape, from
    JSON or a Python string: YAML refuses one) is no text: a run would fail writing it."""
    found = lone_surrogate_in(data)
    if found is not None:
        where, value = found
        raise InputError(
            f"{source}: {where}: {quoted(value)} holds a lone surrogate (an unpaired "
            "\\ud800-\\udfff escape), which is no character; fix or drop the escape"
        )


def config_model(data: Any, *, source: Path) -> BatchConfig:
    """A config mapping checked against the schema (keys, types, ranges), its paths as given:
    what `parse_config` checks before it looks for files."""
    if not isinstance(data, dict):
        raise InputError(
            f"{source}: a batch config must be a YAML mapping (got {type(data).__name__})"
        )
    refuse_lone_surrogates(data, source=source)
    try:
        return BatchConfig.model_validate(data)
    except ValidationError as error:
        raise InputError(
            validation_message(
                error,
                source=source,
                location=_without_union_tag,
                union_tag="generator",
                hint=quote_hint,
            )
        ) from None


def parse_config(data: Any, *, source: Path, config_dir: Path | None = None) -> BatchConfig:
    """Validate a config mapping; relative paths are resolved against `config_dir`."""
    config = config_model(data, source=source)
    if config.image is None and config.text is None:
        raise InputError(f"{source}: nothing to make; add an `image:` or a `text:` section")
    if config.image is not None and not config.categories:
        raise InputError(f"{source}: categories is empty; list the classes the images should hold")
    for modality in ("image", "text"):
        section = getattr(config, modality)
        for key in INPUT_PATHS.get(getattr(section, "generator", ""), ()):
            value = getattr(section, key)
            found = resolve_path(value, config_dir=config_dir)
            if found is None:
                raise InputError(
                    f"{source}: {modality}.{key}: not found: {value} ({_relative_to(config_dir)})"
                )
            if found.is_dir() != (key in INPUT_FOLDERS):
                raise InputError(f"{source}: {modality}.{key}: {found} {INPUT_KIND_PROBLEMS[key]}")
            setattr(section, key, found)
    if isinstance(config.image, _DiffusionImageConfig) and config_dir is not None:
        _find_diffusion_folders(config.image, config_dir)
    text_model = getattr(config.text, "model", None)  # text_model's, counterfactual's fallback
    if text_model is not None and config_dir is not None:
        text_model.path = str(_beside_the_config(text_model.path, config_dir) or text_model.path)
    if isinstance(config.image, _DiffusionImageConfig):
        _revision_of_a_hub_id(config.image.model, field="image.model", source=source)
        _negative_prompt_the_unet_uses(config.image, source=source)
        _sizes_on_the_vaes_blocks(config.image, source=source)
    if text_model is not None:
        _revision_of_a_hub_id(text_model, field="text.model", source=source)
    for modality in ("image", "text"):
        section = getattr(config, modality)
        rubric = getattr(section, "rubric", None)
        if rubric is not None and rubric.endswith((".yaml", ".yml")):
            found = resolve_path(Path(rubric), config_dir=config_dir)
            if found is None:
                raise InputError(
                    f"{source}: {modality}.rubric: file not found: {rubric} "
                    f"({_relative_to(config_dir)}; or name a shipped rubric)"
                )
            section.rubric = str(found)
    return config


def _relative_to(config_dir: Path | None) -> str:
    """Where a config's relative paths are looked up, for a path found nowhere: a config given
    as a dict (`config_dir` None) has no file beside which to look."""
    if config_dir is not None:
        return "paths are relative to the working directory or to the config file"
    return (
        "a config given as a dict has no folder of its own: paths are relative to the working "
        "directory"
    )


def _beside_the_config(value: str | Path, config_dir: Path) -> Path | None:
    """A model or folder a config names, next to the config file when the working directory
    has none of that name, as every other input is; None for a name found nowhere, which stays
    as given: a model may be a Hugging Face id, and the generator's error names what is
    missing."""
    given = home_expanded(Path(value))
    if given.is_absolute() or _exists(given) or not _exists(config_dir / given):
        return None
    return config_dir / given


def _find_diffusion_folders(section: _DiffusionImageConfig, config_dir: Path) -> None:
    """A diffusion section's model, CLIP model and background folders, looked up next to the
    config file (`_beside_the_config`)."""
    if (model := _beside_the_config(section.model.path, config_dir)) is not None:
        section.model.path = str(model)
    clip = getattr(section, "clip", None)
    if clip is not None and (clip_model := _beside_the_config(clip.path, config_dir)) is not None:
        clip.path = str(clip_model)
    background = getattr(section, "background", None)
    if background is not None and background.folder is not None:
        background.folder = _beside_the_config(background.folder, config_dir) or background.folder


def _revision_of_a_hub_id(
    model: DiffusionModelConfig | TextModelConfig, *, field: str, source: Path
) -> None:
    """Refuse a revision given with a local model folder (the model section at `field`): the
    generator loads a folder as it is (diffusers and transformers alike), so the revision was
    ignored unsaid."""
    if model.revision is None or not _exists(home_expanded(Path(model.path))):
        return
    raise InputError(
        f"{source}: {field}.revision: {quoted(model.revision)} names a version of a Hugging "
        f"Face id, and {field}.path {model.path} is a local folder, which is loaded as it "
        f"is; drop {field}.revision, or set {field}.path to the Hub id whose revision "
        "you want (it must be in the local Hugging Face cache)"
    )


def _local_part_config(model: DiffusionModelConfig, part: str) -> dict[str, Any]:
    """The config.json of a part (unet, vae) of a local model folder, or {} where it has none
    that reads as a mapping: the model is then judged when it loads, which names the file."""
    file = home_expanded(Path(model.path)) / part / "config.json"
    try:
        found = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # no such file, a Hub id, not JSON
        return {}
    return found if isinstance(found, dict) else {}


# The diffusers pipeline of each generator that runs no classifier-free guidance for a UNet
# with time_cond_proj_dim (a latent consistency model); GLIGEN's (diffusion_layout) runs it
# whenever guidance_scale > 1, and so uses a negative prompt.
PIPELINES_WITHOUT_GUIDANCE_FOR_LCM = {
    "diffusion_object_paste": "StableDiffusionPipeline",
    "diffusion_inpaint": "StableDiffusionInpaintPipeline",
}


def _negative_prompt_the_unet_uses(section: _DiffusionImageConfig, *, source: Path) -> None:
    """Refuse a negative prompt for a local latent consistency model: its UNet takes the
    guidance as an input (time_cond_proj_dim), and the pipeline then encodes no negative
    prompt at any guidance, so it went into provenance and nowhere else, as with guidance <= 1."""
    pipeline = PIPELINES_WITHOUT_GUIDANCE_FOR_LCM.get(str(getattr(section, "generator", "")))
    if not section.negative_prompt or pipeline is None:
        return
    embedding = _local_part_config(section.model, "unet").get("time_cond_proj_dim")
    if embedding is None:
        return
    raise InputError(
        f"{source}: image.negative_prompt: image.model.path {section.model.path} is a latent "
        f"consistency model (its unet/config.json sets time_cond_proj_dim {embedding}: the "
        f"guidance is an input of its UNet), which diffusers' {pipeline} runs without "
        "classifier-free guidance at any image.model.guidance, and so ignores a negative "
        "prompt, though provenance would record it; drop image.negative_prompt "
        f"(got {quoted(section.negative_prompt)})"
    )


def _sizes_on_the_vaes_blocks(section: _DiffusionImageConfig, *, source: Path) -> None:
    """Refuse a size off the blocks of a local model's VAE of more levels than Stable
    Diffusion's (2 ** (levels - 1) pixels, diffusers' vae_scale_factor), which the check of
    VAE_BLOCK passed: the pipeline's check refused it only once the model had loaded."""
    levels = _local_part_config(section.model, "vae").get("block_out_channels")
    if not isinstance(levels, list) or not levels:
        return
    block = math.lcm(VAE_BLOCK, 2 ** (len(levels) - 1))
    instance_size = getattr(section, "instance_size", None)  # object_paste's pipeline makes it
    name, value = (
        ("size", section.size) if instance_size is None else ("instance_size", instance_size)
    )
    if not (value[0] % block or value[1] % block):
        return
    below = [side // block * block for side in value]
    above = [-(-side // block) * block for side in value]
    # a side under the block has no size below it
    nearest = [size for size in (below, above) if min(size) > 0]
    plural = "s" if len(nearest) > 1 else ""
    raise InputError(
        f"{source}: image.{name}: is not a multiple of {block} in both sides, which the VAE of "
        f"image.model.path {section.model.path} needs (its vae/config.json lists {len(levels)} "
        f"block_out_channels: it works on {block}x{block} pixel blocks); use "
        f"{' or '.join(map(str, nearest))}, the nearest size{plural} it takes (got {list(value)})"
    )


# Paths each generator reads, resolved (and checked) when a config is parsed.
INPUT_PATHS: dict[str, tuple[str, ...]] = {
    "templates": ("templates",),
    "copy_paste": ("coco", "images"),
    "counterfactual": ("source",),
    "text_model": ("source",),
}
# Which of those paths name a folder (the others name a file), and what to say when one does
# not: checked when the config is parsed, so that the error names the config file.
INPUT_FOLDERS = frozenset({"images"})
INPUT_KIND_PROBLEMS = {
    "templates": "is a folder; give the template file itself (a YAML file)",
    "coco": "is a folder; give the COCO JSON file itself",
    "source": "is a folder; give the JSONL file of real rows itself",
    "images": "is not a folder; give the folder the COCO file's file_names are relative to",
}


def input_files(config: BatchConfig) -> list[Path]:
    """The files and folders a parsed config reads: its generators' inputs and rubric files."""
    found: list[Path] = []
    for section in (config.image, config.text):
        if section is None:
            continue
        found += [Path(getattr(section, key)) for key in INPUT_PATHS.get(section.generator, ())]
        rubric = getattr(section, "rubric", None)
        if rubric is not None and rubric.endswith((".yaml", ".yml")):
            found.append(Path(rubric))
    return found


def load_config(source: Path | str | Mapping[str, Any] | BatchConfig) -> BatchConfig:
    """A batch config, read and validated: from a YAML file, a mapping, or one already built
    (validated again: a field set on it after loading is checked too).

    Args:
        source: a config YAML path (looked up from the working directory, then in the shipped
            configs: `configs/quickstart.yaml` loads from any folder), or the config as a dict
            (relative paths in either are looked up from the working directory, then beside
            the config file, then in the shipped configs).

    Returns:
        The `BatchConfig`.

    Raises:
        InputError: naming the file, the field and the fix.

    Example:
        >>> config = load_config({"name": "shapes", "categories": ["circle"],
        ...                       "image": {"generator": "procedural", "count": 4}})
    """
    if isinstance(source, BatchConfig):  # checked again: a field set after loading may be wrong
        # without pydantic's serializer warnings about that field: the error below names it
        return parse_config(source.model_dump(warnings=False), source=Path("<config>"))
    if isinstance(source, Mapping):
        return parse_config(dict(source), source=Path("<config>"))
    if isinstance(source, str) and "\n" in source.strip():  # no file name holds a line break
        raise InputError(
            field="config",
            value=quoted(source),
            problem="is YAML text, not the path of a config file",
            fix="pass the file's path, or the config as a dict: load_config(yaml.safe_load(text))",
        )
    path = find_config_file(source)
    data = load_yaml(path, what="batch config")
    return parse_config(data, source=path, config_dir=path.resolve().parent)


def find_config_file(source: Any) -> Path:
    """The batch config file a path names: from the working directory, else in the shipped
    configs, as a config's own relative paths are looked up (`configs/quickstart.yaml`, the
    README's first example, from a notebook's folder). Found in neither: an InputError that says
    where it looked; a path that is there, or an absolute one, is returned as given (reading it
    says what is wrong with it)."""
    path = path_argument(source, "config")
    if path.is_absolute() or _exists(path) or path_problem(path) is not None:
        return path
    shipped_configs = PACKAGE_ROOT / "configs"
    shipped = PACKAGE_ROOT / path
    if _exists(shipped) and shipped.resolve().is_relative_to(shipped_configs):
        return shipped
    raise InputError(
        f"{path}: batch config not found in the working directory ({Path.cwd()}) nor in the "
        f"shipped configs ({shipped_configs}); check the path"
    )
