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
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from synthgate.api.auth import User, require
from synthgate.api.errors import MAX_OFFSET, errors
from synthgate.api.inputs import SOURCE, check_limits, confine_paths
from synthgate.config import BatchConfig, RequesterLimits, parse_config
from synthgate.errors import InputError
from synthgate.files import check_nesting
from synthgate.pipeline import Progress, batch_id_for, planned_total
from synthgate.runner import InProcessRunner, Runner, Stopped
from synthgate.sinks import DatabaseSink, KeepReviewed, RunFolderSink
from synthgate.storage.store import Store

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/batches", tags=["batches"])


SHOWN_FAILURES = 20
PROGRESS_EVERY_S = 1.0  # a batch's progress message is written at most this often
HOUR_S = 3600.0
# How long shutdown waits for running batches to reach their next chunk: with uvicorn's own
# grace period (commands/serve.py) a SIGTERM ends the server well within 10 s.
SHUTDOWN_GRACE_S = 5.0
RESUMABLE = "the server stopped following it; post it again to resume"


class FailedSample(BaseModel):
    """A sample a worker could not make."""

    modality: str
    index: int
    reason: str | None = None


class BatchOut(BaseModel):
    """A batch as the API reports it."""

    id: str
    name: str
    status: str = Field(description="running | done | failed | cancelled")
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


