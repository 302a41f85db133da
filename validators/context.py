"""Batch state that checks share as samples stream by, without holding samples or pixels.

`ValidationContext` carries the taxonomy, the perceptual hashes of the images seen so far
(`HashIndex`, validators/hash_index.py: one uint64 per image), digests of the texts seen so far,
and the hashes of an optional reference dataset, computed once. Perceptual hashes are
imagehash's 64-bit pHash, packed into one uint64 (`fingerprint`; validators/phash.py computes it
without importing scipy).

For text, `TextIndex` finds the closest earlier text by the Jaccard similarity of word 5-grams
(`word_shingles`, `jaccard`): MinHash LSH (datasketch) proposes candidates, the similarity of
each is computed exactly. The context holds one for the texts of the batch (`batch_texts`), one
of real rows synthetic texts must not copy (`text_reference`, e.g. `text_reference_index` of a
JSONL file's rows), and one per set of (name, text) rows a generator hands over with its
samples (`text_reference_for`: the rows it rewrote, mined or prompted with), indexed once.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import hashlib
import heapq
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthgate import __version__
from synthgate.errors import InputError
from synthgate.files import read_ahead, reading_threads
from synthgate.formats.image_files import open_rgb, upright
from synthgate.validators.fingerprint_cache import FingerprintCache
from synthgate.validators.hash_index import HashIndex
from synthgate.validators.phash import phash

# Pillow is imported where pixels are hashed, not at start-up: a `validate` of labels alone
# never hashes an image, and its process start is part of what a user waits for.

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}
# A sample's extras key: (pixels, the RGB Pillow image they were read from), handed over by a
# reader that decoded the file (validate --images), so checks need not copy the pixels back.
DECODED_IMAGE = "decoded_image"
# Threads hashing a reference folder, each holding one decoded image: enough to use a big
# machine, few enough that large images do not fill its memory.
REFERENCE_THREADS = 8


def perceptual_hash(gray: np.ndarray) -> np.uint64:
    """64-bit pHash (imagehash's, validators/phash.py) of a luminance image (HxW float or
    uint8), box-filtered to 64x64 first like `fingerprint`."""
    from PIL import Image

    values = np.clip(np.nan_to_num(np.asarray(gray, dtype=np.float32)), 0, 255).astype(np.uint8)
    small = Image.fromarray(values).resize((64, 64), Image.Resampling.BOX)
    return phash(small)


def fingerprint(pixels: np.ndarray, image: Any = None) -> tuple[np.uint64, np.ndarray]:
    """(pHash, mean RGB) of an image: imagehash's pHash and the mean of a 32x32 thumbnail.
    `image`: the pixels' `rgb_image`, when the caller has made it already.

    The image is first box-filtered to 64x64 (a fraction of a millisecond): imagehash's own
    Lanczos resize of a full-size image costs more than every other check together, and the
    hash is taken from 32x32 anyway.
    """
    if not is_rgb_8bit(pixels):
        return perceptual_hash(gray_of(pixels)), mean_colour(pixels)
    from PIL import Image

    small = (rgb_image(pixels) if image is None else image).resize((64, 64), Image.Resampling.BOX)
    thumb = np.asarray(small.resize((32, 32), Image.Resampling.BOX), dtype=np.float32)
    return phash(small), thumb.reshape(-1, 3).mean(axis=0)


def gray_of(pixels: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R 601) as float32 HxW."""
    if pixels.ndim == 2:
        return pixels.astype(np.float32)
    if pixels.dtype == np.uint8 and pixels.shape[2] == 3:
        return gray_8bit(pixels).astype(np.float32)
    return pixels[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def gray_8bit(pixels: np.ndarray, image: Any = None) -> np.ndarray:
    """Luminance (ITU-R 601) of 8-bit HxWxC pixels' first three channels, as 8-bit HxW: Pillow's
    integer conversion, ~5x faster than a float matrix product. `image`: as for `fingerprint`."""
    return np.asarray((rgb_image(pixels) if image is None else image).convert("L"))


def is_rgb_8bit(pixels: np.ndarray) -> bool:
    """8-bit pixels with at least three channels: what `rgb_image` takes."""
    return pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] >= 3


def rgb_image(pixels: np.ndarray) -> Any:
    """A Pillow RGB image of 8-bit HxWxC pixels' first three channels (a copy of them): made
    once per sample, it serves both the fingerprint and the luminance."""
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(pixels[..., :3]))


