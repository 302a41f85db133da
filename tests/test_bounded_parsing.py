"""Bounded parsers (files.py, yaml_files.py) and the config's own bounds (config.py): deep nesting, billion
laughs and self-referring aliases, NaN and Infinity, NUL bytes and over-long paths are refused
with the file or field named, quickly, and ordinary documents still load."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from synthgate.config import load_config
from synthgate.errors import InputError
from synthgate.files import (
    MAX_NESTING,
    check_nesting,
    nesting_depth,
    parse_json,
    write_atomic,
    writing_atomic,
)
from synthgate.settings import Settings
from synthgate.yaml_files import MAX_YAML_NODES, load_yaml, parse_yaml


def laughs(levels: int, width: int = 9) -> str:
    """The billion-laughs document: each level is `width` aliases of the one before."""
    lines = ["l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for level in range(1, levels + 1):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


YAML_REFUSED = [
    # (id, document, what the message says)
    ("deep-flow", "a: " + "[" * 5000 + "]" * 5000, "nested deeper than"),
    ("deep-block", "".join(f"{' ' * i}k{i}:\n" for i in range(200)) + " " * 200 + "v: 1\n", "nested deeper than"),
    ("billion-laughs", laughs(9), "aliases are expanded"),
    ("laughs-wide", laughs(3, width=60), "aliases are expanded"),
    ("recursive-alias", "a: &a [1, *a]\n", "refers to itself"),
    ("recursive-map", "a: &a {b: *a}\n", "refers to itself"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "text", "problem"), YAML_REFUSED, ids=[c[0] for c in YAML_REFUSED]
)
def test_yaml_over_the_bounds_is_refused_at_once(case, text, problem):
    started = time.monotonic()
    with pytest.raises(InputError, match=problem) as caught:
        parse_yaml(text, source="x.yaml")
    assert str(caught.value).startswith("x.yaml: YAML at line ")
    assert time.monotonic() - started < 5


def test_yaml_with_a_lone_surrogate_is_refused():
    with pytest.raises(InputError, match=r"x\.yaml: YAML holds a lone surrogate at position 3"):
        parse_yaml("a: \udc80\n", source="x.yaml")


def test_yaml_within_the_bounds_loads_with_aliases():
    shared = "base: &base {count: 2, size: [64, 64]}\nimage: *base\nother: *base\n"
    data = parse_yaml(shared, source="ok.yaml")
    assert data["image"] == data["other"] == {"count": 2, "size": [64, 64]}
    nested = "a: " + "[" * (MAX_NESTING - 2) + "1" + "]" * (MAX_NESTING - 2)
    assert nesting_depth(parse_yaml(nested, source="ok.yaml")) == MAX_NESTING - 1
    assert len(parse_yaml(laughs(3, width=9), source="ok.yaml")) == 4  # 9**4 < MAX_YAML_NODES
    assert MAX_YAML_NODES < 9**6  # so laughs(5) and beyond are refused


SHIPPED_YAML = sorted((Path(__file__).parents[1] / "configs").rglob("*.yaml"))


def test_shipped_yaml_loads_as_pyyaml_reads_it():
    """libyaml scans and parses for BoundedLoader: every shipped config, rubric and template
    reads as PyYAML's own safe loader reads it."""
    assert len(SHIPPED_YAML) >= 5
    for path in SHIPPED_YAML:
        text = path.read_text(encoding="utf-8")
        assert parse_yaml(text, source=path) == yaml.safe_load(text), path


WITHOUT_LIBYAML = """
import sys
sys.modules["yaml.cyaml"] = None  # a PyYAML built without libyaml
from pathlib import Path
import yaml
from synthgate.errors import InputError
from synthgate.yaml_files import BoundedLoader, parse_yaml
assert not yaml.__with_libyaml__ and "CParser" not in str(BoundedLoader.__mro__)
for path in map(Path, sys.argv[2:]):
    text = path.read_text(encoding="utf-8")
    assert parse_yaml(text, source=path) == yaml.safe_load(text), path
for case in sys.argv[1].split("\x1f"):
    try:
        parse_yaml(case, source="x.yaml")
    except InputError as error:
        print(error)
    else:
        print("loaded")
"""


def test_yaml_bounds_hold_without_libyaml():
    """PyYAML's Python scanner stands in where libyaml is missing: the shipped files load as they
    do with libyaml, and documents over the bounds are refused with the same messages."""
    cases = [text for _, text, _ in YAML_REFUSED]
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_LIBYAML, "\x1f".join(cases), *map(str, SHIPPED_YAML)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == len(YAML_REFUSED)
    for line, (case, _, problem) in zip(lines, YAML_REFUSED, strict=True):
        assert line.startswith("x.yaml: YAML at line ") and problem in line, (case, line)


