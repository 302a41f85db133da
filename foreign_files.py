"""The foreign-file guard: which files in a folder synthgate wrote are not synthgate's.

`synthgate_folder(path)` finds the folder synthgate wrote (a run, a balance or merge output, an
export) that a path lies in; `foreign_files(out, marker=...)` names the files in such a folder
that its last build did not write, and `refuse_foreign_files` refuses to write the folder again
while it holds one (outputs.py asks, before a build starts and again as it publishes);
`write_written_list` and `written_list` write and read the list of the files a build wrote;
`is_database(path)`: whether a file is an SQLite database, read from its header.
`FolderAdvice`: what a refusal of an output folder tells its reader to do (here and in
outputs.py); `OWN_FOLDER`, the advice to whoever gave the folder, is every refusal's default.

What a folder's last build wrote is read from the folder itself:
- a run: manifest.json's `outputs` (its files at the top; the list existed before this check)
  and the `uri` of each sample in its synthgate.db (its images/): nothing is added to a run
  folder, whose files the golden tests hash;
- an export, a balance or a merge output (outputs.py's `building_out`): `.synthgate-files`, the list of
  every file the build wrote, by folder (`WRITTEN_LIST`), written last into the temporary
  folder. Their own files do not say it all: a YOLO export's labels name their images by stem
  only, so an image added with its label file would pass for one of the export's; a balance
  output's plots/ are named nowhere. A hidden file of its own changes none of the files these
  folders had (their markers included) and no tool that reads them (Ultralytics, FiftyOne,
  datumaro, pycocotools look for the files they name). A folder written before the list was
  kept (none there) is checked by the names of its files at the top (`FOLDER_FILES`, its
  marker), all in its subfolders taken as its own.
Files synthgate writes into a folder later, and OS litter, are never the user's: the -wal,
-shm and -journal files SQLite keeps beside a database of the folder (`review`, `serve` and
every command that reads a run's decisions open it), and .DS_Store, Thumbs.db, desktop.ini.
Nothing else writes into such a folder once it is published: every file a command writes
(`--json`, `review export --out`, a calibrated rubric) is refused there by `check_out_file` (outputs.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from synthgate.errors import InputError, counted, printable
from synthgate.files import reading_sqlite

# Files that mark a folder synthgate wrote, and what that folder is (a run has its database too).
BALANCE_MARKER = "balance.json"
MERGE_MARKER = "merge.json"
EXPORT_MARKER = ".synthgate-export.json"
FOLDER_MARKERS = (
    (BALANCE_MARKER, "balance output"),
    (MERGE_MARKER, "merge output"),
    (EXPORT_MARKER, "export"),
)
# A balance or merge output holds its merged file beside its marker: a user's own balance.json
# or merge.json (a common name) alone marks no synthgate folder.
MERGED_FILES = ("merged.coco.json", "merged.jsonl")
# The list of the files a build wrote (module doc), in every folder `building_out` publishes.
WRITTEN_LIST = ".synthgate-files"
# The files such folders are made of, at their top (everything in their subfolders is theirs).
FOLDER_FILES = frozenset(
    {
        "manifest.json",
        "synthgate.db",
        "coco.json",
        "accepted.coco.json",
        "text.jsonl",
        "report.md",
        "report.html",
        "mined_templates.yaml",
        BALANCE_MARKER,
        MERGE_MARKER,
        "merged.coco.json",
        "merged.jsonl",
        EXPORT_MARKER,
        WRITTEN_LIST,
        "data.yaml",
        "classes.txt",
        "labelmap.txt",
    }
)
SQLITE_HEADER = b"SQLite format 3\x00"
# What SQLite keeps beside a database while it is open (and after a crash): a folder's database
# is opened by review, serve and every command that reads a run's decisions.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
# What file managers leave in a folder that is looked at: nobody's data.
OS_LITTER = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
# Files a refusal names; the rest are counted.
FOREIGN_SHOWN = 5


@dataclass(frozen=True)
class FolderAdvice:
    """What a refusal of an output folder tells its reader to do. `OWN_FOLDER` speaks to whoever
    gave the folder (`--out`, the library's `out`): each refusal's own words, to choose another
    folder or to fix it and run again. Where the reader gave no folder (the requester of a batch
    posted to `synthgate serve`, whose run folder is in the runs folder the server's operator
    chose: api/batch_runner.py), a refusal says to tell `fixed_by`, and what they should do,
    then to try again as `again` says."""

    fixed_by: str | None = None
    again: str = "run again"

    def fix(self, own: str, *, action: str | None = None) -> str:
        """`own`, a refusal's advice to whoever gave the folder; where someone else did, to tell
        them (to do `action`), then to try again."""
        if self.fixed_by is None:
            return own
        told = f"tell {self.fixed_by}" + (f" to {action}" if action else "")
        return f"{told}, then {self.again}"

    def wait(self, own: str, *, until: str) -> str:
        """`own`, a refusal's advice to whoever gave the folder; where someone else did, to wait
        `until` it passes, then to try again."""
        return own if self.fixed_by is None else f"wait {until}, then {self.again}"


OWN_FOLDER = FolderAdvice()


def synthgate_folder(path: Path) -> tuple[Path, str] | None:
    """The folder synthgate wrote that `path` lies in (itself or its nearest parent), and its
    kind: a run (manifest.json beside synthgate.db), a balance or merge output (its marker
    beside a merged file), an export."""
    for folder in [path, *path.parents]:
        if (folder / "manifest.json").is_file() and (folder / "synthgate.db").is_file():
            return folder, "run"
        for marker, kind in FOLDER_MARKERS:
            if (folder / marker).is_file() and (
                marker == EXPORT_MARKER or any((folder / name).is_file() for name in MERGED_FILES)
            ):
                return folder, kind
    return None


def is_database(path: Path) -> bool:
    """Whether `path` is an SQLite database file (read from its header)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def foreign_files(out: Path, *, marker: str, advice: FolderAdvice = OWN_FOLDER) -> list[str]:
    """The files in the synthgate folder `out` (marked by `marker`) that its last build did not
    write and synthgate did not put there since (module doc): each by its path relative to
    `out`, with / between folders, sorted. A link counts as a file (synthgate writes none);
    an empty folder holds nobody's data and is not named. A folder that cannot be read through
    is refused with `advice`."""
    if not (out / marker).is_file():
        # no build of synthgate's is there: a folder made (or filled) since `check_out` found
        # none, and every file in it is someone's
        return sorted(name for name in _entries(out, advice) if not _os_litter(name))
    ours = _written_by_synthgate(out, marker)
    return sorted(
        name
        for name in _entries(out, advice)
        if not (ours(name) or _database_side_file(name, ours) or _os_litter(name))
    )


def refuse_foreign_files(
    out: Path, *, marker: str, what: str, late: bool = False, advice: FolderAdvice = OWN_FOLDER
) -> None:
    """Refuse to write the synthgate `what` in `out` again while it holds a file synthgate did
    not write (`foreign_files`): up to FOREIGN_SHOWN of them are named, the rest counted, and
    the fix given as `advice` says. `late`: said once the new folder is made, of a file put
    there meanwhile."""
    found = foreign_files(out, marker=marker, advice=advice)
    if not found:
        return
    shown = ", ".join(printable(name) for name in found[:FOREIGN_SHOWN])
    if len(found) > FOREIGN_SHOWN:
        shown += f" and {len(found) - FOREIGN_SHOWN} more"
    files = counted(len(found), "file")
    meanwhile = f", put there while the new {what} was made," if late else ","
    kept = f"; the new {what} was not kept and {out} is as it was" if late else ""
    raise InputError(
        field="out",
        value=out,
        problem=f"holds {files} synthgate did not write ({shown}){meanwhile} which writing this "
        f"{what} again would delete{kept}",
        fix=advice.fix(
            f"move {'it' if len(found) == 1 else 'them'} out of {out}, then run again",
            action=f"move {'it' if len(found) == 1 else 'them'} out of {out}",
        ),
    )


def write_written_list(folder: Path) -> None:
    """List every file in `folder`, a build about to be published, in its WRITTEN_LIST: by the
    folder each is in ("." for the top), in JSON (ASCII: any name a file system gives
    round-trips)."""
    folders: dict[str, list[str]] = {}
    for name in _entries(folder):
        where, _, base = name.rpartition("/")
        folders.setdefault(where or ".", []).append(base)
    listing = {
        "about": "the files synthgate wrote into this folder, by the folder they are in: it "
        "reads this list before it writes the folder again, and refuses while the folder holds "
        "a file that is not on it, so that no file of yours is deleted",
        "files": {where: sorted(names) for where, names in sorted(folders.items())},
    }
    (folder / WRITTEN_LIST).write_text(json.dumps(listing, indent=0) + "\n", encoding="utf-8")


def written_list(folder: Path) -> frozenset[str] | None:
    """The files `folder`'s WRITTEN_LIST names (paths as `foreign_files` gives them); None when
    there is no such list (a folder of an earlier synthgate) or it cannot be read."""
    try:
        listing = json.loads((folder / WRITTEN_LIST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    folders = listing.get("files") if isinstance(listing, dict) else None
    if not isinstance(folders, dict):
        return None
    names: set[str] = set()
    for where, inside in folders.items():
        if not isinstance(inside, list):
            return None
        prefix = "" if where == "." else f"{where}/"
        names.update(prefix + name for name in inside if isinstance(name, str))
    return frozenset(names)


def _written_by_synthgate(out: Path, marker: str) -> Callable[[str], bool]:
    """Whether a path in `out` (as `_entries` gives it) is one its last build wrote: the folder's
    WRITTEN_LIST; a run's manifest.json and database (with the database gone or unreadable,
    what lies in its images/); else (a folder of an earlier synthgate) its marker and the files
    of FOLDER_FILES at the top, and everything in its subfolders."""
    listed = written_list(out)
    if listed is not None:
        return lambda name: name == WRITTEN_LIST or name in listed
    if marker == "manifest.json":  # a run folder (foreign_files found its manifest)
        top = _manifest_outputs(out / "manifest.json")
        database = out / "synthgate.db"
        images = _sample_files(database) if database.is_file() else None

        def in_run(name: str) -> bool:
            if "/" not in name:
                return name in top if top is not None else name in FOLDER_FILES
            return name in images if images is not None else name.startswith("images/")

        return in_run
    return lambda name: "/" in name or name in FOLDER_FILES or name == marker


def _manifest_outputs(manifest: Path) -> frozenset[str] | None:
    """The files at the top of a run folder, as its manifest.json lists them (`outputs`)."""
    try:
        outputs = json.loads(manifest.read_text(encoding="utf-8")).get("outputs")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(outputs, list) or not all(isinstance(name, str) for name in outputs):
        return None
    return frozenset([*outputs, "manifest.json"])


def _sample_files(database: Path) -> frozenset[str] | None:
    """The files of a run's samples (their `uri`: images/<key>.png), read from its database;
    None when they cannot be read."""
    try:
        with contextlib.closing(reading_sqlite(database)) as connection:
            rows = connection.execute("SELECT json_extract(data, '$.uri') FROM samples").fetchall()
    except sqlite3.Error:
        return None
    return frozenset(uri for (uri,) in rows if isinstance(uri, str))


def _database_side_file(name: str, ours: Callable[[str], bool]) -> bool:
    """Whether `name` is a file SQLite keeps beside one of the folder's own databases."""
    for suffix in SQLITE_SIDE_FILES:
        base = name.removesuffix(suffix)
        if base != name and base.endswith(".db") and ours(base):
            return True
    return False


def _os_litter(name: str) -> bool:
    return name.rpartition("/")[2] in OS_LITTER


def _entries(folder: Path, advice: FolderAdvice = OWN_FOLDER) -> Iterator[str]:
    """Every entry in `folder` but its folders, at any depth: files, links (to a folder too),
    anything else; by the path relative to `folder`, with / between folders."""

    def unreadable(error: OSError) -> None:
        raise InputError(
            field="out",
            value=folder,
            problem=f"cannot be read through ({error.filename}: {error.strerror}), so whether "
            "it holds files of yours is unknown",
            fix=advice.fix("make it readable, or choose another folder", action="make it readable"),
        )

    for top, folders, files in os.walk(folder, onerror=unreadable):
        where = os.path.relpath(top, folder)
        prefix = "" if where == os.curdir else where.replace(os.sep, "/") + "/"
        yield from (prefix + name for name in files)
        yield from (prefix + name for name in folders if os.path.islink(os.path.join(top, name)))
