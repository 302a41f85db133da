"""The quickstart run folder, byte for byte: a restructure must not change what a run writes.

The digests below were taken from `synthgate run configs/quickstart.yaml` before the library
core was restructured (issue 11), and again when package versions left the samples' provenance
(issue 13: they are recorded in manifest.json only, so what a run writes no longer depends on
which extras are installed), and when text templates' dates came to count from the config's
`reference_date` instead of today (the new config field changes the batch id, so every sample
id and seed; checked against a run that kept the old id: only the texts' dates and the
provenance's `reference_date` differ). synthgate.db's rows also changed where measures did: the
blur measure is taken at half size (issue 12) and the text copy check measures word-shingle
Jaccard (issue 14), and over NFKC-folded text with each character of an unspaced script a word
(one ticket holding a Japanese city name had a sample_jaccard of 0.52; with the city six words
it shares less than the 0.5 the index measures from, and records none); nothing else in them.
text.jsonl and synthgate.db changed again when a surname stopped recording a gender where the
locale's surnames have none: the 12 tickets filled from `{PERSON:last_name}` (en_US, de_DE,
ja_JP) lost their `gender` attribute; nothing else in them.
Every file is hashed as it is, except manifest.json (its timings change every run and its
versions with the environment; both are dropped before hashing) and synthgate.db, which is
compared by the rows of its data tables: the schema gains tables (migrations, bookkeeping) without the
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
    "accepted.coco.json": "059716be7dd14caff37b0451a2851ec09f7732a02f174987996594aa65bf90dd",
    "coco.json": "059716be7dd14caff37b0451a2851ec09f7732a02f174987996594aa65bf90dd",
    "images/": "bbe3dd2fbdf739b1fc53e94a8d6800f7eedae45c2a192a76ee59e370982f88f3",
    "manifest.json": "1d963baafc96bd9eddfca0d918f46abce2b4ccfc38007f897a7178039e72dbc4",
    "report.md": "41eef0c6620df19d99c1f148817e60ef9085c1305e315ee737375a26cc73926a",
    "synthgate.db": "cf87ef8dee9903322efb46376895e7c973255d5156087b16f4f4278d847ab516",
    "text.jsonl": "01e34a7f00d7bd9afcd9e1989e3316c237fd9b8bfd6d904a690c12e786beb8bd",
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
