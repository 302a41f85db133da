"""Fingerprints of reference image files kept between runs: `FingerprintCache`.

A real dataset's reference folder (100k images: minutes of decoding on every `validate`, `run`
or `balance` that names it) is hashed once; later runs stat each file and decode only those
that are new or changed (another size or modification time, in nanoseconds). The index they
build is the one a fresh hashing builds: same files, same order, same fingerprints. As in git's
index, a file modified less than RACY_NS before the cache was written is hashed again: a file
system's clock ticks in milliseconds, so a file rewritten at the same size within one tick of
being hashed would otherwise keep the old fingerprint.

One file per folder, `reference-<digest of the folder's resolved path>.npz`, in the cache folder:
$SYNTHGATE_CACHE_DIR, else $XDG_CACHE_HOME/synthgate, else ~/.cache/synthgate
(`SYNTHGATE_CACHE_DIR=off`: no cache). Each file holds the folder's path and a tag of what a
fingerprint depends on (context.py `fingerprint_tag`: the code that computes it, Pillow's and
numpy's versions): a file of another folder or tag is no cache. It is replaced whole (write to a temporary file, rename), so runs at
once at worst redo each other's work; a cache that cannot be read or written is no cache, never
an error: it only saves time.
"""

from __future__ import annotations

import hashlib
import io
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthgate.errors import InputError
from synthgate.files import write_atomic

CACHE_ENV = "SYNTHGATE_CACHE_DIR"
OFF = "off"
RACY_NS = 2_000_000_000  # files modified this close before the cache was written: hash again

Fingerprint = tuple[np.uint64, np.ndarray] | None  # (pHash, mean RGB); None: not readable


def cache_folder() -> Path | None:
    """Where caches go (see the module docstring); None when turned off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return None if chosen.strip().lower() in (OFF, "") else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synthgate"


@dataclass
class FingerprintCache:
    """The fingerprints of one folder's files, by path relative to it, with the size and
    modification time each had when it was hashed."""

    folder: Path  # as given: files are named relative to it
    resolved: Path  # the folder's real path, which names its cache file
    tag: str
    file: Path
    entries: dict[str, tuple[int, int, Fingerprint]]
    saved_ns: int = 0  # when the cache read was written (time.time_ns)
    changed: bool = False

    @classmethod
    def open(cls, folder: Path, *, tag: str) -> FingerprintCache | None:
        """The folder's cache as an earlier run left it with fingerprints made as `tag` says
        (empty if none); None when caching is turned off."""
        where = cache_folder()
        if where is None:
            return None
        resolved = folder.resolve()
        digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:24]
        cache = cls(folder, resolved, tag, where / f"reference-{digest}.npz", {})
        cache.entries = cache._read()
        return cache

    def _read(self) -> dict[str, tuple[int, int, Fingerprint]]:
        try:
            with np.load(self.file, allow_pickle=False) as stored:
                if str(stored["folder"]) != str(self.resolved) or str(stored["tag"]) != self.tag:
                    return {}
                self.saved_ns = int(stored["saved_ns"])
                rows = zip(
                    stored["names"].tolist(),
                    stored["stats"].tolist(),
                    stored["hashes"],
                    stored["colours"],
                    stored["readable"].tolist(),
                    strict=True,
                )
                return {
                    name: (size, mtime, (value, colour) if readable else None)
                    for name, (size, mtime), value, colour, readable in rows
                }
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return {}  # none yet, or unreadable: hash again

    def key(self, path: Path) -> tuple[str, int, int] | None:
        """(name, size, mtime_ns) of a file under the folder (a link: of the file it points to);
        None when it cannot be statted."""
        try:
            stat = path.stat()
            name = path.relative_to(self.folder).as_posix()
        except (OSError, ValueError):
            return None
        return name, stat.st_size, stat.st_mtime_ns

    def get(self, key: tuple[str, int, int] | None) -> tuple[bool, Fingerprint]:
        """(found, fingerprint) of a file unchanged since it was cached."""
        if key is None:
            return False, None
        entry = self.entries.get(key[0])
        if entry is None or entry[:2] != key[1:] or key[2] >= self.saved_ns - RACY_NS:
            return False, None
        return True, entry[2]

    def put(self, key: tuple[str, int, int] | None, found: Fingerprint) -> None:
        if key is not None:
            self.entries[key[0]] = (key[1], key[2], found)
            self.changed = True

    def keep_only(self, names: set[str]) -> None:
        """Forget the files no longer in the folder."""
        gone = self.entries.keys() - names
        for name in gone:
            del self.entries[name]
        self.changed = self.changed or bool(gone)

    def save(self) -> None:
        """Write the cache when it changed; a cache folder that cannot be written is skipped."""
        if not self.changed:
            return
        names = list(self.entries)
        fingerprints = [self.entries[name][2] for name in names]
        buffer = io.BytesIO()
        np.savez(
            buffer,
            folder=np.array(str(self.resolved)),
            tag=np.array(self.tag),
            saved_ns=np.array(time.time_ns(), dtype=np.int64),
            names=np.array(names, dtype=str),
            stats=np.array([self.entries[name][:2] for name in names], dtype=np.int64).reshape(
                -1, 2
            ),
            hashes=np.array([f[0] if f else 0 for f in fingerprints], dtype=np.uint64),
            colours=np.array(
                [f[1] if f else np.zeros(3) for f in fingerprints], dtype=np.float32
            ).reshape(-1, 3),
            readable=np.array([f is not None for f in fingerprints], dtype=bool),
        )
        try:
            write_atomic(self.file, buffer.getvalue(), field="cache")
        except (InputError, OSError):
            return
        self.changed = False
