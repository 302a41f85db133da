"""Accepted synthetic samples merged into a copy of a real dataset, with their provenance.

`merge_coco(real, synthetic, …)` returns a new COCO mapping: every real entry kept as it was
(the same values, in the same order), synthetic categories matched to real ones by name, and
accepted synthetic images and annotations appended with fresh ids, each image marked
`synthgate: {synthetic: true, sample_id, batch_id, generator, seed, score, …}`. `merge_jsonl`
does the same for text rows (real lines are copied byte for byte, and synthetic lines end as
they do, CRLF or LF; synthetic spans go where and as the real rows keep theirs: `spans`,
doccano's `entities` or `label` list, spaCy-style `entities`; a synthetic class is written as
the real rows write theirs, "pos" or doccano's ["pos"]). Collisions (a sample merged
twice, a file name or row id already taken, a class the real file lacks) are refused with an
`InputError` that names them. `merge` reads a finished run folder, its images or its text rows
as its human review left them (workflows/reviewed.py), and writes a dataset folder
(`dataset_folder_images`): merged.coco.json beside `images/`, which holds hard links (else
copies) of the real and the accepted synthetic images, every `file_name` relative to the folder
and inside it, so the folder loads with nothing but its path, wherever it is moved. Samples not
accepted (waiting for review, rejected) are never merged; an audited sample the rubric accepted
is merged as accepted until people finish its review, and `MergeResult.undecided` names it (merge
again once review is done); images that do not come from a run (no `synthgate` status and
sample id) are refused.

```
<out>/
  merged.coco.json | merged.jsonl   the real data + accepted synthetic samples
  images/                           real images (their paths kept) and synthetic ones
  merge.json                        what was merged and left out (marks a merge output)
```
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from synthgate.arguments import callback, optional_path, path_argument, switch
from synthgate.errors import InputError, counted
from synthgate.files import dumps, not_a_folder, write_atomic, write_json_atomic
from synthgate.foreign_files import BALANCE_MARKER, MERGE_MARKER
from synthgate.formats.coco import Progress, refuse_non_finite
from synthgate.formats.coco_checks import check_coco, refuse_if_no_image_is_there
from synthgate.formats.coco_reader import read_coco_streaming
from synthgate.formats.exports import place_image
from synthgate.formats.jsonl import (
    check_row_ids,
    check_string_labels,
    jsonl_lines,
    label_form,
    label_in_form,
    line_ending,
    read_jsonl,
    row_class,
    span_label,
    span_layout,
    spans_in_form,
)
from synthgate.formats.paths import confined_path
from synthgate.outputs import (
    building_out,
    check_out,
    refuse_out_holding,
    refuse_out_inside_images,
)
from synthgate.validators.sources import TEXT_SUFFIXES
from synthgate.workflows.reviewed import final_verdicts, reviewed_coco, reviewed_rows, undecided

MAX_NAMED = 10
IMAGES_FOLDER = "images"


@dataclass
class MergeResult:
    """What a merge added and what it left out (not accepted), by sample id."""

    added_images: int = 0
    added_annotations: int = 0
    added_rows: int = 0
    left_out: dict[str, list[str]] = field(default_factory=dict)  # status -> sample ids
    # accepted samples merged while people still review them (audited): item status -> ids
    undecided: dict[str, list[str]] = field(default_factory=dict)
    new_categories: list[str] = field(default_factory=list)
    skipped_input: list[str] = field(default_factory=list)  # bad real entries left out
    merged: Path | None = None  # the merged file `merge` wrote

    @property
    def out(self) -> Path:
        """The merge output folder (the merged file's), as a run's or a balance's `.out`."""
        if self.merged is None:
            raise InputError(field="merged", problem="this merge wrote no file")
        return self.merged.parent

    def __fspath__(self) -> str:
        """The output folder, so that a result goes where a path does: `sg.export(merged, ...)`."""
        return str(self.out)

    def __repr__(self) -> str:  # not the dataclass's: it lists every sample id left out
        left_out = {status: len(ids) for status, ids in self.left_out.items()}
        merged = None if self.merged is None else str(self.merged)
        out = "" if self.merged is None else f"out={str(self.out)!r}, "
        return (
            f"MergeResult({out}merged={merged!r}, added_images={self.added_images}, "
            f"added_annotations={self.added_annotations}, added_rows={self.added_rows}, "
            f"left_out={left_out}, "
            f"undecided={ {status: len(ids) for status, ids in self.undecided.items()} }, "
            f"new_categories={len(self.new_categories)}, "
            f"skipped_input={len(self.skipped_input)})"
        )


def _named(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:MAX_NAMED])
    return shown + (f" … and {len(values) - MAX_NAMED} more" if len(values) > MAX_NAMED else "")


