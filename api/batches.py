"""Batch routes for requesters: `POST /api/batches` runs a batch config, `GET /api/batches` lists
the caller's batches, `GET /api/batches/{id}` tells how one is going, `GET /api/batches/{id}/coco`
hands back its COCO file.

A requester sees only the batches they posted: the same config is the same batch, so posting
records the caller as one of its requesters (`store.requesters.add`), and any other requester gets
the 404 of a batch that does not exist. Admins see every batch.

`BatchRunner` runs accepted configs on background threads with a runner backend (in-process,
or Celery workers: api/distributed.py), writing `<runs_dir>/<batch id>/` and the service's
database in one pass, and queues the doubtful samples for review. `run_folder` finds the folder
of a batch again, for its COCO file and for the images the review page shows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from synthgate.api.auth import User, require
from synthgate.api.inputs import SOURCE, check_counts, confine_paths
from synthgate.config import BatchConfig, parse_config
from synthgate.errors import InputError
from synthgate.pipeline import MODALITIES, Progress, batch_id_for
from synthgate.runner import InProcessRunner, Runner, Stopped
from synthgate.sinks import DatabaseSink, KeepReviewed, RunFolderSink
from synthgate.storage.store import Store

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/batches", tags=["batches"])


SHOWN_FAILURES = 20
PROGRESS_EVERY_S = 1.0  # a batch's progress message is written at most this often


class FailedSample(BaseModel):
    """A sample a worker could not make."""

    modality: str
    index: int
    reason: str | None = None


class BatchOut(BaseModel):
    """A batch as the API reports it."""

    id: str
    name: str
    status: str = Field(description="running | done | failed")
    message: str | None = None
    counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="{modality: {status: samples}}"
    )
    coco_url: str | None = None
    failures: list[FailedSample] = Field(
        default_factory=list,
        description=f"Samples that could not be made, with why (the first {SHOWN_FAILURES}; "
        "GET of one batch only). Posting the config again makes them anew.",
    )


def run_folder(runs_dir: Path, batch: dict[str, Any]) -> Path | None:
    """The run folder of a batch: `<runs_dir>/<id>` (API runs) or `<runs_dir>/<name>` (CLI runs),
    only if its manifest names this batch, so one batch never serves another's files."""
    for candidate in (runs_dir / batch["id"], runs_dir / batch["name"]):
        manifest = candidate / "manifest.json"
        try:
            if json.loads(manifest.read_text(encoding="utf-8")).get("batch_id") == batch["id"]:
                return candidate
        except (OSError, ValueError):
            continue
    return None


