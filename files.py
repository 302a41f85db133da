"""Reading and writing the files users hand us, with errors that name the file and the fix.

- `parse_json(text, source=...)` and `check_nesting(value, where=...)`: JSON of at most
  MAX_NESTING levels, so nothing downstream (validation, copies, error messages) recurses deeply.
- `is_file(path)`: whether a file is there, False for names no file system takes.
- `json_list_items(text)`: the items of a JSON list one at a time, as `json.loads` reads them.
- `dumps(value)`: compact, order-preserving JSON, the form of every JSON file synthgate writes.
- `write_atomic(path, text | bytes)`: through a temporary name beside the target, then a rename,
  so a reader never sees half a file and a failure leaves nothing behind. A write that fails is
  an InputError naming the field; `NoSpaceLeft` when the disk (or quota) is full.
- `write_json_atomic(path, value)`: `dumps(value)` and a newline written as `write_atomic`
  writes, a few thousand list entries at a time (a 1M-annotation COCO file is never whole in
  memory as text), with a progress count.
- `reading_sqlite(path)`: a connection that reads an SQLite file (a run's database) and never
  creates it.
- `read_ahead(read, items)`: (item, read(item)) in the items' order, the reads running a few
  items ahead on other threads, one per core by default (decoding image files releases the GIL).

YAML files (configs, rubrics, templates) are read by yaml_files.py, with the same nesting bound.

Named `files`, not `io`: a top-level `io.py` would shadow the standard library when Python runs
from the repository root.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import sqlite3
import stat
import tempfile
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from synthgate.errors import InputError

# Configs, rubrics and templates are a few levels deep; anything deeper is an attack or an
# accident, and refusing it early keeps every recursive consumer (pydantic, copy, repr) safe.
MAX_NESTING = 64
DEEP_FIX = "no config is that deep"

Item = TypeVar("Item")
Read = TypeVar("Read")


def path_problem(path: Path | str) -> str | None:
    """Why no file system takes `path` as a name (a NUL byte, a name over 255 bytes, a folder
    that cannot be searched); None when one can, whether or not the file is there."""
    text = str(path)
    if "\x00" in text:
        return "it contains a NUL byte"
    try:
        os.stat(text)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        return error.strerror or str(error)
    except ValueError as error:  # a lone surrogate: no file name encodes it
        return str(error)
    return None


def readable_file(path: Path, what: str) -> Path:
    """`path`, when it names a file; else an InputError saying what is wrong with it (a folder,
    missing, a NUL byte or a name too long: never the OSError a read would raise)."""
    problem = path_problem(path)
    if problem is not None:
        raise InputError(f"{str(path)[:200]!r}: not a usable path ({problem})")
    if path.is_dir():
        noun = what if what.endswith("file") else f"{what} file"  # not "template file file"
        raise InputError(f"{path}: is a folder; pass the {noun} itself")
    if not path.is_file():
        raise InputError(f"{path}: {what} not found; check the path")
    return path


def is_file(path: Path) -> bool:
    """`path.is_file()`, False instead of an error for a name no file system takes (a NUL byte,
    a component over 255 bytes): such a name, read from a user's file, names no file."""
    try:
        return "\x00" not in str(path) and path.is_file()
    except (OSError, ValueError):
        return False


def not_a_folder(path: Path) -> str:
    """Why `path`, given as a folder, is none: a file is there (an images= that named the COCO
    file), or nothing is."""
    return "is a file, not a folder" if is_file(path) else "folder not found"


def is_dir(path: Path) -> bool:
    """`path.is_dir()`, False as `is_file` is for a name no file system takes."""
    try:
        return "\x00" not in str(path) and path.is_dir()
    except (OSError, ValueError):
        return False


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system tells it, at most
    what a container's CPU quota (cgroup v2 `cpu.max`) allows."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    quota = _cgroup_cpus()
    return cores if quota is None else max(1, min(cores, quota))