class OverLimit(Exception):
    """A post over one of the requester's rate limits (RequesterLimits): the route answers 429
    naming `limit`, with Retry-After when waiting helps."""

    def __init__(self, limit: str, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.retry_after = retry_after


@dataclass
class Job:
    """A batch this server runs or will run: whose it is, and its own stop signal."""

    batch_id: str
    config: BatchConfig
    requester: str
    samples: int
    stop: threading.Event = field(default_factory=threading.Event)
    running: bool = False
    cancelled_by: str | None = None


class BatchRunner:
    """Runs posted batches on a bounded pool of threads with a runner backend, into
    `<runs_dir>/<batch id>/` and the service's database in one pass.

    Scheduling is fair between requesters: batches wait in one queue per requester, and a free
    thread takes the next batch round robin across requesters, skipping any requester who
    already runs `per_requester` batches (half the pool), so one requester's flood never keeps
    another's batch from starting. `submit` refuses a requester over their open batches or
    their samples in the last hour (`OverLimit`). The backend is the in-process runner or the
    Celery one (workers/runner.py; a thread per followed batch mostly waits on the database).

    Samples people were asked to review keep their verdict (sinks.KeepReviewed). When a batch is
    done, its doubtful samples are queued for review. `cancel` stops one batch at its next
    chunk; `shutdown` stops them all within `grace` seconds, leaving each `running` and
    resumable by posting it again.
    """

    def __init__(
        self,
        store: Store,
        queue: Any,
        runs_dir: Path,
        *,
        backend: Runner | None = None,
        threads: int = 1,
        limits: RequesterLimits | None = None,
        per_requester: int | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.runs_dir = runs_dir
        self.backend: Runner = backend if backend is not None else InProcessRunner()
        self.limits = limits or RequesterLimits()
        self.threads = threads
        self.per_requester = per_requester or max(1, threads // 2)
        self.stopping = threading.Event()
        self._lock = threading.Condition()
        self._jobs: dict[str, Job] = {}  # queued or running, by batch id
        self._waiting: dict[str, deque[Job]] = {}  # requester -> batches in post order
        self._turns: deque[str] = deque()  # requesters with waiting batches, by arrival
        self._served: dict[str, int] = {}  # requester -> when last served (a serve count)
        self._serves = 0
        self._running: Counter[str] = Counter()
        self._started: dict[str, deque[tuple[float, int]]] = {}  # requester -> (when, samples)
        self._pool: list[threading.Thread] = []

    @property
    def in_flight(self) -> list[str]:
        """The batches queued or running here."""
        with self._lock:
            return sorted(self._jobs)

    def submit(self, config: BatchConfig, requester: str = "") -> tuple[str, bool]:
        """Queue a batch; returns (batch id, whether a run was started).

        Same config and seed: the same batch. One already queued or running here, or done,
        has nothing to redo; one that failed, was cancelled, or was left `running` by a server
        that stopped is queued again (it resumes). The batch row is written under the lock, so
        a second identical post arriving at once finds it and starts nothing.
        """
        batch_id = batch_id_for(config)
        samples = planned_total(config)
        with self._lock:
            if batch_id in self._jobs:
                return batch_id, False
            existing = self.store.get_batch(batch_id)
            if existing is not None and existing["status"] == "done":
                return batch_id, False
            if self.stopping.is_set():
                raise HTTPException(
                    status.HTTP_503_SERVICE_UNAVAILABLE,
                    detail="the server is stopping; post the batch again once it is back",
                )
            self._check_rate(requester, samples)
            self.store.put_batch(
                batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
            )
            job = Job(batch_id, config, requester, samples)
            self._jobs[batch_id] = job
            self._started.setdefault(requester, deque()).append((time.monotonic(), samples))
            if requester not in self._waiting or not self._waiting[requester]:
                self._turns.append(requester)
            self._waiting.setdefault(requester, deque()).append(job)
            ahead = sum(len(q) for q in self._waiting.values()) - 1
            self.store.set_batch_status(
                batch_id, "running", f"queued: {ahead} batches ahead" if ahead else "queued"
            )
            self._start_threads()
            self._lock.notify()
        return batch_id, True

    def _check_rate(self, requester: str, samples: int) -> None:
        """OverLimit when the requester has too many open batches or asked for too many samples
        in the last hour (batches started here; a restart forgets them)."""
        limits = self.limits
        open_now = sum(1 for job in self._jobs.values() if job.requester == requester)
        if open_now >= limits.open_batches:
            raise OverLimit(
                "open_batches",
                f"open_batches: you have {open_now} batches queued or running, the limit "
                f"per requester (SYNTHGATE_MAX_OPEN_BATCHES); wait for one to finish or "
                "cancel one (DELETE /api/batches/{id})",
            )
        now = time.monotonic()
        started = self._started.setdefault(requester, deque())
        while started and now - started[0][0] > HOUR_S:
            started.popleft()
        used = sum(n for _, n in started)
        if used + samples > limits.samples_per_hour:
            # wait until enough of the oldest batches are an hour old
            freed, retry = used + samples - limits.samples_per_hour, HOUR_S
            for when, n in started:
                freed -= n
                if freed <= 0:
                    retry = HOUR_S - (now - when)
                    break
            raise OverLimit(
                "samples_per_hour",
                f"samples_per_hour: {used} samples asked for in the last hour plus {samples} "
                f"is over the limit of {limits.samples_per_hour} per requester "
                "(SYNTHGATE_MAX_SAMPLES_PER_HOUR); post again later",
                retry_after=max(1, math.ceil(retry)),
            )

    def _start_threads(self) -> None:
        """Start the pool on first use (a server that never runs a batch starts no threads).
        Daemon threads: a chunk still being made cannot keep a stopping server alive."""
        while len(self._pool) < self.threads:
            thread = threading.Thread(
                target=self._work, name=f"synthgate-batch-{len(self._pool)}", daemon=True
            )
            self._pool.append(thread)
            thread.start()

    def _next_job(self) -> Job | None:
        """The next batch: the first waiting one of the requester served least recently (a
        newcomer first), among those under their running share: round robin."""
        ready = [r for r in self._turns if self._running[r] < self.per_requester]
        if not ready:
            return None
        requester = min(ready, key=lambda r: self._served.get(r, -1))
        self._serves += 1
        self._served[requester] = self._serves
        waiting = self._waiting[requester]
        job = waiting.popleft()
        if not waiting:
            self._turns.remove(requester)
        return job

    def _work(self) -> None:
        while True:
            with self._lock:
                job = self._next_job()
                while job is None:
                    if self.stopping.is_set():
                        return
                    self._lock.wait()
                    job = self._next_job()
                job.running = True
                self._running[job.requester] += 1
            try:
                self._run(job)
            finally:
                with self._lock:
                    self._jobs.pop(job.batch_id, None)
                    self._running[job.requester] -= 1
                    self._lock.notify_all()

    def _run(self, job: Job) -> None:
        config, batch_id = job.config, job.batch_id
        total = job.samples
        try:
            self.store.set_batch_status(batch_id, "running", "generating")
            folder = self.runs_dir / batch_id
            sinks = [KeepReviewed(self.store, [RunFolderSink(folder), DatabaseSink(self.store)])]
            result = self.backend.run(
                config, sinks=sinks, progress=self._progress(job, total), stop=job.stop
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
            if job.cancelled_by is not None:
                self.store.set_batch_status(batch_id, "cancelled", _cancelled(job.cancelled_by))
            else:
                self.store.set_batch_status(batch_id, "running", RESUMABLE)
        except InputError as error:
            self.store.set_batch_status(batch_id, "failed", str(error))
        except Exception as error:  # a bug: keep it on the batch and in the log
            log.exception("batch %s failed", batch_id)
            self.store.set_batch_status(batch_id, "failed", f"{type(error).__name__}: {error}")

    def _progress(self, job: Job, total: int) -> Progress:
        """A progress callback that keeps the batch's message at "judging: j of N samples"
        (written at most once a second)."""
        judged, shown = [0], [0.0]

        def advance(_modality: str, count: int, _total: int) -> None:
            judged[0] += count
            if job.stop.is_set():
                return  # its status says cancelled or stopping now
            if time.monotonic() - shown[0] > PROGRESS_EVERY_S or judged[0] == total:
                shown[0] = time.monotonic()
                message = f"judging: {judged[0]} of {total} samples"
                self.store.set_batch_status(job.batch_id, "running", message)

        return advance

    def cancel(self, batch_id: str, by: str) -> bool:
        """Cancel a batch: dropped if it waits, stopped at its next chunk if it runs (what it
        made so far stays in the database). False when it is neither here nor left `running`."""
        with self._lock:
            job = self._jobs.get(batch_id)
            if job is None:
                batch = self.store.get_batch(batch_id)
                if batch is None or batch["status"] != "running":
                    return False
                # left running by a server that stopped: nothing runs it, so it is just marked
                self.store.set_batch_status(batch_id, "cancelled", _cancelled(by))
                return True
            job.cancelled_by = by
            job.stop.set()
            if not job.running:
                self._waiting[job.requester].remove(job)
                if not self._waiting[job.requester] and job.requester in self._turns:
                    self._turns.remove(job.requester)
                self._jobs.pop(batch_id)
            self.store.set_batch_status(batch_id, "cancelled", _cancelled(by))
            return True

    def shutdown(self, grace: float = SHUTDOWN_GRACE_S) -> None:
        """Stop: running batches stop at their next chunk, waiting ones are dropped; all stay
        `running`, resumable by posting them again. Returns within about `grace` seconds: a
        thread still inside a chunk is left behind (a daemon, gone with the process; its run
        folder is never half-published)."""
        with self._lock:
            self.stopping.set()
            for requester in list(self._waiting):
                for job in self._waiting.pop(requester):
                    self._jobs.pop(job.batch_id, None)
                    self.store.set_batch_status(job.batch_id, "running", RESUMABLE)
            self._turns.clear()
            for job in self._jobs.values():
                job.stop.set()
            self._lock.notify_all()
        deadline = time.monotonic() + grace
        for thread in self._pool:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            for job in self._jobs.values():  # still inside a chunk
                if job.cancelled_by is None:
                    self.store.set_batch_status(job.batch_id, "running", RESUMABLE)
            left = len(self._jobs)
        if left:
            log.warning("%d batches were still inside a chunk at shutdown; post them again", left)


def _cancelled(by: str) -> str:
    return f"cancelled by {by}; what it made so far is kept; post it again to resume"


def _batch_out(batch: dict[str, Any], counts: dict[str, dict[str, int]]) -> BatchOut:
    """A batch row and its sample counts ({modality: {status: n}}) as the API reports them."""
    batch_id = batch["id"]
    # A failed batch has a COCO file too when it failed only some samples (worker mode).
    finished = batch["status"] in ("done", "failed", "cancelled")
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


NO_BATCH = (404, "No batch, or not one the caller posted.")
BAD_BATCH_ID = (422, "Not a batch id.")
BATCH_ID = PathParam(
    ...,
    max_length=200,
    pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    description="The id POST /api/batches answered with.",
)


@router.post(
    "",
    response_model=BatchOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "The caller posted this config before: the batch as it stands."},
        **errors(
            (400, "The config is invalid; `detail` says where and how."),
            (413, "The body is over the server's size limit."),
            (
                422,
                "The body is not a JSON object, or the config asks for more than the "
                "server allows one batch (samples, pixels or objects per image).",
            ),
            (429, "The caller is over a rate limit: open batches or samples per hour."),
            (503, "The server is stopping."),
        ),
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

    Batches are the caller's own: another requester posting the same config gets another batch
    (the service sets the config's `requester`). Posting a batch of yours again returns it as it
    stands (200), or resumes it if it failed, was cancelled or was left running by a server that
    stopped (202). Limits per requester (422 or 429 naming the limit): samples per batch, pixels
    and objects per image, open batches, samples per hour."""
    check_nesting(config, where=f"{SOURCE}: body")
    if "requester" in config:
        raise InputError(
            field="requester",
            problem="is set by the service from who posts the config",
            fix="leave it out",
        )
    runner: BatchRunner = request.app.state.runner
    config = confine_paths(config, data_root=request.app.state.data_root)
    parsed = parse_config({**config, "requester": user.requester_key}, source=SOURCE)
    check_limits(parsed, runner.limits)
    try:
        batch_id, started = runner.submit(parsed, user.name)
    except OverLimit as over:
        headers = {"Retry-After": str(over.retry_after)} if over.retry_after else None
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, detail=str(over), headers=headers
        ) from None
    request.app.state.store.requesters.add(batch_id, user.name)
    if not started:
        response.status_code = status.HTTP_200_OK
    return _visible_batch(request, batch_id, user)


@router.get(
    "",
    response_model=list[BatchOut],
    responses=errors(
        (403, "`all=true` from a caller who is not an admin."),
        (422, "`limit` outside 1..500 or `offset` outside 0..1000000."),
    ),
)
def list_batches(
    request: Request,
    limit: int = Query(50, ge=1, le=500, description="Batches per page."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Batches to skip."),
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
    responses=errors(
        NO_BATCH,
        BAD_BATCH_ID,
    ),
)
def get_batch(
    request: Request, batch_id: str = BATCH_ID, user: User = Depends(require("requester"))
) -> BatchOut:
    """A batch's status, its sample counts by modality and status, and the samples that could
    not be made, with why (the caller's batches only; admins see every batch)."""
    batch = _visible_batch(request, batch_id, user)
    failed = request.app.state.store.failures(batch_id, limit=SHOWN_FAILURES)
    return batch.model_copy(update={"failures": [FailedSample(**f) for f in failed]})


@router.delete(
    "/{batch_id}",
    response_model=BatchOut,
    responses=errors(
        NO_BATCH,
        (409, "The batch is not queued or running (done, failed or cancelled already)."),
        BAD_BATCH_ID,
    ),
)
def cancel_batch(
    request: Request, batch_id: str = BATCH_ID, user: User = Depends(require("requester"))
) -> BatchOut:
    """Cancel a batch: dropped if it waits for a thread, stopped at its next chunk if it runs.
    What it made so far is kept; posting the config again resumes it."""
    batch = _visible_batch(request, batch_id, user)
    if not request.app.state.runner.cancel(batch_id, user.name):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"batch {batch_id} is {batch.status}, not queued or running: nothing to cancel",
        )
    return _visible_batch(request, batch_id, user)


@router.get(
    "/{batch_id}/coco",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "The batch's coco.json."},
        **errors(
            (404, "No batch, not one the caller posted, or it made no images."),
            (409, "The batch is still running, or stopped before writing images."),
            BAD_BATCH_ID,
        ),
    },
)
def get_batch_coco(
    request: Request, batch_id: str = BATCH_ID, user: User = Depends(require("requester"))
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
        if batch.status in ("failed", "cancelled"):
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"batch {batch_id} stopped before writing its images: {batch.message}",
            )
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"batch {batch_id} has no images")
    return FileResponse(
        folder / "coco.json", media_type="application/json", filename=f"{batch_id}.coco.json"
    )