class InFlight:
    """The batches a runner of this server is running or following, claimed once each.

    Same config and seed: the same batch. One already in flight here, or done, has nothing to
    redo; one that failed, or was left "running" by a server that stopped, is claimed again.
    The batch row is written under the same lock, so a second identical POST arriving at once
    finds the batch (it is not started twice, and its poster can read it).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._ids: set[str] = set()

    def claim(self, batch_id: str, config: BatchConfig) -> bool:
        with self._lock:
            if batch_id in self._ids:
                return False
            existing = self.store.get_batch(batch_id)
            if existing is not None and existing["status"] == "done":
                return False
            self.store.put_batch(
                batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
            )
            self.store.set_batch_status(batch_id, "running", "queued")
            self._ids.add(batch_id)
            return True

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._ids)

    def release(self, batch_id: str) -> None:
        with self._lock:
            self._ids.discard(batch_id)

    def __bool__(self) -> bool:
        return bool(self._ids)


class BatchRunner:
    """Runs posted batches on background threads with a runner backend, into
    `<runs_dir>/<batch id>/` and the service's database in one pass.

    The backend is the in-process runner (one thread: batches run one at a time) or the Celery
    one (workers/runner.py; a thread per followed batch mostly waits on the database). Samples
    people were asked to review keep their verdict (sinks.KeepReviewed). When a batch is done,
    its doubtful samples are queued for review; when the server stops, batches still running are
    left `running`, resumable by posting them again.
    """

    def __init__(
        self,
        store: Store,
        queue: Any,
        runs_dir: Path,
        *,
        backend: Runner | None = None,
        threads: int = 1,
    ) -> None:
        self.store = store
        self.queue = queue
        self.runs_dir = runs_dir
        self.backend: Runner = backend if backend is not None else InProcessRunner()
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="synthgate-batch")
        self.in_flight = InFlight(store)
        self.stopping = threading.Event()

    def submit(self, config: BatchConfig) -> tuple[str, bool]:
        """Queue a batch; returns (batch id, whether a run was started)."""
        batch_id = batch_id_for(config)
        # A batch left "running" by a server that stopped is claimed again and resumed.
        if not self.in_flight.claim(batch_id, config):
            return batch_id, False
        try:
            if self.stopping.is_set():
                raise RuntimeError("stopping")
            self._pool.submit(self._run, config, batch_id)
        except RuntimeError:  # the server is shutting down
            self.store.set_batch_status(batch_id, "failed", "the server is stopping; post again")
            self.in_flight.release(batch_id)
        return batch_id, True

    def _run(self, config: BatchConfig, batch_id: str) -> None:
        total = sum(getattr(config, m).count for m in MODALITIES if getattr(config, m) is not None)
        try:
            self.store.set_batch_status(batch_id, "running", "generating")
            folder = self.runs_dir / batch_id
            sinks = [KeepReviewed(self.store, [RunFolderSink(folder), DatabaseSink(self.store)])]
            result = self.backend.run(
                config, sinks=sinks, progress=self._progress(batch_id, total), stop=self.stopping
            )
            # the run folder holds the images the review page shows
            queued = self.queue.enqueue_batch(batch_id, image_root=folder.resolve())
            failed = sum(counts.get("failed", 0) for counts in result.counts.values())
            if failed:
                why = "".join(
                    f" (first: {first['modality']} {first['index']}: {first['reason']})"
                    for first in self.store.failures(batch_id, limit=1)
                )
                self.store.set_batch_status(
                    batch_id,
                    "failed",
                    f"{failed} of {total} samples failed{why}; the others are in the run folder "
                    f"and {queued} new items queued for review; post the config again to retry "
                    "the failed ones",
                )
            else:
                self.store.set_batch_status(
                    batch_id, "done", f"{queued} new items queued for review"
                )
        except Stopped:
            self.store.set_batch_status(
                batch_id, "running", "the server stopped following it; post it again to resume"
            )
        except InputError as error:
            self.store.set_batch_status(batch_id, "failed", str(error))
        except Exception as error:  # a bug: keep it on the batch and in the log
            log.exception("batch %s failed", batch_id)
            self.store.set_batch_status(batch_id, "failed", f"{type(error).__name__}: {error}")
        finally:
            self.in_flight.release(batch_id)

    def _progress(self, batch_id: str, total: int) -> Progress:
        """A progress callback that keeps the batch's message at "judging: j of N samples"
        (written at most once a second)."""
        judged, shown = [0], [0.0]

        def advance(_modality: str, count: int, _total: int) -> None:
            judged[0] += count
            if time.monotonic() - shown[0] > PROGRESS_EVERY_S or judged[0] == total:
                shown[0] = time.monotonic()
                message = f"judging: {judged[0]} of {total} samples"
                self.store.set_batch_status(batch_id, "running", message)

        return advance

    def shutdown(self) -> None:
        """Stop: running batches stop at their next chunk and stay `running`, resumable; those
        waiting for a thread are dropped, saying so."""
        self.stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for batch_id in self.in_flight.ids():
            self.store.set_batch_status(
                batch_id, "running", "the server stopped following it; post it again to resume"
            )
            self.in_flight.release(batch_id)


def _batch_out(batch: dict[str, Any], counts: dict[str, dict[str, int]]) -> BatchOut:
    """A batch row and its sample counts ({modality: {status: n}}) as the API reports them."""
    batch_id = batch["id"]
    # A failed batch has a COCO file too when it failed only some samples (worker mode).
    finished = batch["status"] in ("done", "failed")
    made = any(s not in ("failed", "pending") for s in counts.get("image", {}))
    return BatchOut(
        id=batch_id,
        name=batch["name"],
        status=batch["status"],
        message=batch["message"],
        counts=counts,
        coco_url=f"/api/batches/{batch_id}/coco" if finished and made else None,
    )


def _visible_batch(request: Request, batch_id: str, user: User) -> BatchOut:
    """The batch, if `user` asked for it or is an admin; else the same 404 as for no batch, so
    nobody learns which configs others ran."""
    store: Store = request.app.state.store
    batch = store.get_batch(batch_id)
    if batch is None or (
        user.role != "admin" and user.name not in store.requesters.of_batch(batch_id)
    ):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no batch {batch_id!r}")
    return _batch_out(batch, store.counts_of([batch_id])[batch_id])


@router.post(
    "",
    response_model=BatchOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        400: {"description": "The config is invalid; `detail` says where and how."},
        422: {"description": "Too many samples asked for (the server's --max-samples)."},
    },
)
def create_batch(
    request: Request,
    response: Response,
    config: dict[str, Any] = Body(
        ...,
        description="A batch config, as in configs/*.yaml, as JSON.",
        examples=[
            {
                "name": "shapes",
                "seed": 1,
                "categories": ["circle", "square"],
                "image": {"generator": "procedural", "count": 10, "size": [128, 128]},
            }
        ],
    ),
    user: User = Depends(require("requester")),
) -> BatchOut:
    """Run a batch config in the background; poll `GET /api/batches/{id}` for its status.

    The caller becomes one of the batch's requesters, also when the batch exists already."""
    config = confine_paths(config, data_root=request.app.state.data_root)
    parsed = parse_config(config, source=SOURCE)
    check_counts(parsed, request.app.state.max_samples)
    batch_id, started = request.app.state.runner.submit(parsed)
    request.app.state.store.requesters.add(batch_id, user.name)
    if not started:
        response.status_code = status.HTTP_200_OK
    return _visible_batch(request, batch_id, user)


