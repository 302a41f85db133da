"""Reference fingerprints kept between runs (validators/fingerprint_cache.py): a folder hashed
again decodes only its new and changed files, builds the index a fresh hashing builds, and a
cache that is off, foreign, damaged or not writable only costs time."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from synthgate.validators import context, fingerprint_cache
from synthgate.validators.context import folder_reference, image_files, reference_index

HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def _image(path: Path, shade: int, *, old: bool = True) -> None:
    pixels = np.zeros((24, 32, 3), dtype=np.uint8)
    pixels[:, : 4 + shade % 24] = (shade, 255 - shade, 90)
    Image.fromarray(pixels).save(path)
    if old:  # hashed long after it was written, as a real dataset's files are
        os.utime(path, ns=(HOUR_AGO_NS, HOUR_AGO_NS + shade))


def _folder(tmp_path: Path, *shades: int) -> Path:
    """A folder of real images, one per shade, named by it (001.png, ...), written long ago."""
    folder = tmp_path / "real"
    folder.mkdir()
    for shade in shades:
        _image(folder / f"{shade:03}.png", shade)
    return folder


def _contents(index: Any) -> tuple[list[str], list[int], list[list[float]]]:
    """Names, hashes and colours in the order they were added (the index's own arrays)."""
    count = len(index)
    return (
        list(index._names),
        index._hashes[:count].tolist(),
        index._colours[:count].tolist(),
    )


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """The names of the files decoded, in a cache folder of this test's own."""
    monkeypatch.setenv(fingerprint_cache.CACHE_ENV, str(tmp_path / "cache"))
    names: list[str] = []
    original = context._reference_fingerprint

    def counted(path: Path) -> Any:
        names.append(path.name)
        return original(path)

    monkeypatch.setattr(context, "_reference_fingerprint", counted)
    return names


def test_only_new_and_changed_files_are_decoded_again(decoded: list[str], tmp_path: Path) -> None:
    folder = tmp_path / "real"
    (folder / "sub").mkdir(parents=True)
    for shade, name in ((20, "a.png"), (90, "b.png"), (160, "sub/c.png")):
        _image(folder / name, shade)
    (folder / "broken.png").write_bytes(b"not an image")  # unreadable: tried every time
    os.utime(folder / "broken.png", ns=(HOUR_AGO_NS, HOUR_AGO_NS))
    first = folder_reference(folder)
    assert sorted(decoded) == ["a.png", "b.png", "broken.png", "c.png"] and len(first) == 3
    decoded.clear()
    again = folder_reference(folder)  # an unreadable file is tried again: it may be passing
    assert decoded == ["broken.png"] and _contents(again) == _contents(first)
    _image(folder / "b.png", 230)  # changed (its modification time differs)
    _image(folder / "d.png", 60)  # new
    (folder / "a.png").unlink()  # gone
    decoded.clear()
    progress: list[tuple[int, int]] = []
    changed = folder_reference(folder, progress=lambda done, total: progress.append((done, total)))
    assert sorted(decoded) == ["b.png", "broken.png", "d.png"]
    assert progress == [(n, 4) for n in range(1, 5)]
    fresh = reference_index(image_files(folder))  # no cache
    assert _contents(changed) == _contents(fresh) and _contents(changed) != _contents(first)
    decoded.clear()
    assert _contents(folder_reference(folder)) == _contents(fresh) and decoded == ["broken.png"]
    (stored,) = (tmp_path / "cache").glob("reference-*.npz")
    with np.load(stored) as cached:  # what is gone from the folder is gone from its cache
        assert sorted(cached["names"].tolist()) == ["b.png", "d.png", "sub/c.png"]


def test_a_file_replaced_keeping_its_size_and_time_or_unreadable_once_is_hashed_again(
    decoded: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy that keeps the old file's time (cp -p, rsync -a) is another inode; a read that
    failed (a busy network share) is not remembered as a file that cannot be read."""
    folder = tmp_path / "real"
    folder.mkdir()
    _image(folder / "a.png", 10)
    _image(folder / "b.png", 70)
    first = folder_reference(folder)
    stat = (folder / "a.png").stat()
    _image(tmp_path / "other.png", 11)  # same size, other pixels
    assert (tmp_path / "other.png").stat().st_size == stat.st_size
    os.utime(tmp_path / "other.png", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(tmp_path / "other.png", folder / "a.png")
    decoded.clear()
    replaced = folder_reference(folder)
    assert decoded == ["a.png"] and _contents(replaced) != _contents(first)
    assert _contents(replaced) == _contents(reference_index(image_files(folder)))
    real_open = context.open_rgb
    busy = {"b.png"}

    def sometimes(path: Path) -> Any:
        if path.name in busy:
            busy.discard(path.name)
            return None, "Resource temporarily unavailable"
        return real_open(path)

    monkeypatch.setattr(context, "open_rgb", sometimes)
    stat = (folder / "b.png").stat()
    os.utime(folder / "b.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # hashed again
    decoded.clear()
    assert len(folder_reference(folder)) == 1 and decoded == ["b.png"]  # b.png could not be read
    decoded.clear()
    assert _contents(folder_reference(folder)) == _contents(replaced) and decoded == ["b.png"]


def test_a_file_modified_just_before_it_was_hashed_is_hashed_again(
    decoded: list[str], tmp_path: Path
) -> None:
    """A file system's clock ticks coarsely: a file rewritten at the same size within one tick
    would keep its modification time, so a file that recent is never trusted to the cache."""
    folder = tmp_path / "real"
    folder.mkdir()
    _image(folder / "old.png", 40)
    _image(folder / "new.png", 120, old=False)
    folder_reference(folder)
    decoded.clear()
    folder_reference(folder)
    assert decoded == ["new.png"]


def test_a_cache_that_is_off_foreign_damaged_or_unwritable_costs_only_time(
    decoded: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path, 30, 200)
    expected = _contents(reference_index(image_files(folder)))
    decoded.clear()
    assert _contents(folder_reference(folder)) == expected and len(decoded) == 2
    (stored,) = (tmp_path / "cache").glob("reference-*.npz")
    tag = context.fingerprint_tag()
    assert tag.startswith("code ") and "synthgate" not in tag  # a digest of the source
    monkeypatch.setattr(context, "fingerprint_tag", lambda: tag + " changed")  # new hashing code
    decoded.clear()
    assert _contents(folder_reference(folder)) == expected and len(decoded) == 2
    for damaged in (stored.read_bytes()[:300], b"damaged"):  # cut short, or no archive at all
        stored.write_bytes(damaged)
        decoded.clear()
        assert _contents(folder_reference(folder)) == expected and len(decoded) == 2
    decoded.clear()
    assert _contents(folder_reference(folder)) == expected and decoded == []  # written anew
    monkeypatch.setenv(fingerprint_cache.CACHE_ENV, "off")
    decoded.clear()
    assert _contents(folder_reference(folder)) == expected and len(decoded) == 2
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv(fingerprint_cache.CACHE_ENV, str(blocked / "cache"))  # cannot be made
    assert _contents(folder_reference(folder)) == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "cache", "real"]


def test_a_run_stopped_part_way_keeps_what_it_hashed(decoded: list[str], tmp_path: Path) -> None:
    folder = _folder(tmp_path, 30, 100, 200)

    def stop(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        folder_reference(folder, progress=stop)
    decoded.clear()
    folder_reference(folder)
    assert decoded == ["200.png"]


def test_no_place_for_a_cache_is_no_cache(
    decoded: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "real"
    folder.mkdir()
    _image(folder / "a.png", 30)
    monkeypatch.setenv(fingerprint_cache.CACHE_ENV, "~no-such-user-here/cache")  # no home
    assert len(folder_reference(folder)) == 1 and decoded == ["a.png"]


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fingerprint_cache.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere/cache")
    assert fingerprint_cache.cache_folder() == Path("/somewhere/cache/synthgate")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert fingerprint_cache.cache_folder() == Path.home() / ".cache" / "synthgate"
    monkeypatch.setenv(fingerprint_cache.CACHE_ENV, "~/sg")
    assert fingerprint_cache.cache_folder() == Path.home() / "sg"
    monkeypatch.setenv(fingerprint_cache.CACHE_ENV, "OFF")
    assert fingerprint_cache.cache_folder() is None