def _cgroup_cpus(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """The CPUs a cgroup v2 quota ("200000 100000": two) gives this process; None where there is
    none ("max ...") or no such file."""
    try:
        quota, period = path.read_text(encoding="ascii").split()[:2]
        return None if quota == "max" else math.ceil(int(quota) / int(period))
    except (OSError, ValueError, ZeroDivisionError):
        return None


def reading_threads(most: int | None = None) -> int:
    """Threads for `read_ahead`: one per usable core, at most `most`; none on one core (the
    reads then run on the caller's thread)."""
    cores = usable_cores()
    return 0 if cores <= 1 else min(cores, cores if most is None else most)


def read_ahead(
    read: Callable[[Item], Read], items: Iterable[Item], *, threads: int | None = None
) -> Generator[tuple[Item, Read], None, None]:
    """(item, read(item)) for each item, in the items' order, the reads running on `threads`
    threads (default `reading_threads()`; 0: on the caller's thread), at most 2 x `threads`
    ahead of the consumer: decoding the next image files overlaps judging this one. What `read`
    raises is raised here, in order. The items are drawn on the caller's thread. Close it when
    done early (`contextlib.closing`): reads not started are cancelled, and those running are
    waited for.
    """
    if threads is None:
        threads = reading_threads()
    if threads <= 0:
        for item in items:
            yield item, read(item)
        return
    pool = ThreadPoolExecutor(threads, thread_name_prefix="read-ahead")
    pending: deque[tuple[Item, Future[Read]]] = deque()
    try:
        for item in items:
            pending.append((item, pool.submit(read, item)))
            if len(pending) > 2 * threads:
                first, reading = pending.popleft()
                yield first, reading.result()
        while pending:
            first, reading = pending.popleft()
            yield first, reading.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def json_text(value: Any, **options: Any) -> str:
    """`json.dumps(value, ensure_ascii=False, **options)`, unless a string in it holds a lone
    surrogate (an unpaired \\ud800-\\udfff escape, which a JSON file may hold but no UTF-8
    file can): then every non-ASCII character stays escaped, and the value is written as read."""
    text = json.dumps(value, ensure_ascii=False, **options)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(value, **options)
    return text


class NotAJsonList(Exception):
    """`json_list_items` was given JSON that holds something other than a list."""

    def __init__(self, value: Any) -> None:
        self.kind = type(value).__name__  # "dict", "str", ...
        super().__init__(f"a JSON {self.kind}, not a list")


_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # what JSON allows between its tokens
_JSON_DECODER = json.JSONDecoder()


def json_list_items(text: str) -> Iterator[Any]:
    """The items of the JSON list in `text`, parsed one at a time: the items of a sound list
    are never all in memory at once, only the text and the item being read.

    What `json.loads(text)` holds, item by item. A text it refuses raises its error
    (json.JSONDecodeError, RecursionError, ValueError for an integer too long) once the items
    before the fault are out, read from the whole text parsed again (a faulty file costs a full
    parse, as it did before); a text that holds something else raises `NotAJsonList`. Lists
    nested within a few levels of Python's recursion limit are the exception: each item is
    parsed a level less deep than json.loads parses it, so either may refuse what the other
    reads (no export or config nests that deep).
    """
    at = _after_space(text, 0)
    given = 0
    if text.startswith("[", at):
        at = _after_space(text, at + 1)
        closed = text.startswith("]", at)
        while not closed:
            try:
                item, at = _JSON_DECODER.raw_decode(text, at)
            except (ValueError, RecursionError):
                break  # json.loads below says what is wrong, as it would have
            yield item
            given += 1
            at = _after_space(text, at)
            if text.startswith(",", at):
                at = _after_space(text, at + 1)
            elif text.startswith("]", at):
                closed = True
            else:
                break
        if closed and _after_space(text, at + 1) == len(text):
            return
    # Anything else (no list, a fault, data after the list): the text as json.loads reads it,
    # for its error and position; the items not given yet, were it to read a list after all.
    value = json.loads(text)
    if not isinstance(value, list):
        raise NotAJsonList(value)
    yield from value[given:]


def _after_space(text: str, at: int) -> int:
    """Where the text goes on after any JSON whitespace at `at`."""
    space = _JSON_SPACE.match(text, at)
    assert space is not None  # the pattern matches the empty text
    return space.end()


COMPACT = (",", ":")  # json's separators for the files synthgate writes: no spaces


def dumps(value: Any, *, allow_nan: bool = True) -> str:
    """Compact, order-preserving JSON: every output line goes through here (deterministic). A
    lone surrogate a user's file held stays the escape it was (`json_text`). `allow_nan=False`:
    ValueError for NaN or Infinity, which strict JSON readers refuse."""
    return json_text(value, separators=COMPACT, allow_nan=allow_nan)


def not_json(error: json.JSONDecodeError, *, position: bool = True) -> str:
    """What json refused in a text, for a message after its source's name: why, and where
    (`position`: the line and column); a byte-order mark, which Windows tools write, is said to
    be one, with the fix."""
    if error.pos == 0 and error.msg.startswith("Unexpected UTF-8 BOM"):
        return (
            "not valid JSON: it starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM"
        )
    where = f"line {error.lineno}, column {error.colno}: " if position else ""
    return f"not valid JSON ({where}{error.msg})"


def too_long(error: ValueError) -> str:
    """Python's message for an integer too long to read, without its advice to programmers."""
    return str(error).split(";")[0]


def non_finite_floats(value: Any, where: str = "") -> Iterator[tuple[str, float]]:
    """(path, value) of every NaN or infinite float in a JSON value (`bbox[1]`, `info.year`),
    in document order, without recursion: what Python's json reads from NaN, Infinity or a
    number beyond a float's range, and writes back as no JSON reader takes."""
    stack = [(where, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            yield here, item
        elif isinstance(item, dict):
            stack += [(f"{here}.{k}" if here else str(k), v) for k, v in reversed(item.items())]
        elif isinstance(item, list):
            stack += [(f"{here}[{i}]", v) for i, v in reversed(list(enumerate(item)))]


def nesting_depth(value: Any) -> int:
    """How many lists and mappings deep `value` goes (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_NESTING:
            break  # deep enough to refuse; no need to walk the rest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_nesting(value: Any, *, where: str, limit: int = MAX_NESTING) -> None:
    """InputError naming `where` when `value` nests lists and mappings deeper than `limit`."""
    if nesting_depth(value) > limit:
        raise InputError(f"{where}: nested deeper than {limit} levels; {DEEP_FIX}")


def parse_json(text: str | bytes, *, source: Path | str) -> Any:
    """JSON text, at most MAX_NESTING levels deep; bad JSON is an `InputError` naming `source`."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{source}: {not_json(error)}") from None
    except ValueError as error:  # an integer of more digits than Python reads
        raise InputError(f"{source}: not valid JSON ({too_long(error)})") from None
    except RecursionError:
        raise InputError(
            f"{source}: JSON nested deeper than {MAX_NESTING} levels; no input is that deep"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{source}: not a UTF-8 text file") from None
    check_nesting(value, where=str(source))
    return value


def special_file(path: Path) -> str | None:
    """What `path` is when it is there as neither a regular file nor a folder (a device such as
    /dev/null, a FIFO, a socket): an output renamed onto it would destroy it. None otherwise."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a FIFO" if stat.S_ISFIFO(mode) else "a special file"


def reading_sqlite(path: Path) -> sqlite3.Connection:
    """A connection to the SQLite file `path` for reading, which never creates the file.

    Opened read-write where it may be ("mode=rw" creates nothing): a read-only connection to a
    database in WAL mode cannot take away the -wal and -shm files it makes beside it, which then
    stayed in the user's run folder after a refused command; read-only where writing is not
    allowed (a read-only file or folder)."""
    uri = path.resolve().as_uri()
    try:
        return sqlite3.connect(f"{uri}?mode=rw", uri=True)
    except sqlite3.OperationalError:
        return sqlite3.connect(f"{uri}?mode=ro", uri=True)


# The errors of a write that found no room: a full disk, or the user's quota used up.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class NoSpaceLeft(InputError):
    """A write that found its disk (or quota) full. The CLI reports it as any failed write; a
    worker takes it for a transient failure of its blob store and makes the chunk again later,
    once space may have been freed (workers/chunks.py), rather than failing its samples."""


def write_atomic(path: Path | str, content: str | bytes, *, field: str = "out") -> None:
    """Write `content` to `path` through a unique temporary file and a rename.

    Concurrent writers never share a temporary name; on any failure the temporary file is
    removed and the error names the field (parameter or option) the path came from.
    """
    with writing_atomic(path, field=field) as out:
        out.write(content.encode("utf-8") if isinstance(content, str) else content)


@contextlib.contextmanager
def no_space_left(field: str, value: Any) -> Iterator[None]:
    """An OSError of a write to `value` (a path or URL) that found its disk (or quota) full as
    `NoSpaceLeft` naming the field it came from; any other error goes on as it is."""
    try:
        yield
    except OSError as error:
        if error.errno not in NO_SPACE:
            raise
        raise NoSpaceLeft(
            field=field, value=value, problem=f"cannot write there ({error.strerror})"
        ) from None


@contextlib.contextmanager
def _written_to(path: Path, field: str) -> Iterator[None]:
    """An OSError of writing to `path` (a full disk, no permission) as the InputError naming
    the field (parameter or option) the path came from (`NoSpaceLeft` for a full disk)."""
    try:
        with no_space_left(field, path):
            yield
    except OSError as error:
        raise InputError(
            field=field, value=path, problem=f"cannot write there ({error.strerror})"
        ) from None


class AtomicFile:
    """The file `writing_atomic` hands out: bytes written to it that cannot be are an
    InputError naming the field its path came from."""

    def __init__(self, out: BinaryIO, path: Path, field: str) -> None:
        self.out, self.path, self.field = out, path, field

    def write(self, data: bytes) -> None:
        with _written_to(self.path, self.field):
            self.out.write(data)

    def restart(self) -> None:
        """Drop what was written so far: the file is written again from its start."""
        with _written_to(self.path, self.field):
            self.out.seek(0)
            self.out.truncate()


@contextlib.contextmanager
def writing_atomic(path: Path | str, *, field: str = "out") -> Iterator[AtomicFile]:
    """A binary file to write in pieces that appears at `path` (renamed into place) only when
    the block ends without an error; otherwise it is removed and `path` is as it was. A write,
    the close or the rename that fails is an InputError naming `field`, as in `write_atomic`;
    any other error of the block goes out as it is."""
    path = Path(path)
    with _written_to(path, field):  # is_dir too raises for a name no file system takes
        if path.is_dir():
            raise InputError(field=field, value=path, problem="is a folder; give a file name")
        special = special_file(path)
        if special is not None:  # the rename would replace it with a file
            raise InputError(
                field=field, value=path, problem=f"is {special}, not a file; give a file name"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".partial", dir=path.parent
        )
    written = AtomicFile(os.fdopen(handle, "wb"), path, field)
    try:
        yield written
        with _written_to(path, field):
            written.out.close()
            os.chmod(partial, 0o644)  # mkstemp makes 0600; outputs are for sharing
            os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(OSError):  # the error to report is the one that came first
            written.out.close()  # a second close does nothing
        Path(partial).unlink(missing_ok=True)
        raise


WRITE_CHUNK = 10_000  # list entries a piece: a few MB of COCO annotations as text


def write_json_atomic(
    path: Path | str,
    value: Any,
    *,
    allow_nan: bool = True,
    progress: Callable[[int, int], None] | None = None,
    field: str = "out",
) -> None:
    """`write_atomic(path, dumps(value, allow_nan=allow_nan) + "\n")`, the same bytes, written a
    piece at a time: the lists of a mapping WRITE_CHUNK entries at once, so the whole text
    (about 0.5 GB for 1M COCO annotations, and its UTF-8 copy) is never in memory.
    `progress(entries written, entries in all)` counts the entries of those lists. A lone
    surrogate anywhere makes `dumps` escape every non-ASCII character (`json_text`): met in a
    later piece, the file is written again that way. A NaN or Infinity with allow_nan=False is
    dumps' ValueError, and nothing is left at `path`."""
    with writing_atomic(path, field=field) as out:
        try:
            _write_json(out, value, ensure_ascii=False, allow_nan=allow_nan, progress=progress)
        except UnicodeEncodeError:
            out.restart()
            _write_json(out, value, ensure_ascii=True, allow_nan=allow_nan, progress=progress)
        out.write(b"\n")


def _write_json(
    out: AtomicFile,
    value: Any,
    *,
    ensure_ascii: bool,
    allow_nan: bool,
    progress: Callable[[int, int], None] | None,
) -> None:
    """`value` as json.dumps writes it (compact separators), in pieces, each encoded as it comes
    (UnicodeEncodeError for a lone surrogate when not `ensure_ascii`)."""

    def text(part: Any) -> str:
        return json.dumps(part, ensure_ascii=ensure_ascii, allow_nan=allow_nan, separators=COMPACT)

    # json.dumps turns a key that is not a string into one: such a mapping is written whole
    members = type(value) is dict and all(type(key) is str for key in value)
    if not members:
        out.write(text(value).encode("utf-8"))
        return
    total = sum(len(member) for member in value.values() if type(member) is list)
    done = 0
    if progress is not None:
        progress(done, total)
    out.write(b"{")
    for index, (key, member) in enumerate(value.items()):
        head = f"{',' if index else ''}{text(key)}:"
        if type(member) is not list:
            out.write((head + text(member)).encode("utf-8"))
            continue
        out.write((head + "[").encode("utf-8"))
        for start in range(0, len(member), WRITE_CHUNK):
            chunk = member[start : start + WRITE_CHUNK]
            out.write((("," if start else "") + text(chunk)[1:-1]).encode("utf-8"))
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        out.write(b"]")
    out.write(b"}")