def synthgate_mark(block: dict[str, Any]) -> dict[str, Any]:
    """The provenance block a merged synthetic entry carries: the required keys first."""
    report = block.get("report") or {}
    provenance = block.get("provenance") or {}
    mark = {
        "synthetic": True,
        "sample_id": block.get("sample_id"),
        "batch_id": block.get("batch_id"),
        "generator": block.get("generator") or provenance.get("generator"),
        "seed": block.get("seed"),
        "score": report.get("score"),
    }
    return {**mark, **{k: v for k, v in block.items() if k not in mark}}


def _max_id(entries: list[dict[str, Any]]) -> int:
    return max((e["id"] for e in entries if isinstance(e.get("id"), int)), default=0)


def merge_coco(
    real: dict[str, Any],
    synthetic: dict[str, Any],
    *,
    add_categories: bool = False,
    result: MergeResult | None = None,
) -> dict[str, Any]:
    """A copy of `real` with the accepted images of `synthetic` appended (see module doc).

    Synthetic images keep their run's file names (`images/<sample id>.png`): relative to the
    dataset folder, as the real names are once `dataset_folder_images` has placed them.
    """
    result = result if result is not None else MergeResult()
    real_ids = Counter(c["name"] for c in real["categories"])
    ambiguous = sorted(name for name, n in real_ids.items() if n > 1)
    if ambiguous:
        raise InputError(
            f"real COCO file: categories {_named(ambiguous)} appear more than once by name, so "
            "synthetic classes cannot be matched; make category names unique"
        )
    category_id = {c["name"]: c["id"] for c in real["categories"]}
    synthetic_names = {c["id"]: c["name"] for c in synthetic["categories"]}
    categories = list(real["categories"])

    accepted = []
    for position, image in enumerate(synthetic["images"]):
        block = image.get("synthgate") if isinstance(image, dict) else None
        if not (isinstance(block, dict) and block.get("status") and block.get("sample_id")):
            # Only a run's own images say whether they were accepted; never guess it.
            key = image.get("id") if isinstance(image, dict) else None
            raise InputError(
                f"not a synthgate run image: images[{position}] (id {key!r}) has no "
                "`synthgate` block with `status` and `sample_id`; {synthetic} must be a run "
                "folder written by synthgate run",
                options=("synthetic",),
            )
        status = str(block["status"])
        if status != "accepted":
            result.left_out.setdefault(status, []).append(str(block["sample_id"]))
        else:
            accepted.append(image)
    accepted_ids = {image["id"] for image in accepted}
    annotations = [a for a in synthetic["annotations"] if a["image_id"] in accepted_ids]

    used = sorted({synthetic_names[a["category_id"]] for a in annotations} - set(category_id))
    if used and not add_categories:
        raise InputError(
            f"synthetic classes {_named(used)} are not categories of the real file; add them "
            "to the real file, or pass {add_categories=True} to append them",
            options=("add_categories=True",),
        )
    for name in used:
        category_id[name] = _max_id(categories) + 1
        categories.append({"id": category_id[name], "name": name, "supercategory": "synthetic"})
        result.new_categories.append(name)

    _refuse_collisions(real, accepted)

    image_id = {}
    next_image = _max_id(real["images"]) + 1
    images = list(real["images"])
    for image in accepted:
        image_id[image["id"]] = next_image
        entry = {k: v for k, v in image.items() if k != "synthgate"}
        entry["id"] = next_image
        entry["synthgate"] = synthgate_mark(image.get("synthgate") or {})
        images.append(entry)
        next_image += 1
    next_annotation = _max_id(real["annotations"]) + 1
    merged_annotations = list(real["annotations"])
    for annotation in annotations:
        entry = dict(annotation)
        entry.update(
            id=next_annotation,
            image_id=image_id[annotation["image_id"]],
            category_id=category_id[synthetic_names[annotation["category_id"]]],
        )
        merged_annotations.append(entry)
        next_annotation += 1
    result.added_images += len(accepted)
    result.added_annotations += len(annotations)
    return {**real, "categories": categories, "images": images, "annotations": merged_annotations}


