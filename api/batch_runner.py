"""`BatchRunner`: the service's posted batches, run on a bounded pool of threads with a runner
backend (in-process, or Celery workers: api/distributed.py), fairly between requesters and within
their limits (`OverLimit`), into `<runs_dir>/<batch id>/` and the service's database in one pass;
the doubtful samples are queued for review when a batch is done. The batch routes (api/batches.py)
submit to it, cancel through it and read what it wrote.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException, status
from pydantic import ValidationError

from synthgate.config import BatchConfig, RequesterLimits
from synthgate.errors import InputError
from synthgate.foreign_files import FolderAdvice
from synthgate.pipeline import (
    MODALITIES,
    JudgedSample,
    Progress,
    RunStart,
    RunTotals,
    batch_id_for,
    planned_total,
    rubric_digest,
    section_rubric,
)
from synthgate.runner import InProcessRunner, Runner, Sink, Stopped
from synthgate.sinks import DatabaseSink, KeepReviewed, RunFolderSink
from synthgate.storage.store import WORKER_STATUSES, Store
from synthgate.validators.rubric import Rubric

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 1.0  # a batch's progress message is written at most this often
HOUR_S = 3600.0
# How long shutdown waits for running batches to reach their next chunk: with uvicorn's own
# grace period (commands/serve.py) a SIGTERM ends the server well within 10 s.
SHUTDOWN_GRACE_S = 5.0
RESUMABLE = "the server stopped following it; post it again to resume"
# A batch's run folder is in the runs folder the server's operator chose: its requester, who
# reads a refusal of it, can only tell them, then post the config again.
RUN_FOLDER_ADVICE = FolderAdvice(
    fixed_by="the server's operator (who chose its runs folder: serve --runs-dir)",
    again="post the config again",
)


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
    requester: str  # the account's key (User.requester_key): limits and fair shares are its own
    samples: int
    stop: threading.Event = field(default_factory=threading.Event)
    running: bool = False
    cancelled_by: str | None = None
    resume: bool = False  # cancelled, then posted again while it finished its chunk


def refuse_other_rubric(
    recorded: Any,
    config: BatchConfig,
    batch_id: str,
    *,
    judged_with: dict[str, str] | None = None,
) -> None:
    """409 for `config` posted as batch `batch_id` (first posted as `recorded`, the config
    stored with it) with a rubric other than the one it was made and judged with: the rubric
    is not part of a batch's id, and posting a batch again answers it as it stands (or resumes
    it), so its verdicts would be the first rubric's, or a mix of both.

    `judged_with`: the digest of the rubric each modality was judged with (store.rubric_digests),
    so that the same file edited in place is told apart; a batch judged before they were
    recorded has none, and its rubrics are compared by name. The run a post lets through is
    held to them too, where it loads its rubric (`SameRubric`)."""
    try:
        stored = BatchConfig.model_validate(recorded)
    except ValidationError:  # recorded by a synthgate whose configs read otherwise
        return
    for modality in MODALITIES:
        before, now = getattr(stored, modality), getattr(config, modality)
        if before is None or now is None:
            continue
        digest = (judged_with or {}).get(modality)
        if digest is None and before.rubric == now.rubric:
            # the same rubric named: both would load from the same file today (a batch id
            # counts a template file, whose task names a default rubric, by content)
            continue
        asked = section_rubric(config, modality)
        if digest is not None and rubric_digest(asked) == digest:
            continue  # judges as it did, wherever its file is now
        # the rubric it was judged with, by the name it was posted with
        first = Path(str(before.rubric)).stem if before.rubric is not None else asked.name
        changed = _other_rubric(
            modality, batch_id, asked, had=f"rubric {first}, whose file has changed since"
        )
        if digest is not None and before.rubric == now.rubric:
            raise changed
        try:
            judged = section_rubric(stored, modality)
        except InputError:  # a file it read is gone or no longer reads
            if digest is not None:  # what it judged with is known, and is not `asked`
                raise changed from None
            if before.rubric is not None:  # named by its file's name: the folder is the server's
                raise _other_rubric(
                    modality,
                    batch_id,
                    asked,
                    had=f"rubric {first} from a file that can no longer be read, so whether "
                    f"{asked.name} judges as it did is unknown",
                ) from None
            # its template file's task's: that file moved, and the one the config names now
            # holds the same (a batch id counts it by content)
            unnamed = config.model_copy(update={modality: now.model_copy(update={"rubric": None})})
            judged = section_rubric(unnamed, modality)
        if judged == asked:
            if digest is not None:  # its first file now reads as the one posted, unlike then
                raise changed
            continue
        had = (
            f"rubric {judged.name}, not {asked.name}"
            if judged.name != asked.name
            else f"another rubric named {asked.name}"
        )
        raise _other_rubric(modality, batch_id, asked, had=had)


def _other_rubric(modality: str, batch_id: str, asked: Rubric, *, had: str) -> HTTPException:
    return HTTPException(
        status.HTTP_409_CONFLICT,
        detail=f"{modality}.rubric: batch {batch_id} was made and judged with {had}; a "
        "rubric is not part of a batch's id, so posting the config "
        "again returns the batch as it stands. To judge with "
        f"{asked.name}, give the config another name: that makes a new batch",
    )


class SameRubric:
    """A sink that refuses, at the run's start, a rubric other than the one the batch's verdicts
    were given with (store.rubric_digests). A post of the batch again is held to that rubric
    (`refuse_other_rubric`), but the run it lets through loads the rubric's file when it starts,
    after a wait in the queue or the chunk it was cancelled in: a file edited meanwhile would
    judge the rest of the batch, and its digest would replace the first. A batch without
    verdicts (nothing made, or only failed samples) runs with the rubric it loaded."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def start(self, run: RunStart) -> None:
        recorded = self.store.rubric_digests(run.batch_id)
        digests = {modality: rubric_digest(judge.rubric) for modality, judge in run.judges.items()}
        changed = [m for m, digest in digests.items() if recorded.get(m, digest) != digest]
        if not changed:
            return
        counts = self.store.counts_of([run.batch_id])[run.batch_id]
        for modality in changed:
            if all(status in WORKER_STATUSES for status in counts.get(modality, {})):
                continue  # no verdict given yet
            name = run.judges[modality].rubric.name
            raise InputError(
                f"{modality}.rubric: batch {run.batch_id} was judged with rubric {name}, whose "
                "file has changed since; a rubric is not part of a batch's id, so the batch "
                "cannot go on with the file as it is now. Put the file back as it was to finish "
                f"the batch, or, to judge with {name} as it is now, give the config another "
                "name: that makes a new batch"
            )

    def add(self, chunk: list[JudgedSample]) -> None:
        pass

    def finish(self, totals: RunTotals) -> None:
        pass

    def abort(self) -> None:
        pass


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
        # requester -> their waiting batches in post order; only requesters with one waiting,
        # in the order they came to wait (the round robin's turns)
        self._waiting: dict[str, deque[Job]] = {}
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
        that stopped is queued again (it resumes), a cancelled one still finishing the chunk it
        was inside once that chunk ends. The batch row is written under the lock, so
        a second identical post arriving at once finds it and starts nothing.
        """
        batch_id = batch_id_for(config)
        samples = planned_total(config)
        with self._lock:
            existing = self.store.get_batch(batch_id)
            job = self._jobs.get(batch_id)
            # one neither queued nor running here that made no sample holds no verdict: it
            # runs (resumes) with the rubric posted now
            if existing is not None and (
                job is not None or self.store.counts_of([batch_id])[batch_id]
            ):
                refuse_other_rubric(
                    existing["config"],
                    config,
                    batch_id,
                    judged_with=self.store.rubric_digests(batch_id),
                )
            if job is not None and job.cancelled_by is not None and not self.stopping.is_set():
                # cancelled while inside a chunk, which it is finishing: it resumes after it
                # (answered "cancelled" and started nothing before, until a third post)
                job.resume = True
                self.store.set_batch_status(
                    batch_id, "running", "queued: resumes once the chunk it was making ends"
                )
                return batch_id, True
            if job is not None:
                return batch_id, False
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
            self._started.setdefault(requester, deque()).append((time.monotonic(), samples))
            self._queue(Job(batch_id, config, requester, samples))
            self._start_threads()
            self._lock.notify()
        return batch_id, True

    def _queue(self, job: Job) -> None:
        """Hold `job` and put it in its requester's line (under the lock)."""
        self._jobs[job.batch_id] = job
        self._waiting.setdefault(job.requester, deque()).append(job)
        ahead = sum(len(q) for q in self._waiting.values()) - 1
        message = f"queued: {ahead} batch{'es' if ahead > 1 else ''} ahead" if ahead else "queued"
        self.store.set_batch_status(job.batch_id, "running", message)

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
        ready = [r for r in self._waiting if self._running[r] < self.per_requester]
        if not ready:
            return None
        requester = min(ready, key=lambda r: self._served.get(r, -1))
        self._serves += 1
        self._served[requester] = self._serves
        waiting = self._waiting[requester]
        job = waiting.popleft()
        if not waiting:
            del self._waiting[requester]
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
                    if job.resume and not self.stopping.is_set():
                        self._queue(Job(job.batch_id, job.config, job.requester, job.samples))
                    self._lock.notify_all()

    def _run(self, job: Job) -> None:
        config, batch_id = job.config, job.batch_id
        total = job.samples
        try:
            self.store.set_batch_status(batch_id, "running", "generating")
            folder = self.runs_dir / batch_id
            run_folder = RunFolderSink(folder, advice=RUN_FOLDER_ADVICE)
            sinks: list[Sink] = [
                SameRubric(self.store),  # first: refused, the run folder is not begun
                KeepReviewed(self.store, [run_folder, DatabaseSink(self.store)]),
            ]
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
            with self._lock:  # a post may ask it to resume (`resume`) until the lock is let go
                if job.cancelled_by is not None and not job.resume:
                    self.store.set_batch_status(batch_id, "cancelled", _cancelled(job.cancelled_by))
                elif not job.resume or self.stopping.is_set():
                    self.store.set_batch_status(batch_id, "running", RESUMABLE)
        except InputError as error:
            self.store.set_batch_status(batch_id, "failed", said_to_requester(error))
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
            job.resume = False
            job.stop.set()
            if not job.running:
                waiting = self._waiting[job.requester]
                waiting.remove(job)
                if not waiting:
                    del self._waiting[job.requester]
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


def said_to_requester(error: InputError) -> str:
    """A refusal of a posted batch's run as its requester reads it: `out` is the batch's run
    folder (its fix is RUN_FOLDER_ADVICE's, given where the folder was refused)."""
    return error.describe("run folder") if error.field == "out" else str(error)


def _cancelled(by: str) -> str:
    return f"cancelled by {by}; what it made so far is kept; post it again to resume"
