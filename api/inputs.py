"""What a batch config from the network may name: files only inside allowed folders, a bounded
number of samples, pixels and objects, registered segmenters only.

`confine_paths(data, data_root=...)` checks every path field of a posted config (PATH_FIELDS)
and returns a copy with each path made absolute inside an allowed root: the shipped configs
folder (paths like `configs/templates/support_tickets.yaml`) or the server's data root
(`serve --data-root`; paths relative to it). Absolute paths, `..` and anything that leaves the
roots are refused with the field named, so a requester can never make the server read (and then
serve) files elsewhere on its disk. `check_limits(config, limits)` holds a batch to what the
server allows one batch (RequesterLimits: samples, pixels and objects per image).
"""

from __future__ import annotations

import copy
import math
import re
from pathlib import Path, PurePath
from typing import Any, Literal

from fastapi import HTTPException

from synthgate.config import (
    INPUT_PATHS,
    MAX_TEXT_CHARS,
    PACKAGE_ROOT,
    BatchConfig,
    RequesterLimits,
)
from synthgate.errors import InputError
from synthgate.validators.rubric import shipped_rubrics

SOURCE = Path("POST /api/batches")
CONFIGS_DIR = PACKAGE_ROOT / "configs"
Kind = Literal["input", "output", "model", "rubric"]