def _refuse_collisions(real: dict[str, Any], accepted: list[dict[str, Any]]) -> None:
    merged_before = {
        (i.get("synthgate") or {}).get("sample_id")
        for i in real["images"]
        if isinstance(i.get("synthgate"), dict)
    }
    sample_ids = [str((i.get("synthgate") or {}).get("sample_id")) for i in accepted]
    twice = sorted({s for s in sample_ids if s in merged_before})
    repeated = sorted(s for s, n in Counter(sample_ids).items() if n > 1)
    taken = {i.get("file_name") for i in real["images"]}
    clashing = sorted(i["file_name"] for i in accepted if i["file_name"] in taken)
    problems = []
    if twice:
        problems.append(f"samples already merged into the real file: {_named(twice)}")
    if repeated:
        problems.append(f"sample ids repeated in the synthetic file: {_named(repeated)}")
    if clashing:
        problems.append(f"file names already used by real images: {_named(clashing)}")
    if problems:
        raise InputError(
            "merge refused, nothing was written: " + "; ".join(problems) + ". Merge each run "
            "once, into the real file (not into an earlier merge of the same run)."
        )


def synthetic_row(
    row: dict[str, Any],
    *,
    text_field: str,
    label_field: str,
    id_field: str = "id",
    spans_at: tuple[str, str] = ("spans", "list"),
    first_span_id: int = 1,
    class_form: str = "string",
) -> dict[str, Any]:
    """A run's text.jsonl row as a row of the real dataset, marked synthetic; its spans where
    and as the real rows keep theirs (`span_layout`), its class as they write theirs
    (`label_form`: "pos" or doccano's ["pos"])."""
    block = {k: v for k, v in row.items() if k not in ("id", "text", "label", "spans")}
    block["sample_id"] = row["id"]
    entry = {id_field: row["id"], text_field: row["text"]}
    span_field, form = spans_at
    # not where the real rows' label field holds spans; nor a null class on a row of spans
    if span_field != label_field and row["label"] is not None:
        entry[label_field] = label_in_form(row["label"], class_form)
    if row.get("spans"):
        entry[span_field] = spans_in_form(
            row["spans"], form, text=row["text"], first_id=first_span_id
        )
    if row.get("attributes"):
        entry["attributes"] = row["attributes"]
    entry["synthgate"] = synthgate_mark(block)
    return entry


