"""Files to validate -> a stream of (key, GeneratedSample): COCO JSON or text JSONL.

`open_source(path, images=...)` picks the reader by suffix (.jsonl / .ndjson: text, else COCO),
the default rubric (detection; ner or classification by what the rows hold) and the taxonomy
(the COCO file's categories). A COCO file is streamed (formats/coco_reader.py): each annotation
goes into columns (formats/coco_annotations.py) and into the dataset checks' tally as it is
parsed, so memory holds the columns, never the file's JSON. Pixels are read only when an images
folder is given, a few images ahead of the judge on DECODE_THREADS other threads (`read_ahead`);
a missing or unreadable image becomes a finding (`extras["image_error"]`), not a crash. With the
folder, an image entry without a width or height takes its file's, read from the header before
the annotations stream (`FileSizes`, under its own progress), so its polygons are drawn at it.
A JSONL row that is not a text sample is bad input (InputError naming the line); its rows are
counted first, unparsed (`count_rows`), for the judging bar's total.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from synthgate.errors import InputError, printable
from synthgate.files import is_dir, is_file, read_ahead, reading_threads
from synthgate.formats.coco import (
    category_names,
    coco_mapping,
    image_file_name,
    json_values,
    size_of,
)
from synthgate.formats.coco_annotations import AnnotationColumns
from synthgate.formats.coco_reader import stream_coco
from synthgate.formats.image_files import image_header, open_rgb
from synthgate.formats.jsonl import (
    count_rows,
    iter_jsonl,
    row_spans_and_label,
    text_row_to_sample,
)
from synthgate.formats.paths import confined_path, confinement_problem, missing_hint
from synthgate.samples import GeneratedSample, Sample
from synthgate.validators.checks.dataset import DatasetTally
from synthgate.validators.checks.objects import ObjectTable
from synthgate.validators.context import DECODED_IMAGE

TEXT_SUFFIXES = {".jsonl", ".ndjson"}
# Image decoders beside the judge: judging an image takes about as long as decoding it, so two
# keep the one judging thread fed on any machine; more would only hold more decoded images in
# memory (up to 2 x DECODE_THREADS wait, beside the one being judged).
DECODE_THREADS = 2


@dataclass
class Source:
    """What a file offers the validator."""

    kind: str  # "coco" | "jsonl"
    rubric: str  # default rubric name
    categories: list[str] | None
    tally: DatasetTally | None  # COCO: what the dataset checks need of the whole file
    items: Generator[tuple[dict[str, Any], GeneratedSample], None, None]  # close() stops reads
    count: int | None = None


class _CocoSink:
    """Where a COCO file streams to: annotation columns, and the dataset tally, which counts
    plain annotations (int64 ids, every field) in bulk and any other entry on its own, in
    file order."""

    def __init__(self, *, read_size: FileSizes | None = None) -> None:
        self.read_size = read_size
        self.clear()

    def clear(self) -> None:
        self._images_known = False
        self.columns = AnnotationColumns(read_size=self.read_size)
        self.tally = DatasetTally()
        self.tally.add("annotations", [])  # the file has its annotations list (else json reads it)
        self._plain_from = 0  # the first row not tallied yet; rows from it on are plain

    def head(self, members: dict[str, Any]) -> None:
        if isinstance(members.get("images"), list):
            if self.read_size is not None:
                self.read_size.expect(members["images"])
            self._images_known = True
            self.columns.know_images(members["images"])

    def add(self, entry: Any) -> None:
        row = self.columns.rows
        if self.columns.add(entry):
            return
        self._tally_plain(row)
        self.tally.add("annotations", [entry])
        self._plain_from = self.columns.rows

    def _tally_plain(self, end: int) -> None:
        if end > self._plain_from:
            columns = self.columns
            chosen = slice(self._plain_from, end)
            self.tally.add_plain_annotations(
                *(
                    np.frombuffer(column, dtype=np.int64)[chosen]
                    for column in (columns.ids, columns.image_ids, columns.category_ids)
                )
            )
        self._plain_from = end

    def finish(self, coco: dict[str, Any]) -> None:
        """The file's other members are known: tally them and the last plain annotations, group
        the annotations by image."""
        self._tally_plain(self.columns.rows)
        if self.read_size is not None and not self._images_known:  # their sizes are read now
            self.read_size.expect(coco["images"])
        self.tally.add("images", coco["images"])
        self.tally.add("categories", coco["categories"])
        self.columns.finish(coco["images"], coco["categories"])


class FileSizes:
    """The `SizeReader` of a COCO file's annotation columns with an images folder: an image
    entry's file size (`_file_size`), with `progress(headers read, headers to read)` as they
    are read; an entry without a width or height waits on its file's header before any image
    is judged (100k such entries: about 15 s)."""

    def __init__(self, folder: Path, progress: Callable[[int, int], None] | None) -> None:
        self.folder = folder
        self.progress = progress
        self.done = 0
        self.total = 0

    def expect(self, images: list[Any]) -> None:
        """The file's images are known: count the entries whose file size will be read (those
        the columns ask for: no usable width or height). Again for a file read again."""
        self.done = 0
        self.total = sum(
            1
            for image in images
            if isinstance(image, dict)
            and None in (size_of(image.get("height")), size_of(image.get("width")))
        )

    def __call__(self, image: dict[str, Any]) -> tuple[int, int] | None:
        size = _file_size(self.folder, image)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))
        return size


def open_source(
    source: Path | dict[str, Any],
    *,
    images: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    size_progress: Callable[[int, int], None] | None = None,
    text_field: str = "text",
    label_field: str = "label",
    rubric_given: bool = False,
) -> Source:
    """A COCO file or mapping, or a text JSONL file (by its suffix), as items to judge.
    `progress`: as `stream_coco` reads a COCO file; `size_progress`: as the headers of image
    files are read for entries without a width or height (`FileSizes`); `text_field`,
    `label_field`: the fields of a JSONL row's text and label. `rubric_given`: the caller
    names the rubric, so rows that show neither task are not refused for it (`_text_rubric`)."""
    if images is not None and not images.is_dir():
        raise InputError(
            field="images",
            value=images,
            problem="not a folder; pass the folder the file_names are in",
        )
    # an entry without a width or height gets its file's: its polygons are drawn at that size
    sink = _CocoSink(read_size=None if images is None else FileSizes(images, size_progress))
    if isinstance(source, dict):
        # a mapping built in a notebook: read as a file's would be (`json_values`), into a copy
        # (the lists it lacks are added there), the annotations one at a time into the sink
        given, name = coco_mapping(dict(source)), "coco"
        coco = {key: json_values(value) for key, value in given.items() if key != "annotations"}
        coco["annotations"] = []  # as a streamed file's: the sink holds them
        sink.head(coco)
        for entry in given["annotations"]:
            sink.add(json_values(entry))
    elif is_dir(source) and (judged := _judged_files(source)):
        shown = ", ".join(map(str, judged))
        raise InputError(f"{source}: is a folder; pass one of its files: {shown}")
    elif source.suffix.lower() in TEXT_SUFFIXES:
        if not is_file(source):
            raise InputError(f"{str(source)[:200]}: file not found; pass a text JSONL file")
        rubric = _text_rubric(
            source, text_field=text_field, label_field=label_field, rubric_given=rubric_given
        )
        items = _jsonl_items(source, text_field=text_field, label_field=label_field)
        # the judging bar's total: the rows counted, unparsed, before they are judged
        return Source("jsonl", rubric, None, None, items, count_rows(source))
    else:
        coco, name = stream_coco(source, sink, progress=progress), source.stem
    sink.finish(coco)
    if images is not None:  # the wrong folder, not every image unreadable (as balance says)
        # here, not at the top: coco_checks loads Pillow, which labels alone never need
        from synthgate.formats.coco_checks import refuse_if_no_image_is_there

        refuse_if_no_image_is_there(coco["images"], images, labels_only=False)
    items = _coco_items(sink.columns, coco, source=name, images=images)
    return Source("coco", "detection", category_names(coco), sink.tally, items, len(coco["images"]))


# The files validate judges in a folder synthgate wrote: a run's, a balance or merge output's.
JUDGED_FILES = ("coco.json", "text.jsonl", "merged.coco.json", "merged.jsonl")


def _judged_files(folder: Path) -> list[Path]:
    """The files of `folder` that validate judges, where synthgate wrote it: passed the folder
    of a text run, validate said "pass the path of a COCO JSON file" (its file is text.jsonl)."""
    return [folder / name for name in JUDGED_FILES if is_file(folder / name)]


def _image_file(folder: Path, file_name: str) -> Path | None:
    """Where an image's file is: `file_name` under `folder`, else its bare name there."""
    for candidate in (confined_path(folder, file_name), folder / Path(file_name).name):
        if is_file(candidate):
            return candidate
    return None


