"""COCO files in and out: `read_coco`, `coco_image_to_sample`, `category_names`; `CocoStream`
and `sample_to_coco_image` / `sample_to_coco_annotations` write them.

Real files are messy: polygons (several per object, some degenerate), uncompressed RLE for crowd
regions, compressed RLE, missing or malformed fields. Everything here is converted through
pycocotools into the one internal form (COCO xywh boxes, compressed RLE with `counts` as str); what
cannot be read is recorded on the object (`attributes["segmentation_error"]`, an empty `bbox` and
why in `attributes["bbox_error"]`) for the validators to report, never raised. Each object keeps its
COCO `annotation_id` and `iscrowd` flag in `attributes`. Files this package wrote
(`images[].synthgate`) get their sample ids, seeds and provenance back. `CocoStream` writes a COCO
file entry by entry through part files, so a batch of any size is written without holding it in
memory. Files larger than memory are read as they stream (coco_reader.py) into columns that make the
Samples (coco_annotations.py: `coco_to_samples`). The strict checks balancing and merging run first
are in coco_checks.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from pydantic import ValidationError

from synthgate.errors import InputError
from synthgate.files import dumps, non_finite_floats, not_json, too_long
from synthgate.masks import finite_number
from synthgate.samples import ObjectLabel, Provenance, Sample

COCO_LISTS = ("images", "annotations", "categories")
Progress = Callable[[int, int], None]  # (done so far, in all): bytes read, images checked, ...
MAX_LISTED = 20  # places named in one error message; the rest are counted


# A number json reads as infinite is at least 1.8e308: it has 309 digits before its point, or
# those digits and its exponent come to 309 or more. The gate flags 300 or more (a gate only: a
# match inside a string costs a walk that finds nothing).
BEYOND = 300
EXPONENT = re.compile(rb"[eE]\+?([0-9]+)")
# Every byte as its shape (a `bytes.translate` table): a digit as 0, e and E as e, + and . as
# they are, anything else as a space.
_SHAPE_OF = dict(zip(b"0123456789eE+.", b"0000000000ee+.", strict=True))
SHAPES = bytes(_SHAPE_OF.get(byte, ord(" ")) for byte in range(256))


def beyond_float(data: bytes) -> bool:
    """Whether the JSON text `data` may hold a number json reads as infinite: BEYOND digits in
    a row, or a number with a positive exponent whose digits before the point and exponent
    come to BEYOND or more.

    A regular expression over the whole text cost more than parsing it (3 s for a 55 MB file
    of 100k annotations); this spends 0.1-0.3 s: the text's shapes are searched with bytes
    methods, and only numbers shaped like digits, e and a digit are read."""
    shapes = data.translate(SHAPES)
    if b"0" * BEYOND in shapes:
        return True
    for marker in (b"0e0", b"0e+0"):
        place = shapes.find(marker)  # the last digit before the exponent
        while place >= 0:
            exponent = EXPONENT.match(data, place + 1)
            assert exponent is not None  # the marker's shape
            power = exponent[1]
            if len(power) > 4 or _whole_digits(shapes, place) + int(power) >= BEYOND:
                return True
            place = shapes.find(marker, place + 1)
    return False


def _whole_digits(shapes: bytes, last: int) -> int:
    """How many digits come before the point of the number whose last digit is at `last` (all
    of them when it has no point), in the shapes of `beyond_float`; fewer than BEYOND."""
    start = _run_start(shapes, last)
    if not start or shapes[start - 1] != ord("."):
        return last + 1 - start
    point = start - 1
    return point - _run_start(shapes, point)


def _run_start(shapes: bytes, end: int) -> int:
    """The first index of the digits that run up to `end` (`end` itself is not looked at)."""
    start = end
    while start and shapes[start - 1] == ord("0"):
        start -= 1
    return start


def read_coco(
    path: Path | str,
    *,
    non_finite: list[str] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Load a COCO JSON file; InputError unless it is a mapping with images/annotations/categories.

    Python's json parses the whole text in one call. Callers read with `read_coco_streaming`
    (formats/coco_reader.py): the same mapping and errors, a progress count that moves, and
    this reader for the files yajl does not read as json does.

    `non_finite`: a list the reader adds what it met that reads as NaN or infinity to (NaN,
    Infinity, a number beyond a float's range): Python's json reads them as floats, but writes
    them as no JSON reader takes. A caller that copies entries into an output refuses those
    still there after its checks (`refuse_non_finite`).

    `progress`: called with (bytes read and parsed, bytes in all) before and after: a file of
    hundreds of MB takes seconds, in one call to the parser.

    A UTF-8 byte-order mark at the start (Windows tools write one) is no part of the JSON and
    is skipped (utf-8-sig), as the streaming reader skips it: the file reads as it does
    without the mark."""
    path = existing_coco_file(path)
    size = path.stat().st_size
    if progress is not None:
        progress(0, size)

    def constant(token: str) -> float:
        assert non_finite is not None
        non_finite.append(token)
        return float(token)

    try:
        raw = path.read_bytes()
        beyond = non_finite is not None and beyond_float(raw)
        text = raw.decode("utf-8-sig")
        del raw  # the parsed file is many times its text: hold one copy of the text, not two
        if "\r" in text:  # line ends as a file opened as text reads them: errors name the line
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        data = json.loads(text, parse_constant=constant if non_finite is not None else None)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: {not_json(error)}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except ValueError as error:  # an integer of more digits than Python reads
        raise InputError(f"{path}: not valid JSON ({too_long(error)})") from None
    except RecursionError:  # json's decoder recurses per nesting level
        raise InputError(f"{path}: JSON nested too deep to be a COCO file") from None
    if beyond and non_finite is not None:  # (not None whenever beyond: for the type checker)
        non_finite.append("a number beyond a float's range")
    if progress is not None:
        progress(size, size)
    return coco_mapping(data, source=str(path))