def merge_jsonl(
    real_lines: list[str],
    synthetic_rows: list[dict[str, Any]],
    *,
    text_field: str = "text",
    label_field: str = "label",
    id_field: str = "id",
    add_categories: bool = False,
    source: str = "real rows",
    result: MergeResult | None = None,
) -> list[str]:
    """Real lines unchanged, then the accepted synthetic rows (see module doc); `source` names
    the real rows in messages."""
    result = result if result is not None else MergeResult()
    real_rows = [json.loads(line) for line in real_lines if line.strip()]
    real_ids = {r.get(id_field) for r in real_rows if r.get(id_field) is not None}
    merged_before = {(r.get("synthgate") or {}).get("sample_id") for r in real_rows}
    accepted = []
    for row in synthetic_rows:
        if row.get("status", "accepted") != "accepted":
            result.left_out.setdefault(str(row.get("status")), []).append(str(row.get("id")))
        else:
            accepted.append(row)
    _check_text_fields(
        real_rows, synthetic_rows, source=source, text_field=text_field, label_field=label_field
    )
    spans_at = span_layout(real_rows, label_field=label_field)
    result.new_categories += _new_labels(
        real_rows,
        accepted,
        source=source,
        label_field=label_field,
        spans_field=spans_at[0],
        add_categories=add_categories,
    )
    ids = [row["id"] for row in accepted]
    problems = []
    if clashing := sorted({i for i in ids if i in real_ids}):
        problems.append(f"row ids already used in the real file: {_named(clashing)}")
    if twice := sorted({i for i in ids if i in merged_before}):
        problems.append(f"samples already merged into the real file: {_named(twice)}")
    if repeated := sorted(i for i, n in Counter(ids).items() if n > 1):
        problems.append(f"sample ids repeated in the synthetic rows: {_named(repeated)}")
    if problems:
        raise InputError("merge refused, nothing was written: " + "; ".join(problems))
    # the real lines byte for byte; the synthetic ones end as they do (CRLF from Windows)
    ending = line_ending(real_lines)
    lines = [
        line if line.endswith(("\n", "\r")) else line + ending
        for line in real_lines
        if line.strip()
    ]
    class_form = label_form(real_rows, label_field)
    next_span_id = 1 + max(_entity_ids(real_rows), default=0)
    for row in accepted:
        entry = synthetic_row(
            row,
            text_field=text_field,
            label_field=label_field,
            id_field=id_field,
            spans_at=spans_at,
            first_span_id=next_span_id,
            class_form=class_form,
        )
        next_span_id += len(row.get("spans") or [])
        lines.append(dumps(entry) + ending)
    result.added_rows += len(accepted)
    return lines


def _entity_ids(rows: list[dict[str, Any]]) -> list[int]:
    """The ids of doccano's entity objects: the synthetic ones are numbered after them."""
    return [
        entity["id"]
        for row in rows
        if isinstance(row.get("entities"), list)
        for entity in row["entities"]
        if isinstance(entity, dict) and type(entity.get("id")) is int
    ]


def _check_text_fields(
    real_rows: list[dict[str, Any]],
    synthetic_rows: list[dict[str, Any]],
    *,
    source: str,
    text_field: str,
    label_field: str,
) -> None:
    """Every real row holds its text in `text_field` and, when the run's rows carry a label,
    its label in `label_field`: synthetic rows are written under those fields, so a field the
    real rows lack would leave a file whose rows name their text or label differently
    (balance_text checks its rows the same way)."""
    lacking = [
        number
        for number, row in enumerate(real_rows, start=1)
        if not isinstance(row.get(text_field), str)
    ]
    if lacking:
        raise InputError(
            field="text_field",
            value=text_field,
            problem=f"{source}: row(s) {_named(lacking)} lack a text `{text_field}`",
            fix="fix those rows, or name the field the real rows hold their text in",
        )
    if all(row.get("label") is None for row in synthetic_rows):
        return  # a run without document labels (NER): its labels are checked by _new_labels
    lacking = [
        number for number, row in enumerate(real_rows, start=1) if row.get(label_field) is None
    ]
    if lacking:
        raise InputError(
            field="label_field",
            value=label_field,
            problem=f"{source}: row(s) {_named(lacking)} lack a label `{label_field}`",
            fix="fix those rows, or name the field the real rows hold their label in",
        )
    check_string_labels(real_rows, source, label_field=label_field)


