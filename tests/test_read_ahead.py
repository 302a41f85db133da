"""`read_ahead`: reads on other threads, results in the items' order, at most two per thread
ahead of the consumer; what a read raises comes out in order; a consumer that stops early
leaves no read pending. `validate --images` and reference folders decode through it and judge
exactly as one thread does."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthgate import files
from synthgate.files import read_ahead
from synthgate.validators import sources
from synthgate.validators.context import fingerprint, image_files, reference_index
from synthgate.validators.validate import validate_file


def test_results_come_in_order_from_the_reading_threads() -> None:
    seen: list[str] = []
    later = threading.Event()

    def read(n: int) -> int:
        seen.append(threading.current_thread().name)
        if n == 0:
            assert later.wait(5)  # item 0 finishes only after item 3 has been read
        if n == 3:
            later.set()
        return n * n

    assert list(read_ahead(read, range(50), threads=3)) == [(n, n * n) for n in range(50)]
    assert all(name.startswith("read-ahead") for name in seen)
    assert list(read_ahead(read, range(1, 5), threads=0)) == [(n, n * n) for n in range(1, 5)]
    assert seen[-4:] == [threading.current_thread().name] * 4  # threads=0: read inline


def test_one_reading_thread_a_core_none_on_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "usable_cores", lambda: 8)
    assert (files.reading_threads(), files.reading_threads(most=2)) == (8, 2)
    monkeypatch.setattr(files, "usable_cores", lambda: 1)
    assert (files.reading_threads(), files.reading_threads(most=2)) == (0, 0)


def test_reads_run_at_most_two_per_thread_ahead_of_the_consumer() -> None:
    drawn: list[int] = []

    def items() -> Iterator[int]:
        for n in range(100):
            drawn.append(n)
            yield n

    for consumed, (item, _) in enumerate(read_ahead(lambda n: n, items(), threads=2), start=1):
        assert item == consumed - 1
        assert len(drawn) <= consumed + 2 * 2


def test_a_read_that_raises_raises_in_order_and_later_reads_are_dropped() -> None:
    def read(n: int) -> int:
        if n == 3:
            raise ValueError("item 3 is broken")
        return n

    got: list[int] = []
    with pytest.raises(ValueError, match="item 3 is broken"):
        for _, value in read_ahead(read, range(10), threads=2):
            got.append(value)
    assert got == [0, 1, 2]


def test_a_consumer_that_stops_cancels_the_reads_not_started() -> None:
    before = set(threading.enumerate())
    started: list[int] = []
    gate = threading.Event()

    def read(n: int) -> int:
        started.append(n)
        if n:
            assert gate.wait(5)
        return n

    reads = read_ahead(read, range(1000), threads=2)
    assert next(reads) == (0, 0)
    # 1 and 2 are being read once the thread that read 0 has taken 2 (it may not have yet: a
    # close before then cancels 2 as well, rightly, and this test failed in CI); 3 and 4 wait
    deadline = time.monotonic() + 5
    while len(started) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    threading.Timer(0.2, gate.set).start()
    reads.close()  # cancels 3 and 4, waits for 1 and 2
    assert sorted(started) == [0, 1, 2]
    time.sleep(0.3)
    assert sorted(started) == [0, 1, 2]
    assert not {t for t in set(threading.enumerate()) - before if t.name.startswith("read-ahead")}


def test_the_cores_a_cgroup_quota_allows(tmp_path: Path) -> None:
    quota = tmp_path / "cpu.max"
    for text, cpus in [("200000 100000\n", 2), ("150000 100000", 2), ("max 100000", None)]:
        quota.write_text(text)
        assert files._cgroup_cpus(quota) == cpus
    quota.write_text("garbage")
    assert files._cgroup_cpus(quota) is None
    assert files._cgroup_cpus(tmp_path / "none") is None


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Twelve small images of random colours (the two after them copies), a COCO file naming
    them, and one file that is no image."""
    rng = np.random.default_rng(7)
    folder = tmp_path / "images"
    folder.mkdir()
    for n in range(12):
        pixels = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{n}.png")
    for n in (12, 13):
        (folder / f"{n}.png").write_bytes((folder / f"{n - 12}.png").read_bytes())
    (folder / "14.png").write_bytes(b"not an image")
    return folder


def coco_of(folder: Path) -> dict:
    images = [{"id": n + 1, "file_name": f"{n}.png", "width": 56, "height": 40} for n in range(15)]
    return {"images": images, "annotations": [], "categories": [{"id": 1, "name": "box"}]}


def test_validate_with_images_judges_as_one_thread_does(
    image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded_on: set[str] = set()

    names: set[str] = set()

    def open_image(*args: object) -> object:
        names.add(threading.current_thread().name)
        decoded_on.add(threading.current_thread().name.split("_")[0])
        return own_open(*args)

    own_open = sources._open_image
    monkeypatch.setattr(sources, "_open_image", open_image)
    monkeypatch.setattr(files, "usable_cores", lambda: 16)
    ahead = validate_file(coco_of(image_folder), images=image_folder)
    assert decoded_on == {"read-ahead"}
    monkeypatch.setattr(sources, "DECODE_THREADS", 1)
    names.clear()
    assert validate_file(coco_of(image_folder), images=image_folder).rows == ahead.rows
    assert names == {"read-ahead_0"}  # 16 cores, yet no more decoders than DECODE_THREADS
    monkeypatch.setattr(files, "usable_cores", lambda: 1)
    inline = validate_file(coco_of(image_folder), images=image_folder)
    assert ahead.rows == inline.rows
    bits = {
        key: report.measurements.get("duplicate_hash_bits") for key, report in ahead.reports.items()
    }
    assert bits["coco-13"] == 0 and bits["coco-14"] == 0  # the copies, found in order
    assert ahead.reports["coco-15"].measurements["image_unreadable"] == 1


def test_reference_hashes_are_added_in_file_order(
    image_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "usable_cores", lambda: 4)
    ahead = reference_index(image_files(image_folder))
    monkeypatch.setattr(files, "usable_cores", lambda: 1)
    inline = reference_index(image_files(image_folder))
    assert len(ahead) == len(inline) == 14  # the file that is no image is skipped
    for n in range(14):
        with Image.open(image_folder / f"{n}.png") as image:
            found = fingerprint(np.asarray(image.convert("RGB")))
        nearest = ahead.nearest(*found, colour_tolerance=16)
        assert nearest == inline.nearest(*found, colour_tolerance=16)
        # a copy and its original are equally close: the first in file order answers
        assert nearest == (0, f"{n % 12}.png")