def refuse_non_finite(data: dict[str, Any], source: Path, noted: list[str]) -> None:
    """An InputError naming every NaN or infinite value of `data`, if it holds any: written out,
    they are no JSON (Python writes NaN, Infinity), and strict readers refuse the file. `noted`:
    what `read_coco(non_finite=...)` met in the file; only when it met something is every value
    walked."""
    places = not_json_numbers(data) if noted else []
    if places:
        listed = "".join(f"\n  - {place}" for place in places[:MAX_LISTED])
        more = f"\n  … and {len(places) - MAX_LISTED} more" if len(places) > MAX_LISTED else ""
        raise InputError(
            f"{source}: {len(places)} value(s) are NaN or Infinity, which are not JSON (strict "
            f"readers refuse a file holding them); nothing was written:{listed}{more}\n"
            "replace them with null or a number"
        )


def not_json_numbers(data: dict[str, Any]) -> list[str]:
    """Where a COCO mapping holds NaN or Infinity: `annotations[3] (id 7): bbox[1] is NaN`."""
    places = []
    for key, value in data.items():
        entries = enumerate(value) if key in COCO_LISTS else [(None, value)]
        for position, entry in entries:
            if position is None:
                entry_name, start = "", key
            else:
                entry_id = entry.get("id") if isinstance(entry, dict) else None
                entry_name, start = f"{key}[{position}] (id {entry_id!r}): ", ""
            places += [
                f"{entry_name}{where} is {json.dumps(number)}"
                for where, number in non_finite_floats(entry, start)
            ]
    return places


def existing_coco_file(path: Path | str) -> Path:
    """`path` as a Path; InputError unless it names a file (a name no file system takes, too
    long or holding a NUL byte, is said to be unusable rather than raised)."""
    path = Path(path)
    try:
        found = "\x00" not in str(path) and path.is_file()
    except OSError as error:  # e.g. a name too long for the file system
        raise InputError(f"{str(path)[:200]}: not a usable path ({error.strerror})") from None
    if not found:
        raise InputError(f"{path}: {_not_a_file(path)}; pass the path of a COCO JSON file")
    return path


def _not_a_file(path: Path) -> str:
    """Why `path`, which names no file, is not one; a folder's JSON files are named."""
    if not path.is_dir():
        return "file not found"
    try:
        with os.scandir(path) as entries:
            inside = sorted(e.name for e in entries if e.name.lower().endswith(".json"))
    except OSError as error:
        return f"is a folder (cannot list it: {error.strerror})"
    if not inside:
        return "is a folder, with no .json file in it"
    shown = ", ".join(inside[:3]) + (f" and {len(inside) - 3} more" if len(inside) > 3 else "")
    return f"is a folder (it holds {shown})"


