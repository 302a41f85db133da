"""Sinks: where a run's judged samples go (runner.py feeds them, chunk by chunk, in index order).

- `RunFolderSink(out)`: the run folder of DESIGN.md §8: images/*.png (none for a text-only
  run), coco.json, accepted.coco.json, text.jsonl, synthgate.db, report.md and manifest.json,
  written into a temporary folder beside `out` and swapped into place at the end (outputs.py).
  `out` is checked when the sink is made, before any work starts; a refusal of it gives the
  fix `advice` gives (to whoever gave `out`; the server's, to a batch's requester), and so does
  a write into it that fails once the run started (a full disk, a permission changed, the final
  rename: `unwritable`), which publishes nothing. Report and
  dataset checks are computed as the samples stream by, never by reading a written file back;
  PNGs are encoded on a pool of threads while the next chunk is made.
- `DatabaseSink(store)`: the samples (and, for a run folder's own database, the batch row) in a
  database by upsert on their ids; `every` rows per write.
- `KeepReviewed(store, sinks)`: in front of other sinks, gives every sample people were asked to
  review its stored verdict (marked `kept`, so no database sink rewrites it): a re-run never
  changes what reviewers decide.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.exc import OperationalError

from synthgate import __version__
from synthgate.config import BatchConfig
from synthgate.errors import InputError
from synthgate.files import NO_SPACE, dumps, usable_cores
from synthgate.foreign_files import OWN_FOLDER, FolderAdvice
from synthgate.formats.coco import CocoStream, sample_to_coco_annotations, sample_to_coco_image
from synthgate.formats.jsonl import sample_to_jsonl_row
from synthgate.generators.png import encode_png
from synthgate.outputs import (
    Started,
    check_out,
    discard_out,
    file_in,
    prepare_out,
    publish_out,
    release_out,
)
from synthgate.pipeline import JudgedSample, RunStart, RunTotals, rubric_digest
from synthgate.samples import Sample
from synthgate.storage.store import Store, sqlite_url
from synthgate.validators.checks.dataset import DatasetTally
from synthgate.validators.measure import judge_dataset
from synthgate.validators.summary import ValidationSummary, run_report_markdown

# Recorded in manifest.json, the one place package versions go: samples carry none, so what a
# run writes does not depend on which extras are installed. Absent packages are left out.
VERSIONED = (
    "numpy",
    "pillow",
    "pycocotools",
    "faker",
    "pydantic",
    "opencv-python-headless",
    "torch",
    "diffusers",
    "transformers",
)
# PNG encoders beside the thread that draws and judges (zlib releases the GIL, so they run
# alongside it): one core each of the rest. On 2 cores, 1 encoder against 2: 1,500 procedural
# images in 9.7-11.0 s wall and 11.9-14.6 s CPU against 10.3-11.3 s and 13.4-14.1 s, with a
# quarter fewer context switches.
PNG_THREADS = max(1, min(4, usable_cores() - 1))


class RunWriter:
    """Streams samples into a run folder's coco.json, accepted.coco.json and text.jsonl, and
    tallies what the dataset checks need of accepted.coco.json as it goes."""

    def __init__(self, folder: Path, *, categories: list[str], header: dict[str, Any]) -> None:
        self.folder = folder
        self.header = header
        self.category_ids = {name: i for i, name in enumerate(categories, start=1)}
        self.accepted_tally = DatasetTally()
        self._coco: CocoStream | None = None
        self._accepted: CocoStream | None = None
        self._text: TextIO | None = None
        self._next_image_id = 1
        self._next_annotation_id = 1

    @property
    def wrote_images(self) -> bool:
        return self._coco is not None

    def add(self, sample: Sample) -> None:
        if sample.spec.modality == "image":
            self._add_image(sample)
        else:
            self._add_text(sample)

    def _add_image(self, sample: Sample) -> None:
        if self._coco is None:
            self._coco = CocoStream(self.folder / "coco.json")
            self._accepted = CocoStream(self.folder / "accepted.coco.json")
        for obj in sample.objects:
            self.category_ids.setdefault(obj.category, len(self.category_ids) + 1)
        image_id = self._next_image_id
        image = sample_to_coco_image(sample, image_id)
        annotations = sample_to_coco_annotations(
            sample, image_id, self.category_ids, self._next_annotation_id
        )
        self._next_image_id += 1
        self._next_annotation_id += len(annotations)
        self._coco.add(image, annotations)
        if sample.status == "accepted":
            assert self._accepted is not None
            self._accepted.add(image, annotations)
            self.accepted_tally.add("images", [image])
            self.accepted_tally.add("annotations", annotations)

    def _add_text(self, sample: Sample) -> None:
        if self._text is None:
            self._text = open(self.folder / "text.jsonl", "w", encoding="utf-8")
        self._text.write(dumps(sample_to_jsonl_row(sample)) + "\n")

    def close(self) -> None:
        categories = [
            {"id": i, "name": name, "supercategory": "synthetic"}
            for name, i in self.category_ids.items()
        ]
        for stream in (self._coco, self._accepted):
            if stream is not None:
                stream.close(self.header, categories)
        if self._coco is not None:
            # accepted.coco.json has its lists even when no sample was accepted: empty, not absent
            self.accepted_tally.add("images", [])
            self.accepted_tally.add("annotations", [])
            self.accepted_tally.add("categories", categories)
        if self._text is not None:
            self._text.close()

    def abort(self) -> None:
        """Close open handles without finishing the files (the caller removes the folder)."""
        for stream in (self._coco, self._accepted):
            if stream is not None:
                stream.abort()
        if self._text is not None:
            with contextlib.suppress(OSError):  # what it buffers goes with the folder
                self._text.close()


class DatabaseSink:
    """Judged samples into a database by upsert, `every` rows at a time (a chunk at least).

    `record_batch`: put the batch row at the start and mark it done at the end (a run folder's
    own database; the service keeps its batch rows itself, and this sink records the digest of
    the rubric each modality is judged with, which a post of the batch again is held to:
    api/batch_runner.refuse_other_rubric). `own`: close the store at the end.
    `shared`: the database the samples came from (workers' samples, reviewed samples): rows of
    samples marked `kept` stay as they are there (a failure's reason, a reviewer's verdict).
    """

    def __init__(
        self,
        store: Store,
        *,
        every: int = 0,
        record_batch: bool = False,
        own: bool = False,
        shared: bool = True,
    ) -> None:
        self.store = store
        self.every = every
        self.record_batch = record_batch
        self.own = own
        self.shared = shared
        self._pending: list[Sample] = []
        self._batch_id: str | None = None

    def start(self, run: RunStart) -> None:
        self._batch_id = run.batch_id
        if self.record_batch:
            config = run.config
            self.store.put_batch(
                run.batch_id,
                name=config.name,
                seed=config.seed,
                config=config.model_dump(mode="json"),
            )
        else:
            self.store.put_rubric_digests(
                run.batch_id,
                {modality: rubric_digest(judge.rubric) for modality, judge in run.judges.items()},
            )

    def add(self, chunk: list[JudgedSample]) -> None:
        self._pending.extend(judged.sample for judged in chunk if not (self.shared and judged.kept))
        if len(self._pending) >= self.every:
            self.flush()

    def flush(self) -> None:
        self.store.upsert_samples(self._pending)
        self._pending = []

    def finish(self, totals: RunTotals) -> None:
        self.flush()
        if self.record_batch and self._batch_id is not None:
            self.store.set_batch_status(self._batch_id, "done")
        if self.own:
            self.store.close()

    def abort(self) -> None:
        if self.own:
            self.store.close()


class RunFolderSink:
    """The run folder: its files, its database, its report and manifest (see module doc)."""

    def __init__(
        self, out: Path, *, png_threads: int = PNG_THREADS, advice: FolderAdvice = OWN_FOLDER
    ) -> None:
        self.out = out
        self.advice = advice
        # now, before any work starts; the folder is made when the run starts
        check_out(out, advice=advice)
        self.folder = out.with_name(f".{out.name}.partial")
        self._started: Started | None = None
        self.png_threads = png_threads
        self._run: RunStart | None = None
        self._writer: RunWriter | None = None
        self._database: DatabaseSink | None = None
        self._summaries: dict[str, ValidationSummary] = {}
        self._encoder: ThreadPoolExecutor | None = None
        self._encoding: list[list[Future[None]]] = []
        self._made_images = False

    def start(self, run: RunStart) -> None:
        self._run = run
        # checked: __init__'s check_out looked for files of the user's
        self._started = prepare_out(self.out, advice=self.advice, checked=True)
        self.folder = self._started.folder
        with self._writing():
            self._open(run)

    def _open(self, run: RunStart) -> None:
        self._writer = RunWriter(
            self.folder,
            categories=list(run.config.categories),
            header={
                "info": {
                    "description": f"synthgate batch {run.config.name}",
                    "batch_id": run.batch_id,
                }
            },
        )
        store = Store(sqlite_url(self.folder / "synthgate.db"))
        self._database = DatabaseSink(store, every=256, record_batch=True, own=True, shared=False)
        self._database.start(run)
        self._summaries = {m: ValidationSummary(j.rubric) for m, j in run.judges.items()}
        self._encoder = ThreadPoolExecutor(self.png_threads, thread_name_prefix="png")

    def add(self, chunk: list[JudgedSample]) -> None:
        with self._writing():
            self._add(chunk)

    def _add(self, chunk: list[JudgedSample]) -> None:
        assert self._writer is not None and self._database is not None
        encoding: list[Future[None]] = []
        for judged in chunk:
            sample = judged.sample
            if sample.report is not None:
                self._summaries[sample.spec.modality].add(sample.id, sample.report)
            if sample.status == "failed":
                continue
            if sample.uri and not self._made_images:
                # images/ with the first image: a text-only run has none, and no empty folder
                (self.folder / sample.uri).parent.mkdir(exist_ok=True)
                self._made_images = True
            if sample.uri and judged.png is not None:
                (self.folder / sample.uri).write_bytes(judged.png)
            elif sample.uri and judged.pixels is not None:
                assert self._encoder is not None
                encoding.append(self._encoder.submit(self._write_png, sample.uri, judged.pixels))
            self._writer.add(sample)
        self._database.add(chunk)
        # Pixels wait in the encoder for at most two chunks: memory stays flat.
        self._encoding.append(encoding)
        while len(self._encoding) > 2:
            for future in self._encoding.pop(0):
                future.result()

    def _write_png(self, uri: str, pixels: Any) -> None:
        with self._writing(f"writing {uri}"):
            (self.folder / uri).write_bytes(encode_png(pixels))

    @contextlib.contextmanager
    def _writing(self, doing: str | None = None) -> Iterator[None]:
        """Within: an OSError of a write into the run folder is its refusal (`unwritable`), said
        to be `doing` (by default, writing the file it names), and so are its database's full
        disk, disk I/O error and locking errors, which SQLite says its own way."""
        try:
            yield
        except OSError as error:
            raise unwritable(error, self.out, self.folder, self.advice, doing=doing) from None
        except OperationalError as error:
            code = getattr(error.orig, "sqlite_errorcode", None)
            if code == sqlite3.SQLITE_FULL:
                said = OSError(errno.ENOSPC, "the database or the disk is full")
            elif code in SQLITE_LOCKING_ERRORS:
                name = getattr(error.orig, "sqlite_errorname", code)
                said = OSError(
                    errno.ENOLCK,
                    "its file system does not give SQLite's file locks or shared memory "
                    f"({name}; a network file system?)",
                )
            elif code is not None and code & 0xFF == sqlite3.SQLITE_IOERR:
                # a write the disk refused with another error than ENOSPC (SQLITE_FULL): EDQUOT,
                # a quota used up, and EIO are both SQLITE_IOERR_WRITE, so it cannot tell which
                said = OSError(errno.EIO, "disk I/O error (a disk quota, a full or failing disk)")
            else:
                raise
            raise unwritable(
                said, self.out, self.folder, self.advice, doing=doing or "writing synthgate.db"
            ) from None

    def _drain(self, *, raising: bool = True) -> None:
        """Wait for the PNGs being encoded; the first that failed is raised, unless not
        `raising` (an abort: the run failed already, and what it leaves must still go)."""
        for encoding in self._encoding:
            for future in encoding:
                if raising:
                    future.result()
                else:
                    future.exception()
        self._encoding = []
        if self._encoder is not None:
            self._encoder.shutdown(wait=True, cancel_futures=True)

    def finish(self, totals: RunTotals) -> None:
        with self._writing():
            self._write_last(totals)
        with self._writing("putting the finished run in place"):
            publish_out(
                self.folder,
                self.out,
                marker="manifest.json",
                what="run",
                databases="synthgate.db",
                advice=self.advice,
            )
        # published: an abort now (a later sink failed) leaves .NAME.partial, by then maybe
        # another build's, alone
        started, self._started = self._started, None
        assert started is not None
        release_out(started)

    def _write_last(self, totals: RunTotals) -> None:
        """The PNGs still being encoded, then the files written once every sample is in."""
        assert self._run is not None and self._writer is not None and self._database is not None
        run = self._run
        self._drain()
        self._writer.close()
        if "image" in run.judges and self._writer.wrote_images:
            judge = run.judges["image"]
            self._summaries["image"].dataset = judge_dataset(
                self._writer.accepted_tally, judge.rubric, judge.context
            )
        (self.folder / "report.md").write_text(
            run_report_markdown(run.config.name, run.batch_id, self._summaries),
            encoding="utf-8",
        )
        self._database.finish(totals)
        _write_manifest(self.folder, run.config, totals)

    def abort(self) -> None:
        """Take away what the run left; the folder and its lock go whatever closing the rest
        raises (the run failed already: its error is the one to tell)."""
        try:
            self._drain(raising=False)
            if self._writer is not None:
                self._writer.abort()
            if self._database is not None:
                self._database.abort()
        finally:
            if self._started is not None:
                discard_out(self._started)


class KeepReviewed:
    """Sinks behind a step that gives samples people were asked to review their stored
    version (see module doc)."""

    def __init__(self, store: Store, sinks: Sequence[Any]) -> None:
        self.store = store
        self.sinks = list(sinks)

    def start(self, run: RunStart) -> None:
        for sink in self.sinks:
            sink.start(run)

    def add(self, chunk: list[JudgedSample]) -> None:
        reviewed = self.store.reviewed_samples(judged.sample.id for judged in chunk)
        if reviewed:
            chunk = [
                self._kept(judged) if judged.sample.id in reviewed else judged for judged in chunk
            ]
        for sink in self.sinks:
            sink.add(chunk)

    def _kept(self, judged: JudgedSample) -> JudgedSample:
        stored = self.store.get_sample(judged.sample.id) or judged.sample
        return JudgedSample(
            sample=stored,
            pixels=judged.pixels,
            png=judged.png,
            hidden_objects=judged.hidden_objects,
            kept=True,
        )

    def finish(self, totals: RunTotals) -> None:
        for sink in self.sinks:
            sink.finish(totals)

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()


# SQLite's extended codes of its file locks and of its write-ahead log's shared memory (the
# -shm file it maps), which a network file system often does not give: no disk to check there.
SQLITE_LOCKING_ERRORS = frozenset(
    {
        sqlite3.SQLITE_IOERR_SHMOPEN,
        sqlite3.SQLITE_IOERR_SHMSIZE,
        sqlite3.SQLITE_IOERR_SHMMAP,
        sqlite3.SQLITE_IOERR_SHMLOCK,
        sqlite3.SQLITE_IOERR_LOCK,
        sqlite3.SQLITE_IOERR_RDLOCK,
        sqlite3.SQLITE_IOERR_UNLOCK,
        sqlite3.SQLITE_IOERR_CHECKRESERVEDLOCK,
        sqlite3.SQLITE_PROTOCOL,  # the write-ahead log's locking protocol
    }
)


def unwritable(
    error: OSError, out: Path, folder: Path, advice: FolderAdvice, *, doing: str | None = None
) -> InputError:
    """The refusal of the run folder `out` for an OSError of a write into `folder`, its
    temporary folder, once the run started: what failed (`doing`, else writing the file the
    error names, as it would be in `out`), that nothing was published, and the fix `advice`
    gives (to whoever gave `out`; the server's operator, to a batch's requester)."""
    if doing is None:
        inside = file_in(error, folder)
        named = inside.as_posix() if inside is not None else "."
        doing = f"writing {'its files' if named == '.' else named}"
    if error.errno in NO_SPACE:
        action = "free space on its disk"
    elif error.errno == errno.EIO:  # no permission to give: the disk failed, or its quota
        action = "check its disk for room, quota and errors"
    elif error.errno == errno.ENOLCK:  # SQLite's locks: no other folder on that file system
        action = "choose a folder on a local disk"
    else:
        action = "make it writable"
    own = action if error.errno == errno.ENOLCK else f"{action} (or choose another folder)"
    return InputError(
        field="out",
        value=out,
        problem=f"{error.strerror or error} while {doing}; nothing was published",
        fix=advice.fix(f"{own}, then run again", action=action),
    )


def sample_png(pixels: Any) -> bytes | None:
    """The PNG bytes an image sample is stored as (None for text)."""
    return encode_png(pixels) if pixels is not None else None


def package_versions() -> dict[str, str]:
    found = {"synthgate": __version__}
    for name in VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _write_manifest(folder: Path, config: BatchConfig, totals: RunTotals) -> None:
    manifest: dict[str, Any] = {
        "name": config.name,
        "batch_id": totals.batch_id,
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "versions": package_versions(),
        "counts": totals.counts,
        "timings": totals.timings,
        "outputs": [*sorted(p.name for p in folder.iterdir() if p.is_file()), "manifest.json"],
    }
    (folder / "manifest.json").write_text(dumps(manifest) + "\n", encoding="utf-8")
