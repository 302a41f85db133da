"""Reading and writing the files users hand us, with errors that name the file and the fix.

- `load_yaml(path, what=...)`: a YAML file, with the line and column of a syntax error.
- `dumps(value)`: compact, order-preserving JSON, the form of every JSON file synthgate writes.
- `write_atomic(path, text | bytes)`: through a temporary name beside the target, then a rename,
  so a reader never sees half a file and a failure leaves nothing behind.

Named `files`, not `io`: a top-level `io.py` would shadow the standard library when Python runs
from the repository root.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from synthgate.errors import InputError


def _readable(path: Path, what: str) -> Path:
    if path.is_dir():
        raise InputError(f"{path}: is a folder; pass the {what} file itself")
    if not path.is_file():
        raise InputError(f"{path}: {what} not found; check the path")
    return path


def dumps(value: Any) -> str:
    """Compact, order-preserving JSON: every output line goes through here (deterministic)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_yaml(path: Path | str, *, what: str = "YAML file") -> Any:
    """Parse a YAML file; a missing file or a syntax error is an `InputError` naming it."""
    path = _readable(Path(path), what)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InputError(f"{path}: YAML syntax error{where}: {problem}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None


def write_atomic(path: Path | str, content: str | bytes, *, field: str = "out") -> None:
    """Write `content` to `path` through a unique temporary file and a rename.

    Concurrent writers never share a temporary name; on any failure the temporary file is
    removed and the error names the field (parameter or option) the path came from.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(field=field, value=path, problem="is a folder; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".partial", dir=path.parent
        )
    except OSError as error:
        raise InputError(
            field=field, value=path, problem=f"cannot write there ({error.strerror})"
        ) from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.chmod(partial, 0o644)  # mkstemp makes 0600; outputs are for sharing
        os.replace(partial, path)
    except OSError as error:
        Path(partial).unlink(missing_ok=True)
        raise InputError(
            field=field, value=path, problem=f"cannot write there ({error.strerror})"
        ) from None
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
