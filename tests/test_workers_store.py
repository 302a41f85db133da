"""The store contract the workers rely on, on SQLite and on PostgreSQL.

PostgreSQL runs from a throwaway cluster (initdb + pg_ctl on a Unix socket) when the server
binaries and psycopg are installed; otherwise its cases skip. SQLite always runs.
"""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest
from factories import small_config
from postgres_support import wipe
from sqlalchemy import create_engine, text

from synthgate.config import parse_config
from synthgate.pipeline import batch_id_for
from synthgate.runner import run_batch
from synthgate.samples import Provenance, Sample, SampleSpec, sample_id
from synthgate.storage.blobs import BlobStore
from synthgate.storage.chunks import Lease, LeaseLost
from synthgate.storage.schema import revision_of, upgrade
from synthgate.storage.store import Store
from synthgate.storage.tables import SCHEMA_REVISION, review_items
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
    wanted = [sample_id("b", "text", i) for i in (4, 9, 0)]  # 9 was never made
    assert store.get_samples(wanted) == {
        wanted[0]: store.get_sample(wanted[0]),
        wanted[2]: store.get_sample(wanted[2]),
    }
    assert store.get_samples([]) == {}
    store.close()


def test_chunk_bookkeeping(db_url: str) -> None:
    store = Store(db_url)
    row = {"id": "b:text:0", "batch_id": "b", "modality": "text", "start": 0, "stop": 4}
    store.chunks.put([{**row, "queue": "cpu"}])
    store.chunks.update("b:text:0", status="done")
    store.chunks.put([{**row, "queue": "cpu"}])  # registering again keeps what is known
    assert store.chunks.get("b:text:0").status == "done"  # type: ignore[union-attr]
    store.chunks.update("b:text:0", status="queued")
    # The same task delivered three times: the broker gave its message to a new worker twice.
    states = [store.chunks.begin("b:text:0", holder="t", lease_seconds=60) for _ in range(3)]
    assert [
        (s.chunk.status, s.chunk.deliveries, s.chunk.crashes, s.lease) for s in states if s
    ] == [
        ("running", 1, 0, Lease("b:text:0", 1, "t", 60)),
        ("running", 2, 1, Lease("b:text:0", 2, "t", 60)),
        ("running", 3, 2, Lease("b:text:0", 3, "t", 60)),
    ]
    totals = store.chunks.totals("b")
    assert totals["running"] == 1 and totals["last_update"] > 0
    store.close()


def claimed(store: Store, holder: str) -> Lease:
    delivery = store.chunks.begin("b:text:0", holder=holder, lease_seconds=60)
    assert delivery is not None and delivery.lease is not None
    return delivery.lease


def register_chunk(store: Store) -> None:
    row = {"id": "b:text:0", "batch_id": "b", "modality": "text", "start": 0, "stop": 8}
    store.chunks.put([{**row, "queue": "cpu"}])


def test_a_write_under_a_stale_lease_is_refused_whole(db_url: str) -> None:
    """Fencing: once the chunk went to another delivery, the old one writes nothing, neither
    samples nor the chunk's fields, in the same transaction as the check."""
    store = Store(db_url)
    register_chunk(store)
    old = claimed(store, "frozen")
    store.put_made([text_sample(0, "pending")], lease=old)
    store.chunks.update("b:text:0", lease_expires=0.0)  # it froze: the lease ran out
    [lost] = store.chunks.lost()
    assert store.chunks.requeue_lost(lost)
    new = claimed(store, "fresh")
    assert (new.number, store.chunks.get("b:text:0").crashes) == (2, 1)  # type: ignore[union-attr]
    with pytest.raises(LeaseLost):
        store.put_made([text_sample(i, "pending") for i in (1, 2)], lease=old)
    with pytest.raises(LeaseLost):
        store.chunks.update_held(old, status="generated", current=None)
    assert store.stored_indices("b", "text", 0, 8) == {0}
    chunk = store.chunks.get("b:text:0")
    assert chunk is not None and (chunk.status, chunk.lease, chunk.holder) == (
        "running",
        2,
        "fresh",
    )
    store.put_made([text_sample(i, "pending") for i in (1, 2)], lease=new)
    store.chunks.update_held(new, status="generated", current=None)
    assert store.stored_indices("b", "text", 0, 8) == {0, 1, 2}
    with pytest.raises(LeaseLost):  # finished: no lease is live any more
        store.put_made([text_sample(3, "pending")], lease=new)
    store.close()


def test_a_worker_never_rewrites_a_judged_or_reviewed_sample(db_url: str) -> None:
    store = Store(db_url)
    register_chunk(store)
    lease = claimed(store, "t")
    store.put_made([text_sample(i, "pending") for i in range(4)], lease=lease)
    store.upsert_samples([text_sample(0, "accepted"), text_sample(1, "rejected")])  # judged
    with store.engine.begin() as connection:  # sample 2 waits for a person, still pending
        connection.execute(
            review_items.insert().values(
                key="sample:x",
                sample_id=text_sample(2).id,
                batch_id="b",
                modality="text",
                kind="sample",
                reason="review",
                k=1,
                status="open",
                created_at=time.time(),
            )
        )
    rewritten = [text_sample(i, "pending") for i in range(4)]
    for sample in rewritten:
        sample.text = "made again"
    store.put_made(rewritten, lease=lease)
    found = {s.spec.index: s for s in store.iter_samples("b", "text")}
    assert [found[i].status for i in range(4)] == ["accepted", "rejected", "pending", "pending"]
    assert [found[i].text == "made again" for i in range(4)] == [False, False, False, True]
    store.put_made([text_sample(3, "failed")], lease=lease, reason="soft time limit")
    assert store.failures("b")[0]["index"] == 3  # a worker's own rows it may rewrite
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


def test_a_database_from_before_leases_upgrades_and_its_running_chunk_counts_as_lost(
    db_url: str,
) -> None:
    engine = create_engine(db_url)
    with engine.begin() as connection:
        upgrade(connection, "0001")  # the schema before chunk leases
        connection.execute(
            text(
                "INSERT INTO chunks (id, batch_id, modality, start, stop, queue, status, "
                "deliveries, crashes, updated) VALUES "
                "('b:text:0', 'b', 'text', 0, 8, 'cpu', 'running', 1, 0, 1.0), "
                "('b:text:8', 'b', 'text', 8, 16, 'cpu', 'done', 1, 0, 1.0)"
            )
        )
    engine.dispose()
    store = Store(db_url)
    with store.engine.connect() as connection:
        assert revision_of(connection) == SCHEMA_REVISION
    running, done = store.chunks.of_batch("b")
    assert (running.lease, running.holder, running.lease_expires) == (0, None, None)
    assert [c.id for c in store.chunks.lost()] == ["b:text:0"]  # its worker is long gone
    delivery = store.chunks.begin("b:text:0", holder="t", lease_seconds=60)
    assert delivery is not None and delivery.lease is not None
    assert (delivery.lease.number, delivery.chunk.crashes) == (1, 1)
    assert done.status == "done"
    store.close()
