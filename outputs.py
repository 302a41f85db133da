"""Output folders, guarded: built beside the target under a temporary name, published by rename.

`prepare_out(out)` refuses a target that is a file, a symlink, a folder that synthgate did not
write (no marker file), one inside a folder synthgate wrote, one whose databases hold human
review decisions, or one that holds a file synthgate did not write there (`foreign_files`), and
returns a fresh temporary folder beside it (`Started`); `publish_out(temporary, out)` swaps the
finished folder into place, keeping the old one until the new one is there, and
`discard_out(started)` takes a failed build away with the folders made for it. A build holds
a lock on its temporary folder until it is published or discarded (`release_out`): a second
build of the same output while the first runs (two people balancing into one --out, a script
started twice) is refused, where it used to take the first one's folder for a leftover of a
stopped build and remove it under it; a folder a killed build left is free, and replaced. So a
failure
leaves nothing half-written, reviewed data is never replaced, and writing a folder again never
deletes a file of the user's: a notes.txt put into runs/my-batch/, an image added to an export
stops the rebuild (`check_out`, before any work starts, and `publish_out` once more, for a file
put there while the new folder was being made) with the files named, to be moved out first.
Which files a folder's last build wrote is foreign_files.py's to say.

`check_out_file(path, inputs=...)` does the same for a single file a command writes (`--json`,
`review export --out`, a calibrated rubric): never a database, never a file the work reads,
never a file in a folder synthgate wrote (`synthgate_folder`), new or not: it would be one of
that folder's files, or a file that stops the folder being written again.
`human_decision_count(db)` reads a database without creating anything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: builds of one output at once are not told apart there
    fcntl = None  # type: ignore[assignment]

from synthgate.errors import InputError, counted
from synthgate.files import reading_sqlite, special_file
from synthgate.foreign_files import (
    FOLDER_FILES,
    OWN_FOLDER,
    FolderAdvice,
    is_database,
    refuse_foreign_files,
    synthgate_folder,
    write_written_list,
)

# Bytes a file system takes in one name (ext4, APFS, NTFS: 255), and the most synthgate adds to
# an output's name for the temporary file or folder it writes beside it (".NAME.previous",
# mkstemp's ".NAME.XXXXXXXX.partial").
NAME_MAX = 255
TEMPORARY_AFFIXES = 24


def check_usable(path: Path, *, field: str = "out") -> None:
    """Refuse an output path no file system takes: a NUL byte, or a name longer than NAME_MAX
    bytes (the last one with room for its temporary name beside it); and one that ends in no
    name (`.`, `/`, `x/..`), which has no folder to write beside."""
    if "\x00" in str(path):
        raise InputError(field=field, value=repr(str(path)), problem="contains a NUL byte")
    if path.name in ("", ".."):  # ".", "/", "x/..": an output is written beside its name
        raise InputError(
            field=field,
            value=str(path) or "''",
            problem="names no file or folder of its own; give one (runs/my-batch, report.json)",
        )
    for part in path.parts:
        room = NAME_MAX - (TEMPORARY_AFFIXES if part == path.name else 0)
        if len(os.fsencode(part)) > room:
            raise InputError(
                field=field,
                value=str(path) if len(str(path)) <= 80 else f"{str(path)[:80]}...",
                problem=f"holds a name of {len(os.fsencode(part))} bytes; a file system takes "
                f"{NAME_MAX} (synthgate needs {TEMPORARY_AFFIXES} of them for the temporary "
                "name beside an output): choose a shorter name",
            )


def check_out(
    out: Path,
    *,
    marker: str = "manifest.json",
    what: str = "run",
    databases: str = "synthgate.db",
    files: bool = True,
    advice: FolderAdvice = OWN_FOLDER,
) -> None:
    """Refuse a target `out` that is a file or a symlink, a folder that is not a synthgate
    `what` (no `marker` file), one whose databases (`databases`, a glob) hold human
    decisions, or one that holds a file synthgate did not write there (`foreign_files`; not
    looked for again with `files=False`: a walk of every file, ~0.75 s for 100k images), with
    the fix `advice` gives (to whoever gave `out`, by default). Run it before any work starts.
    First, the `out` a failed publish left in .NAME.previous goes back (refused, said where it
    is, if it cannot)."""
    check_usable(out)
    previous = out.with_name(f".{out.name}.previous")
    if previous.is_dir() and not out.exists():
        # A publish stopped between its two renames: that folder is the only copy of `out`.
        try:
            previous.rename(out)
        except OSError as error:  # what stopped that publish stops this too: it stays there
            raise InputError(
                field="out",
                value=out,
                problem=f"the {what} it held is in {previous.name} beside it (left there by a "
                f"publish that failed) and could not be put back ({error.strerror or error})",
                fix=advice.fix(
                    "make the folder it is in writable, then run again",
                    action="make the folder it is in writable",
                ),
            ) from None
    if out.is_symlink():  # publish_out moves `out` aside, then deletes it: rmtree refuses links
        raise InputError(
            field="out",
            value=out,
            problem="is a symlink",
            fix=advice.fix(f"give a real folder (it points to {out.resolve()})"),
        )
    if out.exists() and not out.is_dir():
        raise InputError(
            field="out", value=out, problem="is a file", fix=advice.fix("choose a folder")
        )
    around = synthgate_folder(out.absolute().parent.resolve())
    if around is not None:
        folder, kind = around
        raise InputError(
            field="out",
            value=out,
            problem=f"lies inside the {kind} {folder}, which writing that {kind} again "
            "rebuilds whole (a folder it did not write there stops it)",
            fix=advice.fix("choose a folder outside it"),
        )
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise InputError(
            field="out",
            value=out,
            problem=f"folder exists and is not a synthgate {what}",
            fix=advice.fix("choose an empty or new folder"),
        )
    refuse_reviewed(out, what=what, databases=databases, advice=advice)
    if files and out.is_dir() and (out / marker).exists():
        refuse_foreign_files(out, marker=marker, what=what, advice=advice)


def refuse_reviewed(
    out: Path,
    *,
    what: str,
    databases: str,
    late: bool = False,
    advice: FolderAdvice = OWN_FOLDER,
) -> None:
    """Refuse to write the synthgate `what` in `out` again while its databases (`databases`, a
    glob) hold human review decisions, with the fix `advice` gives. `late`: said once the new
    folder is made, of decisions recorded meanwhile (a review of the old run while the new one
    was made)."""
    reviewed = sum(human_decision_count(db) for db in out.glob(databases)) if out.is_dir() else 0
    if not reviewed:
        return
    meanwhile = f" (recorded while the new {what} was made; it was not kept)" if late else ""
    raise InputError(
        field="out",
        value=out,
        problem=f"this {what} holds {counted(reviewed, 'human review decision')}{meanwhile} that "
        f"a new {what} would replace",
        fix=advice.fix("choose another folder (or export them first: synthgate review export)"),
    )


def refuse_out_holding(out: Path, *inputs: Path | None) -> None:
    """Refuse an output folder that holds one of the inputs (a config, a target or template
    file, the data it reads): replacing it would delete them. None stands for no input."""
    for given in inputs:
        if given is None:
            continue
        if given.resolve().is_relative_to(out.resolve()):
            raise InputError(
                field="out",
                value=out,
                problem=f"holds {given}, an input, which replacing it would delete; choose a "
                "new folder",
            )


def refuse_out_inside_images(out: Path, images_dir: Path) -> None:
    """Refuse an output folder inside the dataset's images folder: the output would then lie
    among the images a later balance, merge or export of the same dataset reads."""
    if out.absolute().resolve().is_relative_to(images_dir.resolve()):
        raise InputError(
            field="out",
            value=out,
            problem=f"lies inside the images folder {images_dir} (--images), among the "
            "dataset's own images; choose a folder outside it",
        )


def check_out_file(path: Path, *, field: str = "out", inputs: Sequence[Path] = ()) -> None:
    """Refuse a file target that must not be replaced: a folder, a database (a run's
    synthgate.db holds its samples and the human review decisions), one of the `inputs` the work
    reads (the written file would replace what it was made from), or any file inside a folder
    synthgate wrote (a run, a balance or merge output, an export): replacing one of its own
    breaks it, and any other, new or not, is deleted when that folder is written again. A file
    anywhere else passes. Run it before any work starts."""
    check_usable(path, field=field)
    if path.is_dir():
        raise InputError(field=field, value=path, problem="is a folder; give a file name")
    special = special_file(path)
    if special is not None:  # /dev/null, /dev/stdout: renaming the output onto it replaces it
        raise InputError(
            field=field, value=path, problem=f"is {special}, not a file; give a file name"
        )
    absolute = path.resolve()
    if not path.is_file():
        _refuse_inside_folder(path, absolute, field=field)
        return
    if is_database(absolute):
        decisions = human_decision_count(absolute)
        held = f", with {counted(decisions, 'human review decision')}," if decisions else ""
        raise InputError(
            field=field,
            value=path,
            problem=f"is a database{held} which this would overwrite; choose another file name",
        )
    _refuse_inside_folder(path, absolute, field=field)
    for read in inputs:
        with contextlib.suppress(OSError):  # an input that is not there is refused where read
            if path.samefile(read):
                raise InputError(
                    field=field,
                    value=path,
                    problem=f"is {read}, which this reads; choose another file name",
                )


def _refuse_inside_folder(path: Path, absolute: Path, *, field: str) -> None:
    """Refuse a file target inside a folder synthgate wrote: one of its files would break it,
    and a file of the user's own there, new or not, stops that folder being written again (the
    new folder replaces the old one whole, so `check_out` refuses while it holds such a file)."""
    found = synthgate_folder(absolute.parent)
    if found is None:
        return
    folder, kind = found
    inside = absolute.relative_to(folder)
    if path.is_file() and (len(inside.parts) > 1 or inside.name in FOLDER_FILES):
        problem = f"is a file of the {kind} {folder}, which this would overwrite"
    else:
        problem = (
            f"lies inside the {kind} {folder}, which the next {kind.split()[0]} into it "
            "rebuilds whole, and which a file it did not write stops"
        )
    raise InputError(
        field=field, value=path, problem=f"{problem}; write {inside.name} outside that folder"
    )


@dataclass
class Started:
    """An output being built: the temporary folder beside it, the folders above it that were
    made for it (outermost first), which `discard_out` takes away again, and the open folder
    whose lock tells other builds this one is at work (None where there are no locks, and once
    `release_out` let it go)."""

    folder: Path
    made: tuple[Path, ...]
    lock: int | None = None


def prepare_out(
    out: Path,
    *,
    marker: str = "manifest.json",
    what: str = "run",
    databases: str = "synthgate.db",
    checked: bool = False,
    advice: FolderAdvice = OWN_FOLDER,
) -> Started:
    """A fresh temporary folder beside `out`, once `check_out` has passed, locked until
    `release_out` (or `discard_out`). A temporary folder another build holds is refused; one
    nobody holds (a stopped build's) is replaced. Every refusal gives the fix `advice` gives:
    to whoever gave `out` by default; a server's batch gives its requester its own
    (api/batch_runner.py).

    `checked`: the caller's own `check_out` looked for foreign files before its work started,
    so they are not looked for again here (`publish_out` looks once more at the end, for a file
    put there meanwhile); the rest of `check_out` runs again."""
    check_out(out, marker=marker, what=what, databases=databases, files=not checked, advice=advice)
    temporary = out.with_name(f".{out.name}.partial")
    if temporary.is_symlink() or (temporary.exists() and not temporary.is_dir()):
        raise InputError(
            field="out",
            value=out,
            problem=f"{temporary} is in the way (the output is built under that name first)",
            fix=advice.fix("move it aside or remove it", action="move it aside or remove it"),
        )
    missing = [folder for folder in out.absolute().parents if not folder.exists()][::-1]
    made: list[Path] = []
    lock = None
    try:
        for folder in missing:
            try:
                folder.mkdir()
            except FileExistsError:  # another build made it meanwhile: theirs to keep
                continue
            made.append(folder)
        if temporary.exists():
            left = _locked(temporary, out, advice)  # refused while another build holds it
            try:
                shutil.rmtree(temporary)
            finally:
                _unlock(left)
        try:
            temporary.mkdir()
        except FileExistsError:  # another build made its own there since
            raise _in_use(out, temporary, advice) from None
        lock = _locked(temporary, out, advice)
    except OSError as error:
        _remove_made(made)
        raise InputError(
            field="out",
            value=out,
            problem=f"cannot write there ({error.strerror})",
            fix=advice.fix("choose a folder you can write to"),
        ) from None
    except InputError:
        _remove_made(made)
        raise
    return Started(temporary, tuple(made), lock)


# What flock raises on a file system that has no locks (NFS without lockd, some FUSE and SMB
# mounts), or none for a folder (an NFS client emulates flock with a write lock, which a folder,
# open for reading, cannot take: EBADF): the build goes on unlocked there, as on Windows,
# rather than not at all.
NO_LOCKS = frozenset({errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EBADF})


def _locked(folder: Path, out: Path, advice: FolderAdvice) -> int | None:
    """`folder` opened and locked for this build (flock: the lock goes with the process, so a
    killed build holds none), or `_in_use` when another build holds it, or removed or replaced
    it since (the lock is of the folder opened, which is then no longer the one of that name).
    None where there are no locks."""
    if fcntl is None:
        return None
    try:
        handle = os.open(folder, os.O_RDONLY)
    except FileNotFoundError:
        raise _in_use(out, folder, advice) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(handle)
        if error.errno in NO_LOCKS:
            return None
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise _in_use(out, folder, advice) from None
        raise
    if not _same_folder(handle, folder):
        os.close(handle)
        raise _in_use(out, folder, advice)
    return handle


def _unlock(lock: int | None) -> None:
    if lock is not None:
        os.close(lock)  # closing the folder lets its lock go


def _in_use(out: Path, temporary: Path, advice: FolderAdvice) -> InputError:
    return InputError(
        field="out",
        value=out,
        problem=f"another synthgate command is writing it right now (in {temporary})",
        fix=advice.wait(
            "wait until that command has finished, or choose another folder",
            until="until that command has finished",
        ),
    )


def release_out(started: Started) -> None:
    """Let other builds of the output in again, once this one is published (or discarded);
    a second call does nothing."""
    lock, started.lock = started.lock, None
    _unlock(lock)


def discard_out(started: Started) -> None:
    """Take away what a build that failed left: its temporary folder, and the folders made for
    it that nothing else has been put into since (--out new/x/y leaves no new/x/); its lock
    goes last, once nothing of it is left for another build to take. A folder of that name
    that is not the one it locked (it was published, and another build made its own) stays."""
    if started.lock is None or _same_folder(started.lock, started.folder):
        shutil.rmtree(started.folder, ignore_errors=True)
    _remove_made(started.made)
    release_out(started)


def _same_folder(lock: int, folder: Path) -> bool:
    """Whether `folder` is still the folder the open `lock` is of."""
    try:
        named = os.stat(folder)
    except OSError:
        return False
    opened = os.fstat(lock)
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


def _remove_made(made: Sequence[Path]) -> None:
    for folder in reversed(made):
        try:
            folder.rmdir()  # only an empty folder goes
        except OSError:
            return


@contextlib.contextmanager
def building_out(
    out: Path,
    *,
    doing: str,
    marker: str,
    what: str,
    databases: str = "synthgate.db",
    checked: bool = False,
) -> Iterator[Path]:
    """Within: the output is built in the temporary folder this yields (`prepare_out`, with
    `marker`, `what`, `databases` and `checked`); at the end the files in it are listed in its
    WRITTEN_LIST and it is published as `out` (`publish_out`). On any failure the
    temporary folder goes and `out` stays as it was; an OSError (an image that cannot be read, a
    full disk) becomes an InputError naming the file as it would be in `out`, and what was being
    done (`doing`, e.g. "exporting to yolo/")."""
    started = prepare_out(out, marker=marker, what=what, databases=databases, checked=checked)
    temporary = started.folder
    try:
        yield temporary
        write_written_list(temporary)
        publish_out(temporary, out, marker=marker, what=what, databases=databases)
        release_out(started)
    except BaseException as error:
        discard_out(started)
        if isinstance(error, OSError):
            raise InputError(
                f"{_failed_path(error, temporary, out)}: {error.strerror or error} while "
                f"{doing}; nothing was written (check that the images can be read and that the "
                "disk has room, then run again)"
            ) from None
        raise


def _failed_path(error: OSError, temporary: Path, out: Path) -> Path:
    """The file an OSError is about, named as it will be in `out` (not the temporary folder)."""
    inside = file_in(error, temporary)
    if inside is not None:
        return out / inside
    if not isinstance(error.filename, str | bytes | os.PathLike):
        return out
    return Path(os.fsdecode(error.filename))


def file_in(error: OSError, folder: Path) -> Path | None:
    """The file in `folder` (a build's temporary folder) that an OSError is about, relative to
    it (`.`: the folder itself); None when it names another file, or none."""
    if not isinstance(error.filename, str | bytes | os.PathLike):
        return None
    path = Path(os.fsdecode(error.filename))
    return path.relative_to(folder) if path.is_relative_to(folder) else None


def publish_out(
    temporary: Path,
    out: Path,
    *,
    marker: str | None = None,
    what: str = "output",
    databases: str | None = None,
    advice: FolderAdvice = OWN_FOLDER,
) -> None:
    """Swap the finished folder into place; the old run goes only once the new one is there.

    Given the `marker` of the synthgate `what` in `out`, refuse first if a file synthgate did
    not write was put into `out` while the new one was made (`refuse_foreign_files`: `check_out`
    saw none before), or, given its `databases`, if human review decisions were recorded in
    them meanwhile (`refuse_reviewed`), with the fix `advice` gives: then nothing changes
    here, and the caller discards `temporary`. A failed rename into place puts the old folder
    back and raises its OSError; if putting it back fails too, the InputError says where the
    old folder was left (`check_out`, the first step of the next build of `out`, puts it back)."""
    if out.is_dir() and not out.is_symlink():
        if databases is not None:
            refuse_reviewed(out, what=what, databases=databases, late=True, advice=advice)
        if marker is not None:
            refuse_foreign_files(out, marker=marker, what=what, late=True, advice=advice)
    previous = out.with_name(f".{out.name}.previous")
    if previous.exists():
        shutil.rmtree(previous)
    if out.exists():
        out.rename(previous)
    try:
        temporary.rename(out)
    except OSError as error:
        if previous.exists() and not out.exists():
            try:
                previous.rename(out)  # the old folder goes back: a failed publish changes nothing
            except OSError as restoring:
                raise InputError(
                    field="out",
                    value=out,
                    problem=f"{error.strerror or error} while putting the finished {what} in "
                    f"place; nothing was published, and the {what} it was to replace could not "
                    f"be put back ({restoring.strerror or restoring}): it is in {previous.name} "
                    f"beside it, and the next synthgate command that writes {out.name} puts it "
                    "back",
                    fix=advice.fix(
                        "make the folder it is in writable, then run again",
                        action="make the folder it is in writable",
                    ),
                ) from None
        raise
    shutil.rmtree(previous, ignore_errors=True)  # the new folder is in place either way


def human_decision_count(path: Path) -> int:
    """How many human review decisions a run database holds (0 if it has no review tables),
    those a lead took back (`review reopen`: review_taken_back) too: they are kept, not lost.

    Read without creating anything, so a run folder can be checked before it is replaced.
    """
    if not path.is_file():
        return 0
    # The standard library's sqlite3: a command checking its --out or --json target need not
    # load SQLAlchemy.
    try:
        with contextlib.closing(reading_sqlite(path)) as connection:
            tables = [
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name IN ('review_decisions', 'review_taken_back')"
                )
            ]
            return sum(
                int(connection.execute(f"SELECT COUNT(*) FROM {name}").fetchone()[0])
                for name in sorted(tables)
            )
    except sqlite3.DatabaseError as error:
        raise InputError(
            f"{path}: not a readable SQLite database ({error}); move it aside, or choose "
            "another output"
        ) from None