def mean_colour(pixels: np.ndarray) -> np.ndarray:
    """Mean RGB of an image (grey images repeat their one channel)."""
    values = np.asarray(pixels, dtype=np.float32)
    if values.ndim == 2:
        return np.repeat(values.mean(), 3).astype(np.float32)
    return values[..., :3].reshape(-1, 3).mean(axis=0).astype(np.float32)


def reference_index(
    paths: Iterable[Path],
    *,
    progress: Callable[[int, int], None] | None = None,
    cache: FingerprintCache | None = None,
) -> HashIndex:
    """Hash every reference image once, on up to REFERENCE_THREADS cores; unreadable files are
    skipped (they cannot be copied). `progress`: called with (files done, total) as they are.
    `cache`: files unchanged since it was saved are not decoded again; it is saved after."""
    paths = list(paths)
    index = HashIndex()
    keys = [None if cache is None else cache.key(path) for path in paths]
    known = [None if cache is None else cache.get(key) for key in keys]
    missing = [path for path, found in zip(paths, known, strict=True) if found is None]
    threads = reading_threads(most=REFERENCE_THREADS)
    try:
        with contextlib.closing(
            read_ahead(_reference_fingerprint, missing, threads=threads)
        ) as hashed:
            for done, (path, key, found) in enumerate(zip(paths, keys, known, strict=True), 1):
                if found is None:  # the next file decoded, in file order
                    _, found = next(hashed)
                    if cache is not None:
                        cache.put(key, found)
                if found is not None:
                    index.add(path.name, *found)
                if progress is not None:
                    progress(done, len(paths))
    finally:  # a run stopped part way keeps what it hashed
        if cache is not None:
            cache.keep_only({key[0] for key in keys if key is not None})
            cache.save()
    return index


def folder_reference(
    folder: Path, *, progress: Callable[[int, int], None] | None = None
) -> HashIndex:
    """`reference_index` of every image file under `folder` (an InputError if it is not a
    folder), reusing the fingerprints of files unchanged since an earlier run hashed them
    (fingerprint_cache.py)."""
    paths = image_files(folder)
    cache = FingerprintCache.open(folder, tag=fingerprint_tag())
    return reference_index(paths, progress=progress, cache=cache)


@functools.cache  # the sources read once a process
def fingerprint_tag() -> str:
    """What a reference fingerprint depends on, for its cache: the code that decodes and hashes
    (a digest of the source of this module, phash.py and formats/image_files.py, which turns
    photos stored turned: any change to them makes every cache stale), Pillow and numpy."""
    import inspect
    import sys

    import PIL

    try:  # this module (decoding, fingerprint), the pHash's and the orientation's
        modules = (__name__, phash.__module__, upright.__module__)
        source = "".join(inspect.getsource(sys.modules[module]) for module in modules)
        code = hashlib.sha256(source.encode()).hexdigest()[:16]
    except (OSError, TypeError):  # installed without its sources: stale at every release
        code = f"of synthgate {__version__}"
    return f"code {code}; Pillow {PIL.__version__}; numpy {np.__version__}"


def _reference_fingerprint(path: Path) -> tuple[np.uint64, np.ndarray] | None:
    image, _ = open_rgb(path)
    return None if image is None else fingerprint(np.asarray(image), image)


def image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"reference images: {folder} is not a folder; pass a folder of images")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


@dataclass
class ValidationContext:
    """What checks share across one batch or file. Built once, fed sample by sample.

    `categories` is the taxonomy (None: unknown, taxonomy checks are skipped); `quotas` the
    requested count per category, for the class-distribution check.
    """

    categories: frozenset[str] | None = None
    quotas: dict[str, int] | None = None
    reference: HashIndex | None = None
    batch_hashes: HashIndex = field(default_factory=HashIndex)
    text_digests: dict[bytes, str] = field(default_factory=dict)
    # Real rows synthetic texts must not copy (a balance's source rows), and the batch's texts.
    text_reference: TextIndex | None = None
    batch_texts: TextIndex = field(default_factory=lambda: TextIndex())  # defined below
    _references: dict[str, HashIndex] = field(default_factory=dict)
    _text_references: dict[int, tuple[Sequence[tuple[str, str]], TextIndex]] = field(
        default_factory=dict
    )

    @classmethod
    def for_taxonomy(cls, categories: Iterable[str] | None, **kwargs: Any) -> ValidationContext:
        return cls(categories=None if categories is None else frozenset(categories), **kwargs)

    def reference_for(
        self, folder: str | None, *, progress: Callable[[int, int], None] | None = None
    ) -> HashIndex | None:
        """The reference hashes: a folder a rubric names (hashed once, with `progress`), else
        the context's."""
        if folder is None:
            return self.reference
        if folder not in self._references:
            found = folder_reference(Path(folder), progress=progress)
            self._references[folder] = found
        return self._references[folder]

    def text_reference_for(self, rows: Sequence[tuple[str, str]]) -> TextIndex:
        """The index of the (name, text) rows a generator hands over with its samples
        (`extras["text_reference"]`), built once per rows object."""
        entry = self._text_references.get(id(rows))
        if entry is None:
            index = TextIndex()
            for name, text in rows:
                index.add(name, text)
            # The rows are kept with their index, so their id cannot pass to another object.
            entry = self._text_references[id(rows)] = (rows, index)
        return entry[1]

    def first_with_digest(self, sample_id: str, digest: bytes) -> str | None:
        """The id of an earlier sample whose text has this `text_digest`; remembers this one."""
        first = self.text_digests.setdefault(digest, sample_id)
        return None if first == sample_id else first