def _new_labels(
    real_rows: list[dict[str, Any]],
    accepted: list[dict[str, Any]],
    *,
    source: str,
    label_field: str,
    spans_field: str,
    add_categories: bool,
) -> list[str]:
    """The labels (classes, and span labels when the real rows have spans, in `spans_field`:
    `span_layout`) of the accepted rows that no real row has, refused unless `add_categories`
    (as `merge_coco` refuses new classes): a run made with other label names ('positive'
    beside the real 'pos', 'PERSON' beside 'PER') would otherwise split each class in two
    without a word."""
    labelled = spans_field != label_field and any(
        row.get(label_field) is not None for row in real_rows
    )
    unlabelled = [row["id"] for row in accepted if row.get("label") is None]
    if unlabelled and labelled:
        raise InputError(
            f"{source}: the run's rows {_named(unlabelled)} carry no document label (a run of "
            f"spans, such as NER), so they cannot be merged into rows labelled by "
            f"`{label_field}`: they would be rows without a class; merge the run into a file "
            "of unlabelled rows, or make a run with labels"
        )
    # strings only: a run with labels has had every real class checked to be one
    real_labels = {
        row_class(row, label_field)
        for row in real_rows
        if isinstance(row_class(row, label_field), str)
    }
    made = {row["label"] for row in accepted if row.get("label") is not None}
    if spans_field != "spans" or any(row.get("spans") for row in real_rows):
        # span labels too ('PERSON' beside the real 'PER'), when the real rows have spans
        real_labels |= {
            label for row in real_rows for s in _spans(row, spans_field) for label in _labels(s)
        }
        made |= {span[2] for row in accepted for span in row.get("spans") or []}
    new = sorted(made - real_labels, key=str)
    if new and not add_categories:
        held = f"({_named(sorted(real_labels))})" if real_labels else "(which hold none)"
        raise InputError(
            field="add_categories",
            problem=f"synthetic labels {_named(new)} are not labels of {source} {held}",
            fix="make the run's labels match the real ones, or turn it on to add rows with "
            "new labels",
        )
    return new


def _labels(span: Any) -> list[str]:
    """A real span's labels: `span_label`'s, or each of a Label Studio region's several
    (`"labels": ["LOC", "GPE"]`, where its config lets a region take many); a label that is no
    string names none (it was None beside the strings, which could not be sorted)."""
    several = span.get("labels") if isinstance(span, dict) and "label" not in span else None
    labels = several if isinstance(several, list) else [span_label(span)]
    return [label for label in labels if isinstance(label, str)]


def _spans(row: dict[str, Any], field: str) -> list[Any]:
    spans = row.get(field)
    return spans if isinstance(spans, list) else []


def dataset_file_name(name: str) -> str:
    """Where a real image lies in a dataset folder synthgate writes: under images/, its path
    kept (a name already under images/, as in an earlier merge or balance output, stays)."""
    path = PurePosixPath(name).as_posix()
    return path if path.startswith(f"{IMAGES_FOLDER}/") else f"{IMAGES_FOLDER}/{path}"


def dataset_folder_images(
    coco: dict[str, Any], images_dir: Path
) -> tuple[dict[str, Any], dict[str, Path]]:
    """`coco` with every image renamed into the dataset folder's images/ (`dataset_file_name`),
    and {new file_name: the file it is a link to}, confined to `images_dir`."""
    files: dict[str, Path] = {}
    images = []
    for image in coco["images"]:
        name = dataset_file_name(image["file_name"])
        if name in files:
            raise InputError(
                f"real COCO file: two images would both lie at {name!r} in the output folder "
                f"({image['file_name']!r} and another); give each image its own file_name"
            )
        files[name] = confined_path(images_dir, image["file_name"])
        images.append({**image, "file_name": name})
    return {**coco, "images": images}, files


def merge_run_coco(
    placed: dict[str, Any],
    run_dir: Path,
    files: dict[str, Path],
    *,
    result: MergeResult,
    add_categories: bool = False,
) -> dict[str, Any]:
    """`placed` (a COCO dict already in the dataset folder's layout) with the accepted images of
    the run in `run_dir` merged in (`merge_coco`), as its human review left them (accepted,
    rejected or fixed by people: workflows/reviewed.py); each added image's file, in the run
    folder, goes into `files` under its file_name."""
    run = reviewed_coco(
        run_dir,
        read_coco_streaming(run_dir / "coco.json"),
        final_verdicts(run_dir / "synthgate.db"),
    )
    merged = merge_coco(placed, run, add_categories=add_categories, result=result)
    added = merged["images"][len(placed["images"]) :]
    for image in added:
        files[image["file_name"]] = confined_path(run_dir, image["file_name"])
    added_ids = [str(image["synthgate"]["sample_id"]) for image in added]
    for status, ids in undecided(run_dir / "synthgate.db", added_ids).items():
        result.undecided.setdefault(status, []).extend(ids)  # balance merges several runs
    return merged


def place_dataset_images(
    folder: Path, files: dict[str, Path], progress: Progress | None = None
) -> None:
    """Hard-link (else copy) every image into the dataset folder, at its file_name;
    `progress(images placed, images in all)` after each."""
    for done, (name, source) in enumerate(files.items(), start=1):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        place_image(source, target)
        if progress is not None:
            progress(done, len(files))


