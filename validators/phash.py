"""`phash(image)`: imagehash's 64-bit perceptual hash, bit for bit, as one uint64.

imagehash.phash takes the image's 32x32 Lanczos thumbnail in grey, the 2-D DCT-II of it with
scipy.fftpack, and sets a bit for each of the 8x8 lowest frequencies above their median. The
hash needs only those 64 coefficients: here they are two small matrix products (8x32 of the
DCT's cosines, scipy.fftpack's unnormalised scaling), and scipy is never imported. Importing
scipy.fft costs 0.2-0.4 s of CPU in every process that hashes an image (a `run` of images, a
`balance`, `validate --images`): about a tenth of a `balance` of coco-tiny.

The products round differently from scipy's FFT, by less than 1e-8 here (the coefficients of
8-bit pixels are below 1.1e6, each a sum of at most 1,024 products). A bit can only differ from
imagehash's when its coefficient lies that close to the median; an image with any coefficient
within TIE of the median (a flat image, a symmetric one, where exact ties are rounding noise)
is hashed by imagehash itself. tests/test_phash.py holds the two equal on images of every kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

THUMB = 32  # imagehash: hash_size 8 x highfreq_factor 4
BITS = 8  # the 8x8 lowest frequencies
TIE = 1e-4  # nearer the median than this, rounding could decide a bit: imagehash decides

_k = np.arange(BITS, dtype=np.float64)[:, None]
_n = np.arange(THUMB, dtype=np.float64)[None, :]
# scipy.fftpack.dct type II, norm=None: y[k] = 2 sum_n x[n] cos(pi k (2n + 1) / 2N)
_COSINES = 2.0 * np.cos(np.pi * _k * (2.0 * _n + 1.0) / (2.0 * THUMB))


def phash(image: Image.Image) -> np.uint64:
    """imagehash.phash(image), its 64 bits packed row by row into one uint64."""
    from PIL import Image

    grey = image.convert("L").resize((THUMB, THUMB), Image.Resampling.LANCZOS)  # imagehash's
    low = _COSINES @ np.asarray(grey, dtype=np.float64) @ _COSINES.T
    median = np.median(low)
    if np.abs(low - median).min() > TIE:
        bits = low > median
    else:
        import imagehash

        bits = imagehash.phash(image).hash
    return np.packbits(bits.ravel()).view(">u8")[0].astype(np.uint64)