def folded(text: str) -> str:
    """A text as copies are compared: case folded, and NFKC-normalised, so that a copy written
    with decomposed accents ("e" + U+0301) or full-width letters is the same text. ASCII is
    its own NFKC form: the check is skipped for it."""
    return (text if text.isascii() else unicodedata.normalize("NFKC", text)).casefold()


def text_digest(text: str) -> bytes:
    """A 12-byte digest of a text with case, Unicode forms and whitespace folded (what
    duplicates share)."""
    normalised = " ".join(folded(text).split())
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=12).digest()


WORD = re.compile(r"\w+")
# Scripts written without spaces (kana, CJK ideographs, Thai): each letter is a word there,
# else a sentence would be one "word" and a copy with one character changed would share nothing
# (their punctuation, e.g. the katakana middle dot, is dropped as any other). Korean is written
# with spaces between its words: they stay words here. (The span check, checks/text.py, lets
# a Korean span end inside a word too: particles join the word they follow.)
UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD_OR_CHARACTER = re.compile(rf"(?=\w)[{UNSPACED}]|(?:(?![{UNSPACED}])\w)+")
SHINGLE_WORDS = 5
SCHEME = "affine32"  # datasketch >= 2 MinHash permutation scheme; fixed, so signatures compare
# A `TextIndex`'s newest entries wait in a dict by band key; this many, and they are merged into
# its sorted arrays (a dict holds ~100 bytes a key, the arrays 12).
BAND_TAIL_ENTRIES = 4096
# The sorted keys' runs by their first bits: a key's run is found in two reads, not the ~20 of
# a binary search (each a cache miss in the arrays of a large batch).
BAND_DIRECTORY_BITS = 18