@router.get(
    "",
    response_model=list[BatchOut],
    responses={
        403: {"description": "`all=true` from a caller who is not an admin."},
        422: {"description": "`limit` outside 1..500 or a negative `offset`."},
    },
)
def list_batches(
    request: Request,
    limit: int = Query(50, ge=1, le=500, description="Batches per page."),
    offset: int = Query(0, ge=0, description="Batches to skip."),
    every: bool = Query(
        False, alias="all", description="Every batch, not only the caller's (admins only)."
    ),
    user: User = Depends(require("requester")),
) -> list[BatchOut]:
    """The batches the caller posted, the latest posted first (posting a batch again moves it
    up). Admins get their own too; with `all=true` they get every batch, by the latest time
    anyone posted it, and last the batches nobody posted through the API (made before
    requesters were recorded). `all=true` from anyone else is 403."""
    if every and user.role != "admin":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"{user.role} {user.name!r} may not list every batch; leave out all=true",
        )
    store: Store = request.app.state.store
    rows = store.requesters.batches_of(None if every else user.name, limit=limit, offset=offset)
    counts = store.counts_of([row["id"] for row in rows])  # one query for the page
    return [_batch_out(row, counts[row["id"]]) for row in rows]


@router.get(
    "/{batch_id}",
    response_model=BatchOut,
    responses={404: {"description": "No batch, or not one the caller posted."}},
)
def get_batch(
    batch_id: str, request: Request, user: User = Depends(require("requester"))
) -> BatchOut:
    """A batch's status, its sample counts by modality and status, and the samples that could
    not be made, with why (the caller's batches only; admins see every batch)."""
    batch = _visible_batch(request, batch_id, user)
    failed = request.app.state.store.failures(batch_id, limit=SHOWN_FAILURES)
    return batch.model_copy(update={"failures": [FailedSample(**f) for f in failed]})


@router.get(
    "/{batch_id}/coco",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "The batch's coco.json."},
        404: {"description": "No batch, not one the caller posted, or it made no images."},
        409: {"description": "The batch is still running, or failed before writing images."},
    },
)
def get_batch_coco(
    batch_id: str, request: Request, user: User = Depends(require("requester"))
) -> FileResponse:
    """Every image sample of the batch as COCO, with status, provenance and report per image
    (the caller's batches only; admins see every batch)."""
    batch = _visible_batch(request, batch_id, user)
    if batch.status == "running":
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"batch {batch_id} is running; try when done"
        )
    # A batch that failed after writing its run folder (some samples failed) still has one.
    folder = run_folder(request.app.state.runs_dir, {"id": batch_id, "name": batch.name})
    if folder is None or not (folder / "coco.json").is_file():
        if batch.status == "failed":
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"batch {batch_id} failed before writing its images: {batch.message}",
            )
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"batch {batch_id} has no images")
    return FileResponse(
        folder / "coco.json", media_type="application/json", filename=f"{batch_id}.coco.json"
    )
