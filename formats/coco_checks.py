"""Strict checks of a real COCO file before balancing or merging (synthgate balance / merge).

`find_coco_problems(data, images_dir=…)` lists every entry balancing or merging cannot trust:
dangling image/category ids, categories without an integer id, duplicate ids, polygons with
fewer than 3 points or a coordinate that is not finite or too far out to rasterise, RLE that is
not its image's mask (size or runs: corrupt), malformed boxes (not four finite numbers with
w, h >= 0), a negative or non-finite area, file names that leave the images
folder (absolute or with `..`: paths.py), category names and file names holding a lone
surrogate (a `\\ud800`-`\\udfff` escape no UTF-8 file can hold), and image files that are
missing, unreadable or of another size than their entry says. Images LVIS names by `coco_url`
alone are named as validate reads them (`url_named_images`).
`check_coco(…)` raises one InputError naming them, or with
`skip_invalid` returns the file without them and the list of what was left out.
Reading and converting COCO files is in coco.py.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from synthgate.class_names import category_name_problem
from synthgate.errors import InputError, quoted
from synthgate.files import is_file
from synthgate.formats.coco import Progress, image_file_name
from synthgate.formats.image_files import label_sizes, pixel_limit, too_large
from synthgate.formats.paths import confined_path, confinement_problem, missing_hint
from synthgate.masks import (
    finite_number,
    has_segmentation,
    polygon_part_problem,
    polygon_problem,
    rle_problem,
)

MAX_LISTED = 20  # problems named in one error message; the rest are counted
PROGRESS_EVERY = 64  # image entries between two calls of a check's `progress` (and the last)
ANNOTATIONS_EVERY = 10_000  # annotations likewise (~0.1 s of checks)
# Valid JSON (an escape such as "\ud800" with no partner), but no UTF-8 file can hold it: every
# file that would name it (labels, class lists, the merged COCO file) fails to be written.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
UNWRITABLE = "holds a lone surrogate (an unpaired \\ud800-\\udfff escape) no UTF-8 file can hold"


@dataclass(frozen=True)
class CocoProblem:
    """One bad entry: which list, its position and id, what is wrong."""

    section: str  # "images" | "annotations" | "categories"
    position: int
    entry_id: Any
    message: str

    def describe(self) -> str:
        return f"{self.section}[{self.position}] (id {self.entry_id!r}): {self.message}"


@dataclass
class CheckedCoco:
    """A COCO mapping that passed the checks (or had its bad entries left out)."""

    data: dict[str, Any]
    skipped: list[CocoProblem] = field(default_factory=list)


def _known(value: Any, ids: set[Any]) -> bool:
    """Whether `value` is one of `ids` (a list or a mapping as an id is not, rather than an
    error)."""
    return isinstance(value, Hashable) and not isinstance(value, bool) and value in ids


def _duplicates(entries: list[dict[str, Any]], section: str) -> list[CocoProblem]:
    """Every entry after the first with the same id."""
    seen: set[Any] = set()
    problems = []
    for position, entry in enumerate(entries):
        key = entry.get("id")
        if not isinstance(key, Hashable):
            continue  # reported as "id must be an integer" (images, annotations) or not an id
        if key in seen:
            problems.append(CocoProblem(section, position, key, "duplicate id"))
        seen.add(key)
    return problems


def _image_problems(
    data: dict[str, Any], images_dir: Path | None, progress: Progress | None, total: int
) -> list[CocoProblem]:
    """`progress(images checked, total)` (given only with `images_dir`: without one no file is
    read, and the images are gone through in a blink)."""
    problems = []
    images = data["images"]
    for position, image in enumerate(images):
        if progress is not None and position and position % PROGRESS_EVERY == 0:
            progress(position, total)
        if not isinstance(image, dict):
            problems.append(CocoProblem("images", position, None, "not an object"))
            continue
        key = image.get("id")
        if not isinstance(key, int) or isinstance(key, bool):
            problems.append(CocoProblem("images", position, key, "id must be an integer"))
        size = (image.get("width"), image.get("height"))
        if not all(isinstance(v, int) and v > 0 for v in size):
            problems.append(
                CocoProblem("images", position, key, f"width/height must be > 0 (got {size})")
            )
        name = image.get("file_name")
        if (problem := file_name_problem(name)) is not None:
            problems.append(CocoProblem("images", position, key, problem))
        elif images_dir is not None:  # a name file_name_problem takes is a str
            message = image_file_problem(images_dir, str(name), size)
            if message is not None:
                problems.append(CocoProblem("images", position, key, message))
    if progress is not None and images:
        progress(len(images), total)
    return problems


def file_name_problem(name: Any) -> str | None:
    """What is wrong with an image entry's file_name as a name (missing, no UTF-8 file can hold
    it, or it leads outside the images folder: such a name is never looked up); None if nothing."""
    if not isinstance(name, str) or not name:
        return (
            "file_name is missing; give the image's file name, relative to the images folder "
            "(or a coco_url naming the file, as LVIS does)"
        )
    if LONE_SURROGATE.search(name):
        return f"file_name {name!r} {UNWRITABLE}; fix the name"
    if (problem := confinement_problem(name)) is not None:
        return f"file_name {name!r} {problem}"
    return None


def url_named_images(data: dict[str, Any], images_dir: Path | None) -> dict[str, Any]:
    """`data` with every image entry named by `coco_url` alone (LVIS) given the file_name
    validate reads it by (`image_file_name`: "val2017/x.jpg"), or the bare file name where only
    that file is in `images_dir` (the LVIS API's download): the datasets validate reads, balance,
    merge and export read too. `data` itself when no entry is named so."""
    images = data.get("images")
    if not isinstance(images, list):
        return data
    named, renamed = list(images), False
    for position, image in enumerate(images):
        if not isinstance(image, dict) or image.get("file_name") is not None:
            continue
        name = image_file_name(image)
        if name is None:
            continue
        bare = name.rsplit("/", 1)[-1]
        if images_dir is not None and not is_file(images_dir / name) and is_file(images_dir / bare):
            name = bare
        named[position], renamed = {**image, "file_name": name}, True
    return {**data, "images": named} if renamed else data


def refuse_if_no_image_is_there(images: list[Any], root: Path, *, labels_only: bool = True) -> None:
    """Not one image under `root` means the wrong folder, not bad entries: say so (check_coco
    would list every image and suggest skip_invalid, which would export nothing), and where the
    first one is, if in a folder just below `root` (annotations.json beside images/).
    `labels_only`: offer {copy_images=False} too (export's)."""
    names = [
        name
        for image in images
        if isinstance(image, dict)
        and (name := image_file_name(image)) is not None
        and confinement_problem(name) is None
    ]
    if names and not any(_image_is_there(root, name) for name in names):
        below = sorted(
            folder
            for folder in (root.iterdir() if root.is_dir() else ())
            if folder.is_dir() and is_file(confined_path(folder, names[0]))
        )
        there = f"; {names[0]} is in {below[0]}" if below else missing_hint(root, names[0])
        raise InputError(
            f"{root / names[0]}: image file not found (none of the {len(names)} images is "
            f"under {root}{there}); pass the folder the file_names are relative to as "
            "{images}"
            + (", or {copy_images=False} to write the labels only" if labels_only else ""),
            options=("images", "copy_images=False") if labels_only else ("images",),
        )


def _image_is_there(root: Path, name: str) -> bool:
    """An image's file under `root` by its name, or by its bare name (a flat folder: validate and
    `with_file_names` read those too)."""
    bare = name.rsplit("/", 1)[-1]
    return is_file(confined_path(root, name)) or (bare != name and is_file(root / bare))


def image_file_problem(images_dir: Path, name: str, size: tuple[Any, Any]) -> str | None:
    """What is wrong with an image's file: missing, not a readable image, or of another size
    than its entry says (read from the file's header, and the file checked whole where its
    format allows: PNG chunks and their CRCs); None when it is fine. `name` stays inside
    `images_dir` (paths.py), or this is an InputError."""
    path = confined_path(images_dir, name)
    try:
        if not path.is_file():
            return f"image file missing: {path}{missing_hint(images_dir, name)}"
    except OSError as error:  # e.g. a name too long for the file system
        return f"image file unusable: {error.strerror}"
    pixel_limit()
    try:
        with Image.open(path) as opened:
            found = opened.size
            opened.verify()
        if tuple(found) != tuple(size):  # a photo stored turned may give the size it shows
            with Image.open(path) as opened:  # (verify leaves nothing else to read)
                sizes = label_sizes(opened)
        else:
            sizes = {(found[0], found[1])}
    except Image.DecompressionBombError as error:
        return f"image file {path} is too large to read: {too_large(error)}"
    except (OSError, SyntaxError, ValueError) as error:
        return f"image file {path} is not a readable image ({type(error).__name__}: {error})"
    if all(isinstance(v, int) and v > 0 for v in size) and tuple(size) not in sizes:
        return f"image file {path} is {found[0]}x{found[1]}, the entry says {size[0]}x{size[1]}"
    return None


def _polygon_problem(segmentation: Any) -> str | None:
    if isinstance(segmentation, dict):
        if "counts" not in segmentation or "size" not in segmentation:
            return "RLE segmentation needs `counts` and `size`"
        return None
    if not isinstance(segmentation, list) or not segmentation:
        return "segmentation must be a list of polygons or an RLE object"
    for part, polygon in enumerate(segmentation):
        if (problem := polygon_part_problem(polygon)) is not None:
            return f"polygon {part} {problem}"
        problem = polygon_problem(list(map(float, polygon)))
        if problem is not None:
            return f"polygon {part}: {problem}"
    return None


def _annotation_problems(
    data: dict[str, Any],
    image_ids: set[Any],
    category_ids: set[Any],
    progress: Progress | None,
    done: int,
    total: int,
) -> list[CocoProblem]:
    """`progress(done + annotations checked, total)` (~10 us an annotation: 10 s for 1M)."""
    problems = []
    sizes = {
        i.get("id"): (i.get("width"), i.get("height"))
        for i in data["images"]
        if isinstance(i, dict) and isinstance(i.get("id"), int | str)
    }
    for position, annotation in enumerate(data["annotations"]):
        if progress is not None and position and position % ANNOTATIONS_EVERY == 0:
            progress(done + position, total)
        if not isinstance(annotation, dict):
            problems.append(CocoProblem("annotations", position, None, "not an object"))
            continue
        key = annotation.get("id")

        def add(message: str, key: Any = key, position: int = position) -> None:
            problems.append(CocoProblem("annotations", position, key, message))

        if not isinstance(key, int) or isinstance(key, bool):
            add("id must be an integer")
        if not _known(annotation.get("image_id"), image_ids):
            add(f"image_id {annotation.get('image_id')!r} is not the id of any image (dangling)")
        if not _known(annotation.get("category_id"), category_ids):
            add(
                f"category_id {annotation.get('category_id')!r} is not the id of any category "
                "(dangling)"
            )
        bbox = annotation.get("bbox")
        if not (
            isinstance(bbox, list)
            and len(bbox) == 4
            and all(map(finite_number, bbox))
            and bbox[2] >= 0
            and bbox[3] >= 0
        ):
            add(f"bbox must be [x, y, w, h], finite numbers with w, h >= 0 (got {bbox!r})")
        crowd = annotation.get("iscrowd", 0)
        # COCOeval reads int(iscrowd): 0, 1, false, true, 0.0 and 1.0 all read right
        if not (isinstance(crowd, int | float) and crowd in (0, 1)):
            add(f"iscrowd must be 0 or 1 (got {quoted(crowd)})")
        if has_segmentation(annotation):
            message = _polygon_problem(annotation["segmentation"])
            if message is None and isinstance(annotation["segmentation"], dict):
                image_id = annotation.get("image_id")
                message = rle_problem(
                    annotation["segmentation"],
                    sizes.get(image_id) if isinstance(image_id, int | str) else None,
                )
            if message is not None:
                add(message)
        area = annotation.get("area")
        if area is not None and not (finite_number(area) and area >= 0):
            add(f"area must be a finite number >= 0 (got {area!r})")
    if progress is not None and data["annotations"]:
        progress(total, total)
    return problems


def find_coco_problems(
    data: dict[str, Any], *, images_dir: Path | None, progress: Progress | None = None
) -> list[CocoProblem]:
    """Every entry of a COCO mapping that balancing or merging cannot trust, in file order.
    `progress(entries gone through, entries in all)`: as the image files are checked (only
    with `images_dir`, ~0.15-0.3 ms a file), then the annotations (~10 us each)."""
    images_checked = len(data["images"]) if images_dir is not None else 0
    total = images_checked + len(data["annotations"])
    if progress is not None and total:
        progress(0, total)
    problems = []
    for position, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or not isinstance(category.get("name"), str):
            key = category.get("id") if isinstance(category, dict) else None
            problems.append(CocoProblem("categories", position, key, "name is missing"))
        if isinstance(category, dict) and category.get("id") is None:
            problems.append(CocoProblem("categories", position, None, "id is missing"))
        elif isinstance(category, dict) and (
            not isinstance(category["id"], int) or isinstance(category["id"], bool)
        ):
            key = category["id"] if isinstance(category["id"], Hashable) else None
            message = f"id must be an integer (got {category['id']!r})"
            problems.append(CocoProblem("categories", position, key, message))
        name = category.get("name") if isinstance(category, dict) else None
        if isinstance(name, str) and LONE_SURROGATE.search(name):
            message = f"name {name!r} {UNWRITABLE}; fix the name"
            problems.append(CocoProblem("categories", position, category.get("id"), message))
    names = Counter(
        c.get("name")
        for c in data["categories"]
        if isinstance(c, dict) and isinstance(c.get("name"), str)
    )
    for position, category in enumerate(data["categories"]):
        name = category.get("name") if isinstance(category, dict) else None
        if isinstance(name, str) and names[name] > 1:
            problems.append(
                CocoProblem(
                    "categories",
                    position,
                    category.get("id"),
                    f"name {category.get('name')!r} is used by more than one category",
                )
            )
    for section in ("images", "annotations", "categories"):
        entries = [e for e in data[section] if isinstance(e, dict)]
        problems += _duplicates(entries, section)
    reading = progress if images_dir is not None else None
    problems += _image_problems(data, images_dir, reading, total)
    image_ids = {
        i.get("id")
        for i in data["images"]
        if isinstance(i, dict) and isinstance(i.get("id"), Hashable)
    }
    category_ids = {
        c.get("id")
        for c in data["categories"]
        if isinstance(c, dict) and isinstance(c.get("id"), Hashable)
    }
    problems += _annotation_problems(data, image_ids, category_ids, progress, images_checked, total)
    order = {"categories": 0, "images": 1, "annotations": 2}
    return sorted(problems, key=lambda p: (order[p.section], p.position))


def class_name_problems(data: dict[str, Any]) -> list[CocoProblem]:
    """Categories whose names cannot name a class in every export (class_names.py): what
    `balance` refuses, as it labels new samples, and its outputs, under the dataset's names."""
    return [
        CocoProblem("categories", position, category.get("id"), f"name {name!r} {problem}")
        for position, category in enumerate(data["categories"])
        if isinstance(category, dict) and isinstance(name := category.get("name"), str)
        if (problem := category_name_problem(name)) is not None
    ]


def describe_problems(problems: list[CocoProblem]) -> str:
    lines = [f"  - {p.describe()}" for p in problems[:MAX_LISTED]]
    if len(problems) > MAX_LISTED:
        lines.append(f"  … and {len(problems) - MAX_LISTED} more")
    return "\n".join(lines)


def check_coco(
    data: dict[str, Any],
    *,
    source: Path,
    images_dir: Path | None,
    skip_invalid: bool = False,
    can_skip: bool = True,
    progress: Progress | None = None,
) -> CheckedCoco:
    """The file as it is if it is clean; else an `InputError` naming every bad entry.
    `progress`: as for `find_coco_problems`. `can_skip`: whether the caller offers leaving bad
    entries out (its message says so only then; a generator's source file does not).

    With `skip_invalid`, bad entries are left out instead (an image takes its annotations with
    it; a duplicate keeps its first occurrence) and returned in `skipped`. Category problems are
    never skipped: dropping a class would silently change what the dataset means.
    """
    data = url_named_images(data, images_dir)
    problems = find_coco_problems(data, images_dir=images_dir, progress=progress)
    if not problems:
        return CheckedCoco(data=data)
    category_problems = [p for p in problems if p.section == "categories"]
    if not skip_invalid or category_problems:
        if len(category_problems) == len(problems):
            fix = "fix the categories (they cannot be skipped)"
        elif not can_skip:
            fix = "fix these entries"
        elif category_problems:
            fix = "fix the categories (they cannot be skipped) and these entries, or leave the "
            fix += "entries out with {skip_invalid=True} (they are listed)"
        else:
            fix = "fix these entries, or pass {skip_invalid=True} to leave them out (they are "
            fix += "listed)"
        raise InputError(
            f"{source}: {len(problems)} problem(s) in the COCO file; nothing was written:\n"
            f"{describe_problems(problems)}\n{fix}",
            options=("skip_invalid=True",) if "{skip_invalid=True}" in fix else (),
        )
    bad = {(p.section, p.position) for p in problems}
    images = [e for i, e in enumerate(data["images"]) if ("images", i) not in bad]
    kept_image_ids = {image["id"] for image in images}
    dropped_image_ids = {
        e.get("id")
        for i, e in enumerate(data["images"])
        if ("images", i) in bad and isinstance(e, dict) and isinstance(e.get("id"), Hashable)
    } - kept_image_ids
    annotations = []
    for position, annotation in enumerate(data["annotations"]):
        if ("annotations", position) in bad:
            continue
        if annotation["image_id"] in dropped_image_ids:
            problems.append(
                CocoProblem(
                    "annotations",
                    position,
                    annotation.get("id"),
                    f"left out with its image {annotation['image_id']!r}",
                )
            )
            continue
        annotations.append(annotation)
    return CheckedCoco(
        data={**data, "images": images, "annotations": annotations}, skipped=problems
    )