def word_shingles(text: str, size: int = SHINGLE_WORDS) -> frozenset[str]:
    """The word `size`-grams of a text, folded (`folded`), punctuation dropped, each character
    of an unspaced script a word; a text of fewer words is one shingle (so it matches only a
    text of the same words), an empty text none."""
    words = (WORD if text.isascii() else WORD_OR_CHARACTER).findall(folded(text))
    if len(words) <= size:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i : i + size]) for i in range(len(words) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|a & b| / |a | b|: 1.0 for the same shingles, 0.0 for none shared (or nothing to share)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


class TextIndex:
    """Texts by name; the closest one to a new text by the Jaccard similarity of word 5-grams.

    MinHash LSH proposes the texts likely to share at least `candidate_jaccard` of their
    shingles; the candidates are ranked by their MinHash estimate (one vectorised comparison)
    and the similarity of the `verified` best is computed exactly from the texts, so a reported
    value is never an estimate. Texts below `candidate_jaccard` are not measured: they are new.

    Texts with the same shingles share one entry (a `_Texts`: its first text and the positions
    of every text with them), one MinHash row and one key in the LSH's buckets (datasketch's
    bands, kept here by entry): a batch made from a few templates repeats its texts, and the
    buckets, the estimates and the exact comparisons then grow with the distinct texts, not
    with the rows. The answers are those of ranking every row: rows of one entry have the same
    estimate and similarity, so the `verified` best rows are the earliest rows of the best
    entries (`_verified`). A text already in needs no LSH at all when no other entry has its
    very MinHash (`_repeat`): it is its own closest. datasketch is imported on first use: it
    pulls in scipy, which `import synthgate` and runs without text need not pay for.
    """

    def __init__(
        self, *, num_perm: int = 128, candidate_jaccard: float = 0.5, verified: int = 8
    ) -> None:
        self.num_perm = num_perm
        self.candidate_jaccard = candidate_jaccard
        self.verified = verified
        self._names: list[str] = []
        self._positions: dict[str, int] = {}
        self._entries: list[_Texts] = []
        self._entry_of: dict[bytes, int] = {}  # digest of the shingles -> entry
        self._same_minhash: dict[bytes, list[int]] = {}  # digest of the MinHash -> entries
        # By entry: affine32 MinHash values are 32-bit.
        self._signatures: np.ndarray = np.zeros((64, num_perm), dtype=np.uint32)
        self._firsts: np.ndarray = np.zeros(64, dtype=np.int64)  # each entry's first position
        self._bands = _BandKeys(bands=0, rows=0)  # the LSH's, set up with the first MinHash
        self._permutations: Any = None
        # The last text's: a sample is looked up, then added, and both steps need them.
        self._last = _Hashed("", frozenset(), b"")

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: str) -> bool:
        return name in self._positions

    def _shingles(self, text: str) -> tuple[frozenset[str], bytes]:
        """The text's shingles and a digest of them (what texts of one entry share)."""
        if text != self._last.text:
            shingles = word_shingles(text)
            # Shingles hold no line break (words joined by spaces): the joined text is theirs.
            digest = hashlib.blake2b("\n".join(sorted(shingles)).encode(), digest_size=16)
            self._last = _Hashed(text, shingles, digest.digest())
        return self._last.shingles, self._last.digest

    def _minhash(self, text: str) -> np.ndarray:
        """The MinHash values of the text's shingles (there are some): its entry's, if in."""
        shingles, digest = self._shingles(text)
        entry = self._entry_of.get(digest)
        if entry is not None:
            return self._signatures[entry]
        if self._last.minhash is not None:
            return self._last.minhash
        from datasketch import MinHash, MinHashLSH

        if self._permutations is None:
            lsh = MinHashLSH(threshold=self.candidate_jaccard, num_perm=self.num_perm)
            self._bands = _BandKeys(bands=lsh.b, rows=lsh.r)  # its bands: values [i r, (i+1) r)
            self._permutations = MinHash(num_perm=self.num_perm, seed=1, scheme=SCHEME).permutations
        minhash = MinHash(
            num_perm=self.num_perm, seed=1, permutations=self._permutations, scheme=SCHEME
        )
        # Sorted: the same shingles give the same MinHash whatever the set's order.
        minhash.update_batch([s.encode("utf-8") for s in sorted(shingles)])
        # As the signatures hold them: the digests and band values of a text's MinHash are
        # then the same whether it was just made or read from its entry.
        values = self._last.minhash = minhash.hashvalues.astype(np.uint32)
        return values

    def _band_keys(self, text: str) -> np.ndarray:
        """The LSH band keys of the text's MinHash (`_BandKeys.keys_of`; there are shingles)."""
        minhash = self._minhash(text)  # `_last` is then this text's
        keys = self._last.band_keys
        if keys is None:
            keys = self._last.band_keys = self._bands.keys_of(minhash)
        return keys

    def add(self, name: str, text: str) -> None:
        """Remember a text; a name seen before keeps its first text (a re-judged sample)."""
        if name in self._positions:
            return
        position = len(self._names)
        self._positions[name] = position
        self._names.append(name)
        shingles, digest = self._shingles(text)
        if not shingles:
            return
        entry = self._entry_of.get(digest)
        if entry is None:
            entry = self._new_entry(text, digest, self._minhash(text), position)
        self._entries[entry].positions.append(position)

    def _new_entry(self, text: str, digest: bytes, minhash: np.ndarray, position: int) -> int:
        entry = len(self._entries)
        self._entries.append(_Texts(text))
        self._entry_of[digest] = entry
        if entry == len(self._signatures):
            self._signatures = np.concatenate([self._signatures, np.zeros_like(self._signatures)])
            self._firsts = np.concatenate([self._firsts, np.zeros_like(self._firsts)])
        self._signatures[entry], self._firsts[entry] = minhash, position
        self._same_minhash.setdefault(_minhash_digest(minhash), []).append(entry)
        self._bands.add(entry, self._band_keys(text))
        return entry

    def nearest(self, text: str, *, before: str | None = None) -> tuple[float, str] | None:
        """(Jaccard, name) of the most similar text at or above `candidate_jaccard` (the
        earliest on a tie); only those added before `before` when that name is already in (a
        sample judged again compares with what came before it). None: no such text."""
        shingles, digest = self._shingles(text)
        if not shingles or not self._entries:
            return None
        end = self._positions.get(before, len(self._names)) if before else len(self._names)
        minhash = self._minhash(text)
        own = self._entry_of.get(digest)
        if own is not None and self._repeat(own, minhash, end):
            return 1.0, self._names[self._entries[own].positions[0]]
        candidates = self._bands.find(self._band_keys(text))
        if not candidates.size:
            return None
        same = self._signatures[candidates] == minhash
        # The LSH's candidates: a band of the very same values (not only of the same key), and
        # a row before `end`.
        kept = self._bands.share_a_band(same) & (self._firsts[candidates] < end)
        candidates = candidates[kept]
        if not candidates.size:
            return None
        best: tuple[float, int] | None = None
        for entry in self._verified(candidates, same[kept].sum(axis=1), end):
            first = self._entries[entry].positions[0]
            similarity = jaccard(shingles, word_shingles(self._entries[entry].text))
            if similarity < self.candidate_jaccard:
                continue
            if best is None or (similarity, -first) > (best[0], -best[1]):
                best = (similarity, first)
        return None if best is None else (best[0], self._names[best[1]])

    def _repeat(self, own: int, minhash: np.ndarray, end: int) -> bool:
        """Whether the earliest row of the text's own entry, if before `end`, is among the
        `verified` best rows: then it is the answer (similarity 1.0, the most there is, and the
        earliest of its entry). Rows of other entries with the very same MinHash (texts differing
        in a shingle or two that no hash noticed) rank beside it, earlier rows first."""
        first = self._entries[own].positions[0]
        if first >= end:
            return False
        ahead = 0
        for entry in self._same_minhash[_minhash_digest(minhash)]:
            if entry != own and np.array_equal(self._signatures[entry], minhash):
                ahead += bisect.bisect_left(self._entries[entry].positions, first)
        return ahead < self.verified

    def _verified(self, candidates: np.ndarray, matches: np.ndarray, end: int) -> set[int]:
        """The entries whose rows are among the `verified` best rows before `end`, the rows
        ranked by MinHash estimate (their entry's: `matches`, its values equal to the text's),
        earlier rows first among equal ones."""
        # Those entries are among the `verified` best entries by (estimate, first row): an
        # entry ranked before one with a row among the best has its first row before that row.
        best = np.lexsort((self._firsts[candidates], -matches))[: self.verified]
        rows: list[tuple[int, int, int]] = []  # (-matches, position, entry)
        for entry, matched in zip(candidates[best].tolist(), matches[best].tolist(), strict=True):
            positions = self._entries[entry].positions
            shown = min(bisect.bisect_left(positions, end), self.verified)
            rows.extend((-matched, position, entry) for position in positions[:shown])
        return {entry for _, _, entry in heapq.nsmallest(self.verified, rows)}


