"""`write_json_atomic`: the bytes of `dumps(value) + "\\n"`, written a list chunk at a time."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgate import files
from synthgate.errors import InputError
from synthgate.files import dumps, write_json_atomic

CHUNK = 3  # list entries a piece in these tests, so that short lists take several pieces

texts = st.text(alphabet=st.sampled_from(["a", "é", "\\", '"', "\n", "\ud800", "\udc00", "😀"]))
numbers = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=8), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=30,
)
keys = st.one_of(texts, st.integers(0, 9), st.booleans(), st.none())
coco_like = st.dictionaries(
    st.sampled_from(["info", "images", "annotations", "categories", "é"]),
    st.one_of(st.lists(values, max_size=12), values),
    max_size=5,
)
top_levels = st.one_of(coco_like, values, st.dictionaries(keys, values, max_size=4))


def _dumped(value: Any, allow_nan: bool) -> bytes | type[Exception]:
    try:
        return (dumps(value, allow_nan=allow_nan) + "\n").encode("utf-8")
    except ValueError:
        return ValueError


@settings(max_examples=400, deadline=None)
@given(value=top_levels, allow_nan=st.booleans())
def test_the_file_holds_the_bytes_dumps_writes(
    value: Any, allow_nan: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # lists cut into pieces of CHUNK entries, keys that are not strings, lone surrogates (the
    # whole file escaped, as dumps does), NaN refused or written: the same bytes, or the same
    # refusal with nothing left at the path
    path = tmp_path_factory.mktemp("out") / "out.json"
    path.write_bytes(b"before")
    expected = _dumped(value, allow_nan)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(files, "WRITE_CHUNK", CHUNK)
        if expected is ValueError:
            with pytest.raises(ValueError, match="Out of range float values are not JSON"):
                write_json_atomic(path, value, allow_nan=allow_nan)
            assert path.read_bytes() == b"before"
            assert [p.name for p in path.parent.iterdir()] == ["out.json"]
        else:
            write_json_atomic(path, value, allow_nan=allow_nan)
            assert path.read_bytes() == expected


@pytest.fixture
def monkeypatch_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "WRITE_CHUNK", CHUNK)


def test_progress_counts_the_entries_of_the_lists_as_they_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, monkeypatch_chunk: None
) -> None:
    coco = {
        "info": {"year": 2026},
        "images": [{"id": i} for i in range(4)],
        "annotations": [{"id": i, "image_id": i % 4} for i in range(7)],
        "categories": [{"id": 1, "name": "cat"}],
    }
    events: list[tuple[int, int]] = []
    pieces: list[bytes] = []
    original = files.AtomicFile.write

    def write(self: files.AtomicFile, data: bytes) -> None:
        pieces.append(data)
        original(self, data)

    monkeypatch.setattr(files.AtomicFile, "write", write)
    path = tmp_path / "coco.json"
    write_json_atomic(path, coco, progress=lambda done, total: events.append((done, total)))
    whole = (json.dumps(coco, separators=(",", ":")) + "\n").encode()
    assert path.read_bytes() == whole == b"".join(pieces)
    # 12 entries: images in pieces of 3 (3, 4), annotations (7, 10, 11), the category (12)
    assert events == [(n, 12) for n in (0, 3, 4, 7, 10, 11, 12)]
    # written as it goes: no piece holds more than 3 entries of a list
    assert max(piece.count(b'"id"') for piece in pieces) == 3


def test_a_lone_surrogate_in_a_late_piece_writes_the_file_again_escaped(
    tmp_path: Path, monkeypatch_chunk: None
) -> None:
    coco = {"images": [{"file_name": f"é{i}.png"} for i in range(10)], "categories": ["\udc00"]}
    events: list[tuple[int, int]] = []
    path = tmp_path / "coco.json"
    write_json_atomic(path, coco, progress=lambda done, total: events.append((done, total)))
    assert path.read_bytes() == (json.dumps(coco, separators=(",", ":")) + "\n").encode()
    assert path.read_bytes().isascii()
    # counted from 0 again for the second writing
    assert events == [(n, 11) for n in (0, 3, 6, 9, 10, 0, 3, 6, 9, 10, 11)]


def test_a_failing_write_is_the_error_naming_the_field_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, monkeypatch_chunk: None
) -> None:
    original = files.AtomicFile.write
    calls = 0

    def write(self: files.AtomicFile, data: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == 4:  # the disk fills up in the middle of the list
            with files._written_to(self.path, self.field):
                raise OSError(28, "No space left on device")
        original(self, data)

    monkeypatch.setattr(files.AtomicFile, "write", write)
    path = tmp_path / "coco.json"
    with pytest.raises(InputError, match=r"(?s)json_out.*No space left on device"):
        write_json_atomic(path, {"images": list(range(20))}, field="json_out")
    assert calls == 4 and list(tmp_path.iterdir()) == []
