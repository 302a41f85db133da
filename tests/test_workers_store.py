"""The store contract the workers rely on, on SQLite and on PostgreSQL.

PostgreSQL runs from a throwaway cluster (initdb + pg_ctl on a Unix socket) when the server
binaries and psycopg are installed; otherwise its cases skip. SQLite always runs.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from factories import small_config
from postgres_support import wipe

from synthgate.config import parse_config
from synthgate.pipeline import batch_id_for
from synthgate.runner import run_batch
from synthgate.samples import Provenance, Sample, SampleSpec, sample_id
from synthgate.storage.blobs import BlobStore
from synthgate.storage.store import Store
from synthgate.workers.app import WorkerSettings
from synthgate.workers.chunks import WorkerContext, chunk_rows, run_chunk
from synthgate.workers.runner import assemble_from_store


@pytest.fixture(scope="module")
def postgres_url(postgres_cluster) -> str:
    """A database of its own in the session's throwaway cluster (tests/postgres_support.py)."""
    return postgres_cluster.database("workers")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    url: str = request.getfixturevalue("postgres_url")
    wipe(url)  # a clean schema per test
    return url


def text_sample(index: int, status: str = "accepted") -> Sample:
    spec = SampleSpec(batch_id="b", index=index, modality="text", generator="templates", seed=index)
    return Sample(
        id=sample_id("b", "text", index),
        spec=spec,
        text=f"sample {index}",
        provenance=Provenance(generator="templates", generator_version="1", seed=index),
        status=status,  # type: ignore[arg-type]
    )


def test_upserts_and_index_order(db_url: str) -> None:
    store = Store(db_url)
    store.upsert_samples([text_sample(i) for i in (5, 1, 3)])
    store.upsert_samples([text_sample(i) for i in (0, 2, 4, 1)])  # 1 again: rewritten
    store.upsert_samples([text_sample(3, "failed")], reason="worker lost")
    assert [s.spec.index for s in store.iter_samples("b", "text", chunk=2)] == [0, 1, 2, 3, 4, 5]
    assert store.count_by_status("b") == {("text", "accepted"): 5, ("text", "failed"): 1}
    assert store.failures("b") == [
        {"modality": "text", "index": 3, "id": sample_id("b", "text", 3), "reason": "worker lost"}
    ]
    store.upsert_samples([text_sample(3)])  # made after all: the reason goes
    assert store.failures("b") == []
    assert store.stored_indices("b", "text", 2, 5) == {2, 3, 4}
    store.close()


def test_chunk_bookkeeping(db_url: str) -> None:
    store = Store(db_url)
    row = {"id": "b:text:0", "batch_id": "b", "modality": "text", "start": 0, "stop": 4}
    store.chunks.put([{**row, "queue": "cpu"}])
    store.chunks.update("b:text:0", status="done")
    store.chunks.put([{**row, "queue": "cpu"}])  # registering again keeps what is known
    assert store.chunks.get("b:text:0").status == "done"  # type: ignore[union-attr]
    store.chunks.update("b:text:0", status="queued")
    states = [store.chunks.begin("b:text:0") for _ in range(3)]
    assert [(s.status, s.deliveries, s.crashes) for s in states if s] == [
        ("running", 1, 0),
        ("running", 2, 1),
        ("running", 3, 2),
    ]
    totals = store.chunks.totals("b")
    assert totals["running"] == 1 and totals["last_update"] > 0
    store.close()


def test_chunks_on_either_database_assemble_the_run_folder_of_run(
    db_url: str, tmp_path: Path
) -> None:
    config = parse_config(small_config(), source=Path("test.yaml"))
    settings = WorkerSettings(db_url=db_url, blob_url=str(tmp_path / "blobs"))
    context = WorkerContext.from_settings(settings)
    batch_id = batch_id_for(config)
    context.store.put_batch(
        batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
    )
    context.store.chunks.put(chunk_rows(config, batch_id))
    for chunk in context.store.chunks.of_batch(batch_id):
        run_chunk(context, chunk.id)
    assemble_from_store(
        config,
        tmp_path / "submitted",
        store=context.store,
        blobs=BlobStore(tmp_path / "blobs"),
        batch_id=batch_id,
    )
    run_batch(config, tmp_path / "embedded")
    for name in ("coco.json", "text.jsonl"):
        assert (tmp_path / "submitted" / name).read_bytes() == (
            tmp_path / "embedded" / name
        ).read_bytes()
    context.store.close()


def _open_store(url: str) -> None:
    Store(url).close()


def test_workers_starting_together_on_a_fresh_database_all_get_the_schema(db_url: str) -> None:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_open_store, args=(db_url,)) for _ in range(6)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * 6
