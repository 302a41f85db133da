"""A COCO file read as it streams: `stream_coco(path, annotations, progress=...)`, and
`read_coco_streaming(path)`, the whole mapping `read_coco` gives, parsed the same way.

A COCO file is one JSON object whose `annotations` array is nearly all of it (a million
annotations are gigabytes as Python objects), so it is read in three parts, each parsed by
yajl (ijson's C backend):

- the head, every top-level member before `"annotations": [`, parsed whole (images, categories,
  info: small), after the UTF-8 byte-order mark a file written on Windows may start with;
- the annotations, one entry at a time, each handed to `annotations.add` and forgotten;
- the tail, every member after the array (COCO's own files put `categories` there), parsed whole.

Where the array starts and ends is found without a second parse of the file: a `"annotations"`
key is the top-level one exactly when the head before it, closed by `"annotations": null}`, is
valid JSON (a key inside a nested object fails that test, and a key cannot hide in a string:
its quotes would be escaped); the array ends at the first `]` that takes the nesting back to
the top level, counted (`_Depth`) from the start of the buffer the last annotation ended in,
after yajl has read the rest of the file and found it sound.

Anything else goes through the whole-file reader (`read_coco`, Python's json), which is
slower and holds the file in memory but reads what Python reads and refuses what it refuses,
naming the line and column of a syntax error: a file without a top-level annotations array, a
parse error, a member given twice, and what yajl reads otherwise (NaN and Infinity, integers
beyond 64 bits, numbers beyond a float's range, lone surrogate escapes, form feeds and vertical
tabs as spaces, which json refuses) or would be slow or unsafe on (nesting deeper than
MAX_DEPTH: json stops at Python's recursion limit, and yajl's builder is killed on a deep
enough file; nested "annotations" keys before the array, each of which costs a parse of the
head: HEAD_TESTS keys are tested at most, the real one included). The bytes are screened for
these as the reader hands them over, before yajl parses them. The sink's `clear()` is called
first in that case, so it sees every annotation exactly once either way.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import ijson
import numpy as np

from synthgate.formats.coco import Progress, coco_mapping, existing_coco_file, read_coco

BOM = codecs.BOM_UTF8  # Windows tools start a file with it; no part of the JSON
HEAD_BLOCK = 1 << 20
HEAD_TESTS = 16  # "annotations" keys tested (nested ones, then the real one) at most
TAIL_BUFFER = 16 << 10
MAX_DEPTH = 64  # COCO nests 5 deep (a polygon's coordinates); deeper files are read by json
# JSON's own spaces only: the spaces after the key are never parsed (the head's test ends before
# the key, the annotations begin at "["), so a form feed there must not match
ANNOTATIONS_KEY = re.compile(rb'"annotations"[ \t\n\r]*:[ \t\n\r]*')
JSON_SPACE = b" \t\n\r"
# yajl reads a lone high surrogate escape as "?" (and one followed by any other escape as a
# pair), Python's json keeps it: such files go to json. A pair (an emoji json.dumps wrote with
# its default ASCII escapes) reads alike; a lone low surrogate stops yajl.
LONE_HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")
PAIR = 12  # bytes of an escaped surrogate pair
NOT_JSON_SPACE = (b"\x0b", b"\x0c")  # space to yajl, a syntax error to json
ESCAPE = re.compile(rb"\\.", re.DOTALL)
NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))
STEP = np.zeros(256, dtype=np.int64)  # nesting: +1 opens, -1 closes
STEP[list(b"[{")] = 1
STEP[list(b"]}")] = -1
IS_QUOTE = (np.arange(256) == ord('"')).astype(np.int64)


class AnnotationSink(Protocol):
    """Where a file goes: `head` gets the members read before the annotations (all of them
    when the file is read whole), then `add` each annotation; `clear` starts over."""

    def head(self, members: dict[str, Any]) -> None: ...

    def add(self, entry: Any) -> None: ...

    def clear(self) -> None: ...


class _NotStreamable(Exception):
    """The file is read whole instead (see the module docstring)."""


class _Depth:
    """How deep the JSON read so far nests, bytes handed over in pieces: escapes and strings
    left out, the brackets outside strings counted (vectorised over each piece)."""

    def __init__(self, state: tuple[int, int, bytes] = (0, 0, b"")) -> None:
        self.depth, self.in_string, self.cut = state
        # self.cut: a backslash that ended the last piece escapes the next one's first byte

    def state(self) -> tuple[int, int, bytes]:
        return self.depth, self.in_string, self.cut

    def feed(self, chunk: bytes) -> int:
        """The deepest point within `chunk`, given everything fed before."""
        depths = self._depths(chunk, offsets=False)
        return int(depths.max()) if depths.size else self.depth

    def closing(self, chunk: bytes, level: int) -> int | None:
        """The offset in `chunk` (fed after everything before) of the first bracket outside a
        string that takes the nesting to `level`; None when none does (the state then moved
        past `chunk`, as `feed` moves it)."""
        shift = len(self.cut)
        found = np.flatnonzero(self._depths(chunk, offsets=True) == level)
        return int(found[0]) - shift if found.size else None

    def _depths(self, chunk: bytes, *, offsets: bool) -> np.ndarray:
        """The nesting after each quote and bracket of the last cut + `chunk` (escaped bytes
        and their backslashes left out), or after each byte (`offsets`); the state moved past
        it."""
        data = self.cut + chunk
        run = len(data) - len(data.rstrip(b"\\"))
        self.cut = b"\\" if run % 2 else b""
        if self.cut:
            data = data[:-1]
        if b"\\" in data:
            data = ESCAPE.sub(b"  ", data)  # the same offsets, no quote or bracket escaped
        if not offsets:
            data = data.translate(None, NOT_STRUCTURE)  # a tenth of a COCO file's bytes
        marks = np.frombuffer(data, dtype=np.uint8)
        if not marks.size:
            return marks
        quotes = np.cumsum(IS_QUOTE[marks]) + self.in_string
        depths = np.cumsum(STEP[marks] * (quotes % 2 == 0)) + self.depth
        self.in_string = int(quotes[-1] % 2)
        self.depth = int(depths[-1])
        return depths


class _Reader:
    """Bytes for yajl: `prefix`, then `handle` from `start`; it remembers where the current
    buffer began. It raises _NotStreamable before yajl sees bytes it would read otherwise than
    json (a lone surrogate escape, a form feed or vertical tab) or nesting deeper than
    MAX_DEPTH.
    `progress`: called with the bytes of the file read after each buffer."""

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
        self._last = b""
        self._depth = _Depth()
        self._screen(prefix)
        self.buffer_state = self._depth.state()  # the nesting where the last buffer began
        self._progress = progress
        handle.seek(start)

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        if self.prefix:  # screened when the reader was made
            chunk, self.prefix = self.prefix, b""
            return chunk
        chunk = self.handle.read(size)
        self.buffer_start = self.position
        self.buffer_state = self._depth.state()
        self.position += len(chunk)
        self._screen(chunk)
        if self._progress is not None and chunk:
            self._progress(self.position)
        return chunk

    def _screen(self, chunk: bytes) -> None:
        # the last bytes of the previous buffer too: an escape or a pair may be cut in two
        joined = self._last + chunk
        self._last = joined[-PAIR:]
        if b"\\" in joined:
            for lone in LONE_HIGH_SURROGATE.finditer(joined):
                if chunk and lone.end() > len(joined) - PAIR // 2:
                    break  # its pair may begin in the next buffer: looked at again there
                raise _NotStreamable
        if any(space in chunk for space in NOT_JSON_SPACE):
            raise _NotStreamable
        if self._depth.feed(chunk) > MAX_DEPTH:
            raise _NotStreamable


def _escaped(data: bytes | bytearray | memoryview, position: int) -> bool:
    """Whether the quote at `position` is escaped (an odd run of backslashes before it)."""
    run = 0
    while position - run - 1 >= 0 and data[position - run - 1] == 0x5C:
        run += 1
    return run % 2 == 1


def _members(
    handle: BinaryIO, start: int, prefix: bytes, *, buffer: int = 64 << 10
) -> list[tuple[str, Any]] | None:
    """The members of `prefix` + `handle` from `start`, in order, if that is exactly one JSON
    object."""
    reader = _Reader(handle, start, prefix)
    try:
        return list(ijson.kvitems(reader, "", use_float=True, buf_size=buffer))
    except (ijson.JSONError, UnicodeDecodeError, ValueError):
        return None


def _text_start(handle: BinaryIO) -> int:
    """Where the JSON text of the file begins, the handle left there: after a UTF-8 byte-order
    mark, which Windows tools write and which is no part of the JSON (`read_coco` decodes the
    file as utf-8-sig), else at 0."""
    start = len(BOM) if handle.read(len(BOM)) == BOM else 0
    handle.seek(start)
    return start


def _head(handle: BinaryIO) -> tuple[dict[str, Any], int]:
    """The members before the top-level annotations array and the file offset of its `[`."""
    start = _text_start(handle)
    head = bytearray()
    resume = 0  # where the next search starts: no key can begin before it
    tests = 0
    while True:
        block = handle.read(HEAD_BLOCK)
        head += block
        for match in ANNOTATIONS_KEY.finditer(head, resume):
            if match.end() >= len(head) and block:
                break  # the key or the spaces after it may go on in the next block
            resume = match.start() + 1
            if _escaped(head, match.start()):
                continue
            tests += 1
            if tests > HEAD_TESTS:
                raise _NotStreamable  # each test parses the head again
            test = io.BytesIO(bytes(head[: match.start()]) + b'"annotations": null}')
            pairs = _members(test, 0, b"")
            if pairs is None:
                continue  # a nested "annotations" key
            if head[match.end() : match.end() + 1] != b"[":
                raise _NotStreamable  # annotations is not an array: json says why
            if [key for key, _ in pairs].count("annotations") > 1:
                raise _NotStreamable  # json keeps the member where it first came
            members = dict(pairs)
            members.pop("annotations")
            return members, start + match.end()
        else:
            resume = max(resume, len(head) - 64)  # a key split between blocks is found again
        if not block:
            raise _NotStreamable  # no top-level annotations array


def _tail(handle: BinaryIO, start: int, state: tuple[int, int, bytes]) -> dict[str, Any]:
    """The members after the annotations array, which ends in the file from `start` (where a
    buffer of the annotations began, the nesting then `state`: in `{"a": [`, 2 deep)."""
    handle.seek(start)
    rest = handle.read()
    depth = _Depth(state)
    for piece in range(0, len(rest), TAIL_BUFFER):
        end = depth.closing(rest[piece : piece + TAIL_BUFFER], 1)
        if end is not None:
            break
    else:
        raise _NotStreamable  # yajl read the file through: not expected
    end += piece
    after = rest[end + 1 :].lstrip(JSON_SPACE)
    if after[:1] == b"}":
        return {}  # the annotations array was the last member
    if after[:1] != b",":
        raise _NotStreamable
    key = len(rest) - len(after[1:].lstrip(JSON_SPACE))
    pairs = _members(io.BytesIO(rest), key, b"{", buffer=TAIL_BUFFER)
    if pairs is None:
        raise _NotStreamable
    return dict(pairs)


def _stream(
    path: Path, annotations: AnnotationSink, progress: Callable[[int], None] | None
) -> dict[str, Any]:
    with open(path, "rb") as handle:
        members, start = _head(handle)
        annotations.head(members)
        reader = _Reader(handle, start, b'{"a":', progress=progress)
        last_buffer, last_state = start, reader.buffer_state
        entries = ijson.items(reader, "a.item", use_float=True)
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                break
            except (ijson.JSONError, UnicodeDecodeError, ValueError):
                raise _NotStreamable from None
            annotations.add(entry)
            last_buffer, last_state = reader.buffer_start, reader.buffer_state
        tail = _tail(handle, last_buffer, last_state)
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
    it (seconds for hundreds of MB). About read_coco's CPU (bench/bench_read_coco.py); more
    for a file handed to read_coco part way, whose streamed part is read again. (A value nested
    within a few levels of Python's recursion limit may be read by one and refused by the
    other: json's limit depends on how deep in the stack it is called.)"""
    kept = _Kept()
    data = stream_coco(path, kept, progress=progress, non_finite=non_finite)
    data["annotations"] = kept.entries
    return data
