"""What a generator knows about a sample besides its pixels, kept in the blob store for the judge.

Workers generate; samples are judged later, in sample order, where the run folder is assembled.
`load_generated` rebuilds the `GeneratedSample` the checks expect from the PNG (lossless: the
same pixels) and from the foreground and ignore masks and the extras stored here, a compressed
`.npz` per sample (none for a sample with nothing besides its text).
"""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from synthgate.blobs import BlobStore
from synthgate.samples import GeneratedSample, Sample


def evidence_key(sample: Sample) -> str:
    return f"evidence/{sample.id}.npz"


def _plain(value: object) -> object:
    """numpy scalars as Python numbers, so extras come back as the generator returned them."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"extras value {value!r} cannot be stored as JSON")


def has_evidence(generated: GeneratedSample) -> bool:
    """Whether the generator returned anything besides the sample and pixels (texts: no)."""
    return bool(
        generated.foreground is not None or generated.ignore is not None or generated.extras
    )


def encode_evidence(generated: GeneratedSample) -> bytes:
    arrays = {"extras": np.array(json.dumps(generated.extras, default=_plain))}
    if generated.foreground is not None:
        arrays["foreground"] = generated.foreground
    if generated.ignore is not None:
        arrays["ignore"] = generated.ignore
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def load_generated(blobs: BlobStore, sample: Sample, png: bytes | None) -> GeneratedSample:
    """The `GeneratedSample` of a stored sample (and its PNG bytes), as its generator made it."""
    pixels = None
    if png is not None:
        with Image.open(io.BytesIO(png)) as image:
            pixels = np.asarray(image.convert("RGB"))
    try:
        evidence = blobs.get(evidence_key(sample))
    except FileNotFoundError:
        if png is not None:  # an image always has evidence: its absence is a storage fault
            raise
        return GeneratedSample(sample=sample)  # nothing was stored because there was nothing
    with np.load(io.BytesIO(evidence)) as stored:
        return GeneratedSample(
            sample=sample,
            pixels=pixels,
            foreground=stored.get("foreground"),
            ignore=stored.get("ignore"),
            extras=json.loads(str(stored["extras"])),
        )
