"""`synthgate validate --json` of COCO's own coco-tiny-val2017, byte for byte: a change to how
files are read (sizes, ids, streaming) must not change what validate says of a file that gives
every field as COCO does.

The data is not in the repository: it is looked for as shared/data/coco-tiny-val2017 beside the
repository or a folder above it (where bench/ finds it), or where SYNTHGATE_COCO_TINY names; the
test is skipped without it. The digests were taken before entries without width and height took
their image file's size (session 30). A change of these digests is a change of behaviour: say
so in its commit.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthgate.cli import app

GOLDEN = {
    "labels": "62314cf10e45e9056993c69e410aaebe54bc87a689c3b61c60c29244ef2ea28e",
    "images": "db1f89108c450f1764f324e61d63e62bddf35c91b05dcf2698550084c107fc80",
}


def coco_tiny() -> Path | None:
    named = os.environ.get("SYNTHGATE_COCO_TINY")
    places = [Path(named)] if named else []
    places += [p / "shared" / "data" / "coco-tiny-val2017" for p in Path(__file__).parents]
    return next((p for p in places if (p / "annotations.json").is_file()), None)


@pytest.mark.parametrize("kind", GOLDEN)
def test_validate_json_of_coco_tiny_is_unchanged(tmp_path: Path, kind: str) -> None:
    data = coco_tiny()
    if data is None:
        pytest.skip("no shared/data/coco-tiny-val2017 (set SYNTHGATE_COCO_TINY)")
    out = tmp_path / "report.json"
    arguments = ["validate", str(data / "annotations.json"), "--json", str(out)]
    if kind == "images":
        arguments += ["--images", str(data / "images")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(out.read_bytes()).hexdigest() == GOLDEN[kind]