def _open_image(
    folder: Path, file_name: str | None, size: tuple[int, int] | None
) -> tuple[Any, str | None]:
    """The image file as an RGB Pillow image (decoded once: its pixels and the checks' Pillow image
    share it) as its labels of `size` see it (EXIF orientation: `open_rgb`), or why it cannot be
    read."""
    if not file_name:
        return None, "image has no file_name"
    problem = confinement_problem(file_name)
    if problem is not None:  # this image's finding; the other images are still judged
        return None, f"file_name {file_name!r} {problem}; name a file inside {folder}"
    candidate = _image_file(folder, file_name)
    if candidate is None:
        return None, f"{file_name} not found under {folder}{missing_hint(folder, file_name)}"
    image, error = open_rgb(candidate, size=size)
    return image, None if error is None else f"{candidate.name}: {error}"


def _file_size(folder: Path, image: dict[str, Any]) -> tuple[int, int] | None:
    """(height, width) of an image entry's file under `folder` as `_open_image` decodes it
    without a size (EXIF orientation applied), read from its header; None where there is no
    such file or it is no image (`_open_image` says why when it is judged)."""
    file_name = image_file_name(image)
    try:
        candidate = None if not file_name else _image_file(folder, file_name)
    except InputError:  # a name leading outside the folder: refused when the image is opened
        return None
    header = None if candidate is None else image_header(candidate)
    if header is None:
        return None
    turn, (width, height), _ = header
    return (width, height) if turn >= 5 else (height, width)  # 5-8 are shown turned