@dataclass(slots=True)
class _Hashed:
    """What a `TextIndex` works out of a text: its shingles and their digest, then, when
    needed, its MinHash and LSH band keys."""

    text: str
    shingles: frozenset[str]
    digest: bytes
    minhash: np.ndarray | None = None
    band_keys: np.ndarray | None = None


@dataclass(slots=True)
class _Texts:
    """Texts of a `TextIndex` with the same shingles: the first of them, and the positions of
    all, in the order they were added."""

    text: str
    positions: list[int] = field(default_factory=list)


def _minhash_digest(minhash: np.ndarray) -> bytes:
    return hashlib.blake2b(minhash.tobytes(), digest_size=16).digest()


class _BandKeys:
    """The entries of a `TextIndex` by the keys of their LSH bands (`keys_of`): a sorted array
    of (key, entry) pairs, 12 bytes each, with where the keys of each first `BAND_DIRECTORY_BITS`
    bits start (`directory`), and the newest entries' in a dict, merged into the arrays every
    `BAND_TAIL_ENTRIES` entries."""

    def __init__(self, *, bands: int, rows: int) -> None:
        self.bands, self.rows = bands, rows
        # Odd 64-bit multipliers, one per value of a band and one for the band's number.
        mix = np.random.default_rng(20_251_206).integers(1, 1 << 63, size=rows + 1, dtype=np.uint64)
        self.mix: np.ndarray = mix | np.uint64(1)
        self.keys: np.ndarray = np.zeros(0, dtype=np.uint64)
        self.entries: np.ndarray = np.zeros(0, dtype=np.int32)
        self.directory: np.ndarray = np.zeros((1 << BAND_DIRECTORY_BITS) + 1, dtype=np.int64)
        # The newest entries by key: the first with a key, and the later ones with it. Not one
        # list a key: millions of small lists held a while make every garbage collection long.
        self.tail: dict[int, int] = {}
        self.tail_more: dict[int, list[int]] = {}
        self.tail_entries = 0

    def add(self, entry: int, keys: np.ndarray) -> None:
        for key in keys.tolist():
            if self.tail.setdefault(key, entry) != entry:
                self.tail_more.setdefault(key, []).append(entry)
        self.tail_entries += 1
        if self.tail_entries == BAND_TAIL_ENTRIES:
            self._merge()

    def _merge(self) -> None:
        more = [(key, entry) for key, found in self.tail_more.items() for entry in found]
        keys = np.array([*self.tail, *(key for key, _ in more)], dtype=np.uint64)
        entries = np.array([*self.tail.values(), *(e for _, e in more)], dtype=np.int32)
        order = np.argsort(keys)
        at = np.searchsorted(self.keys, keys[order])
        self.keys = np.insert(self.keys, at, keys[order])
        self.entries = np.insert(self.entries, at, entries[order])
        runs = (keys >> self._shift).astype(np.int64)
        self.directory[1:] += np.cumsum(np.bincount(runs, minlength=1 << BAND_DIRECTORY_BITS))
        self.tail, self.tail_more, self.tail_entries = {}, {}, 0

    def find(self, keys: np.ndarray) -> np.ndarray:
        """The entries with one of these band keys, ascending, each once."""
        runs = (keys >> self._shift).astype(np.int64)
        starts, stops = self.directory[runs], self.directory[runs + 1]
        lengths = stops - starts
        ends = np.cumsum(lengths)
        # The positions of those runs' keys, concatenated; of them, those of these keys.
        positions = np.repeat(starts - (ends - lengths), lengths) + np.arange(ends[-1])
        found = self.entries[positions[self.keys[positions] == np.repeat(keys, lengths)]]
        tail = [self.tail[key] for key in keys.tolist() if key in self.tail]
        if self.tail_more:
            tail += [e for key in keys.tolist() for e in self.tail_more.get(key, ())]
        if not found.size and not tail:  # a text like no other: most of an all-new batch
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate([found, np.array(tail, dtype=np.int32)])).astype(np.int64)

    @property
    def _shift(self) -> np.uint64:
        return np.uint64(64 - BAND_DIRECTORY_BITS)

    def keys_of(self, minhash: np.ndarray) -> np.ndarray:
        """One 64-bit key for each band of a MinHash (`rows` values each, from the first): its
        values mixed, and the band's number, so that equal values in two bands differ.
        Different values may share a key: `share_a_band` tells them apart."""
        values = minhash[: self.bands * self.rows].reshape(self.bands, self.rows)
        mixed = (values.astype(np.uint64) * self.mix[:-1]).sum(axis=1, dtype=np.uint64)
        return mixed ^ (np.arange(self.bands, dtype=np.uint64) * self.mix[-1])  # modulo 2**64

    def share_a_band(self, same: np.ndarray) -> np.ndarray:
        """Of entries whose MinHash values are `same` (entries x values) as a text's: those
        with all the values of one band the same, as datasketch's LSH finds them."""
        used = same[:, : self.bands * self.rows].reshape(len(same), self.bands, self.rows)
        # Value by value: 5x faster than numpy's reduction along a short last axis.
        whole_bands = used[:, :, 0].copy()  # entries x bands
        for value in range(1, self.rows):
            whole_bands &= used[:, :, value]
        return np.count_nonzero(whole_bands, axis=1) > 0


def text_reference_index(
    rows: Iterable[tuple[int, Mapping[str, Any]]], *, text_field: str, source: str
) -> TextIndex:
    """The real rows of a JSONL file, as `iter_jsonl` reads them ((line number, row) pairs), as
    a reference: each named by its line and id, as findings show it (`reviews.jsonl line 17
    (id r17)`). Rows without a text are skipped."""
    index = TextIndex()
    for number, row in rows:
        text = row.get(text_field)
        if isinstance(text, str):
            known = f" (id {row['id']})" if row.get("id") is not None else ""
            index.add(f"{source} line {number}{known}", text)
    return index
