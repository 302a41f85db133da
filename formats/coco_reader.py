"""A COCO file read as it streams: `stream_coco(path, annotations, progress=...)`, and
`read_coco_streaming(path)`, the whole mapping `read_coco` gives, parsed the same way.

A COCO file is one JSON object whose `annotations` array is nearly all of it (a million
annotations are gigabytes as Python objects), so it is read in three parts, each parsed by
yajl (ijson's C backend):

- the head, every top-level member before `"annotations": [`, parsed whole (images, categories,
  info: small);
- the annotations, one entry at a time, each handed to `annotations.add` and forgotten;
- the tail, every member after the array (COCO's own files put `categories` there), parsed whole.

Where the array starts and ends is found without a second parse of the file: a `"annotations"`
key is the top-level one exactly when the head before it, closed by `"annotations": null}`, is
valid JSON; after the annotations (read to the end of the file, so the whole rest is checked),
the first tail member is the first key at or after the last annotation's buffer for which
`{` + the rest of the file is exactly one JSON object. A key inside a nested object fails that
test (its object closes before the end), and a key cannot hide in a string (its quotes would be
escaped), so both tests are proofs, not guesses.

Anything else goes through the whole-file reader (`read_coco`, Python's json), which is
slower and holds the file in memory but reads what Python reads (NaN, lone surrogates) and
names the line and column of a syntax error: a file without a top-level annotations array, a
parse error, a member given twice. The sink's `clear()` is called first in that case, so it
sees every annotation exactly once either way.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import ijson

from synthgate.formats.coco import Progress, coco_mapping, existing_coco_file, read_coco

HEAD_BLOCK = 1 << 20
TEST_BUFFER = 16 << 10  # a nested key fails within its own object: a small buffer suffices
ANNOTATIONS_KEY = re.compile(rb'"annotations"\s*:\s*')
ANY_KEY = re.compile(rb'"(?:[^"\\]|\\.)*"\s*:')
# yajl reads a lone UTF-16 surrogate escape as "?", Python's json keeps it: such files go to json.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abAB]")


class AnnotationSink(Protocol):
    """Where a file goes: `head` gets the members read before the annotations (all of them
    when the file is read whole), then `add` each annotation; `clear` starts over."""

    def head(self, members: dict[str, Any]) -> None: ...

    def add(self, entry: Any) -> None: ...

    def clear(self) -> None: ...


class _NotStreamable(Exception):
    """The file is read whole instead (see the module docstring)."""


class _Reader:
    """Bytes for yajl: `prefix`, then `handle` from `start`; it remembers where the current
    buffer began and whether a surrogate escape went by. `progress`: called with the bytes of
    the file read after each buffer."""

    def __init__(
        self,
        handle: BinaryIO,
        start: int,
        prefix: bytes,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        self.handle = handle
        self.prefix = prefix
        self.position = start  # offset in `handle` of the next byte
        self.buffer_start = start  # offset in `handle` where the last buffer handed out began
        self.surrogates = False
        self._last = b""
        self._progress = progress
        handle.seek(start)

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        if self.prefix:
            chunk, self.prefix = self.prefix, b""
            return chunk
        chunk = self.handle.read(size)
        self.buffer_start = self.position
        self.position += len(chunk)
        if b"\\" in chunk and SURROGATE_ESCAPE.search(self._last + chunk):
            self.surrogates = True
        self._last = chunk[-5:]
        if self._progress is not None and chunk:
            self._progress(self.position)
        return chunk


def _escaped(data: bytes | bytearray | memoryview, position: int) -> bool:
    """Whether the quote at `position` is escaped (an odd run of backslashes before it)."""
    run = 0
    while position - run - 1 >= 0 and data[position - run - 1] == 0x5C:
        run += 1
    return run % 2 == 1


def _members(
    handle: BinaryIO, start: int, prefix: bytes, *, buffer: int = 64 << 10
) -> dict[str, Any] | None:
    """The members of `prefix` + `handle` from `start` if that is exactly one JSON object."""
    reader = _Reader(handle, start, prefix)
    try:
        found = dict(ijson.kvitems(reader, "", use_float=True, buf_size=buffer))
    except (ijson.JSONError, UnicodeDecodeError, ValueError):
        return None
    return None if reader.surrogates else found


def _head(handle: BinaryIO) -> tuple[dict[str, Any], int]:
    """The members before the top-level annotations array and the file offset of its `[`."""
    head = bytearray()
    resume = 0  # where the next search starts: no key can begin before it
    while True:
        block = handle.read(HEAD_BLOCK)
        head += block
        for match in ANNOTATIONS_KEY.finditer(head, resume):
            if match.end() >= len(head) and block:
                break  # the key or the spaces after it may go on in the next block
            resume = match.start() + 1
            if _escaped(head, match.start()):
                continue
            test = io.BytesIO(bytes(head[: match.start()]) + b'"annotations": null}')
            members = _members(test, 0, b"")
            if members is None:
                continue  # a nested "annotations" key
            if head[match.end() : match.end() + 1] != b"[":
                raise _NotStreamable  # annotations is not an array: json says why
            members.pop("annotations")
            return members, match.end()
        else:
            resume = max(resume, len(head) - 64)  # a key split between blocks is found again
        if not block:
            raise _NotStreamable  # no top-level annotations array


def _tail(handle: BinaryIO, start: int) -> dict[str, Any]:
    """The members after the annotations array: from the first key at or after `start` (a
    file offset inside the array's last buffer) for which `{` + the rest is one JSON object."""
    handle.seek(start)
    rest = io.BytesIO(handle.read())
    view = rest.getbuffer()
    for match in ANY_KEY.finditer(view):
        if _escaped(view, match.start()):
            continue
        members = _members(rest, match.start(), b"{", buffer=TEST_BUFFER)
        if members is not None:
            return members
    return {}  # the annotations array was the last member


def _stream(
    path: Path, annotations: AnnotationSink, progress: Callable[[int], None] | None
) -> dict[str, Any]:
    with open(path, "rb") as handle:
        members, start = _head(handle)
        annotations.head(members)
        reader = _Reader(handle, start, b'{"a":', progress=progress)
        last_buffer = start
        entries = ijson.items(reader, "a.item", use_float=True)
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                break
            except (ijson.JSONError, UnicodeDecodeError, ValueError):
                raise _NotStreamable from None
            annotations.add(entry)
            last_buffer = reader.buffer_start
        if reader.surrogates:
            raise _NotStreamable
        tail = _tail(handle, last_buffer)
    if "annotations" in tail or tail.keys() & members.keys():
        raise _NotStreamable  # a member twice: json keeps the last one
    return {**members, "annotations": [], **tail}


def stream_coco(
    path: Path | str,
    annotations: AnnotationSink,
    *,
    progress: Progress | None = None,
    non_finite: list[str] | None = None,
) -> dict[str, Any]:
    """Read a COCO file, handing each annotation to `annotations` as it is parsed; return the
    other top-level members as a COCO mapping (`coco_mapping`: InputError unless it has an
    `images` list) whose `annotations` list is empty.

    Memory holds the head and tail members and what the sink keeps, never the annotations.
    `progress`: called with (bytes read, bytes in all) from the start to the end of the file,
    as the annotations stream; a file the stream hands to the whole-file reader reports its
    end once that has read it (never a count that goes back). `non_finite`: as `read_coco`'s
    (yajl reads no NaN, Infinity or number beyond a float's range: a file holding one is read
    whole, and noted there).
    """
    path = existing_coco_file(path)
    size = path.stat().st_size
    if progress is not None:
        progress(0, size)
    try:
        read = None if progress is None else lambda done: progress(done, size)
        members = _stream(path, annotations, read)
    except _NotStreamable:
        annotations.clear()
        data = read_coco(path, non_finite=non_finite)
        if progress is not None:
            progress(size, size)
        annotations.head(data)
        for entry in data["annotations"]:
            annotations.add(entry)
        data["annotations"] = []
        return data
    return coco_mapping(members, source=str(path))


class _Kept:
    """A sink that keeps every annotation, for a whole read."""

    def __init__(self) -> None:
        self.entries: list[Any] = []

    def head(self, members: dict[str, Any]) -> None:
        pass

    def add(self, entry: Any) -> None:
        self.entries.append(entry)

    def clear(self) -> None:
        self.entries = []


def read_coco_streaming(
    path: Path | str, *, non_finite: list[str] | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """`read_coco`'s mapping and errors, parsed as the file streams (`stream_coco`), so that
    `progress` moves through the file instead of standing at 0 while one call to json parses
    it (seconds for hundreds of MB). It costs no more: bench/bench_read_coco.py."""
    kept = _Kept()
    data = stream_coco(path, kept, progress=progress, non_finite=non_finite)
    data["annotations"] = kept.entries
    return data
