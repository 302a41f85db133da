"""The distributed runner without a broker: chunks, deliveries, crashes, failures, assembly.

Chunks run in-process through `run_chunk` on a SQLite database and a local blob folder, exactly
as a worker's pool process runs them; the Celery wrapper only adds acks and retries.
"""

from __future__ import annotations

import copy
import dataclasses
import errno
import itertools
import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from factories import SUPPORT_TICKETS, small_config
from workers_support import free_port

from synthgate import files
from synthgate.config import parse_config
from synthgate.errors import InputError
from synthgate.generators import build_generator
from synthgate.pipeline import batch_id_for, hidden_objects, plan, planned_total
from synthgate.runner import run_batch
from synthgate.storage.blobs import BlobStore
from synthgate.storage.chunks import Lease, LeaseLost
from synthgate.storage.store import Store
from synthgate.storage.tables import chunks
from synthgate.validators.rubric import RUBRICS_DIR
from synthgate.workers import chunks as chunk_module
from synthgate.workers import submit as worker_submit
from synthgate.workers.app import WorkerSettings, make_app, queue_for
from synthgate.workers.chunks import (
    HeldLease,
    NotInThisDatabase,
    WorkerContext,
    chunk_rows,
    run_chunk,
)
from synthgate.workers.runner import assemble_from_store

DATA_FILES = ("coco.json", "accepted.coco.json", "text.jsonl")


def make_config(**overrides: Any) -> Any:
    return parse_config(small_config(**overrides), source=Path("test.yaml"))


@pytest.fixture
def context(tmp_path: Path) -> WorkerContext:
    settings = WorkerSettings(
        db_url=f"sqlite:///{tmp_path / 'shared.db'}",
        blob_url=str(tmp_path / "blobs"),
        max_crashes=2,
    )
    return WorkerContext.from_settings(settings)


def register(context: WorkerContext, config: Any) -> str:
    batch_id = batch_id_for(config)
    context.store.put_batch(
        batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
    )
    context.store.chunks.put(chunk_rows(config, batch_id))
    return batch_id


def test_plan_range_is_the_same_as_the_slice_of_the_whole_plan() -> None:
    config = make_config()
    generator = build_generator(config.text, categories=config.categories)
    args = {"batch_id": "b", "quota_categories": generator.quota_categories()}
    whole = list(plan(config, "text", **args))
    assert list(plan(config, "text", start=5, stop=9, **args)) == whole[5:9]


def test_chunks_cover_every_index_once() -> None:
    config = make_config(image={"generator": "procedural", "count": 21, "size": [32, 32]})
    rows = chunk_rows(config, "b")
    for modality in ("image", "text"):
        covered = [
            i for r in rows if r["modality"] == modality for i in range(r["start"], r["stop"])
        ]
        assert covered == list(range(getattr(config, modality).count))
    assert len({r["id"] for r in rows}) == len(rows)
    assert {r["queue"] for r in rows} == {"cpu"}


@pytest.mark.parametrize(
    ("generator", "queue"),
    [
        ("procedural", "cpu"),
        ("templates", "cpu"),
        ("copy_paste", "cpu"),
        ("diffusion/layout", "gpu"),
    ],
)
def test_routing_by_generator(generator: str, queue: str) -> None:
    assert queue_for(generator) == queue


DELIVERY_CASES = [
    # (status before, who holds its lease, status after, claimed, crashes after): a delivery
    # takes a running chunk over when its lease ran out or when it is the holder's own message
    # again (the broker redelivered it: its worker was lost); a live holder keeps it.
    ("queued", None, "running", True, 0),
    ("running", "expired", "running", True, 1),
    ("running", "this task", "running", True, 1),
    ("running", "another task", "running", False, 0),
    ("generated", None, "generated", False, 0),
    ("done", None, "done", False, 0),
    ("failed", None, "failed", False, 0),
]


@pytest.mark.parametrize(("before", "holder", "after", "claimed", "crashes"), DELIVERY_CASES)
def test_begin_claims_a_chunk_under_a_lease(
    context: WorkerContext,
    before: str,
    holder: str | None,
    after: str,
    claimed: bool,
    crashes: int,
) -> None:
    batch_id = register(context, make_config())
    chunk_id = f"{batch_id}:text:0"
    book = context.store.chunks
    if before == "running":
        first_holder = "this task" if holder == "this task" else "another task"
        first = book.begin(chunk_id, holder=first_holder, lease_seconds=60)
        assert first is not None and first.lease is not None and first.lease.number == 1
        if holder == "expired":
            book.update(chunk_id, lease_expires=time.time() - 1)
    else:
        book.update(chunk_id, status=before)
    delivery = book.begin(chunk_id, holder="this task", lease_seconds=60)
    assert delivery is not None
    state = delivery.chunk
    assert (state.status, state.crashes, delivery.lease is not None) == (after, crashes, claimed)
    assert state.deliveries == (2 if before == "running" else 1)
    if claimed:
        assert delivery.lease is not None
        assert (delivery.lease.number, state.holder) == (state.lease, "this task")
        assert state.lease_expires is not None and state.lease_expires > time.time() + 50
    assert book.get(chunk_id) == state  # what begin returned is what it wrote
    assert book.begin("nope", holder="x", lease_seconds=1) is None


