"""A sample's partial report, measured by the worker that made it and kept in the blob store.

Workers generate a sample and at once run the per-sample half of the judge on it
(`Judge.measure`, validators/measure.py): every check that needs pixels or masks and no batch
state, plus the fingerprint and text digest the batch checks need. What they store is those
measurements and the hidden-object count the run report counts, as JSON: one blob per chunk
(`partial/chunks/<chunk>.json`, {sample id: document}) when a chunk is made in one go, one per
sample (`partial/<id>.json`) when it is made sample by sample after a crash. `submit` finishes
each report in sample order from it, with hash comparisons only, and never decodes a PNG nor
needs the masks.
"""

from __future__ import annotations

import json
from typing import Any

from synthgate.files import dumps
from synthgate.pipeline import hidden_objects
from synthgate.samples import GeneratedSample, Sample
from synthgate.storage.blobs import BlobStore
from synthgate.validators.measure import SampleMeasurements
from synthgate.validators.validate import Judge


def partial_key(sample: Sample) -> str:
    return f"partial/{sample.id}.json"


def chunk_partials_key(chunk_id: str) -> str:
    return f"partial/chunks/{chunk_id.replace(':', '-')}.json"


def partial_document(generated: GeneratedSample, judge: Judge) -> dict[str, Any]:
    """Measure a fresh sample (the per-sample checks): what `load_partial` reads back."""
    return {
        "measurements": judge.measure(generated).as_json(),
        "hidden_objects": hidden_objects(generated),
    }


def put_chunk_partials(blobs: BlobStore, chunk_id: str, documents: dict[str, Any]) -> None:
    """The partial reports of a chunk's samples in one blob, with those an earlier delivery
    stored there (a chunk made again for its failed samples keeps the others')."""
    merged = {**load_chunk_partials(blobs, chunk_id), **documents}
    blobs.put(chunk_partials_key(chunk_id), dumps(merged).encode("utf-8"))


def load_chunk_partials(blobs: BlobStore, chunk_id: str) -> dict[str, Any]:
    """{sample id: partial document} of a chunk ({} when it was made sample by sample)."""
    try:
        return dict(json.loads(blobs.get(chunk_partials_key(chunk_id))))
    except FileNotFoundError:
        return {}


def load_partial(
    blobs: BlobStore, sample: Sample, chunk_documents: dict[str, Any] | None = None
) -> tuple[SampleMeasurements, int]:
    """A stored sample's measurements (to finish its report in order) and its hidden objects:
    from its chunk's documents, else from its own blob."""
    document = (chunk_documents or {}).get(sample.id)
    if document is None:
        document = json.loads(blobs.get(partial_key(sample)))
    measured = SampleMeasurements.from_json(sample, document["measurements"])
    return measured, int(document["hidden_objects"])
