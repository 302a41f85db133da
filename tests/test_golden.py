"""The quickstart run folder, byte for byte: a restructure must not change what a run writes.

The digests below were taken from `synthgate run configs/quickstart.yaml` before the library
core was restructured (issue 11), and again when package versions left the samples' provenance
(issue 13: they are recorded in manifest.json only, so what a run writes no longer depends on
which extras are installed). Every file is hashed as it is, except manifest.json (its timings
change every run and its versions with the environment; both are dropped before hashing) and
synthgate.db, which is compared
by the rows of its data tables: the schema gains tables (migrations, bookkeeping) without the
data changing. Both record the config with the template file's absolute path, which depends on
where the repository lies: it is replaced by `<package>` before hashing. A change of these
digests is a change of behaviour: say so in its commit.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from synthgate.cli import app

PACKAGE = Path(__file__).resolve().parents[1]

GOLDEN = {
    "accepted.coco.json": "25cb540dd746ca480f1d3c6898391901f4ffcef2eb68b6007c297e486e7a81db",
    "coco.json": "25cb540dd746ca480f1d3c6898391901f4ffcef2eb68b6007c297e486e7a81db",
    "images/": "4965939eb950d458d270542cdd89467509a7c4fae43693afaf25914fa2d3836d",
    "manifest.json": "be7505aa48bb2c10d6b783e2f94a8ad77b664fd7ca9f8a6cf8f65f8a22da5677",
    "report.md": "64373c430cc45108031dde3df8859161c191f35428c1b47bdad4270f8b23538a",
    "synthgate.db": "cf853a85c99250f70a7d59e80aa8b690966cf0840120454e74321b3034dc11ee",
    "text.jsonl": "f8fa5e153cd7303f0e5b1f6706e94bfadc54c64354bf7ee1b5b29400c77c11c2",
}

DATA_TABLES = ("batches", "samples")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def database_digest(path: Path) -> str:
    """The rows of the data tables, in primary-key order: what a run database holds."""
    connection = sqlite3.connect(f"file:{path}?immutable=1", uri=True)  # writes nothing
    try:
        rows = {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in DATA_TABLES
        }
    finally:
        connection.close()
    return _sha(_placed(json.dumps(rows, sort_keys=True)))


def _placed(text: str) -> bytes:
    """Text with this checkout's path replaced, so the digest holds wherever it lies."""
    return text.replace(str(PACKAGE), "<package>").encode()


def folder_digests(folder: Path) -> dict[str, str]:
    """{file: sha256} of a run folder; images/ as one digest over its names and bytes."""
    digests: dict[str, str] = {}
    images = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(folder).as_posix()
        if name.startswith("images/"):
            images.update(name.encode() + b"\0" + path.read_bytes())
        elif name == "manifest.json":
            manifest = json.loads(path.read_text(encoding="utf-8"))
            manifest.pop("timings")
            manifest.pop("versions")  # the installed packages: what the run ran with
            digests[name] = _sha(_placed(json.dumps(manifest, sort_keys=True)))
        elif name == "synthgate.db":
            digests[name] = database_digest(path)
        else:
            digests[name] = _sha(path.read_bytes())
    digests["images/"] = images.hexdigest()
    return digests


def test_quickstart_run_folder_matches_its_golden_digests(tmp_path: Path) -> None:
    out = tmp_path / "quickstart"
    result = CliRunner().invoke(
        app, ["run", str(PACKAGE / "configs" / "quickstart.yaml"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert folder_digests(out) == GOLDEN
