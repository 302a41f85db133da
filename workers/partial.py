"""A sample's partial report, measured by the worker that made it and kept in the blob store.

Workers generate a sample and at once run the per-sample half of the judge on it
(`Judge.measure`, validators/measure.py): every check that needs pixels or masks and no batch
state, plus the fingerprint and text digest the batch checks need. What they store, one small
JSON per sample (`partial/<id>.json`), is those measurements and the hidden-object count the run
report counts; `submit` finishes each report in sample order from it, with hash comparisons
only, and never decodes a PNG nor needs the masks.
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


def encode_partial(generated: GeneratedSample, judge: Judge) -> bytes:
    """Measure a fresh sample (the per-sample checks) and encode what `load_partial` returns."""
    document: dict[str, Any] = {
        "measurements": judge.measure(generated).as_json(),
        "hidden_objects": hidden_objects(generated),
    }
    return dumps(document).encode("utf-8")


def load_partial(blobs: BlobStore, sample: Sample) -> tuple[SampleMeasurements, int]:
    """A stored sample's measurements (to finish its report in order) and its hidden objects."""
    document = json.loads(blobs.get(partial_key(sample)))
    measured = SampleMeasurements.from_json(sample, document["measurements"])
    return measured, int(document["hidden_objects"])
