"""Exports: a run, a balance or merge output or a COCO file as a COCO, YOLO or Pascal VOC folder.

`export(source, format=..., out=...)` finds the COCO file a folder holds, checks it and every
image before writing anything (formats/coco_checks.py; `skip_invalid` leaves bad entries out),
splits the images into train and val (`split`, seeded: formats/exports.py), then writes the
export under a temporary name beside `out` and renames it at the end (outputs.py), so a
failure leaves no half-written folder: a file that cannot be read or written part-way (a full
disk, an unreadable image) is an InputError naming it, and the temporary folder goes. Exports
carry a marker file that records the source, the split and its seed: only a folder with one is
ever replaced, and only with `force`. Each format is laid out as its tools expect:

```
coco  (layout coco)      annotations/instances_<subset>.json + images/<subset>/   datumaro, CVAT,
                         pycocotools, torchvision; FiftyOne with data_path/labels_path
coco  (layout fiftyone)  <subset>/labels.json + <subset>/data/                    FiftyOne
yolo                     images/<subset>/, labels/<subset>/, classes.txt, data.yaml (no path:)
voc                      JPEGImages/, Annotations/, ImageSets/Main/<subset>.txt, labelmap.txt
```

The label formats themselves are formats/yolo.py's and formats/voc.py's.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from synthgate.arguments import callback, optional_path, path_argument, switch, whole_number
from synthgate.config import MAX_SEED
from synthgate.errors import InputError, call_of, counted
from synthgate.files import not_a_folder, path_problem, write_json_atomic
from synthgate.foreign_files import BALANCE_MARKER, EXPORT_MARKER, MERGE_MARKER
from synthgate.formats.coco import Progress, refuse_non_finite
from synthgate.formats.coco_checks import (
    check_coco,
    file_name_problem,
    refuse_if_no_image_is_there,
)
from synthgate.formats.coco_reader import read_coco_streaming
from synthgate.formats.exports import (
    SUBSETS,
    as_shown,
    check_split,
    coco_subset,
    export_names,
    exported_box,
    place_image,
    split_subsets,
)
from synthgate.formats.image_files import ImageHeader, header_or_problem, header_turn
from synthgate.formats.paths import confined_path
from synthgate.formats.voc import image_depth, voc_depth, write_voc
from synthgate.formats.yolo import (
    YOLO_IMAGE_SUFFIXES,
    write_yolo,
    yolo_data_yaml,
    yolo_unloadable,
)
from synthgate.outputs import (
    building_out,
    check_out,
    check_usable,
    refuse_out_inside_images,
)
from synthgate.validators.sources import TEXT_SUFFIXES
from synthgate.workflows.reviewed import (
    accepted_only,
    final_verdicts,
    not_accepted,
    reviewed_coco,
    undecided,
)

ExportFormat = Literal["coco", "yolo", "voc"]
FORMATS: tuple[str, ...] = ("coco", "yolo", "voc")
# COCO layouts: where a subset's annotation file and images go ({subset}: train, val).
COCO_LAYOUTS: dict[str, tuple[str, str]] = {
    "coco": ("annotations/instances_{subset}.json", "images/{subset}"),
    "fiftyone": ("{subset}/labels.json", "{subset}/data"),
}
DEFAULT_SPLIT = 0.9
# Folder kinds a source may be: the file that marks the kind, its COCO file, what wrote it.
FOLDER_KINDS = [
    (BALANCE_MARKER, "merged.coco.json", "synthgate balance"),
    (MERGE_MARKER, "merged.coco.json", "synthgate merge"),
    ("manifest.json", "accepted.coco.json", "synthgate run"),
]

# The images with an unread orientation an export names (ExportCounts.upright_unread); the rest
# are counted
UPRIGHT_UNREAD_KEPT = 10


@dataclass
class ExportCounts:
    """What an export wrote."""

    images: int = 0
    boxes: int = 0
    classes: int = 0
    crowd_left_out: int = 0  # YOLO and VOC cannot express crowd regions; COCO keeps them
    outside_left_out: int = 0  # boxes with no area inside their image
    linked: int = 0
    copied: int = 0
    subsets: dict[str, int] = field(default_factory=dict)  # images per subset (train, val)
    # YOLO, VOC: the images whose EXIF orientation could not be read (not there, unreadable,
    # over the pixel limit: not checked with copy_images=False), taken as upright: how many,
    # and the first UPRIGHT_UNREAD_KEPT of them with why (a labels-only export of a dataset
    # whose images are elsewhere has one an image)
    upright_unread_total: int = 0
    upright_unread: list[str] = field(default_factory=list, repr=False)  # the total is shown


def _image_folder(fmt: str, layout: str, subset: str) -> str:
    """Where the images of one subset go, relative to the export folder."""
    if fmt == "coco":
        return COCO_LAYOUTS[layout][1].format(subset=subset)
    return "JPEGImages" if fmt == "voc" else f"images/{subset}"


def export_dataset(
    coco: dict[str, Any],
    folder: Path,
    *,
    fmt: ExportFormat,
    subsets: dict[Any, str],
    layout: str = "coco",
    image_files: dict[Any, Path] | None = None,
    image_sources: dict[Any, Path] | None = None,
    progress: Progress | None = None,
    write_progress: Progress | None = None,
) -> ExportCounts:
    """Write `coco` as a COCO, YOLO or VOC folder into `folder` (which should be new and empty).

    `subsets`: image id -> "train" or "val" (`split_subsets`). `layout`: COCO only, a key of
    `COCO_LAYOUTS`. `image_files`: image id -> the image on disk, placed beside the labels;
    None writes labels only (and no data.yaml, which would point at missing images).
    `image_sources`: image id -> its file, read for its EXIF orientation (YOLO, VOC), whether
    it is placed or not, and VOC's <depth> from the same read; None: none is read.
    `progress(placed, total)` is called as images are placed, `write_progress(entries written,
    entries in all)` as each COCO file is written (its images, annotations and categories; from
    0 again for the next subset's file). `coco` must hold no NaN or
    Infinity (`read_checked` refuses them): a ValueError, as strict readers refuse them.
    """
    names = export_names(coco["images"])
    headers: dict[Any, ImageHeader | None] = {}
    unread: list[str] = []
    unread_total = 0
    if fmt != "coco" and image_sources is not None:
        # Ultralytics and datumaro decode a photo turned as its EXIF orientation says, and
        # YOLO's fractions and VOC's corners are read in that frame: labels drawn on the
        # stored pixels (the entry gives the stored size) go into it, whether the images are
        # placed beside them or not. COCO keeps every entry. The header read here gives VOC's
        # <depth> too: each file is opened once for both.
        for image in coco["images"]:
            path = image_sources[image["id"]]
            found = header_or_problem(path)
            headers[image["id"]] = None if isinstance(found, str) else found
            if isinstance(found, str):
                unread_total += 1
            if isinstance(found, str) and len(unread) < UPRIGHT_UNREAD_KEPT:
                unread.append(f"{path}: its EXIF orientation is unread ({found})")
        turns = {
            image["id"]: header_turn(headers[image["id"]], (image["width"], image["height"]))
            for image in coco["images"]
        }
        coco = as_shown(coco, {image_id: turn for image_id, turn in turns.items() if turn > 1})
    depths: dict[Any, int] | None = None
    if fmt == "voc" and image_files is not None:
        depths = {}
        for image_id, path in image_files.items():
            header = headers.get(image_id)
            depths[image_id] = voc_depth(header[2]) if header is not None else image_depth(path)
    counts = ExportCounts(
        images=len(coco["images"]),
        classes=len(coco["categories"]),
        upright_unread_total=unread_total,
        upright_unread=unread,
    )
    for subset in SUBSETS:
        counts.subsets[subset] = sum(1 for s in subsets.values() if s == subset)
    images = {image["id"]: image for image in coco["images"]}
    for annotation in coco["annotations"]:
        if fmt == "coco":
            counts.boxes += 1  # COCO keeps every annotation as it is, crowds included
        elif annotation.get("iscrowd", 0):
            counts.crowd_left_out += 1
        elif exported_box(annotation, images[annotation["image_id"]]) is None:
            counts.outside_left_out += 1
        else:
            counts.boxes += 1
    if fmt == "coco":
        for subset in SUBSETS:
            ids = {image_id for image_id, s in subsets.items() if s == subset}
            if ids:
                path = folder / COCO_LAYOUTS[layout][0].format(subset=subset)
                path.parent.mkdir(parents=True, exist_ok=True)
                subset_coco = coco_subset(coco, ids, names)
                write_json_atomic(path, subset_coco, allow_nan=False, progress=write_progress)
    elif fmt == "yolo":
        class_names = write_yolo(coco, folder, names=names, subsets=subsets)
    else:
        write_voc(coco, folder, names=names, depths=depths, subsets=subsets)
    if image_files is None:
        return counts
    for image in coco["images"]:
        images_folder = folder / _image_folder(fmt, layout, subsets[image["id"]])
        images_folder.mkdir(parents=True, exist_ok=True)
        if place_image(image_files[image["id"]], images_folder / names[image["id"]]):
            counts.linked += 1
        else:
            counts.copied += 1
        if progress is not None:
            progress(counts.linked + counts.copied, counts.images)
    if fmt == "yolo":
        text = yolo_data_yaml(class_names, subsets=counts.subsets)
        (folder / "data.yaml").write_text(text, encoding="utf-8")
    return counts


@dataclass
class ExportResult:
    """An export folder: where it is, its format, what it wrote (`counts`: images, boxes,
    classes, crowd regions and outside boxes left out, images linked or copied, images per
    subset), the bad entries `skip_invalid` left out and, for a run, the samples it left out
    because they are not accepted (`left_out`: status -> sample ids) and the accepted ones it
    exported while people still review them (`undecided`: open or adjudication -> ids)."""

    out: Path
    format: str
    source: Path
    counts: ExportCounts
    skipped: list[str] = field(default_factory=list)
    # a run's samples not exported, by status (rejected, by the rubric or people; review)
    left_out: dict[str, list[str]] = field(default_factory=dict)
    # accepted samples exported while people still review them (audited): item status -> ids
    undecided: dict[str, list[str]] = field(default_factory=dict)

    def __repr__(self) -> str:  # not the dataclass's: `skipped` names every entry left out
        left_out = {status: len(ids) for status, ids in self.left_out.items()}
        return (
            f"ExportResult(out={str(self.out)!r}, format={self.format!r}, "
            f"source={str(self.source)!r}, counts={self.counts!r}, skipped={len(self.skipped)}, "
            f"left_out={left_out}, "
            f"undecided={ {status: len(ids) for status, ids in self.undecided.items()} })"
        )

    def __fspath__(self) -> str:
        """The export folder, so that a result goes where a path does."""
        return str(self.out)


def export(
    source: Path | str,
    *,
    format: str,
    out: Path | str,
    images: Path | str | None = None,
    split: float = DEFAULT_SPLIT,
    seed: int = 0,
    layout: str | None = None,
    copy_images: bool = True,
    force: bool = False,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    check_progress: Progress | None = None,
    read_progress: Progress | None = None,
    write_progress: Progress | None = None,
) -> ExportResult:
    """Write a dataset as a ready-to-train COCO, YOLO or Pascal VOC folder.

    Args:
        source: a run folder (its accepted.coco.json), a balance or merge output
            (merged.coco.json) or a COCO .json file.
        format: "coco" (annotations/instances_<subset>.json, images/<subset>/), "yolo"
            (images/<subset>/, labels/<subset>/<stem>.txt, classes.txt, data.yaml) or "voc"
            (JPEGImages/, Annotations/<stem>.xml, ImageSets/Main/<subset>.txt, labelmap.txt).
        out: the folder to write (new or empty; an earlier export only with `force`).
        images: the folder the COCO file_names are relative to (default: the COCO file's, or
            the folder given as `source`).
        split: the share of images in train (0 < split <= 1); the rest go to val.
        seed: draws the split (the same seed and file names give the same split).
        layout: COCO only: "coco" (the default; datumaro, CVAT, pycocotools, torchvision) or
            "fiftyone" (<subset>/labels.json and <subset>/data/, FiftyOne's own).
        copy_images: put the images beside the labels (hard links, else copies).
        force: replace an earlier export at `out`.
        skip_invalid: leave bad COCO entries out (listed in `.skipped`) instead of stopping.
        progress: called with (images placed, images in all).
        check_progress: called with (entries checked, entries in all) while every image file
            (there, readable, of its entry's size; not with copy_images=False), then every
            annotation, is checked before anything is written.
        read_progress: called with (bytes read, bytes in all) from the start to the end of the
            COCO file as it is read and parsed.
        write_progress: COCO format: called with (entries written, entries in all) as each
            subset's COCO file is written (its images, annotations and categories).

    Returns:
        An `ExportResult`: `.out`, `.counts` (with images per subset), `.skipped`.

    Example:
        >>> export("runs/quickstart", format="yolo", out="quickstart-yolo/", split=0.9)
    """
    if format not in FORMATS:
        raise InputError(
            field="format", value=format, problem=f"choose one of {', '.join(FORMATS)}"
        )
    if layout is not None and format != "coco":
        raise InputError(
            field="layout",
            value=layout,
            problem="applies to {format=coco} only; leave it out",
            options=("format=coco",),
        )
    layout = layout or "coco"
    if layout not in COCO_LAYOUTS:
        raise InputError(
            field="layout", value=layout, problem=f"choose one of {', '.join(COCO_LAYOUTS)}"
        )
    split = check_split(split)
    seed = whole_number(seed, "seed", maximum=MAX_SEED)
    split_subsets([], train_share=split, seed=seed)  # refuses a bad share before any work
    source, out = path_argument(source, "source"), path_argument(out, "out")
    images = optional_path(images, "images")
    force, copy_images = switch(force, "force"), switch(copy_images, "copy_images")
    skip_invalid = switch(skip_invalid, "skip_invalid")
    progress = callback(progress, "progress")
    check_progress = callback(check_progress, "check_progress")
    read_progress = callback(read_progress, "read_progress")
    write_progress = callback(write_progress, "write_progress")
    check_usable(out)
    for name, path in (("source", source), ("images", images)):
        problem = None if path is None else path_problem(path)
        if problem is not None:
            raise InputError(field=name, value=path, problem=f"is not a usable path ({problem})")
    coco_path, root = find_coco(source, Path(images) if images else None)
    target = guard_out(out, source=coco_path, force=force)
    if images:
        refuse_out_inside_images(target, root)
    check_out(target, marker=EXPORT_MARKER, what="export")  # before any work starts
    not_exported: dict[str, list[str]] = {}
    coco, skipped = read_checked(
        coco_path,
        images_dir=root if copy_images else None,
        skip_invalid=skip_invalid,
        boxes_only=format != "coco",
        progress=check_progress,
        read_progress=read_progress,
        left_out=not_exported,
    )
    open_items = {}
    if coco_path.name == "accepted.coco.json":  # a run's: which of them people still review
        sample_ids = [str((i.get("synthgate") or {}).get("sample_id")) for i in coco["images"]]
        open_items = undecided(coco_path.parent / "synthgate.db", sample_ids)
    if not coco["images"]:
        left_out = (
            f" ({counted(len(skipped), 'entry', 'entries')} left out as invalid)" if skipped else ""
        )
        raise InputError(
            f"{coco_path}: no images to export{left_out}; an export without images is a dataset "
            "no tool can load"
        )
    names = export_names(coco["images"])  # the images kept: two sharing a name are refused
    unloadable = yolo_unloadable(names.values()) if format == "yolo" else []
    if unloadable:
        raise InputError(
            f"{coco_path}: images {unloadable[:5]} ({len(unloadable)} in all) have no suffix "
            f"Ultralytics reads ({', '.join(sorted(YOLO_IMAGE_SUFFIXES))}): it would pass them "
            "over, their labels with them; convert them to PNG or JPEG (a .jfif file is a JPEG: "
            "name it .jpg) and give their entries the new names, or export as coco or voc"
        )
    subsets = split_subsets(coco["images"], train_share=split, seed=seed)
    # check_coco has seen every one of them on disk when they are copied; else a file that is
    # not there is read as upright
    sources = {image["id"]: confined_path(root, image["file_name"]) for image in coco["images"]}
    files = sources if copy_images else None
    with building_out(
        target, doing=f"exporting to {out}", marker=EXPORT_MARKER, what="export", checked=True
    ) as temporary:
        counts = export_dataset(
            coco,
            temporary,
            fmt=format,  # type: ignore[arg-type]
            subsets=subsets,
            layout=layout,
            image_files=files,
            image_sources=sources,
            progress=progress,
            write_progress=write_progress,
        )
        marker = {
            "format": format,
            "source": str(coco_path.resolve()),
            **({"layout": layout} if format == "coco" else {}),
            "split": split,
            "seed": seed,
            "subsets": counts.subsets,
        }
        (temporary / EXPORT_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    return ExportResult(
        out=target,
        format=format,
        source=coco_path,
        counts=counts,
        skipped=skipped,
        left_out=not_exported,
        undecided=open_items,
    )


def find_coco(source: Path, images: Path | None) -> tuple[Path, Path]:
    """The COCO file SOURCE stands for and the folder its file_names are relative to."""
    expected = ", ".join(f"{coco} ({tool})" for _, coco, tool in FOLDER_KINDS)
    if not source.exists():
        raise InputError(
            f"{source}: not found; pass a run folder, a balance output or a COCO .json file"
        )
    if images is not None and not images.is_dir():
        raise InputError(
            field="images",
            value=images,
            problem=f"{not_a_folder(images)}; pass the folder of the images",
        )
    if source.is_file() and source.suffix.lower() in TEXT_SUFFIXES:  # else "not valid JSON"
        raise InputError(
            f"{source}: is a text JSONL file, and export writes image datasets; pass a run "
            "folder, a balance or merge output or a COCO .json file"
        )
    if source.is_file():
        return source, images if images is not None else source.parent
    for mark, coco, tool in FOLDER_KINDS:
        if (source / mark).is_file():
            if not (source / coco).is_file():
                raise _nothing_to_export(source, mark, coco, tool)
            return source / coco, images if images is not None else source
    for _, coco, _ in FOLDER_KINDS:  # a copied folder that lost its marker file
        if (source / coco).is_file():
            return source / coco, images if images is not None else source
    raise InputError(
        f"{source}: no COCO file found; expected one of {expected}, or pass a COCO .json file"
    )


def _nothing_to_export(source: Path, mark: str, coco: str, tool: str) -> InputError:
    """Why a folder synthgate wrote has no COCO file to export: a text balance, merge or run
    holds rows, and export writes image datasets (what to do with the rows instead: for a run,
    the merge call a notebook makes, the command the CLI runs); else its COCO file is gone."""
    formats = "export writes image datasets (COCO, YOLO, Pascal VOC)"
    if mark == "manifest.json" and (source / "text.jsonl").is_file():
        merge = call_of("merge", real="YOUR.jsonl", synthetic=str(source), out="merged/")
        return InputError(
            f"{source}: a text run (its samples are in text.jsonl), and {formats}; merge its "
            f"accepted rows into your text data instead: {{{merge}}}",
            options=(merge,),
        )
    if mark != "manifest.json" and (source / "merged.jsonl").is_file():
        what = "balance" if mark == BALANCE_MARKER else "merge"
        return InputError(
            f"{source}: a text {what} output, and {formats}; its merged.jsonl is the {what}d "
            "dataset (one JSON row a line), ready to use as it is: nothing to export"
        )
    return InputError(
        f"{source}: a folder written by {tool} but without {coco}; pass a COCO .json file instead"
    )


def read_checked(
    path: Path,
    *,
    images_dir: Path | None,
    skip_invalid: bool,
    boxes_only: bool = True,
    progress: Progress | None = None,
    read_progress: Progress | None = None,
    left_out: dict[str, list[str]] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The COCO file with every check passed and, given `images_dir`, every image file there
    (`progress`: as entries are checked, find_coco_problems; `read_progress`: as the file is
    read); the descriptions of entries left out. Without `skip_invalid`, two images that would
    share an exported name are refused before the checks. `boxes_only`: YOLO and VOC export no
    segmentations, so they are dropped before the checks and a bad polygon does not stop such
    an export. A run's accepted.coco.json is read as its review left it (workflows/reviewed.py),
    and `left_out` gets the sample ids of the run's other samples by status (rejected, review)."""

    non_finite: list[str] = []
    run = path.parent if path.name == "accepted.coco.json" else None
    verdicts = final_verdicts(run / "synthgate.db") if run is not None else {}
    whole_run = run is not None and (run / "manifest.json").is_file()
    if run is not None and (verdicts or (whole_run and (run / "coco.json").is_file())):
        # as people left it (reviewed since it ran), and what is left out of it and why
        whole = read_coco_streaming(
            run / "coco.json", non_finite=non_finite, progress=read_progress
        )
        reviewed = reviewed_coco(run, whole, verdicts)
        coco = accepted_only(reviewed)
        if left_out is not None:
            left_out.update(not_accepted(reviewed))
    else:
        coco = read_coco_streaming(path, non_finite=non_finite, progress=read_progress)
    if images_dir is not None:
        refuse_if_no_image_is_there(coco["images"], images_dir)
    if not skip_invalid:
        # Two images that would share a name stop the export whatever the checks find: say so
        # before every image file is checked (seconds for a large dataset). With skip_invalid
        # the checks may leave one of them out: the names are given after them (export).
        export_names([image for image in coco["images"] if _nameable(image)])
    if boxes_only:
        # RLE stays in the check: one that is not its image's mask is a damaged file, not a
        # polygon an export can leave out
        coco = {
            **coco,
            "annotations": [
                {k: v for k, v in a.items() if k != "segmentation" or isinstance(v, dict)}
                if isinstance(a, dict)
                else a
                for a in coco["annotations"]
            ],
        }
    checked = check_coco(
        coco, source=path, images_dir=images_dir, skip_invalid=skip_invalid, progress=progress
    )
    if not boxes_only:  # a COCO export writes every field as it is
        refuse_non_finite(checked.data, path, non_finite)
    return checked.data, [p.describe() for p in checked.skipped]


def _nameable(image: Any) -> bool:
    """An image entry `export_names` can name before the checks: a mapping whose file_name
    check_coco takes (it says what is wrong with the others)."""
    return (
        isinstance(image, dict)
        and isinstance(image.get("id"), Hashable)
        and file_name_problem(image.get("file_name")) is None
    )


def guard_out(out: Path, *, source: Path, force: bool) -> Path:
    """`out` (a path with a name of its own: `check_usable` ran first); refuse to replace an
    export without `force`, or one that holds SOURCE (prepare_out refuses folders that are not
    exports)."""
    target = out
    if target.is_dir() and any(target.iterdir()) and (target / EXPORT_MARKER).is_file():
        if not force:
            raise InputError(
                field="out",
                value=out,
                problem="holds an earlier export; replace it with {force=True}, "
                "or choose a new folder",
                options=("force=True",),
            )
        if source.resolve().is_relative_to(target.resolve()):
            raise InputError(
                field="out",
                value=out,
                problem=f"holds {source}, which replacing it would delete; choose a new folder",
            )
    return target
