"""Files to validate -> a stream of (key, GeneratedSample): COCO JSON or text JSONL.

`open_source(path, images=...)` picks the reader by suffix (.jsonl / .ndjson: text, else COCO),
the default rubric (detection; ner or classification by what the rows hold) and the taxonomy
(the COCO file's categories). Pixels are read only when an images folder is given, one image at a
time; a missing or unreadable image becomes a finding (`extras["image_error"]`), not a crash.
A JSONL row that is not a text sample is bad input (InputError naming the line).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydantic import ValidationError

from synthgate.errors import InputError
from synthgate.formats.coco import category_names, coco_mapping, coco_to_samples, read_coco
from synthgate.formats.jsonl import iter_jsonl, text_row_to_sample
from synthgate.formats.paths import confined_path
from synthgate.samples import GeneratedSample

TEXT_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass
class Source:
    """What a file offers the validator."""

    kind: str  # "coco" | "jsonl"
    rubric: str  # default rubric name
    categories: list[str] | None
    coco: dict[str, Any] | None
    items: Iterator[tuple[dict[str, Any], GeneratedSample]]
    count: int | None = None


def open_source(source: Path | dict[str, Any], *, images: Path | None = None) -> Source:
    """A COCO file or mapping, or a text JSONL file (by its suffix), as items to judge."""
    if images is not None and not images.is_dir():
        raise InputError(
            field="images",
            value=images,
            problem="not a folder; pass the folder the file_names are in",
        )
    if isinstance(source, dict):
        coco, name = coco_mapping(source), "coco"
    elif source.suffix.lower() in TEXT_SUFFIXES:
        if not source.is_file():
            raise InputError(f"{source}: file not found; pass a text JSONL file")
        return Source("jsonl", _text_rubric(source), None, None, _jsonl_items(source))
    else:
        coco, name = read_coco(source), source.stem
    items = _coco_items(coco, source=name, images=images)
    return Source("coco", "detection", category_names(coco), coco, items, len(coco["images"]))


def _load_pixels(folder: Path, file_name: str | None) -> tuple[np.ndarray | None, str | None]:
    if not file_name:
        return None, "image has no file_name"
    for candidate in (confined_path(folder, file_name), folder / Path(file_name).name):
        if candidate.is_file():
            try:
                with Image.open(candidate) as image:
                    return np.asarray(image.convert("RGB")), None
            except (OSError, ValueError, Image.DecompressionBombError) as error:
                return None, f"{candidate.name}: {error}"
    return None, f"{file_name} not found under {folder}"


def _coco_items(
    coco: dict[str, Any], *, source: str, images: Path | None
) -> Iterator[tuple[dict[str, Any], GeneratedSample]]:
    for sample in coco_to_samples(coco, source=source):
        extras: dict[str, Any] = {}
        pixels = None
        if images is not None:
            pixels, error = _load_pixels(images, sample.uri)
            if error:
                extras["image_error"] = error
        key = {"id": sample.id, "image_id": sample.spec.params.get("image_id")}
        yield key, GeneratedSample(sample=sample, pixels=pixels, extras=extras)


def _text_rubric(path: Path) -> str:
    """ner when rows carry spans, classification when they carry only a label."""
    try:
        head = list(itertools.islice(iter_jsonl(path), 200))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    if any(row.get("spans") for _, row in head):
        return "ner"
    if any(row.get("label") is not None for _, row in head):
        return "classification"
    return "ner"


def _jsonl_items(path: Path) -> Iterator[tuple[dict[str, Any], GeneratedSample]]:
    for line, row in iter_jsonl(path):
        try:
            sample = text_row_to_sample(row, source=path.stem, line=line)
        except (ValueError, ValidationError) as error:
            reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else error
            raise InputError(
                f"{path}: line {line}: not a text sample ({reason}); rows need "
                '{"text": "...", "spans": [[start, end, "LABEL"], ...]} or a "label"'
            ) from None
        yield {"id": sample.id, "line": line}, GeneratedSample(sample=sample)
