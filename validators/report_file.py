"""The `synthgate validate --json` document, written as samples are judged: `ReportFile`.

The document is `{"rubric": ..., "summary": {...}, "samples": [row, ...]}`, the summary first
although it is known only at the end. Rows go to a temporary part file as they come, so a
million samples never sit in memory; `close` writes the head, copies the rows after it and
renames the whole into place. Until then the destination is untouched, and on any failure
(`abort`) both temporary files go: never a half-written document. The bytes are those
`json.dumps(document, ensure_ascii=False)` gives, but for a row or head holding a lone surrogate
read from the judged file (`files.json_text`: kept as its escape).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from synthgate.errors import InputError
from synthgate.files import json_text


def _temporary(path: Path, suffix: str, field: str) -> tuple[IO[str], Path]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as error:
        raise InputError(
            field=field, value=path, problem=f"cannot write there ({error.strerror})"
        ) from None
    return os.fdopen(handle, "w", encoding="utf-8"), Path(name)


class ReportFile:
    """One `--json` document, rows streamed to a part file; `field` names the parameter the
    path came from in errors."""

    def __init__(self, path: Path | str, *, field: str = "json") -> None:
        self.path = Path(path)
        self.field = field
        if self.path.is_dir():
            raise InputError(field=field, value=self.path, problem="is a folder; give a file name")
        self._rows, self._rows_path = _temporary(self.path, ".rows.partial", field)
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self._rows.write((", " if self.count else "") + json_text(row))
        self.count += 1

    def close(self, rubric: str, summary: dict[str, Any]) -> None:
        """Write the document and rename it into place."""
        self._rows.close()
        out, partial = _temporary(self.path, ".partial", self.field)
        try:
            with out:
                out.write(
                    f'{{"rubric": {json_text(rubric)}, "summary": {json_text(summary)}, '
                    '"samples": ['
                )
                with open(self._rows_path, encoding="utf-8") as rows:
                    shutil.copyfileobj(rows, out, 1 << 20)
                out.write("]}")
            os.chmod(partial, 0o644)  # mkstemp makes 0600; outputs are for sharing
            os.replace(partial, self.path)
        except OSError as error:
            partial.unlink(missing_ok=True)
            raise InputError(
                field=self.field, value=self.path, problem=f"cannot write there ({error.strerror})"
            ) from None
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            self._rows_path.unlink(missing_ok=True)

    def abort(self) -> None:
        """Leave nothing behind; the destination is as it was."""
        self._rows.close()
        self._rows_path.unlink(missing_ok=True)

    def __enter__(self) -> ReportFile:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            self.abort()