def coco_mapping(data: Any, *, source: str = "coco") -> dict[str, Any]:
    """`data` as a COCO mapping (lists `annotations`/`categories` added when absent); InputError
    naming `source` unless it is a mapping with an `images` list and lists for the others."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: a COCO file is a JSON object (got {type(data).__name__})")
    if "images" not in data:
        raise InputError(
            f"{source}: no `images` list; is this a COCO detection file? "
            f"(keys found: {sorted(data)[:8]})"
        )
    for key in COCO_LISTS:
        if key != "images" and data.get(key) is None:
            data[key] = []  # annotations/categories may be absent (an unlabelled image list)
        elif not isinstance(data[key], list):
            raise InputError(f"{source}: `{key}` must be a list (got {type(data[key]).__name__})")
    return data


# The types a JSON file's values are read as, whose lists `json_values` keeps as they are.
JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def json_values(value: Any) -> Any:
    """`value` in the types a JSON file is read as: a NumPy number as its Python int, float or
    bool, an array or a tuple as a list, every mapping a new dict (the given one is not
    changed). A COCO mapping built in a notebook (np.int64 ids, array boxes) was judged as no
    number at all: every box "not a positive box", every image sent to review."""
    if isinstance(value, dict):
        return {key: json_values(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        if set(map(type, value)) <= JSON_SCALARS:  # a polygon's coordinates: in C, not copied
            return value if isinstance(value, list) else list(value)
        return [json_values(item) for item in value]
    if type(value).__module__ == "numpy":  # np.int64, np.float32, np.bool_, np.ndarray
        return json_values(value.tolist())
    return value


def mapping_of(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def count_of(value: Any, default: int) -> int:
    """A non-negative int from a file, else `default`."""
    return (
        value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default
    )


def size_of(value: Any) -> int | None:
    """An image side read from a file: a positive finite number as int, else None."""
    try:
        return int(value) if finite_number(value) and value > 0 else None
    except OverflowError:  # an int too large for a float
        return None


def coco_image_to_sample(
    image: dict[str, Any],
    objects: list[ObjectLabel] | list[dict[str, Any]],
    *,
    source: str,
    position: int,
) -> Sample:
    """One COCO image and its objects (labels, or their fields) -> a Sample, built and
    validated in one go (ids and provenance kept when present)."""
    image_id = image.get("id")
    mark = mapping_of(image.get("synthgate"))
    seed = count_of(mark.get("seed"), count_of(image_id, position))
    generator = str(mark.get("generator") or "coco")
    provenance: Provenance | dict[str, Any] = {
        "generator": generator,
        "generator_version": "",
        "seed": seed,
    }
    if "provenance" in mark:
        with contextlib.suppress(ValidationError):  # else the provenance of a COCO image
            provenance = Provenance.model_validate(mark["provenance"])
    file_name = image.get("file_name")
    uri = image_file_name(image)
    return Sample.model_validate(
        {
            "id": str(mark.get("sample_id") or f"coco-{id_text(image_id)}"),
            "spec": {
                "batch_id": str(mark.get("batch_id") or source),
                "index": count_of(mark.get("index"), position),
                "modality": "image",
                "generator": generator,
                "category": mark.get("category") if isinstance(mark.get("category"), str) else None,
                "params": {"image_id": image_id, "file_name": file_name},
                "seed": seed,
            },
            "uri": uri,
            "width": size_of(image.get("width")),
            "height": size_of(image.get("height")),
            "objects": objects,
            "provenance": provenance,
        }
    )


def whole_id(value: Any) -> Any:
    """An id as pycocotools indexes it: a whole float of an int64's range is the int it equals
    (3.0 is 3 to a dict); anything else as it is (1e+300 stays a float)."""
    if type(value) is float and value.is_integer() and -(2**63) <= value < 2**63:
        return int(value)
    return value


def id_text(value: Any) -> str:
    """An id as a sample id spells it ("coco-3" for 3.0: `whole_id`)."""
    return str(whole_id(value))


def image_file_name(image: dict[str, Any]) -> str | None:
    """Where an image entry's file is, relative to the images folder: its `file_name`; else
    (LVIS, whose entries name their image by `coco_url` alone) the last two parts of the URL's
    path, "val2017/000000000139.jpg": the COCO split folder and file, as Detectron2 reads LVIS
    (the validator also looks for the bare file name in the images folder, as the LVIS API
    saves them)."""
    file_name = image.get("file_name")
    if isinstance(file_name, str) and file_name:
        return file_name
    url = image.get("coco_url")
    if file_name is None and isinstance(url, str):
        parts = [part for part in urlsplit(url).path.split("/") if part not in ("", ".", "..")]
        if parts:
            return "/".join(parts[-2:])
    return file_name if isinstance(file_name, str) else None


def category_names(coco: dict[str, Any]) -> list[str]:
    """The class names a COCO dict defines, in file order."""
    return [
        str(c["name"]) for c in coco.get("categories", []) if isinstance(c, dict) and "name" in c
    ]


# Writing


def report_summary(sample: Sample) -> dict[str, Any] | None:
    if sample.report is None:
        return None
    report = sample.report
    return {
        "rubric": report.rubric,
        "score": report.score,
        "levels": report.levels,
        "route": report.route,
        "audit": report.audit,
        "findings": [f.model_dump(exclude_none=True) for f in report.findings],
    }


def sample_to_coco_image(sample: Sample, image_id: int) -> dict[str, Any]:
    return {
        "id": image_id,
        "file_name": sample.uri,
        "width": sample.width,
        "height": sample.height,
        "synthgate": {
            "synthetic": True,
            "sample_id": sample.id,
            "batch_id": sample.spec.batch_id,
            "index": sample.spec.index,
            "generator": sample.spec.generator,
            "category": sample.spec.category,
            "seed": sample.spec.seed,
            "status": sample.status,
            "attributes": sample.attributes,
            "provenance": sample.provenance.model_dump(exclude_none=True),
            "report": report_summary(sample),
        },
    }


def sample_to_coco_annotations(
    sample: Sample, image_id: int, category_ids: dict[str, int], first_id: int
) -> list[dict[str, Any]]:
    annotations = []
    for offset, obj in enumerate(sample.objects):
        annotation: dict[str, Any] = {
            "id": first_id + offset,
            "image_id": image_id,
            "category_id": category_ids[obj.category],
            "bbox": obj.bbox,
            "area": obj.area,
            "iscrowd": 1 if obj.attributes.get("iscrowd") else 0,
        }
        if obj.mask is not None:
            annotation["segmentation"] = obj.mask
        annotation["synthgate"] = {"visible_fraction": obj.visible_fraction, **obj.attributes}
        annotations.append(annotation)
    return annotations


class CocoStream:
    """One COCO file written as it goes: images and annotations in part files, joined at close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._images = open(path.with_name(path.name + ".images.part"), "w", encoding="utf-8")
        self._annotations = open(
            path.with_name(path.name + ".annotations.part"), "w", encoding="utf-8"
        )
        self._first = {"images": True, "annotations": True}

    def _append(self, handle: TextIO, kind: str, entry: dict[str, Any]) -> None:
        handle.write(("" if self._first[kind] else ",\n") + dumps(entry))
        self._first[kind] = False

    def add(self, image: dict[str, Any], annotations: list[dict[str, Any]]) -> None:
        self._append(self._images, "images", image)
        for annotation in annotations:
            self._append(self._annotations, "annotations", annotation)

    def close(self, header: dict[str, Any], categories: list[dict[str, Any]]) -> None:
        parts = []
        for handle in (self._images, self._annotations):
            handle.close()
            parts.append(Path(handle.name))
        with open(self.path, "w", encoding="utf-8") as out:
            out.write("{\n")
            for key, value in header.items():
                out.write(f"{dumps(key)}:{dumps(value)},\n")
            out.write(f'"categories":{dumps(categories)},\n"images":[\n')
            _copy(parts[0], out)
            out.write('\n],\n"annotations":[\n')
            _copy(parts[1], out)
            out.write("\n]\n}\n")
        for part in parts:
            part.unlink()

    def abort(self) -> None:
        """Close the part files without joining them (the caller removes them). What they
        still buffer is dropped: on a full disk, flushing it fails again."""
        for handle in (self._images, self._annotations):
            with contextlib.suppress(OSError):
                handle.close()


def _copy(source: Path, out: TextIO, block: int = 1 << 20) -> None:
    with open(source, encoding="utf-8") as handle:
        while chunk := handle.read(block):
            out.write(chunk)