def test_a_syntax_error_names_the_character_that_stopped_the_scanner(tmp_path: Path):
    """libyaml's message does not say which character it could not read: a tab, the most
    common mistake, gets the fix; another character is named."""
    cases = [("a:\n\tb: 1\n", "line 2, column 1", "(a tab: YAML indents with spaces)"),
             ("a: @x\n", "line 1, column 4", "(found '@')")]  # fmt: skip
    for text, where, hint in cases:
        path = tmp_path / "bad.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InputError) as caught:
            load_yaml(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: YAML syntax error at {where}: ") and hint in message


def test_load_yaml_names_a_path_it_cannot_use(tmp_path: Path):
    for bad in ("x" * 300 + ".yaml", "a\x00b.yaml"):
        with pytest.raises(InputError, match="not a usable path"):
            load_yaml(tmp_path / bad)


JSON_REFUSED = [
    ("deeper-than-the-interpreter", "[" * 100_000 + "]" * 100_000),
    ("deeper-than-the-bound", '{"a": ' + "[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1) + "}"),
]


@pytest.mark.parametrize(("case", "text"), JSON_REFUSED, ids=[c[0] for c in JSON_REFUSED])
def test_deep_json_is_refused(case, text):
    with pytest.raises(InputError, match=f"nested deeper than {MAX_NESTING} levels"):
        parse_json(text, source="x.json")


def test_nesting_is_measured_without_recursion():
    value: list = []
    for _ in range(50_000):
        value = [value]
    assert nesting_depth(value) > MAX_NESTING
    with pytest.raises(InputError, match="body: nested deeper"):
        check_nesting(value, where="body")
    check_nesting({"a": [{"b": 1}]}, where="body")
    assert nesting_depth({"a": [{"b": 1}]}) == 3 and nesting_depth(5) == 0


BASE = {"name": "x", "categories": ["a"]}
CONFIG_REFUSED = [
    # (id, image section, the field named)
    ("nan-scale", {"count": 1, "object_scale_range": [float("nan"), 0.3]}, "image.object_scale_range.0"),
    ("inf-scale", {"count": 1, "object_scale_range": [0.1, float("inf")]}, "image.object_scale_range.1"),
    ("nan-fraction", {"count": 1, "min_visible_fraction": float("nan")}, "image.min_visible_fraction"),
    ("billion-objects", {"count": 1, "objects_per_image": [1e9, 1e9]}, "image.objects_per_image"),
    ("count-over-32-bits", {"count": 2**31}, "image.count"),
    ("nul-rubric", {"count": 1, "rubric": "a\x00b.yaml"}, "image.rubric"),
    ("long-rubric", {"count": 1, "rubric": "r" * 300 + ".yaml"}, "image.rubric"),
    ("nul-coco", {"generator": "copy_paste", "count": 1, "coco": "a\x00.json", "images": "i"}, "image.coco"),
    ("long-coco", {"generator": "copy_paste", "count": 1, "coco": "c" * 256, "images": "i"}, "image.coco"),
    ("long-text", {"count": 1, "rubric": "d/" * 3000}, "image.rubric"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "section", "field"), CONFIG_REFUSED, ids=[c[0] for c in CONFIG_REFUSED]
)
def test_config_values_no_generator_can_honour_are_refused(case, section, field):
    with pytest.raises(InputError) as caught:
        load_config({**BASE, "image": section})
    message = str(caught.value)
    assert field in message
    assert len(message) < 1000  # the value is quoted short, however long it was


def test_nul_in_categories_and_nan_from_yaml(tmp_path: Path):
    with pytest.raises(InputError, match=r"categories: contains a NUL byte"):
        load_config({**BASE, "categories": ["a\x00"], "image": {"count": 1}})
    path = tmp_path / "nan.yaml"
    path.write_text(
        "name: x\ncategories: [a]\nimage: {count: 1, object_scale_range: [.nan, .inf]}\n"
    )
    with pytest.raises(InputError, match=r"nan.yaml: image.object_scale_range.0: .*finite"):
        load_config(path)


def test_requester_limits_come_from_the_environment(monkeypatch):
    defaults = Settings().limits()
    assert defaults.samples_per_batch == 10_000 and defaults.objects_per_image == 50
    monkeypatch.setenv("SYNTHGATE_MAX_OBJECTS", "7")
    monkeypatch.setenv("SYNTHGATE_MAX_SAMPLES_PER_HOUR", "99")
    limits = Settings().limits()
    assert limits.objects_per_image == 7 and limits.samples_per_hour == 99


def test_write_atomic_names_a_path_no_file_system_takes(tmp_path: Path) -> None:
    """A name over 255 bytes (an -o a user typed) is an InputError naming the option, and
    nothing is left beside it."""
    with pytest.raises(InputError, match=r"^out=.*: cannot write there \(File name too long\)"):
        write_atomic(tmp_path / ("o" * 300 + ".yaml"), "x", field="out")
    assert list(tmp_path.iterdir()) == []


def test_a_file_written_in_pieces_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    out = tmp_path / "tasks.json"
    with writing_atomic(out, field="out") as written:
        written.write(b"[")
        assert not out.exists()  # nothing at the path until the block ends
        written.write(b"]\n")
    assert out.read_bytes() == b"[]\n" and stat.S_IMODE(out.stat().st_mode) == 0o644

    class FullDisk:
        def write(self, data: bytes) -> None:
            raise OSError(28, "No space left on device")

        def close(self) -> None:
            pass

    full = pytest.raises(InputError, match=r"^out=.*: cannot write there \(No space left")
    with full, writing_atomic(out, field="out") as written:
        written.write(b"[")
        kept, written.out = written.out, FullDisk()  # type: ignore[assignment]
        kept.close()
        written.write(b"]")
    # an error of the block's own work (here: reading a file not there) is not the output's
    with pytest.raises(FileNotFoundError), writing_atomic(out, field="out") as written:
        written.write(b"[")
        (tmp_path / "missing").read_text()
    assert out.read_bytes() == b"[]\n"  # left as it was, and no partial file beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks.json"]


def test_write_atomic_never_replaces_a_device_or_fifo(tmp_path: Path) -> None:
    """Found by fuzzing: an output named /dev/null was written by rename, which replaced the
    device with a regular file (as root). A FIFO stands in for it here."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"is a FIFO, not a file"):
        write_atomic(fifo, "x", field="out")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]
