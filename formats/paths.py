"""File names read from dataset files, confined to the folder they are relative to.

A COCO `file_name` (or any path a dataset file names) is data, not a command: a file that says
`../../../../etc/passwd` or `/home/someone/.ssh/id_rsa` must not make synthgate read, link or
copy that file. `confinement_problem(name)` says why a name cannot be a file inside its folder
(absolute, a `..` part, empty, a NUL byte), `confined_path(root, name)` is the one way such a
name becomes a path on disk: `root / name`, or an InputError naming the file name and the fix.

The check is on the name itself, so it holds whether or not the file exists and before anything
is read. Symbolic links a user placed inside the folder are followed: they are the user's own
choice, not something a dataset file can introduce.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

from synthgate.errors import InputError


def confinement_problem(name: object) -> str | None:
    """Why `name` cannot name a file inside a folder, or None when it can."""
    if not isinstance(name, str) or not name:
        return "is missing or empty"
    if "\x00" in name:
        return "holds a NUL character"
    windows = PureWindowsPath(name)
    if PurePosixPath(name).is_absolute() or windows.drive or windows.root:
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts or ".." in windows.parts:
        return "climbs out of its folder with '..'"
    return None


def confined_path(root: Path, name: str, *, what: str = "file_name") -> Path:
    """`root / name`, once `name` is known to stay inside `root` (else an InputError)."""
    problem = confinement_problem(name)
    if problem is not None:
        raise InputError(
            f"{what} {name!r} {problem}: file names in a dataset are relative to its images "
            f"folder ({root}) and stay inside it; fix the file name, or move the image into "
            "that folder"
        )
    return root / name


def missing_hint(root: Path, name: str) -> str:
    """Why a file name a dataset gives is not found under `root`, where the file seems to be
    there under another spelling: a Windows path ("sub\\x.jpg"), or the name in another Unicode
    form than the file's (macOS tools write decomposed accents). "" when there is no such file.
    Only said, never taken: the dataset names its files as they are, and exports keep them."""
    if "\\" in name and (root / name.replace("\\", "/")).is_file():
        return "; the name holds backslashes (a Windows path): write it with / as on disk"
    for form in ("NFC", "NFD"):
        other = unicodedata.normalize(form, name)
        if other != name and (root / other).is_file():
            return (
                f"; a file of this name in another Unicode form ({form}) is there: write the "
                "file_name as the file is named on disk"
            )
    return ""