def _not_a_run(folder: Path) -> str:
    """Why `folder` is no run to merge, and where its runs are if it is a balance output."""
    problem = "not a finished synthgate run (no manifest.json)"
    if (folder / BALANCE_MARKER).is_file():
        runs = sorted(p.parent for p in folder.glob("runs/*/manifest.json"))
        shown = ", ".join(str(run) for run in runs) or f"{folder / 'runs'}"
        problem += (
            f"; it is a balance output, whose merged dataset is already in it, and whose runs "
            f"are {shown}"
        )
    return problem


def merge(
    real: Path | str,
    synthetic: Path | str,
    *,
    out: Path | str,
    images: Path | str | None = None,
    text_field: str = "text",
    label_field: str = "label",
    add_categories: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    check_progress: Progress | None = None,
    read_progress: Progress | None = None,
    write_progress: Progress | None = None,
) -> MergeResult:
    """Merge the accepted samples of a finished run into a copy of a real dataset.

    Args:
        real: the real COCO file, or JSONL (.jsonl or .ndjson, in any case) (read only).
        synthetic: a finished run folder (`run`).
        out: the output folder to write (new, or an earlier merge output; never the folder of
            the real data, nor inside the run): merged.coco.json (or merged.jsonl), images/ and
            merge.json. It is built under a temporary name and renamed when complete.
        images: COCO: the folder the real file_names are in (default: the real file's folder).
        text_field, label_field: JSONL: the fields of each row's text and label (every real
            row holds them; the run's rows are written under them).
        add_categories: append synthetic classes the real file lacks (else refused).
        skip_invalid: COCO: leave bad real entries out (listed) instead of stopping.
        progress: COCO: called with (images placed, images in all) as the images are linked
            or copied into `out`.
        check_progress: COCO: called with (entries checked, entries in all) while every real
            image file (there, readable, of its entry's size), then every annotation, is
            checked before anything is written.
        read_progress: COCO: called with (bytes read, bytes in all) from the start to the end
            of the real file as it is read and parsed.
        write_progress: COCO: called with (entries written, entries in all) as
            merged.coco.json is written (its images, annotations and categories).

    Returns:
        A `MergeResult`: images, annotations or rows added, samples left out by status,
        `.merged`, the merged file, and `.out`, its folder.

    Example:
        >>> merge("annotations.json", "runs/mybatch", out="merged/", images="images/")
    """
    real_path, run_dir = path_argument(real, "real"), path_argument(synthetic, "synthetic")
    out = path_argument(out, "out")
    images_dir = optional_path(images, "images") or real_path.parent
    add_categories = switch(add_categories, "add_categories")
    skip_invalid = switch(skip_invalid, "skip_invalid")
    progress = callback(progress, "progress")
    check_progress = callback(check_progress, "check_progress")
    read_progress = callback(read_progress, "read_progress")
    write_progress = callback(write_progress, "write_progress")
    jsonl = real_path.suffix.lower() in TEXT_SUFFIXES  # as validate reads it: .ndjson, .JSONL too
    if jsonl and images is not None:  # refused, not ignored, as validate does
        raise InputError(
            field="images",
            value=images_dir,
            problem=f"applies to COCO files; {real_path} is a text JSONL file",
            fix="leave it out",
        )
    if jsonl and skip_invalid:
        raise InputError(
            field="skip_invalid",
            problem=f"applies to COCO files; {real_path} is a text JSONL file, whose bad rows "
            "are refused",
            fix="fix the rows it names, or leave it out",
        )
    result = MergeResult()
    if not (run_dir / "manifest.json").is_file():
        raise InputError(field="synthetic", value=run_dir, problem=_not_a_run(run_dir))
    if out.resolve() == real_path.resolve():
        raise InputError(
            field="out", value=out, problem="is the real file; write the merge to a new folder"
        )
    if out.resolve().is_relative_to(run_dir.resolve()):
        raise InputError(
            field="out",
            value=out,
            problem=f"is inside the synthetic run folder {run_dir}; write the merge "
            "outside it (it would overwrite or mix with the run's own files)",
        )
    refuse_out_holding(out, real_path, images_dir)
    if images is not None:  # a folder given as the images' (as export refuses it)
        refuse_out_inside_images(out, images_dir)
    check_out(out, marker=MERGE_MARKER, what="merge output")  # before any work starts
    if jsonl:  # refuse a broken file before writing
        check_row_ids(read_jsonl(real_path, what="real JSONL file", strict=True), real_path)
        if not (run_dir / "text.jsonl").is_file():
            raise InputError(
                field="synthetic", value=run_dir, problem="the run made no text (no text.jsonl)"
            )
        real_lines = jsonl_lines(real_path)
        rows = reviewed_rows(  # as people left them (workflows/reviewed.py)
            run_dir, read_jsonl(run_dir / "text.jsonl"), final_verdicts(run_dir / "synthgate.db")
        )
        lines = merge_jsonl(
            real_lines,
            rows,
            text_field=text_field,
            label_field=label_field,
            add_categories=add_categories,
            source=str(real_path),
            result=result,
        )
        added_ids = [
            str(row.get("id")) for row in rows if row.get("status", "accepted") == "accepted"
        ]
        result.undecided = undecided(run_dir / "synthgate.db", added_ids)
        text = "".join(lines)
        return _write_merge(out, "merged.jsonl", lambda path: write_atomic(path, text), {}, result)
    synthetic_path = run_dir / "coco.json"
    if not synthetic_path.is_file():
        raise InputError(
            field="synthetic", value=run_dir, problem="the run made no images (no coco.json)"
        )
    if not images_dir.is_dir():
        raise InputError(
            field="images",
            value=images_dir,
            problem=f"{not_a_folder(images_dir)}; pass the folder the real file_names are in",
        )
    # the real images are checked too: missing, unreadable or not the size their entry says
    non_finite: list[str] = []
    real_coco = read_coco_streaming(real_path, non_finite=non_finite, progress=read_progress)
    # the wrong folder (a defaulted one: annotations.json beside images/) is said once, not
    # as every image missing
    refuse_if_no_image_is_there(real_coco["images"], images_dir, labels_only=False)
    checked = check_coco(
        real_coco,
        source=real_path,
        images_dir=images_dir,
        skip_invalid=skip_invalid,
        progress=check_progress,
    )
    if real_coco["images"] and not checked.data["images"]:  # --skip-invalid left out all
        raise InputError(
            f"{real_path}: no real images to merge into "
            f"({counted(len(checked.skipped), 'entry', 'entries')} left out as invalid); "
            "fix the entries (without --skip-invalid each is named): merged.coco.json would "
            "hold the synthetic images alone"
        )
    refuse_non_finite(checked.data, real_path, non_finite)  # copied into merged.coco.json
    result.skipped_input = [p.describe() for p in checked.skipped]
    placed, files = dataset_folder_images(checked.data, images_dir)
    merged = merge_run_coco(placed, run_dir, files, add_categories=add_categories, result=result)
    return _write_merge(
        out,
        "merged.coco.json",
        lambda path: write_json_atomic(path, merged, progress=write_progress),
        files,
        result,
        progress=progress,
    )


def _write_merge(
    out: Path,
    name: str,
    write: Callable[[Path], None],
    files: dict[str, Path],
    result: MergeResult,
    *,
    progress: Progress | None = None,
) -> MergeResult:
    """The merge output folder, built beside `out` and renamed into place when complete;
    `write(path)` writes the merged file."""
    with building_out(
        out,
        doing=f"writing the merge to {out}",
        marker=MERGE_MARKER,
        what="merge output",
        checked=True,  # merge's check_out, before any work started
    ) as temporary:
        place_dataset_images(temporary, files, progress)
        write(temporary / name)
        # undecided only when there are some: merge.json stays as it was for a settled run
        summary = {
            k: v for k, v in asdict(result).items() if k != "merged" and (k != "undecided" or v)
        }
        write_atomic(temporary / MERGE_MARKER, dumps({"merged": name, **summary}) + "\n")
    result.merged = out / name
    return result