# Every field of a section that names a path, by its dotted key inside `image:` / `text:`.
# input: a file or folder that must exist; output: a folder the generator writes (data root only);
# model: a local model folder or a Hugging Face id already in the cache; rubric: a shipped
# rubric's name or a rubric YAML. tests/test_api_inputs.py checks that every Path-typed config
# field is listed here.
PATH_FIELDS: dict[str, Kind] = {
    **{key: "input" for keys in INPUT_PATHS.values() for key in keys},
    "background.folder": "input",
    "pool_dir": "output",
    "model.path": "model",
    "clip.path": "model",
    "rubric": "rubric",
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_RUBRIC_NAME = re.compile(r"^[A-Za-z0-9][\w-]*$")


def confine_paths(data: Any, *, data_root: Path | None) -> Any:
    """A copy of `data` whose path fields are absolute paths inside the allowed roots."""
    if not isinstance(data, dict):
        return data  # parse_config says what is wrong with it
    data = copy.deepcopy(data)
    for modality in ("image", "text"):
        section = data.get(modality)
        if not isinstance(section, dict):
            continue
        for dotted, kind in PATH_FIELDS.items():
            *parents, key = dotted.split(".")
            holder: Any = section
            for parent in parents:
                holder = holder.get(parent) if isinstance(holder, dict) else None
            if not isinstance(holder, dict) or holder.get(key) is None:
                continue
            field = f"{modality}.{dotted}"
            holder[key] = _confine(field, str(holder[key]), kind, data_root)
        segmenter = section.get("segmenter")
        if isinstance(segmenter, str) and ":" in segmenter:
            raise InputError(
                f"{SOURCE}: {modality}.segmenter: {segmenter!r}: a posted config may only name "
                "a registered segmenter (e.g. border), not a Python function"
            )
    return data


def check_limits(config: BatchConfig, limits: RequesterLimits) -> None:
    """422 naming the limit for a config over what one batch may ask of this server: samples
    (every modality together), pixels per image, objects per image."""
    sections = {m: getattr(config, m) for m in ("image", "text") if getattr(config, m)}
    total = sum(section.count for section in sections.values())
    if total > limits.samples_per_batch:
        asked = " + ".join(f"{m}.count {section.count}" for m, section in sections.items())
        _over(
            f"{asked}: {total} samples is over this server's limit of "
            f"{limits.samples_per_batch} samples per batch (samples_per_batch, "
            "SYNTHGATE_MAX_SAMPLES or serve --max-samples); split the request into smaller "
            "batches"
        )
    image = sections.get("image")
    if image is None:
        return
    for key in ("size", "instance_size"):
        size = getattr(image, key, None)
        if size is not None and size[0] * size[1] > limits.pixels_per_image:
            _over(
                f"image.{key}: {size[0]}x{size[1]} is {size[0] * size[1]} pixels, over this "
                f"server's limit of {limits.pixels_per_image} pixels per image "
                "(pixels_per_image, SYNTHGATE_MAX_PIXELS); ask for smaller images"
            )
    for key in ("objects_per_image", "instances_per_image"):
        bounds = getattr(image, key, None)
        if bounds is not None and bounds[1] > limits.objects_per_image:
            _over(
                f"image.{key}: up to {bounds[1]} is over this server's limit of "
                f"{limits.objects_per_image} objects per image (objects_per_image, "
                "SYNTHGATE_MAX_OBJECTS); ask for fewer"
            )


def _over(message: str) -> None:
    raise HTTPException(422, message)  # Unprocessable Content: valid, but more than allowed


def _confine(field: str, value: str, kind: Kind, data_root: Path | None) -> str:
    roots = "the server's configs folder" + (" or its data root" if data_root else "")
    if kind == "rubric" and not value.endswith((".yaml", ".yml")):
        # A name is a shipped rubric's, never a file of the server's working directory (which
        # a requester could otherwise have read back in the refusal's message)
        if not _RUBRIC_NAME.match(value) or value not in shipped_rubrics():
            raise InputError(
                f"{SOURCE}: {field}: {value!r} must be a shipped rubric's name (one of "
                f"{', '.join(shipped_rubrics())}) or a relative path to a rubric YAML inside "
                f"{roots}"
            )
        return value
    path = PurePath(value)
    if path.is_absolute() or ".." in path.parts or value.startswith("~") or not value.strip():
        raise InputError(
            f"{SOURCE}: {field}: {value!r} must be a relative path inside {roots} (e.g. "
            "configs/templates/support_tickets.yaml"
            + (", or a path relative to the data root)" if data_root else ")")
        )
    if "\x00" in value or len(value) > MAX_TEXT_CHARS:
        raise InputError(
            f"{SOURCE}: {field}: a NUL byte or over {MAX_TEXT_CHARS} characters; give a plain "
            "relative path"
        )
    try:
        found = _inside(value, data_root, may_be_new=kind == "output")
    except (OSError, ValueError) as error:  # e.g. a name too long for the file system
        raise InputError(f"{SOURCE}: {field}: not a usable path ({error})") from None
    if found is not None:
        return str(found)
    if kind == "model" and _HUB_ID.match(value) and not (Path.cwd() / value).exists():
        return value  # a Hugging Face id: loaded from the server's cache, never downloaded
    if kind == "output":
        raise InputError(
            f"{SOURCE}: {field}: {value!r}: a posted config may only write inside the server's "
            "data root"
            + (
                ", by a path relative to it"
                if data_root
                else "; this server has none (--data-root)"
            )
        )
    raise InputError(f"{SOURCE}: {field}: {value!r} is not a relative path to anything in {roots}")


def shown_paths(message: str, *, data_root: Path | None, runs_dir: Path | None = None) -> str:
    """`message` with the server's own folders written as requesters name paths (relative to
    the package, or to the data root) and its runs folder as `runs/`: where the server keeps
    its files is nobody else's business."""
    roots = [(PACKAGE_ROOT, ""), (data_root, ""), (runs_dir, "runs/")]
    for root, shown in sorted(
        ((r, s) for r, s in roots if r is not None), key=lambda pair: -len(str(pair[0]))
    ):
        for form in {str(root), str(root.resolve())}:
            message = message.replace(form.rstrip("/") + "/", shown)
    return message


def _inside(value: str, data_root: Path | None, *, may_be_new: bool) -> Path | None:
    """`value` under the first root it exists in (symlinks resolved), or None."""
    bases: list[tuple[Path, Path]] = []
    if not may_be_new:
        bases.append((PACKAGE_ROOT, CONFIGS_DIR))  # "configs/..." is relative to the package
    if data_root is not None:
        bases.append((data_root, data_root))
    for base, limit in bases:
        candidate = (base / value).resolve()
        if not candidate.is_relative_to(limit.resolve()):
            continue
        if may_be_new or candidate.exists():
            return candidate
    return None


def check_plain(value: Any, *, where: str) -> None:
    """InputError naming the first place in `value` (a request body, as plain data) that holds a
    NUL byte or a number that is not finite: neither survives every database (PostgreSQL
    refuses NUL in text and NaN in JSON), so they are refused at the door."""
    stack: list[tuple[str, Any]] = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str) and "\x00" in item:
            raise InputError(f"{path}: contains a NUL byte; remove it")
        if isinstance(item, float) and not math.isfinite(item):
            raise InputError(f"{path}: {item} is not a finite number")
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    raise InputError(f"{path}: a key contains a NUL byte; remove it")
                stack.append((f"{path}.{key}", child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