def _coco_items(
    columns: AnnotationColumns, coco: dict[str, Any], *, source: str, images: Path | None
) -> Generator[tuple[dict[str, Any], GeneratedSample], None, None]:
    # Every annotation measured at once; each image's objects are a slice of the table (an
    # image whose id another image of another size shares measures its own).
    table = ObjectTable.of_columns(columns.object_columns())
    samples = columns.samples(source=source)
    opened: Generator[tuple[Any, tuple[Any, str | None] | None], None, None]
    if images is None:
        opened = ((entry, None) for entry in samples)
    else:  # the next images decode on other threads while this one is judged
        decoders = reading_threads(most=DECODE_THREADS)
        opened = read_ahead(
            lambda e: _open_image(images, e[0].uri, _size(e[0])), samples, threads=decoders
        )
    with contextlib.closing(opened):  # a judge that stops stops the decoders
        for (sample, group), decoded in opened:
            extras: dict[str, Any] = {}
            if group is not None and group.size is not None:
                extras["object_table"] = table.view(group.start, group.stop)
            pixels = None
            if decoded is not None:
                image, error = decoded
                if error:
                    extras["image_error"] = error
                else:
                    pixels = np.asarray(image)
                    extras[DECODED_IMAGE] = (pixels, image)
            key = {"id": sample.id, "image_id": sample.spec.params.get("image_id")}
            yield key, GeneratedSample(sample=sample, pixels=pixels, extras=extras)


def _size(sample: Sample) -> tuple[int, int] | None:
    return None if sample.width is None or sample.height is None else (sample.width, sample.height)


def _text_rubric(path: Path, *, text_field: str, label_field: str, rubric_given: bool) -> str:
    """ner when rows carry spans, classification when they carry only a label; ner for rows
    that carry neither, unless they hold a class under another field (`_check_unnamed_class`)."""
    try:
        head = list(itertools.islice(iter_jsonl(path), 200))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    if (
        label_field != "label"
        and head
        and not any(label_field in row for _, row in head)
        and not any(label_field in row for _, row in iter_jsonl(path))  # later rows too
    ):
        # a label field no row holds read no label: the file was judged as ner, all accepted
        fields = sorted({name for _, row in head for name in row})
        shown = ", ".join(f"`{printable(name)}`" for name in fields[:10])
        raise InputError(
            f"{path}: no row holds `{printable(label_field)}`, the {{label_field}} given; the "
            f"rows' fields are {shown}: name the field of their label with {{label_field}}, "
            "or leave it out",
            options=("label_field",),
        )
    read = [_spans_and_label(row, label_field) for _, row in head]
    if any(spans for spans, _ in read):
        return "ner"
    if any(label is not None for _, label in read):
        return "classification"
    if not rubric_given:
        _check_unnamed_class(path, [row for _, row in head], text_field, label_field)
    return "ner"


# Longest value taken for a class name: a word or a few (`pos`, `billing_issue`), never a text.
MAX_CLASS_CHARS = 40