def test_every_chunk_run_twice_gives_one_row_per_sample_and_the_run_folder_of_run(
    context: WorkerContext, tmp_path: Path
) -> None:
    config = make_config()
    batch_id = register(context, config)
    rows = context.store.chunks.of_batch(batch_id)
    for chunk in rows:
        assert run_chunk(context, chunk.id).endswith("generated")
    for chunk in rows:  # a redelivered message of a finished chunk does nothing
        assert run_chunk(context, chunk.id).endswith("already generated")
    counts = context.store.count_by_status(batch_id)
    assert sum(counts.values()) == counts[("image", "pending")] + counts[("text", "pending")]
    assert sum(counts.values()) == planned_total(config)
    assemble_from_store(
        config, tmp_path / "submitted", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    run_batch(config, tmp_path / "embedded")
    for name in DATA_FILES:
        assert (tmp_path / "submitted" / name).read_bytes() == (
            tmp_path / "embedded" / name
        ).read_bytes()
    images = sorted(p.name for p in (tmp_path / "embedded" / "images").iterdir())
    assert images == sorted(p.name for p in (tmp_path / "submitted" / "images").iterdir())
    for name in images:
        assert (tmp_path / "submitted" / "images" / name).read_bytes() == (
            tmp_path / "embedded" / "images" / name
        ).read_bytes()
    assert (tmp_path / "submitted" / "report.md").read_bytes() == (
        tmp_path / "embedded" / "report.md"
    ).read_bytes()
    manifests = [
        json.loads((tmp_path / f / "manifest.json").read_text()) for f in ("submitted", "embedded")
    ]
    assert manifests[0]["counts"] == manifests[1]["counts"]
    # Judged in order, the samples went back to the shared database, and their chunks are done.
    assert ("text", "pending") not in context.store.count_by_status(batch_id)
    assert {c.status for c in context.store.chunks.of_batch(batch_id)} == {"done"}


def test_a_chunk_that_lost_its_worker_too_often_fails_only_the_sample_in_flight(
    context: WorkerContext,
) -> None:
    config = make_config()
    batch_id = register(context, config)
    chunk_id = f"{batch_id}:text:0"
    # Two deliveries died making sample 4: the chunk is `running`, sample 4 in flight.
    context.store.chunks.update(chunk_id, status="running", crashes=1, current=4)
    assert run_chunk(context, chunk_id).endswith("generated")
    failures = context.store.failures(batch_id)
    assert [(f["modality"], f["index"]) for f in failures] == [("text", 4)]
    assert "worker was lost 2 times" in failures[0]["reason"]
    counts = context.store.count_by_status(batch_id)
    assert counts == {("text", "pending"): config.text.count - 1, ("text", "failed"): 1}


def test_a_sample_whose_generator_raises_fails_alone_with_the_error_as_reason(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config()
    batch_id = register(context, config)
    real = chunk_module.generate_specs

    def broken_at_seven(generator: Any, specs: list[Any]) -> list[Any]:
        if any(s.index == 7 for s in specs):
            raise ValueError("no slot value for locale xx")
        return real(generator, specs)

    monkeypatch.setattr(chunk_module, "generate_specs", broken_at_seven)
    assert run_chunk(context, f"{batch_id}:text:0").endswith("generated, 1 failed")
    failures = context.store.failures(batch_id)
    assert [(f["index"], f["reason"]) for f in failures] == [
        (7, "ValueError: no slot value for locale xx")
    ]


def test_stored_indices_and_blob_store_round_trip(tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "b")
    blobs.put("images/x.png", b"png")
    assert blobs.get("images/x.png") == b"png"
    remote = BlobStore(f"file://{tmp_path / 'remote'}")
    remote.put("images/y.png", b"y")
    assert remote.get("images/y.png") == b"y"
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    assert store.stored_indices("b", "text", 0, 10) == set()
    assert list(itertools.islice(store.iter_samples("b", "text"), 1)) == []


@pytest.mark.parametrize(
    ("code", "raised"),
    [(errno.ENOSPC, files.NoSpaceLeft), (errno.EDQUOT, files.NoSpaceLeft), (errno.EIO, OSError)],
)
def test_a_remote_blob_store_that_is_full_is_no_space_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, raised: type[Exception]
) -> None:
    """A full remote store is `NoSpaceLeft` naming its URL, as a full local one is (workers
    retry it); any other failure goes on as it is."""
    import fsspec

    def full(url: str, mode: str) -> Any:
        raise OSError(code, "No space left on device")

    monkeypatch.setattr(fsspec, "open", full)
    remote = BlobStore(f"file://{tmp_path / 'remote'}")
    with pytest.raises(raised) as caught:
        remote.put("images/y.png", b"y")
    if raised is files.NoSpaceLeft:
        assert f"blobs={remote.url}/images/y.png" in str(caught.value)
        assert "cannot write there (No space left on device)" in str(caught.value)


@pytest.fixture
def eager_app(context: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The Celery app running tasks in this process, on the test's database and blob folder."""
    from synthgate.workers import tasks
    from synthgate.workers.app import make_app

    settings = context.settings.model_copy(update={"max_retries": 2, "retry_backoff_max": 0.01})
    context.settings = settings
    app = make_app(settings)
    app.conf.task_always_eager = True
    monkeypatch.setattr(tasks, "context_for", lambda _app: context)
    return app


def test_transient_errors_are_retried_then_the_chunk_is_made(
    context: WorkerContext, eager_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from synthgate.workers import tasks

    batch_id = register(context, make_config())
    calls = []

    def flaky(ctx: WorkerContext, chunk_id: str, *, holder: str) -> str:
        calls.append(holder)
        if len(calls) <= 2:
            raise OperationalError("UPDATE chunks", {}, Exception("database is locked"))
        return run_chunk(ctx, chunk_id, holder=holder)

    monkeypatch.setattr(tasks, "run_chunk", flaky)
    tasks.make_chunk.apply(args=[f"{batch_id}:text:0"])
    assert len(calls) == 3 and len(set(calls)) == 1  # retries keep the task id
    chunk = context.store.chunks.get(f"{batch_id}:text:0")
    assert chunk is not None and (chunk.status, chunk.crashes) == ("generated", 0)
    assert chunk.holder == calls[0]


@pytest.mark.parametrize("retries", [2, 5], ids=["2", "5 (the default)"])
def test_a_chunk_out_of_retries_fails_its_samples_with_the_reason(
    context: WorkerContext, eager_app: Any, monkeypatch: pytest.MonkeyPatch, retries: int
) -> None:
    """With more than Celery's own 3 retries (SYNTHGATE_MAX_RETRIES is 5 by default), the
    fourth retry raised the error out of the task instead: the chunk was left queued with no
    task to make it and no reason, for ever unless a `submit --wait` noticed the stall."""
    from sqlalchemy.exc import OperationalError

    from synthgate.workers import tasks

    config = make_config()
    batch_id = register(context, config)
    eager_app.synthgate = context.settings = context.settings.model_copy(
        update={"max_retries": retries}
    )
    calls = []

    def broken(ctx: WorkerContext, chunk_id: str, *, holder: str) -> str:
        calls.append(holder)
        raise OperationalError("INSERT", {}, Exception("could not connect to server"))

    monkeypatch.setattr(tasks, "run_chunk", broken)
    tasks.make_chunk.apply(args=[f"{batch_id}:text:0"])
    assert len(calls) == retries + 1
    failures = context.store.failures(batch_id)
    assert len(failures) == config.text.count
    reason = f"gave up after {retries} retries: OperationalError"
    assert all(reason in f["reason"] for f in failures)
    assert context.store.chunks.get(f"{batch_id}:text:0").status == "generated"  # type: ignore[union-attr]


def full_blob_store(monkeypatch: pytest.MonkeyPatch, blobs: BlobStore, writes: int) -> list[str]:
    """The blob store's disk is full for its next `writes` writes (every one when < 0): each
    fails with ENOSPC as the OS raises it. Returns the paths refused."""
    refused: list[str] = []
    real = files.AtomicFile.write

    def write(self: files.AtomicFile, data: bytes) -> None:
        if self.path.is_relative_to(blobs.url) and (writes < 0 or len(refused) < writes):
            refused.append(str(self.path))
            with files._written_to(self.path, self.field):
                raise OSError(errno.ENOSPC, "No space left on device")
        real(self, data)

    monkeypatch.setattr(files.AtomicFile, "write", write)
    return refused


# (crashes before the delivery, writes the disk is full for): a whole chunk is made at once,
# its PNGs written as they come: full for all of them and one more; after a crash one sample
# at a time: full for two.
FULL_DISK_CASES = [(0, 7), (1, 2)]


@pytest.mark.parametrize(
    ("crashes", "full_for"), FULL_DISK_CASES, ids=["whole chunk", "one sample at a time"]
)
def test_a_full_blob_store_is_retried_and_fails_no_sample(
    context: WorkerContext,
    eager_app: Any,
    monkeypatch: pytest.MonkeyPatch,
    crashes: int,
    full_for: int,
) -> None:
    """A full disk under the blob store failed the chunk's samples ('cannot write there (No
    space left on device)') instead of retrying the chunk later, as a database or network
    hiccup is: space may be freed by then."""
    from synthgate.workers import tasks

    config = make_config()  # 6 images: one chunk
    batch_id = register(context, config)
    chunk_id = f"{batch_id}:image:0"
    context.store.chunks.update(chunk_id, crashes=crashes)
    refused = full_blob_store(monkeypatch, context.blobs, writes=full_for)
    tasks.make_chunk.apply(args=[chunk_id])
    assert len(refused) == full_for
    assert context.store.failures(batch_id) == []
    chunk = context.store.chunks.get(chunk_id)
    assert chunk is not None and chunk.status == "generated"
    counts = context.store.count_by_status(batch_id)
    assert counts == {("image", "pending"): config.image.count}


def test_a_blob_store_full_past_the_retries_fails_the_chunk_with_the_reason(
    context: WorkerContext, eager_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthgate.workers import tasks

    config = make_config()
    batch_id = register(context, config)
    full_blob_store(monkeypatch, context.blobs, writes=-1)
    tasks.make_chunk.apply(args=[f"{batch_id}:image:0"])
    failures = context.store.failures(batch_id)
    assert len(failures) == config.image.count
    reason = failures[0]["reason"]
    assert reason.startswith("gave up after 2 retries: NoSpaceLeft: blobs=")
    assert reason.endswith("cannot write there (No space left on device)")


def test_a_full_fsspec_blob_store_is_no_space_left_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not an OSError, which would fail the sample: the same error as a full local folder."""
    import fsspec

    class Full:
        def __enter__(self) -> Full:
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def write(self, data: bytes) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsspec, "open", lambda *_a, **_k: Full())
    remote = BlobStore(f"file://{tmp_path / 'remote'}")
    with pytest.raises(files.NoSpaceLeft, match=r"blobs=file://.*/x.png: cannot write there"):
        remote.put("images/x.png", b"png")


@pytest.mark.parametrize("crashes", [0, 1], ids=["whole chunk", "one sample at a time"])
def test_the_soft_time_limit_ends_the_task_and_fails_what_is_not_made(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch, crashes: int
) -> None:
    """SoftTimeLimitExceeded is never taken for one sample's failure (the broad except that
    lets a chunk go on one sample at a time): the task stops at once, and the samples not
    made are marked failed with the reason, under the lease."""
    from celery.exceptions import SoftTimeLimitExceeded

    config = make_config()
    batch_id = register(context, config)
    chunk_id = f"{batch_id}:text:0"
    if crashes:  # a delivery after a crash makes one sample at a time
        context.store.chunks.update(chunk_id, crashes=crashes)
    real = chunk_module.generate_specs
    asked: list[int] = []

    def slow_from_five(generator: Any, specs: list[Any]) -> list[Any]:
        asked.extend(s.index for s in specs)
        if any(s.index == 5 for s in specs):
            raise SoftTimeLimitExceeded()
        return real(generator, specs)

    monkeypatch.setattr(chunk_module, "generate_specs", slow_from_five)
    said = run_chunk(context, chunk_id)
    assert said == f"{chunk_id} failed: took longer than the 600s soft time limit"
    assert max(asked) == 5  # nothing was generated after the limit
    failures = context.store.failures(batch_id)
    made = 5 if crashes else 0  # made whole, the chunk had written nothing yet
    assert [f["index"] for f in failures] == list(range(made, config.text.count))
    assert all("soft time limit" in f["reason"] for f in failures)
    counts = context.store.count_by_status(batch_id)
    assert counts.get(("text", "pending"), 0) == made
    chunk = context.store.chunks.get(chunk_id)
    assert chunk is not None and (chunk.status, chunk.lease_expires) == ("generated", None)


def test_gpu_chunks_keep_the_generator_batch_and_give_the_same_run_folder(
    context: WorkerContext, tmp_path: Path
) -> None:
    config = make_config()
    batch_id = batch_id_for(config)
    context.store.put_batch(
        batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
    )
    rows = chunk_rows(config, batch_id, gpu_generators=["procedural"], cpu_chunk_factor=4)
    assert {r["modality"]: r["queue"] for r in rows} == {"image": "gpu", "text": "cpu"}
    context.store.chunks.put(rows)
    for chunk in context.store.chunks.of_batch(batch_id):
        assert run_chunk(context, chunk.id).endswith("generated")
    assemble_from_store(
        config, tmp_path / "submitted", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    run_batch(config, tmp_path / "embedded")
    for name in DATA_FILES:
        assert (tmp_path / "submitted" / name).read_bytes() == (
            tmp_path / "embedded" / name
        ).read_bytes()


@pytest.mark.parametrize("modality", ["image", "text"])
def test_a_stored_partial_report_finishes_into_the_report_of_a_fresh_judge(
    tmp_path: Path, modality: str
) -> None:
    from synthgate.pipeline import build_judges, generate_specs
    from synthgate.workers.chunks import put_blobs
    from synthgate.workers.partial import load_partial

    config = make_config()
    section = getattr(config, modality)
    generator = build_generator(section, categories=config.categories)
    specs = list(
        plan(config, modality, batch_id="b", quota_categories=generator.quota_categories())
    )[:3]
    made = generate_specs(generator, specs)
    made.append(copy.deepcopy(made[0]))  # a copy under a new id: the batch check must see it
    made[-1].sample.id += "-copy"
    in_worker = build_judges(config, {modality: generator})[modality]
    blobs = BlobStore(tmp_path / "blobs")
    for generated in made:
        put_blobs(blobs, generated, in_worker)
    fresh = build_judges(config, {modality: generator})[modality]
    expected = [fresh(generated) for generated in made]
    submitting = build_judges(config, {modality: generator})[modality]
    finished = []
    for generated in made:
        measured, hidden = load_partial(blobs, generated.sample)
        assert hidden == hidden_objects(generated)
        finished.append(submitting.finish(measured))
    assert [r.model_dump_json() for r in finished] == [r.model_dump_json() for r in expected]
    duplicate = {"image": "clarity_near_duplicate", "text": "clarity_duplicate_text"}[modality]
    assert [f.check == duplicate for r in finished for f in r.findings].count(True) == 1
    assert any(f.check == duplicate for f in finished[-1].findings)


def test_a_chunk_whose_generator_cannot_be_built_fails_with_the_reason(
    context: WorkerContext, eager_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synthgate.workers import tasks
    from synthgate.workers.runner import load_chunk

    batch_id = register(context, make_config())

    def no_model(batch_id: str, modality: str) -> Any:
        raise InputError("model.path: /models/sd-tiny not found on this worker")

    monkeypatch.setattr(context, "generator", no_model)
    tasks.make_chunk.apply(args=[f"{batch_id}:text:0"])
    chunk = context.store.chunks.get(f"{batch_id}:text:0")
    assert chunk is not None and chunk.status == "failed"
    assert chunk.reason == "InputError: model.path: /models/sd-tiny not found on this worker"
    with pytest.raises(InputError, match="sd-tiny not found"):
        load_chunk(context.store, context.blobs, chunk)


def test_a_missing_partial_report_is_a_storage_fault(tmp_path: Path) -> None:
    from synthgate.pipeline import generate_specs
    from synthgate.workers.partial import load_partial

    config = make_config()
    generator = build_generator(config.text, categories=config.categories)
    spec = next(plan(config, "text", batch_id="b", quota_categories=generator.quota_categories()))
    [made] = generate_specs(generator, [spec])
    with pytest.raises(FileNotFoundError):
        load_partial(BlobStore(tmp_path / "blobs"), made.sample)


def expire(context: WorkerContext, chunk_id: str) -> None:
    """The lease of a running chunk ran out: its worker stopped renewing it."""
    with context.store.engine.begin() as connection:
        connection.execute(
            chunks.update().where(chunks.c.id == chunk_id).values(lease_expires=time.time() - 1)
        )


def test_a_resubmit_sends_queued_chunks_and_running_ones_whose_lease_ran_out(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A running chunk under a live lease is left to its worker; one whose lease ran out lost
    its worker: back to `queued` with a crash counted, and sent with the queued ones."""
    config = make_config(image={"generator": "procedural", "count": 24, "size": [32, 32]})
    batch_id = register(context, config)
    ids = [chunk.id for chunk in context.store.chunks.of_batch(batch_id)]
    assert len(ids) >= 3
    queued, live, lost, *_ = ids
    for chunk_id in (live, lost):
        context.store.chunks.begin(chunk_id, holder=f"task-{chunk_id}", lease_seconds=60)
    expire(context, lost)
    sent: list[str] = []
    monkeypatch.setattr(
        worker_submit, "publish", lambda _app, c, **_: sent.extend(x.id for x in c) or len(c)
    )
    app = SimpleNamespace(synthgate=context.settings)
    _, count = worker_submit.submit_batch(app, context.store, config)
    assert queued in sent and lost in sent and live not in sent and count == len(sent)
    requeued = context.store.chunks.get(lost)
    assert requeued is not None and (requeued.status, requeued.crashes) == ("queued", 1)


def test_a_resubmit_with_another_chunk_factor_keeps_the_chunks_the_batch_has(
    context: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunks are cut by the submitting process's SYNTHGATE_CPU_CHUNK_FACTOR. Submitted
    again from a machine with another one, the batch got a second set of chunks over the same
    samples (:8 and :16 within :0's 0-24): sent, found made, never generated, and the run
    folder's judge stopped on them saying the blob store lacked their files."""
    config = make_config(image={"generator": "procedural", "count": 24, "size": [32, 32]})
    sent: list[str] = []
    monkeypatch.setattr(
        worker_submit, "publish", lambda _app, c, **_: sent.extend(x.id for x in c) or len(c)
    )
    whole = SimpleNamespace(synthgate=context.settings.model_copy(update={"cpu_chunk_factor": 4}))
    batch_id, _ = worker_submit.submit_batch(whole, context.store, config)
    chunked = [(c.modality, c.start, c.stop) for c in context.store.chunks.of_batch(batch_id)]
    assert ("image", 0, 24) in chunked
    for chunk in context.store.chunks.of_batch(batch_id):
        run_chunk(context, chunk.id)
    sent.clear()
    finer = SimpleNamespace(synthgate=context.settings.model_copy(update={"cpu_chunk_factor": 1}))
    _, count = worker_submit.submit_batch(finer, context.store, config)
    after = [(c.modality, c.start, c.stop) for c in context.store.chunks.of_batch(batch_id)]
    assert after == chunked and (count, sent) == (0, [])
    assemble_from_store(
        config, tmp_path / "submitted", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    run_batch(config, tmp_path / "embedded")
    for name in DATA_FILES:
        assert (tmp_path / "submitted" / name).read_bytes() == (
            tmp_path / "embedded" / name
        ).read_bytes()


def test_a_resubmit_after_its_generator_moved_to_the_gpu_queue_sends_it_there(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch submitted while SYNTHGATE_GPU_GENERATORS left its generator on `cpu` waits
    there ("is a worker serving queue cpu running?"); the user routes the generator to `gpu`
    and submits it again, nothing made yet. Its chunks kept their first queue, so it was sent
    to `cpu` again, where no worker that can make it listens. Its chunks waiting go to `gpu`
    now, still the chunks it was first cut into."""
    config = make_config(image={"generator": "procedural", "count": 24, "size": [32, 32]})
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(
        worker_submit,
        "publish",
        lambda _app, c, **_: sent.extend((x.id, x.queue) for x in c) or len(c),
    )
    on_cpu = SimpleNamespace(synthgate=context.settings.model_copy(update={"gpu_generators": []}))
    batch_id, _ = worker_submit.submit_batch(on_cpu, context.store, config)
    assert {c.queue for c in context.store.chunks.of_batch(batch_id)} == {"cpu"}
    sent.clear()
    routed = {"gpu_generators": ["procedural"]}
    on_gpu = SimpleNamespace(synthgate=context.settings.model_copy(update=routed))
    worker_submit.submit_batch(on_gpu, context.store, config)
    images = [queue for chunk_id, queue in sent if ":image:" in chunk_id]
    assert images and set(images) == {"gpu"}, sent


def test_a_chunk_keeps_its_partial_reports_in_one_blob_and_a_remake_adds_to_it(
    context: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Made in one go, a chunk's partial reports are one blob; made sample by sample (a sample
    failed), one blob each; the failed sample made again later joins the chunk's blob, and the
    run folder is the one `synthgate run` writes."""
    from synthgate.workers.partial import (
        chunk_partials_key,
        load_chunk_partials,
        put_chunk_partials,
    )

    config = make_config()
    batch_id = register(context, config)
    image_chunk, text_chunk = f"{batch_id}:image:0", f"{batch_id}:text:0"
    run_chunk(context, image_chunk)
    documents = load_chunk_partials(context.blobs, image_chunk)
    image_ids = [s.id for s in context.store.iter_samples(batch_id, "image")]
    assert sorted(documents) == sorted(image_ids) and image_ids
    assert not (tmp_path / "blobs" / "partial" / f"{image_ids[0]}.json").exists()

    real = chunk_module.generate_specs

    def broken_at_seven(generator: Any, specs: list[Any]) -> list[Any]:
        if any(s.index == 7 for s in specs):
            raise ValueError("no slot value for locale xx")
        return real(generator, specs)

    monkeypatch.setattr(chunk_module, "generate_specs", broken_at_seven)
    assert run_chunk(context, text_chunk).endswith("1 failed")  # sample by sample
    assert load_chunk_partials(context.blobs, text_chunk) == {}
    monkeypatch.setattr(chunk_module, "generate_specs", real)
    context.store.forget_failed(batch_id, "text", 0, config.text.count)
    context.store.chunks.update(text_chunk, status="queued")
    run_chunk(context, text_chunk)  # only sample 7 is left: made in one go
    assert len(load_chunk_partials(context.blobs, text_chunk)) == 1
    for chunk in context.store.chunks.of_batch(batch_id):
        run_chunk(context, chunk.id)
    assemble_from_store(
        config, tmp_path / "submitted", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    run_batch(config, tmp_path / "embedded")
    for name in DATA_FILES:
        assert (tmp_path / "submitted" / name).read_bytes() == (
            tmp_path / "embedded" / name
        ).read_bytes()
    # Stored again for the same chunk, documents add to those already there.
    put_chunk_partials(context.blobs, "b:image:0", {"a": {"x": 1}})
    put_chunk_partials(context.blobs, "b:image:0", {"b": {"x": 2}})
    assert load_chunk_partials(context.blobs, "b:image:0") == {"a": {"x": 1}, "b": {"x": 2}}
    assert (tmp_path / "blobs" / chunk_partials_key("b:image:0")).is_file()


def test_the_sweep_hands_chunks_whose_lease_ran_out_to_the_workers_once(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = make_config(image={"generator": "procedural", "count": 24, "size": [32, 32]})
    batch_id = register(context, config)
    ids = [chunk.id for chunk in context.store.chunks.of_batch(batch_id)]
    _queued, live, lost, *_ = ids
    for chunk_id in (live, lost):
        context.store.chunks.begin(chunk_id, holder=f"task-{chunk_id}", lease_seconds=60)
    expire(context, lost)
    sent: list[tuple[str, bool]] = []
    monkeypatch.setattr(
        worker_submit,
        "publish",
        lambda _app, c, *, ahead=False: sent.extend((x.id, ahead) for x in c) or len(c),
    )
    app = SimpleNamespace(synthgate=context.settings)
    assert worker_submit.recover_lost(app, context.store) == [lost]
    assert worker_submit.recover_lost(app, context.store) == []  # another sweep: nothing left
    assert sent == [(lost, True)]  # ahead of the chunks waiting their turn
    # The lost worker comes back: its writes are refused, and so is its renewal.
    stale = Lease(lost, 1, f"task-{lost}", 60)
    with pytest.raises(LeaseLost):
        context.store.chunks.update_held(stale, status="generated")
    assert not context.store.chunks.renew(stale)
    # The chunk's message, delivered again, is claimed under a new lease.
    delivery = context.store.chunks.begin(lost, holder="task-new", lease_seconds=60)
    assert delivery is not None and delivery.lease is not None and delivery.lease.number == 2
    assert delivery.chunk.crashes == 1  # counted once, by the sweep


def test_the_sweeps_count_one_chunk_sent_again_in_the_singular(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Checked on a redis cluster: a worker SIGKILLed mid-chunk, and `submit --wait` printed
    "sent 1 chunks whose worker was lost again: big-54ed553daa:image:0"."""
    from synthgate.workers import tasks

    config = make_config(image={"generator": "procedural", "count": 24, "size": [32, 32]})
    batch_id = register(context, config)
    lost = context.store.chunks.of_batch(batch_id)[0].id
    context.store.chunks.begin(lost, holder="task-lost", lease_seconds=60)
    expire(context, lost)
    monkeypatch.setattr(worker_submit, "publish", lambda _app, c, **_: len(c))
    app = SimpleNamespace(synthgate=context.settings)
    with caplog.at_level("WARNING", logger=worker_submit.__name__):
        assert worker_submit.recover_lost(app, context.store) == [lost]
    assert f"sent 1 chunk whose worker was lost again: {lost}" in caplog.text, caplog.text
    # A worker's sweep that sends one queued chunk whose message was lost says it alike.
    monkeypatch.setattr(tasks, "recover_lost", lambda *_a, **_k: [])
    monkeypatch.setattr(tasks, "resend_stalled", lambda *_a, **_k: [lost])
    sweeper = tasks.LeaseSweeper(
        app, context.settings.model_copy(update={"heartbeat_interval": 0.05})
    )
    with caplog.at_level("WARNING", logger=tasks.__name__):
        sweeper.start()
        try:
            wait_for = time.monotonic() + 10
            while "no worker took again" not in caplog.text and time.monotonic() < wait_for:
                time.sleep(0.02)
        finally:
            sweeper.stop()
    assert f"sent 1 queued chunk no worker took again (its message was lost): {lost}" in (
        caplog.text
    ), caplog.text


def test_a_sweep_without_a_broker_leaves_the_chunk_lost_for_the_next_one(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = register(context, make_config())
    chunk_id = f"{batch_id}:text:0"
    context.store.chunks.begin(chunk_id, holder="killed", lease_seconds=60)
    expire(context, chunk_id)

    def no_broker(_app: Any, _chunks: Any, **_: Any) -> int:
        raise InputError("broker redis://nowhere: cannot publish")

    app = SimpleNamespace(synthgate=context.settings)
    monkeypatch.setattr(worker_submit, "publish", no_broker)
    with pytest.raises(InputError, match="cannot publish"):
        worker_submit.recover_lost(app, context.store)
    [lost] = context.store.chunks.lost()
    assert (lost.id, lost.status, lost.crashes) == (chunk_id, "running", 0)
    monkeypatch.setattr(worker_submit, "publish", lambda _app, c, **_: len(c))
    assert worker_submit.recover_lost(app, context.store) == [chunk_id]
    assert context.store.chunks.get(chunk_id).crashes == 1  # type: ignore[union-attr]


def test_a_chunk_unknown_to_the_workers_database_is_an_error_naming_it_and_the_fix(
    context: WorkerContext,
) -> None:
    """A worker started with another --db took the chunks' messages and dropped them with an
    INFO line, "succeeded: 'unknown chunk ...'": the batch sat queued, nothing said why."""
    with pytest.raises(NotInThisDatabase) as refused:
        run_chunk(context, "other-0123456789:image:0")
    assert str(refused.value) == (
        "chunk other-0123456789:image:0 is not in this worker's database "
        f"{context.store.url}: its batch was submitted to another one. Start this worker with "
        "the --db (or SYNTHGATE_DB_URL) that `synthgate submit` is given"
    )


def test_a_chunk_unknown_to_the_workers_database_is_sent_again_then_dropped(
    context: WorkerContext, eager_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The task acknowledged the message of a chunk its database does not hold (a worker
    started with another --db) at once: the chunk waited for a sweep of the workers on the
    right database to send it again. It is sent again a heartbeat later, for a worker on that
    database, up to the retries (2 here; eager, the retries run at once), with the error said
    each time; then dropped. A message whose database is gone (reset, removed) stops there: it
    went round every worker for ever when it was requeued without a count."""
    from synthgate.workers import tasks

    with caplog.at_level("ERROR", logger="synthgate.workers.tasks"):
        result = tasks.make_chunk.apply(args=["other-0123456789:image:0"])
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == context.settings.max_retries + 1 == 3
    unknown = f"chunk other-0123456789:image:0 is not in this worker's database {context.store.url}"
    assert all(line.startswith(unknown) for line in said)
    assert all(
        line.endswith("; sent again in 2s, for a worker on that database") for line in said[:-1]
    )
    assert said[-1].endswith(
        "; dropped after 3 tries (a worker on the database that holds the chunk sends it again)"
    )
    assert result.state == "SUCCESS" and result.result.startswith(unknown)


def test_the_sweep_sends_queued_chunks_nobody_took_again_once_with_the_queues_empty(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch_id = register(context, make_config())
    cancelled = register(context, make_config(name="dropped"))
    context.store.set_batch_status(cancelled, "cancelled")  # its chunks stay queued on purpose
    sent: list[str] = []
    monkeypatch.setattr(
        worker_submit, "publish", lambda _app, c, **_: sent.extend(x.id for x in c) or len(c)
    )
    queues = {c.queue for c in context.store.chunks.of_batch(batch_id)}
    waiting = dict.fromkeys(queues, 1)
    monkeypatch.setattr(
        worker_submit,
        "queued_messages",
        lambda _app, asked: sum(waiting.get(queue, 0) for queue in asked),
    )
    app = SimpleNamespace(synthgate=context.settings)

    def resend() -> list[str]:
        return worker_submit.resend_stalled(app, context.store, settings=context.settings)

    assert resend() == []  # just queued: its messages are on their way
    with context.store.engine.begin() as connection:
        connection.execute(chunks.update().values(updated=time.time() - 3600))
    assert resend() == []  # messages are waiting in the broker: the workers are busy
    # their queues emptied; messages waiting for a GPU worker that is not running hold
    # back no chunk of another queue
    waiting = {**dict.fromkeys(queues, 0), "gpu": 3}
    assert "gpu" not in queues
    ids = [c.id for c in context.store.chunks.of_batch(batch_id)]
    assert resend() == ids == sent
    assert resend() == []  # sent: not again before another quiet period


def test_a_held_lease_is_renewed_while_the_chunk_is_made_and_reports_its_loss(
    context: WorkerContext,
) -> None:
    batch_id = register(context, make_config())
    chunk_id = f"{batch_id}:text:0"
    book = context.store.chunks
    delivery = book.begin(chunk_id, holder="mine", lease_seconds=0.3)
    assert delivery is not None and delivery.lease is not None
    with HeldLease(book, delivery.lease, interval=0.05) as held:
        time.sleep(0.6)  # twice the lease: renewed all along
        expires = book.get(chunk_id).lease_expires  # type: ignore[union-attr]
        assert expires is not None and expires > time.time()
        assert book.lost() == []
        held.check()
        book.update(chunk_id, status="queued")  # a sweep took it (the database says so)
        assert book.begin(chunk_id, holder="theirs", lease_seconds=60) is not None
        deadline = time.monotonic() + 5
        while not held.lost.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(LeaseLost, match="lease 1 of task mine"):
            held.check()
    assert book.get(chunk_id).holder == "theirs"  # type: ignore[union-attr]


def test_a_delivery_whose_chunk_was_handed_over_mid_chunk_writes_nothing(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that froze while making a chunk, came back after another worker took the
    chunk over, and goes on: its next write is refused, and the task ends."""
    config = make_config()
    batch_id = register(context, config)
    chunk_id = f"{batch_id}:text:0"
    context.store.chunks.update(chunk_id, crashes=1)  # one sample at a time: a write each
    real = chunk_module.generate_specs

    def taken_over_at_four(generator: Any, specs: list[Any]) -> list[Any]:
        if any(s.index == 4 for s in specs):  # meanwhile the lease ran out and went elsewhere
            expire(context, chunk_id)
            [lost] = context.store.chunks.lost()
            assert context.store.chunks.requeue_lost(lost)
            assert context.store.chunks.begin(chunk_id, holder="other", lease_seconds=60)
        return real(generator, specs)

    monkeypatch.setattr(chunk_module, "generate_specs", taken_over_at_four)
    said = run_chunk(context, chunk_id, holder="frozen")
    assert said == f"{chunk_id}: lease 1 lost to another worker; stopped"
    assert context.store.stored_indices(batch_id, "text", 0, config.text.count) == set(range(4))
    chunk = context.store.chunks.get(chunk_id)
    assert chunk is not None and (chunk.status, chunk.holder, chunk.lease) == (
        "running",
        "other",
        2,
    )
    assert chunk.current == 4  # the frozen worker's last write, before it was taken over


def test_a_done_batch_submitted_again_stays_done(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing to make: it was marked running for good (no `--wait` came to finish it)."""
    config = make_config(image={"generator": "procedural", "count": 4, "size": [32, 32]})
    batch_id = register(context, config)
    for chunk in context.store.chunks.of_batch(batch_id):
        context.store.chunks.update(chunk.id, status="done")
    context.store.set_batch_status(batch_id, "done", "published")
    monkeypatch.setattr(worker_submit, "publish", lambda _app, c, **_: len(c))
    app = SimpleNamespace(synthgate=context.settings)
    assert worker_submit.submit_batch(app, context.store, config) == (batch_id, 0)
    assert context.store.get_batch(batch_id)["status"] == "done"
    first = context.store.chunks.of_batch(batch_id)[0]
    context.store.chunks.update(first.id, status="failed")  # something to make again: running
    assert worker_submit.submit_batch(app, context.store, config)[1] == 1
    assert context.store.get_batch(batch_id)["status"] == "running"


def test_a_chunk_whose_files_are_missing_is_queued_to_be_made_again(
    context: WorkerContext,
) -> None:
    """A worker with another --blobs made it where submit cannot read: a FileNotFoundError
    traceback, and the chunk stayed `generated`, which no submit remakes (stuck for good)."""
    import shutil

    from synthgate.workers.runner import load_chunk

    config = make_config(image={"generator": "procedural", "count": 2, "size": [32, 32]})
    batch_id = register(context, config)
    chunk = next(c for c in context.store.chunks.of_batch(batch_id) if c.modality == "image")
    run_chunk(context, chunk.id)
    made = context.store.chunks.get(chunk.id)
    assert made is not None and made.status == "generated"
    shutil.rmtree(context.blobs.url)
    with pytest.raises(InputError, match="the files of 2 of its samples are not in") as caught:
        load_chunk(context.store, BlobStore(context.blobs.url), made)
    # worded for the CLI, the API and the library alike: each submits in its own way
    assert "Either way submit the same config again" in str(caught.value)
    assert "synthgate submit" not in str(caught.value)
    again = context.store.chunks.get(chunk.id)
    assert again is not None and again.status == "queued"


def test_a_chunk_whose_files_are_missing_is_made_anew_by_its_next_delivery(
    context: WorkerContext, tmp_path: Path
) -> None:
    """The chunk was queued again, but its sample rows stayed: the next delivery found every
    sample made and wrote no file, so each submit failed the same way, for good."""
    import shutil

    from synthgate.workers.runner import load_chunk

    config = make_config(image={"generator": "procedural", "count": 3, "size": [32, 32]})
    batch_id = register(context, config)
    for chunk in context.store.chunks.of_batch(batch_id):
        run_chunk(context, chunk.id)
    shutil.rmtree(context.blobs.url)  # made by a worker with another --blobs
    image = next(c for c in context.store.chunks.of_batch(batch_id) if c.modality == "image")
    with pytest.raises(InputError, match="not in the blob store"):
        load_chunk(context.store, context.blobs, image)
    assert run_chunk(context, image.id) == f"{image.id} generated"
    assert len(load_chunk(context.store, context.blobs, image).items) == 3
    # the text chunk's partial reports went too: it was queued to be made anew with the image
    # chunk, not when assembly came to it (one submit for each broken chunk)
    for chunk in context.store.chunks.of_batch(batch_id, statuses=["queued"]):
        run_chunk(context, chunk.id)
    assemble_from_store(
        config, tmp_path / "out", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    run_batch(config, tmp_path / "embedded")
    for name in DATA_FILES:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "embedded" / name).read_bytes()


def test_every_chunk_whose_files_are_missing_is_queued_in_one_go(context: WorkerContext) -> None:
    """Each `submit --wait` queued only the first chunk it found files missing of, and stopped
    there: a batch made under a wrong --blobs took one submit per chunk to be made again."""
    import shutil

    from synthgate.workers.runner import load_chunk

    config = make_config(image={"generator": "procedural", "count": 24, "size": [32, 32]})
    batch_id = register(context, config)
    made = context.store.chunks.of_batch(batch_id)
    assert len(made) >= 3
    for chunk in made:
        run_chunk(context, chunk.id)
    first, judged, *rest = context.store.chunks.of_batch(batch_id)
    context.store.chunks.update(judged.id, status="done")  # judged before the files went
    shutil.rmtree(context.blobs.url)
    others = sum(c.stop - c.start for c in rest)
    with pytest.raises(InputError) as caught:
        load_chunk(context.store, context.blobs, first)
    said = str(caught.value)
    assert f"the files of {first.stop - first.start} of its samples are not in" in said
    assert f"nor are those of {others} samples in {len(rest)} more of its chunks" in said
    assert "these chunks are queued again, and a worker makes again only the files" in said
    statuses = {c.id: c.status for c in context.store.chunks.of_batch(batch_id)}
    assert statuses == {judged.id: "done", **{c.id: "queued" for c in [first, *rest]}}
    for chunk in [first, *rest]:  # their next delivery makes their files anew
        assert run_chunk(context, chunk.id) == f"{chunk.id} generated"
        assert (
            len(load_chunk(context.store, context.blobs, chunk).items) == chunk.stop - chunk.start
        )
    assert len(context.store.samples_in(batch_id, judged.modality, judged.start, judged.stop))


def test_missing_files_never_cost_a_judged_or_reviewed_sample_its_row(
    context: WorkerContext, tmp_path: Path
) -> None:
    """Files missing from the blob store make a chunk's samples anew only while the chunk
    was never judged, and never a sample people were asked to review: a second `submit --wait`
    of a finished batch under a wrong --blobs deleted every unreviewed row, accepted ones
    too, and queued its done chunks to be made again."""
    import shutil

    from synthgate.review.queue import ReviewQueue
    from synthgate.workers.runner import load_chunk

    config = make_config(image={"generator": "procedural", "count": 3, "size": [32, 32]})
    batch_id = register(context, config)
    for chunk in context.store.chunks.of_batch(batch_id):
        run_chunk(context, chunk.id)
    assemble_from_store(
        config, tmp_path / "out", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    image = next(c for c in context.store.chunks.of_batch(batch_id) if c.modality == "image")
    assert image.status == "done"
    made = context.store.samples_in(batch_id, "image", 0, 3)
    wrong = BlobStore(str(tmp_path / "other-blobs"))  # this process's --blobs is another
    with pytest.raises(InputError, match=r"is done, but .* nothing was changed"):
        load_chunk(context.store, wrong, image)
    assert context.store.samples_in(batch_id, "image", 0, 3) == made
    assert context.store.chunks.get(image.id).status == "done"
    # never judged: the chunk is queued, its rows stay (a worker makes again only the files
    # of pending samples), and a sample under review is named
    context.store.chunks.update(image.id, status="generated")
    ReviewQueue(context.store, gold_rate=0.0).add_gold(made[0], expected=["accept"])
    shutil.rmtree(context.blobs.url)
    generated = context.store.chunks.get(image.id)
    with pytest.raises(InputError, match="1 of them people were asked to review"):
        load_chunk(context.store, context.blobs, generated)
    left = context.store.samples_in(batch_id, "image", 0, 3)
    assert [s.id for s in left] == [s.id for s in made]
    assert context.store.chunks.get(image.id).status == "queued"


def test_a_wrong_blobs_where_submit_runs_costs_no_sample_its_row_nor_a_remake(
    context: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the submitting process had a wrong --blobs: every `submit --wait` forgot the rows
    of every chunk made and not judged yet and queued them, the workers made them all again
    into their own (right) blob store, and the next submit, still reading the wrong folder,
    did the same, for ever. The submit now names the folder and both fixes, and keeps the
    rows: a worker makes again only what its own blob store lacks (here: nothing)."""
    from synthgate.workers.runner import load_chunk

    config = make_config(image={"generator": "procedural", "count": 8, "size": [32, 32]})
    batch_id = register(context, config)
    for chunk in context.store.chunks.of_batch(batch_id):
        run_chunk(context, chunk.id)
    rows = {
        c.id: context.store.samples_in(batch_id, c.modality, c.start, c.stop)
        for c in context.store.chunks.of_batch(batch_id)
    }
    wrong = BlobStore(tmp_path / "typo-blobs")
    first = context.store.chunks.of_batch(batch_id)[0]
    with pytest.raises(InputError) as caught:
        load_chunk(context.store, wrong, first)
    said = str(caught.value)
    assert f"are not in the blob store {wrong.url} " in said
    assert f"If {wrong.url} is not where the workers write, pass their blob store as " in said
    assert "as blobs; if it is, start every worker with it" in said
    assert "only the files its own blob store lacks (nothing, when only this process" in said
    for chunk in context.store.chunks.of_batch(batch_id):
        assert chunk.status == "queued"
        assert (
            context.store.samples_in(batch_id, chunk.modality, chunk.start, chunk.stop)
            == (rows[chunk.id])
        )
    made_again: list[int] = []
    real = chunk_module.generate_specs

    def counted(generator: Any, specs: Any) -> Any:
        made_again.extend(spec.index for spec in specs)
        return real(generator, specs)

    monkeypatch.setattr(chunk_module, "generate_specs", counted)
    for chunk in context.store.chunks.of_batch(batch_id):
        assert run_chunk(context, chunk.id) == f"{chunk.id} generated"
    assert made_again == []
    for chunk in context.store.chunks.of_batch(batch_id):
        assert len(load_chunk(context.store, context.blobs, chunk).items) == len(rows[chunk.id])


def test_a_template_file_changed_since_submit_fails_the_chunk_naming_it(
    context: WorkerContext, tmp_path: Path
) -> None:
    """Workers built the generator from the template file as it was when they took the chunk:
    edited after submit, they made other texts under the old batch id (whose id hashes the
    file as it was), and `submit --wait` wrote them as that batch."""
    templates = tmp_path / "tickets.yaml"
    original = SUPPORT_TICKETS.read_bytes()
    templates.write_bytes(original)
    text = {"generator": "templates", "templates": str(templates), "count": 12}
    config = make_config(image=None, text=text)
    batch_id = register(context, config)
    chunk_id = f"{batch_id}:text:0"
    templates.write_bytes(original.replace(b"CloudSync Pro", b"CloudSync Max"))
    said = run_chunk(context, chunk_id)
    assert said.startswith(
        f"{chunk_id} failed: InputError: batch {batch_id}: a file its config reads "
        f"(text.templates {templates}) changed since the batch was submitted"
    ), said
    assert context.store.samples_in(batch_id, "text", 0, 12) == []
    with pytest.raises(InputError, match=r"\(text.templates .*tickets.yaml\) changed since"):
        assemble_from_store(
            config, tmp_path / "out", store=context.store, blobs=context.blobs, batch_id=batch_id
        )
    templates.write_bytes(original)  # put back: the batch is made as it was submitted
    context.store.chunks.update(chunk_id, status="queued", reason=None)
    assert run_chunk(context, chunk_id).endswith("generated")
    assemble_from_store(
        config, tmp_path / "out", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    run_batch(config, tmp_path / "embedded")
    assert (tmp_path / "out" / "text.jsonl").read_bytes() == (
        tmp_path / "embedded" / "text.jsonl"
    ).read_bytes()


def rubric_file(folder: Path, name: str, **replace: str) -> str:
    """The shipped detection rubric as `name`, with text replaced (old=new)."""
    text = (RUBRICS_DIR / "detection.yaml").read_text().replace("name: detection", f"name: {name}")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def test_a_rubric_that_measures_otherwise_is_refused_and_one_that_judges_otherwise_is_used(
    context: WorkerContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rubric is not part of the batch id, but the workers keep each sample's measurements:
    submitted again with a rubric whose checks measure otherwise, the batch was judged from the
    old rubric's measurements (a ValueError traceback, or, with the same check names, reports
    unlike those of `synthgate run`). Now such a rubric is refused before anything changes,
    and one that only moves thresholds (and is named otherwise) judges the batch as `run`
    judges the config."""
    monkeypatch.setattr(worker_submit, "publish", lambda _app, c, **_: len(c))
    app = SimpleNamespace(synthgate=context.settings)
    image = {"generator": "procedural", "count": 6, "size": [96, 64], "objects_per_image": [1, 4]}
    config = make_config(text=None, image=image)
    batch_id, _ = worker_submit.submit_batch(app, context.store, config)
    for chunk in context.store.chunks.of_batch(batch_id):
        run_chunk(context, chunk.id)
    assemble_from_store(
        config, tmp_path / "first", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    strict = rubric_file(tmp_path, "strict", **{"black_level: 8": "black_level: 200"})
    measuring = make_config(text=None, image={**image, "rubric": strict})
    assert batch_id_for(measuring) == batch_id
    with pytest.raises(InputError) as refused:
        worker_submit.submit_batch(app, context.store, measuring)
    assert str(refused.value).startswith(
        f"image.rubric: batch {batch_id} was made with rubric detection, and rubric strict "
        f"({strict}) measures samples otherwise (changes the params of correctness_image_valid "
        "(black_level)); "
    )
    assert "Give the config another name" in str(refused.value)
    assert context.store.get_batch(batch_id)["config"]["image"]["rubric"] is None  # type: ignore[index]

    moved = "min_side_px: {gold: 8, acceptable: 4}"
    calibrated = rubric_file(
        tmp_path, "calibrated", **{moved: "min_side_px: {gold: 60, acceptable: 50}"}
    )
    judging = make_config(text=None, image={**image, "rubric": calibrated})
    assert worker_submit.submit_batch(app, context.store, judging)[0] == batch_id
    assemble_from_store(
        judging, tmp_path / "again", store=context.store, blobs=context.blobs, batch_id=batch_id
    )
    run_batch(judging, tmp_path / "embedded")
    for name in DATA_FILES[:2]:
        again = (tmp_path / "again" / name).read_bytes()
        assert again == (tmp_path / "embedded" / name).read_bytes(), name
        assert again != (tmp_path / "first" / name).read_bytes(), name

    # The rubric's file edited in place after the workers measured: refused where it is judged.
    Path(calibrated).write_text(
        Path(calibrated).read_text().replace("black_level: 8", "black_level: 9")
    )
    late = r"measured by the workers with rubric detection, and rubric calibrated measures other"
    with pytest.raises(InputError, match=late):
        assemble_from_store(
            judging, tmp_path / "late", store=context.store, blobs=context.blobs, batch_id=batch_id
        )


def test_a_chunk_of_a_cancelled_batch_is_not_made(context: WorkerContext) -> None:
    """DELETE of a batch in worker mode stopped only the thread following it: the workers made
    every chunk already sent. A worker now leaves such a chunk queued, for a repost to send."""
    config = make_config(image={"generator": "procedural", "count": 2, "size": [32, 32]})
    batch_id = register(context, config)
    context.store.set_batch_status(batch_id, "cancelled", "cancelled by alice")
    chunk = next(c for c in context.store.chunks.of_batch(batch_id) if c.modality == "image")
    assert "was cancelled; left queued" in run_chunk(context, chunk.id)
    left = context.store.chunks.get(chunk.id)
    assert left is not None and left.status == "queued"
    assert context.store.samples_in(batch_id, "image", chunk.start, chunk.stop) == []
    context.store.set_batch_status(batch_id, "running")  # posted again
    run_chunk(context, chunk.id)
    made = context.store.chunks.get(chunk.id)
    assert made is not None and made.status == "generated"


def test_a_worker_refuses_a_copy_paste_class_with_nothing_to_cut_as_run_does(
    context: WorkerContext, tmp_path: Path
) -> None:
    """`run` refuses `categories: [square, unicorn]` on a dataset with no unicorn; a worker
    built the generator without that check and made squares only, the unicorn quota silently
    gone from a submitted batch."""
    from balance_fixtures import make_tiny_coco

    coco, images = make_tiny_coco(tmp_path / "real")
    image = {"generator": "copy_paste", "count": 2, "coco": str(coco), "images": str(images)}
    config = make_config(categories=["square", "unicorn"], image=image, text=None)
    with pytest.raises(InputError, match="no instance of 'unicorn' to cut"):
        run_batch(config, tmp_path / "embedded")
    batch_id = register(context, config)
    said = run_chunk(context, f"{batch_id}:image:0")
    assert "InputError: categories: no instance of 'unicorn' to cut" in said, said
    assert context.store.samples_in(batch_id, "image", 0, 2) == []
    with pytest.raises(InputError, match="no instance of 'unicorn' to cut"):
        assemble_from_store(
            config, tmp_path / "out", store=context.store, blobs=context.blobs, batch_id=batch_id
        )


def test_a_batch_no_worker_takes_is_noted_with_its_waiting_queue(context: WorkerContext) -> None:
    """`submit --wait` with no worker running sat at 0 of N with no word; the API said which
    queue waited. Both now take the note from IdleNote."""
    batch_id = register(context, make_config())
    note = worker_submit.IdleNote(context.store, after=0.05)
    progress = worker_submit.progress_of(context.store, batch_id, total=10)
    queues = sorted({c.queue for c in context.store.chunks.of_batch(batch_id)})
    assert note.check(progress) is None  # the first look: nothing to compare with
    time.sleep(0.1)
    said = note.check(progress)
    assert said is not None and f"is a worker serving queue {', '.join(queues)} running?" in said
    chunk = context.store.chunks.of_batch(batch_id)[0]
    context.store.chunks.update(chunk.id, status="running")
    assert note.check(worker_submit.progress_of(context.store, batch_id, total=10)) is None


def test_a_served_batch_whose_broker_does_not_answer_is_noted_so(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The API's note on a batch no chunk of which ran for a while never asked the broker
    (`submit --wait`'s does): with the broker down it asked its requester whether a worker
    served the queue, which starting one does not fix. It says the server's broker does not
    answer; the broker is stood in for (`queued_messages` has no answer)."""
    from synthgate.api import distributed

    monkeypatch.setattr(worker_submit, "WAITING_NOTE_S", 0.05)
    monkeypatch.setattr(distributed, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(worker_submit, "queued_messages", lambda *_a, **_k: None)
    batch_id = register(context, make_config())
    settings = context.settings.model_copy(update={"broker_url": "memory://"})
    batches = distributed.worker_runner(context.store, None, tmp_path / "runs", settings=settings)
    watch = batches.backend.watch
    assert watch is not None
    progress = worker_submit.progress_of(context.store, batch_id, total=10)
    watch(progress)  # the first look: nothing to compare with
    time.sleep(0.1)
    watch(progress)
    batch = context.store.get_batch(batch_id)
    said = batch["message"] if batch else ""
    assert "s: the server's broker does not answer" in said, said
    assert "is a worker serving" not in said and "memory://" not in said, said


def test_a_served_batch_no_worker_takes_is_noted_the_requesters_way(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The API's note on a batch no worker took asked its requester "is a worker serving queue
    cpu running?", a question for the server's operator, whose workers the requester can
    neither see nor start. It says what the batch waits for, and whom to tell; `submit --wait`
    keeps its question (test_a_batch_no_worker_takes_is_noted_with_its_waiting_queue)."""
    from synthgate.api import distributed

    monkeypatch.setattr(worker_submit, "WAITING_NOTE_S", 0.05)
    monkeypatch.setattr(distributed, "PROGRESS_EVERY_S", 0.0)
    monkeypatch.setattr(worker_submit, "queued_messages", lambda *_a, **_k: 0)  # it answers
    batch_id = register(context, make_config())
    queues = sorted({c.queue for c in context.store.chunks.of_batch(batch_id)})
    settings = context.settings.model_copy(update={"broker_url": "memory://"})
    batches = distributed.worker_runner(context.store, None, tmp_path / "runs", settings=settings)
    watch = batches.backend.watch
    assert watch is not None
    progress = worker_submit.progress_of(context.store, batch_id, total=10)
    watch(progress)  # the first look: nothing to compare with
    time.sleep(0.1)
    watch(progress)
    batch = context.store.get_batch(batch_id)
    said = batch["message"] if batch else ""
    assert said.endswith(
        f" s: no worker has taken its chunks (queue {', '.join(queues)}); the batch goes on once "
        "one does (tell the server's operator if it does not)"
    ), said
    assert "is a worker serving" not in said and "running?" not in said, said


def test_a_followed_batch_sends_its_stalled_chunks_again_with_the_workers_sweep(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`wait_for_batch` sends the batch's queued chunks again through `resend_stalled`, after
    the workers' wait (`stall_seconds`), and only its own batch's."""
    config = make_config()
    batch_id = register(context, config)
    other = register(context, make_config(name="other"))
    with context.store.engine.begin() as connection:
        connection.execute(chunks.update().values(updated=time.time() - 3600))
    sent: list[str] = []
    monkeypatch.setattr(
        worker_submit, "publish", lambda _app, c, **_: sent.extend(x.id for x in c) or len(c)
    )
    monkeypatch.setattr(worker_submit, "queued_messages", lambda _app, _queues: 0)
    settings = context.settings.model_copy(
        update={"lease_timeout": 0.2, "heartbeat_interval": 0.1, "retry_backoff_max": 0.1}
    )
    resent: list[int] = []
    worker_submit.wait_for_batch(
        SimpleNamespace(synthgate=settings),
        context.store,
        batch_id,
        total=planned_total(config),
        settings=settings,
        on_resend=resent.append,
        poll_seconds=0.05,
        timeout=10,
        until=lambda _progress: bool(sent),
    )
    ids = [c.id for c in context.store.chunks.of_batch(batch_id)]
    assert sent == ids and resent == [len(ids)]
    assert not any(chunk_id.startswith(other) for chunk_id in sent)


def test_a_followed_batch_leaves_a_chunk_waiting_out_its_retry(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk queued for its retry (its message held by the worker that waits out the
    backoff) is not sent again before the longest backoff has passed: `wait_for_batch` sent
    it after a lease and two heartbeats, during the backoff."""
    config = make_config()
    batch_id = register(context, config)
    settings = context.settings.model_copy(
        update={"lease_timeout": 0.2, "heartbeat_interval": 0.1, "retry_backoff_max": 30}
    )
    with context.store.engine.begin() as connection:  # queued 2 s ago, for its retry
        connection.execute(chunks.update().values(updated=time.time() - 2))
    sent: list[str] = []
    monkeypatch.setattr(
        worker_submit, "publish", lambda _app, c, **_: sent.extend(x.id for x in c) or len(c)
    )
    monkeypatch.setattr(worker_submit, "queued_messages", lambda _app, _queues: 0)
    with pytest.raises(InputError, match="not finished after"):
        worker_submit.wait_for_batch(
            SimpleNamespace(synthgate=settings),
            context.store,
            batch_id,
            total=planned_total(config),
            settings=settings,
            poll_seconds=0.05,
            timeout=1.5,
        )
    assert sent == []


def test_a_submit_that_could_not_publish_says_the_workers_send_its_chunks(
    context: WorkerContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The broker down while submit sent the chunks: the message said to submit again, and the
    workers on the database made the chunks 74 s later anyway. It says both now, and either
    way (or both) each chunk is made once."""
    config = make_config()
    dead = f"redis://127.0.0.1:{free_port()}/0"
    settings = context.settings.model_copy(update={"broker_url": dead})
    with pytest.raises(InputError) as caught:
        worker_submit.submit_batch(make_app(settings), context.store, config)
    batch_id = batch_id_for(config)
    ids = [c.id for c in context.store.chunks.of_batch(batch_id)]
    said = str(caught.value)
    assert "cannot publish" in said and "Connection refused" in said
    assert (
        f"Batch {batch_id} is recorded with its {len(ids)} chunks waiting: once the broker "
        "answers, the workers on this database send them themselves after "
        f"{worker_submit.stall_seconds(settings):g} s of waiting, or submit the same config "
        "again then to send them at once (no chunk is made twice)"
    ) in said
    # what it says happens: the workers' sweep sends them, once they waited
    sent: list[str] = []
    monkeypatch.setattr(
        worker_submit, "publish", lambda _app, c, **_: sent.extend(x.id for x in c) or len(c)
    )
    monkeypatch.setattr(worker_submit, "queued_messages", lambda _app, _queues: 0)
    app = SimpleNamespace(synthgate=context.settings)
    assert worker_submit.resend_stalled(app, context.store, settings=context.settings) == []
    waited = time.time() - worker_submit.stall_seconds(context.settings) - 1
    with context.store.engine.begin() as connection:
        connection.execute(chunks.update().values(updated=waited))
    assert worker_submit.resend_stalled(app, context.store, settings=context.settings) == ids
    # and submitted again, they are sent once more: whichever message comes first makes a
    # chunk, the other finds it made
    assert worker_submit.submit_batch(app, context.store, config) == (batch_id, len(ids))
    assert sorted(sent) == sorted(ids * 2)
    said_of = [run_chunk(context, chunk_id) for chunk_id in sent]
    assert said_of == [f"{i} generated" for i in ids] + [f"{i} already generated" for i in ids]
    made = [s for m in ("image", "text") for s in context.store.iter_samples(batch_id, m)]
    assert len(made) == len({s.id for s in made}) == planned_total(config)


def test_a_worker_with_another_blobs_failing_a_chunk_fails_no_sample_made_elsewhere(
    context: WorkerContext, tmp_path: Path
) -> None:
    """A chunk queued again for a remake (load_chunk under a wrong --blobs) and then given up
    (retries out) by a worker whose --blobs lacks the files: failing "what the chunk has not
    made" marked the samples the right workers had made failed too (second read)."""
    config = make_config(image={"generator": "procedural", "count": 4, "size": [32, 32]})
    batch_id = register(context, config)
    chunk = context.store.chunks.of_batch(batch_id)[0]
    run_chunk(context, chunk.id)
    context.store.chunks.update(chunk.id, status="queued", reason=None, current=None)
    elsewhere = WorkerContext.from_settings(
        context.settings.model_copy(update={"blob_url": str(tmp_path / "other-blobs")})
    )
    assert chunk_module.fail_chunk(elsewhere, chunk.id, "retries out", holder="w2").endswith(
        "failed: retries out"
    )
    made = context.store.samples_in(batch_id, chunk.modality, chunk.start, chunk.stop)
    assert len(made) == chunk.stop - chunk.start and {s.status for s in made} == {"pending"}


def test_a_chunk_judged_meanwhile_is_not_queued_again(context: WorkerContext) -> None:
    """load_chunk lists a batch's `generated` chunks, looks for their files (slow on S3), then
    queued them whatever they had become: one another submit judged (`done`) in between went
    back to `queued` and was made and judged again (second read)."""
    config = make_config(image={"generator": "procedural", "count": 4, "size": [32, 32]})
    batch_id = register(context, config)
    chunk = context.store.chunks.of_batch(batch_id)[0]
    context.store.chunks.update(chunk.id, status="done")
    context.store.chunks.update(chunk.id, if_status="generated", status="queued")
    assert context.store.chunks.get(chunk.id).status == "done"
    context.store.chunks.update(chunk.id, status="generated")
    context.store.chunks.update(chunk.id, if_status="generated", status="queued")
    assert context.store.chunks.get(chunk.id).status == "queued"


def test_giving_up_a_chunk_with_no_sample_in_flight_fails_only_samples_without_a_row(
    context: WorkerContext, tmp_path: Path
) -> None:
    """`give_up_in_flight` with no culprit known (the chunk lost its worker `max_crashes` times,
    no sample recorded in flight) gives the whole rest up, but not the samples that have a row:
    a worker whose --blobs lacks their files is handed them to make again (`remaining_specs`),
    and failing them would undo what the right workers made."""
    config = make_config()
    batch_id = register(context, config)
    chunk_id = f"{batch_id}:text:0"
    delivery = context.store.chunks.begin(chunk_id, holder="w1", lease_seconds=60)
    assert delivery is not None and delivery.lease is not None
    made_config, generator = context.generator(batch_id, "text")
    judge = context.judge(batch_id, "text")
    chunk = delivery.chunk
    specs = list(
        plan(
            made_config,
            "text",
            batch_id=batch_id,
            quota_categories=generator.quota_categories(),
            start=chunk.start,
            stop=chunk.stop,
        )
    )
    made_here, not_made = specs[:3], specs[3:]
    assert not_made
    with context.hold(delivery.lease) as held:
        chunk_module.store_made(
            context, chunk_module.generate_specs(generator, made_here), judge, held
        )
    before = {s.id: s for s in context.store.samples_in(batch_id, "text", chunk.start, chunk.stop)}
    assert sorted(s.spec.index for s in before.values()) == [s.index for s in made_here]

    elsewhere = WorkerContext.from_settings(
        context.settings.model_copy(update={"blob_url": str(tmp_path / "other-blobs")})
    )
    # What make_chunk hands it there: every spec, the made ones too (their files are missing).
    handed = chunk_module.remaining_specs(elsewhere, chunk, made_config, generator)
    assert [s.index for s in handed] == [s.index for s in specs]
    lost = dataclasses.replace(chunk, crashes=2, current=None)
    with elsewhere.hold(delivery.lease) as held:
        assert chunk_module.give_up_in_flight(elsewhere, lost, handed, generator, held) is None

    after = {s.id: s for s in context.store.samples_in(batch_id, "text", chunk.start, chunk.stop)}
    assert len(after) == len(specs)
    for sample_id, sample in before.items():  # a sample with a row is kept as it is
        assert after[sample_id] == sample and sample.status == "pending"
    failures = context.store.failures(batch_id)
    assert [f["index"] for f in failures] == [s.index for s in not_made]
    assert all("worker was lost 2 times" in f["reason"] for f in failures)
    state = context.store.chunks.get(chunk_id)
    assert state is not None and "gave up after 2" in (state.reason or "")
