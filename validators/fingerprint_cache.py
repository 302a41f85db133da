"""Fingerprints of reference image files kept between runs: `FingerprintCache`.

A real dataset's reference folder (100k images: minutes of decoding on every `validate`, `run`
or `balance` that names it) is hashed once; later runs stat each file and decode only those
that are new or changed: another size, inode, or modification or status-change time (in
nanoseconds, as git's index does: a copy that keeps the old time, a `chmod`, a replaced file all
count as changed). The index they build is the one a fresh hashing builds: same files, same
order, same fingerprints. A file that could not be read is not kept (it is tried again: the
failure may have been passing), and, as in git, neither is one modified less than RACY_NS
before the hashing began: a file system's clock ticks in milliseconds, so a file rewritten at
the same size within one tick of being hashed would otherwise keep the old fingerprint.

One file per folder, `reference-<digest of the folder's resolved path>.npz`, in the cache
folder: $SYNTHGATE_CACHE_DIR, else $XDG_CACHE_HOME/synthgate, else ~/.cache/synthgate
(`SYNTHGATE_CACHE_DIR=off`: no cache). Each file holds the folder's path and a tag of what a
fingerprint depends on (context.py `fingerprint_tag`: the code that computes it, Pillow's and
numpy's versions): a file of another folder or tag is no cache. It is replaced whole (written to
a temporary file, renamed), so runs at once at worst redo each other's work, and a run stopped
part way keeps what it hashed; a cache that cannot be found, read or written is no cache, never
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
RACY_NS = 2_000_000_000  # files modified this close before the hashing began: hash again

Fingerprint = tuple[np.uint64, np.ndarray]  # (pHash, mean RGB)
Key = tuple[str, tuple[int, int, int, int]]  # name; (size, inode, mtime_ns, ctime_ns)


def cache_folder() -> Path | None:
    """Where caches go (see the module docstring); None when turned off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return None if chosen.strip().lower() in (OFF, "") else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "synthgate"


@dataclass
class FingerprintCache:
    """The fingerprints of one folder's files, by path relative to it, with the file status
    each had when it was hashed."""

    folder: Path  # as given: files are named relative to it
    resolved: Path  # the folder's real path, which names its cache file
    tag: str
    file: Path
    entries: dict[str, tuple[tuple[int, int, int, int], Fingerprint]]
    began_ns: int  # when this hashing began (time.time_ns), saved as the next run's saved_ns
    saved_ns: int = 0  # when the hashing the cache holds began
    changed: bool = False

    @classmethod
    def open(cls, folder: Path, *, tag: str) -> FingerprintCache | None:
        """The folder's cache as an earlier run left it with fingerprints made as `tag` says
        (empty if none); None when caching is turned off or has no place to go."""
        began = time.time_ns()
        try:
            where = cache_folder()
            resolved = folder.resolve()
        except (OSError, RuntimeError, KeyError):  # e.g. no home folder for this user
            return None
        if where is None:
            return None
        digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:24]
        cache = cls(folder, resolved, tag, where / f"reference-{digest}.npz", {}, began)
        cache._read()
        return cache

    def _read(self) -> None:
        try:
            with np.load(self.file, allow_pickle=False) as stored:
                if str(stored["folder"]) != str(self.resolved) or str(stored["tag"]) != self.tag:
                    return
                rows = zip(
                    stored["names"].tolist(),
                    stored["stats"].tolist(),
                    stored["hashes"],
                    stored["colours"],
                    strict=True,
                )
                entries = {
                    name: (tuple(stat), (value, colour)) for name, stat, value, colour in rows
                }
                saved = int(stored["saved_ns"])
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            return  # none yet, or unreadable: hash again
        self.entries, self.saved_ns = entries, saved  # type: ignore[assignment]

    def key(self, path: Path) -> Key | None:
        """A file's name under the folder and status (a link: of the file it points to);
        None when it cannot be statted."""
        try:
            stat = path.stat()
            name = path.relative_to(self.folder).as_posix()
        except (OSError, ValueError):
            return None
        return name, (stat.st_size, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)

    def get(self, key: Key | None) -> Fingerprint | None:
        """The fingerprint of a file unchanged since it was hashed, well before then."""
        if key is None:
            return None
        entry = self.entries.get(key[0])
        if entry is None or entry[0] != key[1] or key[1][2] >= self.saved_ns - RACY_NS:
            return None
        return entry[1]

    def put(self, key: Key | None, found: Fingerprint | None) -> None:
        """Keep a file's fingerprint; forget it when it could not be read."""
        if key is None:
            return
        if found is None:
            self.changed = self.entries.pop(key[0], None) is not None or self.changed
        else:
            self.entries[key[0]] = (key[1], found)
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
        buffer = io.BytesIO()
        np.savez(
            buffer,
            folder=np.array(str(self.resolved)),
            tag=np.array(self.tag),
            saved_ns=np.array(self.began_ns, dtype=np.int64),
            names=np.array(names, dtype=str),
            stats=np.array([self.entries[n][0] for n in names], dtype=np.int64).reshape(-1, 4),
            hashes=np.array([self.entries[n][1][0] for n in names], dtype=np.uint64),
            colours=np.array([self.entries[n][1][1] for n in names], dtype=np.float32).reshape(
                -1, 3
            ),
        )
        try:
            write_atomic(self.file, buffer.getvalue(), field="cache")
        except (InputError, OSError):
            return
        self.changed = False
