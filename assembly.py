"""The run folder (DESIGN.md §8), assembled: the one way its files are written.

`RunAssembly` takes judged samples in index order and writes images, coco.json,
accepted.coco.json, text.jsonl, synthgate.db, report.md and manifest.json into a temporary folder
beside the target; `finish` swaps it into place. `synthgate run` (samples fresh from the
generators) and `synthgate submit` (samples read back from the database) both write through it,
so both write the same bytes. `prepare_out` / `publish_out` guard the target: a folder that is
not a run is never replaced, nor one that holds human review decisions.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, inspect, text

from synthgate import __version__
from synthgate.config import BatchConfig
from synthgate.errors import InputError
from synthgate.formats.coco import read_coco
from synthgate.generators.png import encode_png
from synthgate.outputs import RunWriter, dumps
from synthgate.samples import GeneratedSample, Modality, Sample
from synthgate.storage.store import Store, sqlite_url
from synthgate.validators.rubric import judge_dataset
from synthgate.validators.summary import ValidationSummary, run_report_markdown
from synthgate.validators.validate import Judge


@dataclass
class RunResult:
    out: Path
    batch_id: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


def prepare_out(
    out: Path, *, marker: str = "manifest.json", what: str = "run", databases: str = "synthgate.db"
) -> Path:
    """A temporary folder beside `out`; refuse to replace a folder that is not a synthgate `what`
    (no `marker` file) or whose run databases (`databases`, a glob) hold human decisions."""
    previous = out.with_name(f".{out.name}.previous")
    if previous.is_dir() and not out.exists():
        # A publish stopped between its two renames: that folder is the only copy of `out`.
        previous.rename(out)
    if out.is_symlink():  # publish_out moves `out` aside, then deletes it: rmtree refuses links
        raise InputError(
            f"--out {out}: is a symlink; give a real folder (it points to {out.resolve()})"
        )
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file; choose a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).exists():
        raise InputError(
            f"--out {out}: folder exists and is not a synthgate {what}; choose an empty or new folder"
        )
    reviewed = sum(human_decision_count(db) for db in out.glob(databases)) if out.is_dir() else 0
    if reviewed:
        raise InputError(
            f"--out {out}: this {what} holds {reviewed} human review decisions that a new {what} "
            "would replace; choose another --out (or export them first: synthgate review export)"
        )
    temporary = out.with_name(f".{out.name}.partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if temporary.exists():
            shutil.rmtree(temporary)
        temporary.mkdir(parents=True)
    except OSError as error:
        raise InputError(
            f"--out {out}: cannot write there ({error.strerror}); choose a folder you can write to"
        ) from None
    return temporary


def publish_out(temporary: Path, out: Path) -> None:
    """Swap the finished folder into place; the old run goes only once the new one is there."""
    previous = out.with_name(f".{out.name}.previous")
    if previous.exists():
        shutil.rmtree(previous)
    if out.exists():
        out.rename(previous)
    try:
        temporary.rename(out)
    except OSError:
        if previous.exists() and not out.exists():
            previous.rename(out)  # the old folder goes back: a failed publish changes nothing
        raise
    shutil.rmtree(previous, ignore_errors=True)  # the new folder is in place either way


def human_decision_count(path: Path) -> int:
    """How many human review decisions a run database holds (0 if it has no review tables).

    Read without creating anything, so a run folder can be checked before it is replaced.
    """
    if not path.is_file():
        return 0
    engine = create_engine(sqlite_url(path))
    try:
        if not inspect(engine).has_table("review_decisions"):
            return 0
        with engine.connect() as connection:
            return int(
                connection.execute(text("SELECT COUNT(*) FROM review_decisions")).scalar() or 0
            )
    finally:
        engine.dispose()


class RunAssembly:
    """A run folder being written: judged samples go in in index order, a folder comes out.

    The one path from samples to the files of DESIGN.md §8 (report.md and the dataset checks
    included), shared by `run_batch` (samples fresh from the generators) and `synthgate submit`
    (samples read back from the database, PNGs from the blob store), so both write the same
    bytes. Failed samples are counted and kept in the folder's database, not in the data files.
    """

    def __init__(
        self, config: BatchConfig, out: Path, *, batch_id: str, judges: dict[Modality, Judge]
    ) -> None:
        self.config = config
        self.judges = judges
        self.folder = prepare_out(out)
        (self.folder / "images").mkdir()
        self.result = RunResult(out=out, batch_id=batch_id)
        self.writer = RunWriter(
            self.folder,
            categories=list(config.categories),
            header={
                "info": {"description": f"synthgate batch {config.name}", "batch_id": batch_id}
            },
        )
        self.store = Store(sqlite_url(self.folder / "synthgate.db"))
        self.store.put_batch(
            batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
        )
        self.summaries: dict[str, ValidationSummary] = {
            m: ValidationSummary(j.rubric) for m, j in judges.items()
        }
        self._counts: dict[str, Counter[str]] = {}
        self._pending: list[Sample] = []

    def add(self, sample: Sample, png: bytes | None, *, hidden_objects: int = 0) -> None:
        """One judged sample (and its PNG bytes, unless already written), in index order."""
        modality = sample.spec.modality
        counts = self._counts.setdefault(modality, Counter())
        counts[sample.status] += 1
        counts["hidden_objects"] += hidden_objects
        if sample.report is not None:
            self.summaries[modality].add(sample.id, sample.report)
            counts["audit"] += int(sample.report.audit)
        if sample.status != "failed":
            counts["generated"] += 1
            if png is not None and sample.uri:
                (self.folder / sample.uri).write_bytes(png)
            self.writer.add(sample)
        self._pending.append(sample)
        if len(self._pending) >= 256:
            self._flush()

    def write_png(self, generated: GeneratedSample) -> None:
        """Encode and write a sample's PNG (thread-safe: one file per sample)."""
        png = sample_png(generated)
        if png is not None and generated.sample.uri:
            (self.folder / generated.sample.uri).write_bytes(png)

    def _flush(self) -> None:
        self.store.upsert_samples(self._pending)
        self._pending = []

    def finish(self) -> RunResult:
        self._flush()
        self.writer.close()
        accepted = self.folder / "accepted.coco.json"
        if "image" in self.judges and accepted.exists():
            image_judge = self.judges["image"]
            self.summaries["image"].dataset = judge_dataset(
                read_coco(accepted), image_judge.rubric, image_judge.context
            )
        (self.folder / "report.md").write_text(
            run_report_markdown(self.config.name, self.result.batch_id, self.summaries),
            encoding="utf-8",
        )
        self.store.set_batch_status(self.result.batch_id, "done")
        self.store.close()
        self.result.counts = {m: dict(sorted(c.items())) for m, c in self._counts.items()}
        _write_manifest(self.folder, self.config, self.result)
        publish_out(self.folder, self.result.out)
        return self.result

    def abort(self) -> None:
        self.writer.abort()
        self.store.close()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def assemble_run(
    config: BatchConfig, out: Path, *, batch_id: str, judges: dict[Modality, Judge]
) -> Iterator[RunAssembly]:
    """Write a run folder: published when the block ends, removed if it raises."""
    assembly = RunAssembly(config, out, batch_id=batch_id, judges=judges)
    try:
        yield assembly
        assembly.finish()
    except BaseException:
        assembly.abort()
        raise


def sample_png(generated: GeneratedSample) -> bytes | None:
    """The PNG bytes a generated image sample is stored as (None for text)."""
    return encode_png(generated.pixels) if generated.pixels is not None else None


def hidden_objects(generated: GeneratedSample) -> int:
    return int(generated.extras.get("hidden", 0))


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"synthgate": __version__}
    for name in ("numpy", "pillow", "pycocotools", "faker", "pydantic"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _write_manifest(folder: Path, config: BatchConfig, result: RunResult) -> None:
    manifest: dict[str, Any] = {
        "name": config.name,
        "batch_id": result.batch_id,
        "seed": config.seed,
        "config": config.model_dump(mode="json"),
        "versions": package_versions(),
        "counts": result.counts,
        "timings": result.timings,
        "outputs": [*sorted(p.name for p in folder.iterdir() if p.is_file()), "manifest.json"],
    }
    (folder / "manifest.json").write_text(dumps(manifest) + "\n", encoding="utf-8")
