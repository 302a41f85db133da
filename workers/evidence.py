"""What a generator knows about a sample besides its pixels, kept in the blob store for the judge.

Samples made on the `gpu` queue are judged by another task on `cpu`: that task rebuilds the
`GeneratedSample` the checks expect from the PNG (lossless, so the same pixels), and from the
foreground and ignore masks and the extras stored here as a compressed `.npz` beside it.
"""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from synthgate.samples import GeneratedSample, Sample
from synthgate.store import BlobStore


def evidence_key(sample: Sample) -> str:
    return f"evidence/{sample.id}.npz"


def encode_evidence(generated: GeneratedSample) -> bytes:
    arrays: dict[str, np.ndarray] = {"extras": np.array(json.dumps(generated.extras, default=str))}
    if generated.foreground is not None:
        arrays["foreground"] = generated.foreground
    if generated.ignore is not None:
        arrays["ignore"] = generated.ignore
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def load_generated(blobs: BlobStore, sample: Sample) -> GeneratedSample:
    """The `GeneratedSample` of a stored, not yet judged sample, as its generator returned it."""
    pixels = None
    if sample.uri and sample.spec.modality == "image":
        with Image.open(io.BytesIO(blobs.get(sample.uri))) as image:
            pixels = np.asarray(image.convert("RGB"))
    with np.load(io.BytesIO(blobs.get(evidence_key(sample)))) as stored:
        return GeneratedSample(
            sample=sample,
            pixels=pixels,
            foreground=stored.get("foreground"),
            ignore=stored.get("ignore"),
            extras=json.loads(str(stored["extras"])),
        )