def _check_unnamed_class(
    path: Path, rows: list[dict[str, Any]], text_field: str, label_field: str
) -> None:
    """Refuse rows that hold no span field and no `label_field` but their class under another
    field (`{"text": ..., "sentiment": "pos"}`): judged as ner texts without entities, every
    row was accepted. Texts without entities are NER data too, so rows keeping an empty span
    list (`spans`, `entities`, doccano's `labels`) or `label_field` are judged as ever, and so are
    rows with nothing beside their text that a class could be (or with --rubric ner)."""
    keys = ("spans", "entities", "labels", label_field)
    if any(key in row for row in rows for key in keys):
        return
    if not all(isinstance(row.get(text_field), str) for row in rows):
        return  # the rows' reader names the line without its text, and the fields it has
    classes = [printable(name) for name in _class_like_fields(rows, text_field)]
    if not classes:
        return
    shown = ", ".join(f"`{name}`" for name in classes[:5])
    hold = "holds" if len(classes) == 1 else "hold"
    raise InputError(
        f"{path}: no row holds spans or a label `{printable(label_field)}`, so every row would "
        f"be judged as a text without entities (ner) and accepted; {shown} {hold} short "
        f"strings, as a class does: name the field of the rows' class with "
        f"{{label_field={classes[0]}}}, or pass {{rubric=ner}} if they are NER texts without "
        "entities",
        options=(f"label_field={classes[0]}", "rubric=ner"),
    )


# Fields that say who wrote a row, when, in which language or split: short strings that repeat,
# and no class (a Label Studio JSON-MIN export's `annotator`, a dataset's `lang: en`).
METADATA_FIELDS = frozenset(
    {"id", "annotator", "lead_time", "lang", "language", "locale", "split", "source", "url"}
)


def _class_like_fields(rows: list[dict[str, Any]], text_field: str) -> list[str]:
    """Fields, in the rows' order, that every row holds as a short one-line string beside the
    text, whose values repeat (a class names many rows; a tag, an id or a text may name one)
    and differ (one value every row shares tells no row from another: a language, a split),
    never a field of METADATA_FIELDS, an `..._id` or an `..._at`.

    The same evidence whatever the row count: a file of a few rows whose values do not both
    repeat and differ (three tags, or one tag they share) cannot tell a class from a tag, and
    is judged as it was before this check (ner); three rows `pos`, `neg`, `pos` still can."""
    names = dict.fromkeys(name for row in rows for name in row)
    found = []
    for name in names:
        if name == text_field or name in METADATA_FIELDS or name.endswith(("_id", "_at")):
            continue
        values = [row.get(name) for row in rows]
        short = all(
            isinstance(v, str) and v.strip() and len(v) <= MAX_CLASS_CHARS and "\n" not in v
            for v in values
        )
        distinct = len(set(values))
        if short and 1 < distinct < len(values):
            found.append(name)
    return found


def _spans_and_label(row: dict[str, Any], label_field: str) -> tuple[list[Any], Any]:
    try:
        return row_spans_and_label(row, label_field=label_field)
    except ValueError:  # refused, naming its line, when the rows are read
        return [], None


def _jsonl_items(
    path: Path, *, text_field: str, label_field: str
) -> Generator[tuple[dict[str, Any], GeneratedSample], None, None]:
    """The rows as samples, each id once: a repeated id made the batch checks compare a row
    with the first of that id (itself, for a copy), so duplicates and copies went unseen."""
    seen: dict[str, int] = {}
    for line, row in iter_jsonl(path):
        try:
            sample = text_row_to_sample(
                row, source=path.stem, line=line, text_field=text_field, label_field=label_field
            )
        except (ValueError, ValidationError) as error:
            reason = error.errors()[0]["msg"] if isinstance(error, ValidationError) else error
            hint = _text_field_hint(row, text_field)
            raise InputError(
                f"{path}: line {line}: not a text sample ({reason}); rows need "
                f'{{"{text_field}": "...", "spans": [[start, end, "LABEL"], ...]}} or a '
                f'"{label_field}"{hint}',
                options=("text_field", "label_field") if hint else (),
            ) from None
        first = seen.setdefault(sample.id, line)
        if first != line:
            raise InputError(
                f"{path}: line {line}: id {sample.id!r} is the id of line {first} too; give "
                "each row its own id (or none: a row without one is named by its line)"
            )
        yield {"id": sample.id, "line": line}, GeneratedSample(sample=sample)


def _text_field_hint(row: dict[str, Any], text_field: str) -> str:
    """For a row without a text in `text_field` whose other fields hold strings (a file of
    {"review": ..., "sentiment": ...} rows): how to name its fields, else ""."""
    if isinstance(row.get(text_field), str):
        return ""
    fields = [f"`{key}`" for key, value in row.items() if isinstance(value, str)]
    if not fields:
        return ""
    return (
        f"; the row's string fields are {', '.join(fields[:10])}: name the field of its text "
        "with {text_field} (and that of its label with {label_field})"
    )
