"""Pre-labels QA: a detector's predictions, judged by `synthgate validate RESULTS --coco FILE
--json report.json`, become a review batch (`review enqueue --from-validate report.json`).

The report names what was judged (validators/predictions.py): the results file, the COCO file
of the images and the score cut. They are read again and every judged image becomes a sample
with its predictions as objects (each with its `score`), its report from the report's row
(levels, route, findings, measurements) and the row's route as its status; the batch
(`prelabels-<digest of the report>`, so enqueueing the same report twice adds nothing twice) is
enqueued like any other: the samples the rubric doubts (route review) and the audit sample of
accepted ones become items, in the order asked for.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from synthgate.errors import InputError
from synthgate.files import parse_json, readable_file
from synthgate.formats.coco_annotations import coco_to_samples
from synthgate.formats.coco_reader import read_coco_streaming
from synthgate.masks import finite_number
from synthgate.review.enqueue import Progress
from synthgate.review.queue import ReviewQueue
from synthgate.samples import RubricReport, Sample
from synthgate.storage.store import sample_json
from synthgate.validators.predictions import predictions_coco, read_results
from synthgate.validators.rubric import Rubric


def read_report(path: Path) -> tuple[dict[str, Any], str]:
    """The report's document and the digest of its bytes (read once), its fields checked."""
    data = readable_file(path, "--json report of synthgate validate").read_bytes()
    document = parse_json(data, source=path)
    if not isinstance(document, dict) or not isinstance(document.get("predictions"), dict):
        raise InputError(
            f"{path}: not a report on predictions; make one with synthgate validate "
            "PREDICTIONS.json --coco INSTANCES.json --json report.json"
        )
    judged = document["predictions"]
    for key in ("coco", "results"):
        if not isinstance(judged.get(key), str) or not judged[key]:
            raise InputError(
                f"{path}: predictions.{key} must name the file validate judged (got "
                f"{judged.get(key)!r}); write the report again with synthgate validate --json"
            )
    min_score = judged.get("min_score")
    if min_score is not None and not finite_number(min_score):
        raise InputError(f"{path}: predictions.min_score must be a number (got {min_score!r})")
    rows = document.get("samples")
    if rows is not None and not (
        isinstance(rows, list) and all(isinstance(row, dict) for row in rows)
    ):
        raise InputError(f"{path}: samples must be a list of the judged samples' rows")
    return document, hashlib.sha256(data).hexdigest()


def prelabel_samples(path: Path) -> tuple[str, list[Sample], dict[str, Any]]:
    """The batch id, the judged samples and the report's document, from a validate report."""
    document, digest = read_report(path)
    judged = document["predictions"]
    batch_id = "prelabels-" + digest[:12]
    coco_path = Path(judged["coco"])
    coco = read_coco_streaming(coco_path)
    rows = read_results(Path(judged["results"]), coco=coco, coco_name=str(coco_path))
    merged, scores = predictions_coco(rows, coco, min_score=float(judged.get("min_score") or 0))
    samples = {s.id: s for s in coco_to_samples(merged, source=batch_id)}
    made = []
    for index, row in enumerate(document.get("samples") or []):
        sample = samples.get(str(row.get("id")))
        if sample is None:
            raise InputError(
                f"{path}: samples[{index}]: {row.get('id')!r} is not in {judged['results']} "
                "any more; run synthgate validate again"
            )
        made.append(_prelabelled(path, index, row, document, sample, scores, batch_id))
    return batch_id, made, document


def _prelabelled(
    path: Path,
    index: int,
    row: dict[str, Any],
    document: dict[str, Any],
    sample: Sample,
    scores: dict[Any, float],
    batch_id: str,
) -> Sample:
    """The judged sample of the report's row `index`: its predictions (with their scores) as
    objects, the row's report and route."""
    try:
        report = RubricReport.model_validate(
            {
                "rubric": document["rubric"],
                **{key: row[key] for key in ("score", "levels", "route", "audit", "findings")},
                "measurements": row.get("measurements") or {},
            }
        )
    except (KeyError, ValidationError) as error:
        raise InputError(f"{path}: samples[{index}]: not a sample report ({error})") from None
    numbers = [report.score, *report.measurements.values()]
    if not all(map(math.isfinite, numbers)):
        raise InputError(
            f"{path}: samples[{index}]: the score and measurements must be finite numbers "
            f"(got score {report.score}, measurements {report.measurements}); run synthgate "
            "validate again"
        )
    objects = [
        o.model_copy(
            update={"attributes": {**o.attributes, "score": scores[o.attributes["annotation_id"]]}}
        )
        if o.attributes.get("annotation_id") in scores
        else o
        for o in sample.objects
    ]
    spec = sample.spec.model_copy(update={"batch_id": batch_id, "index": index})
    return sample.model_copy(
        update={
            "id": f"{batch_id}-{index}",
            "spec": spec,
            "objects": objects,
            "report": report,
            "status": report.route,
        }
    )


def enqueue_prelabels(
    queue: ReviewQueue,
    path: str | Path,
    *,
    order: str = "uncertainty",
    rubric: Rubric | None = None,
    progress: Progress | None = None,
    gold_progress: Progress | None = None,
) -> tuple[str, int]:
    """Queue the predictions of a validate report the rubric doubts; (batch id, new items).
    `progress` and `gold_progress` as ReviewQueue.enqueue_batch takes them."""
    path = Path(path)
    batch_id, samples, document = prelabel_samples(path)
    judged = document["predictions"]
    for sample in samples:  # one the database cannot keep is refused before the batch is made
        sample_json(sample)
    queue.store.put_batch(
        batch_id,
        name=f"pre-labels {Path(judged['results']).name}",
        seed=0,
        config={"predictions": judged, "image": {"rubric": document.get("rubric")}},
    )
    # The same report again (or one made since) adds what is new; a sample already queued keeps
    # what review made of it (a final status, fixed labels)
    queue.store.upsert_unreviewed(samples)
    added = queue.enqueue_batch(
        batch_id,
        image_root=judged.get("images"),
        order=order,
        rubric=rubric,
        progress=progress,
        gold_progress=gold_progress,
    )
    return batch_id, added
