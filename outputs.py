"""The files of a run folder (DESIGN.md §8), written from an ordered stream of samples.

`RunWriter` takes samples one at a time, in index order, and streams them into coco.json,
accepted.coco.json and text.jsonl through part files, so a batch of any size is written without
holding it in memory. `sample_to_coco_image` / `sample_to_coco_annotations` / `sample_to_jsonl_row`
are the pure format functions. The same writer serves `synthgate run` (samples straight from the
generators) and `synthgate submit` (samples read back from the database), so both write the same
bytes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from synthgate.samples import Sample


def dumps(value: Any) -> str:
    """Compact, order-preserving JSON: every output line goes through here (deterministic)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


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
            "iscrowd": 0,
        }
        if obj.mask is not None:
            annotation["segmentation"] = obj.mask
        annotation["synthgate"] = {"visible_fraction": obj.visible_fraction, **obj.attributes}
        annotations.append(annotation)
    return annotations


def sample_to_jsonl_row(sample: Sample) -> dict[str, Any]:
    return {
        "id": sample.id,
        "text": sample.text,
        "spans": [[s.start, s.end, s.label] for s in sample.spans],
        "label": sample.doc_label,
        "attributes": sample.attributes,
        "status": sample.status,
        "batch_id": sample.spec.batch_id,
        "index": sample.spec.index,
        "seed": sample.spec.seed,
        "provenance": sample.provenance.model_dump(exclude_none=True),
        "report": report_summary(sample),
    }


class _CocoStream:
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
        self._images.close()
        self._annotations.close()


def _copy(source: Path, out: TextIO, block: int = 1 << 20) -> None:
    with open(source, encoding="utf-8") as handle:
        while chunk := handle.read(block):
            out.write(chunk)


class RunWriter:
    """Streams samples into a run folder's coco.json, accepted.coco.json and text.jsonl."""

    def __init__(self, folder: Path, *, categories: list[str], header: dict[str, Any]) -> None:
        self.folder = folder
        self.header = header
        self.category_ids = {name: i for i, name in enumerate(categories, start=1)}
        self._coco: _CocoStream | None = None
        self._accepted: _CocoStream | None = None
        self._text: TextIO | None = None
        self._next_image_id = 1
        self._next_annotation_id = 1

    def add(self, sample: Sample) -> None:
        if sample.spec.modality == "image":
            self._add_image(sample)
        else:
            self._add_text(sample)

    def _add_image(self, sample: Sample) -> None:
        if self._coco is None:
            self._coco = _CocoStream(self.folder / "coco.json")
            self._accepted = _CocoStream(self.folder / "accepted.coco.json")
        for obj in sample.objects:
            self.category_ids.setdefault(obj.category, len(self.category_ids) + 1)
        image_id = self._next_image_id
        image = sample_to_coco_image(sample, image_id)
        annotations = sample_to_coco_annotations(
            sample, image_id, self.category_ids, self._next_annotation_id
        )
        self._next_image_id += 1
        self._next_annotation_id += len(annotations)
        self._coco.add(image, annotations)
        if sample.status == "accepted":
            assert self._accepted is not None
            self._accepted.add(image, annotations)

    def _add_text(self, sample: Sample) -> None:
        if self._text is None:
            self._text = open(self.folder / "text.jsonl", "w", encoding="utf-8")
        self._text.write(dumps(sample_to_jsonl_row(sample)) + "\n")

    def close(self) -> None:
        categories = [
            {"id": i, "name": name, "supercategory": "synthetic"}
            for name, i in self.category_ids.items()
        ]
        for stream in (self._coco, self._accepted):
            if stream is not None:
                stream.close(self.header, categories)
        if self._text is not None:
            self._text.close()

    def abort(self) -> None:
        """Close open handles without finishing the files (the caller removes the folder)."""
        for stream in (self._coco, self._accepted):
            if stream is not None:
                stream.abort()
        if self._text is not None:
            self._text.close()
