"""Submitting a batch to the workers and watching it.

`submit_batch` records the batch and its chunks in the shared database and publishes one message per
unfinished chunk (a re-submit publishes only what is left, and finished chunks are never made twice;
one with a rubric that measures samples otherwise than the batch's is refused: the rubric is not
part of the batch id, and the workers keep what they measured). `recover_lost` is the recovery
sweep: running chunks whose lease ran out (their worker was killed or froze) go back to `queued` and
are published again, at once (not after the broker's visibility timeout) and ahead of the chunks
waiting their turn; every worker runs it (workers/tasks.py), with `resend_stalled`, which
publishes again the queued chunks no worker took while the queues are empty (a broker restart
lost their messages); and so does `wait_for_batch`, which follows progress in the database and
runs both on its batch (the stalled chunks sooner than the workers do). Judging what the workers
made, in order, into sinks is workers/runner.py's.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from synthgate.config import BatchConfig
from synthgate.errors import InputError, counted
from synthgate.pipeline import MODALITIES, batch_id_for, section_rubric
from synthgate.storage.chunks import ChunkState
from synthgate.storage.database import shown_url
from synthgate.storage.store import Store
from synthgate.validators.rubric import Rubric
from synthgate.workers.app import MAKE_CHUNK, QUEUES, WorkerSettings, queue_for
from synthgate.workers.chunks import FINISHED, TRANSIENT_ERRORS, chunk_rows

log = logging.getLogger(__name__)

UNFINISHED = ("queued", "running")  # waiting for a worker; `generated` waits for submit


@dataclass
class BatchProgress:
    batch_id: str
    total: int  # samples planned
    stored: int  # samples with a row (made or failed)
    failed: int
    chunks: dict[str, Any]

    @property
    def finished(self) -> bool:
        return not any(self.chunks.get(status, 0) for status in UNFINISHED)


# Nothing made for this long and no chunk running: the batch's note names the queues left
# waiting (no worker serves them, e.g. no gpu worker for a diffusion batch, or none at all).
WAITING_NOTE_S = 60.0
BROKER_PROBE_S = 10.0  # how often a note asks the broker whether it answers


class IdleNote:
    """Whether a followed batch waits for a worker: nothing made for `after` seconds and no
    chunk running. `check(progress)` gives the note then ("nothing made for 75 s: is a worker
    serving queue cpu running?" and `worker_hint`), else None; `submit --wait` prints it, the
    API shows it as the batch's message. Given the Celery `app`, it asks the broker first (at
    most every `BROKER_PROBE_S`): one that does not answer is what the batch waits for, not a
    worker ("... the broker redis://... does not answer; start it again ..."), or, given
    `broker_down`, what to say then instead (the API's requester neither sees nor starts the
    server's broker). Given `no_worker`, the note says it instead of asking whether a worker
    runs (the API's requester cannot start one either), its `{queues}` filled with the queues
    left waiting."""

    def __init__(
        self,
        store: Store,
        *,
        after: float | None = None,
        app: Any = None,
        worker_hint: str = "",
        broker_down: str | None = None,
        no_worker: str | None = None,
    ) -> None:
        self.store = store
        self.after = WAITING_NOTE_S if after is None else after
        self.app = app
        self.worker_hint = worker_hint
        self.broker_down = broker_down
        self.no_worker = no_worker
        self._changed: dict[str, tuple[int, float]] = {}  # batch: samples made, since when
        self._broker: tuple[float, bool] = (-BROKER_PROBE_S, True)  # asked when, answered

    def check(self, progress: BatchProgress) -> str | None:
        now = time.monotonic()
        stored, since = self._changed.get(progress.batch_id, (-1, now))
        if progress.stored != stored:
            self._changed[progress.batch_id] = (progress.stored, now)
            return None
        if now - since <= self.after or progress.chunks.get("running"):
            return None
        waiting = self.store.chunks.of_batch(progress.batch_id, statuses=["queued"])
        queues = ", ".join(sorted({chunk.queue for chunk in waiting}))
        if not queues:
            return None
        waited = f"nothing made for {now - since:.0f} s"
        if not self._broker_answers(now):
            if self.broker_down is not None:
                return f"{waited}: {self.broker_down}"
            return (
                f"{waited}: the broker {shown_url(self.app.conf.broker_url)} does not answer; "
                "start it again (the workers, and this wait, go on once it answers)"
            )
        if self.no_worker is not None:
            return f"{waited}: {self.no_worker.format(queues=queues)}"
        return f"{waited}: is a worker serving queue {queues} running?{self.worker_hint}"

    def _broker_answers(self, now: float) -> bool:
        asked, answered = self._broker
        if self.app is not None and now - asked >= BROKER_PROBE_S:
            # a broker that does not answer takes a few seconds to say so: not every poll
            answered = queued_messages(self.app) is not None
            self._broker = (time.monotonic(), answered)
        return answered


# Message priorities. Redis serves priority 0 first (kombu's steps 0, 3, 6, 9): a chunk sent
# again (its worker was lost, or its message) goes ahead of the chunks waiting their turn, since
# the batch is judged in index order and waits on it.
IN_TURN = 6
AHEAD = 0


def publish(
    app: Any,
    chunks: list[ChunkState],
    *,
    ahead: bool = False,
    unsent: str = "Nothing was lost: a later sweep sends them",
) -> int:
    """One message per chunk, on the chunk's queue, over one broker connection; `ahead`: before
    the messages waiting there. An `InputError` ending with `unsent` (what becomes of the
    chunks) when the broker cannot be reached."""
    if not chunks:
        return 0
    priority = AHEAD if ahead else IN_TURN
    try:
        with app.producer_or_acquire() as producer:
            for chunk in chunks:
                app.send_task(
                    MAKE_CHUNK,
                    args=[chunk.id],
                    queue=chunk.queue,
                    producer=producer,
                    priority=priority,
                )
    except Exception as error:  # kombu raises several types for an unreachable broker
        raise InputError(
            f"broker {shown_url(app.conf.broker_url)}: cannot publish ({type(error).__name__}: "
            f"{error}); "
            "start Redis or pass its URL as {broker} / set SYNTHGATE_BROKER_URL. " + unsent,
            options=("broker",),
        ) from None
    return len(chunks)


def measured_difference(before: Rubric, now: Rubric) -> str:
    """How `now` measures otherwise than `before`: checks added or dropped, params changed."""
    old, new = dict(before.measured_steps), dict(now.measured_steps)
    parts = []
    if added := [check for check in new if check not in old]:
        parts.append(f"adds {', '.join(added)}")
    if dropped := [check for check in old if check not in new]:
        parts.append(f"drops {', '.join(dropped)}")
    for check, params in new.items():
        if check in old and params != old[check]:
            given, had = params or {}, old[check] or {}
            keys = sorted(k for k in given.keys() | had.keys() if given.get(k) != had.get(k))
            parts.append(f"changes the params of {check} ({', '.join(keys)})")
    return "; ".join(parts) or "orders its checks otherwise"


def refuse_rubric_change(stored: BatchConfig, config: BatchConfig, batch_id: str) -> None:
    """Refuse to submit `config` again as batch `batch_id` (first submitted as `stored`) with a
    rubric that measures samples otherwise: the rubric is not part of the batch id, and the
    workers' stored measurements are the old rubric's. One that only moves thresholds,
    severities or routing (a calibrated rubric) is fine: the batch is judged again with it,
    as `synthgate run` judges the config."""
    for modality in MODALITIES:
        before, now = getattr(stored, modality), getattr(config, modality)
        if before is None or now is None or before.rubric == now.rubric:
            continue
        asked = section_rubric(config, modality)
        try:
            measured = section_rubric(stored, modality)
        except InputError:
            difference = f"{before.rubric} cannot be read any more"
            name = str(before.rubric)
        else:
            if measured.measurement_key == asked.measurement_key:
                continue
            difference = measured_difference(measured, asked)
            name = measured.name
        given = asked.name if now.rubric == asked.name else f"{asked.name} ({now.rubric})"
        raise InputError(
            f"{modality}.rubric: batch {batch_id} was made with rubric {name}, and rubric "
            f"{given} measures samples otherwise ({difference}); a rubric does not change a "
            "batch's id, so the samples the workers measured cannot be judged with it. Give the "
            f"config another name to make the batch anew with {asked.name}, or keep the checks "
            f"and check params of {name} (thresholds, severities and routing may change)"
        )


def submit_batch(app: Any, store: Store, config: BatchConfig) -> tuple[str, int]:
    """Record the batch and its chunks; publish the unfinished ones. Returns (batch id, sent).

    A batch submitted before keeps its chunks, whatever this process's `cpu_chunk_factor`;
    one with a rubric that measures otherwise is refused (`refuse_rubric_change`), before
    anything changes."""
    batch_id = batch_id_for(config)
    previous = store.get_batch(batch_id)
    if previous is not None:
        refuse_rubric_change(BatchConfig.model_validate(previous["config"]), config, batch_id)
    store.put_batch(
        batch_id, name=config.name, seed=config.seed, config=config.model_dump(mode="json")
    )
    for chunk in store.chunks.of_batch(batch_id, statuses=["failed", "generated"]):
        # A chunk with failed samples is tried again: they are made anew; the samples it made
        # (judged, perhaps reviewed since) stay as they are.
        forgotten = store.forget_failed(batch_id, chunk.modality, chunk.start, chunk.stop)
        if chunk.status == "failed" or forgotten:
            store.chunks.update(chunk.id, status="queued", crashes=0, reason=None, current=None)
    settings: WorkerSettings = app.synthgate
    # A batch keeps the chunks it was first cut into: they are cut by this process's settings
    # (cpu_chunk_factor), and a submit with others laid a second set over the same samples,
    # which no worker made and whose files the run folder's judge then looked for.
    if not store.chunks.of_batch(batch_id):
        store.chunks.put(
            chunk_rows(
                config,
                batch_id,
                gpu_generators=settings.gpu_generators,
                cpu_chunk_factor=settings.cpu_chunk_factor,
            )
        )
    else:
        # Its chunks waiting go where this process routes their generator now: a batch sent to
        # `cpu` before SYNTHGATE_GPU_GENERATORS named its generator was sent there again.
        for chunk in store.chunks.of_batch(batch_id, statuses=["queued"]):
            queue = queue_for(getattr(config, chunk.modality).generator, settings.gpu_generators)
            if chunk.queue != queue:
                store.chunks.update(chunk.id, if_status="queued", queue=queue)
    # A `running` chunk whose lease is live is left to its worker; one whose lease ran out
    # lost its worker and goes back to `queued`, to be sent with the others.
    for chunk in store.chunks.lost(batch_id=batch_id):
        store.chunks.requeue_lost(chunk)
    waiting = store.chunks.of_batch(batch_id, statuses=["queued"])
    unfinished = waiting or store.chunks.of_batch(batch_id, statuses=["running", "generated"])
    # A done batch submitted again has nothing to make: it stays done (it was marked running
    # for good, with nothing running, when no `--wait` came to finish it)
    if unfinished or previous is None or previous["status"] != "done":
        store.set_batch_status(batch_id, "running")
    # Unsent, the chunks stay queued: the workers' sweep (`resend_stalled`) sends them, as it
    # sends those whose messages a broker restart lost, so the message says so.
    sent = publish(
        app,
        waiting,
        unsent=(
            f"Batch {batch_id} is recorded with its {len(waiting)} chunks waiting: once the "
            "broker answers, the workers on this database send them themselves after "
            f"{stall_seconds(settings):g} s of waiting, or submit the same config again then to "
            "send them at once (no chunk is made twice)"
        ),
    )
    return batch_id, sent


def recover_lost(app: Any, store: Store, *, batch_id: str | None = None) -> list[str]:
    """Hand the chunks whose lease ran out to other workers: each goes back to `queued`
    (counting a crash) and its message is published again. Several sweeps may run at once:
    only the one whose requeue wins publishes. Returns the ids of the chunks sent; an
    `InputError` when the broker cannot be reached (the chunks stay lost, for the next sweep)."""
    requeued = [c for c in store.chunks.lost(batch_id=batch_id) if store.chunks.requeue_lost(c)]
    if requeued:
        try:
            publish(app, requeued, ahead=True)
        except InputError:  # no broker: lost again, for a later sweep to send
            for chunk in requeued:
                store.chunks.undo_requeue(chunk)
            raise
        log.warning(
            "sent %s whose worker was lost again: %s",
            counted(len(requeued), "chunk"),
            ", ".join(c.id for c in requeued),
        )
    return [c.id for c in requeued]


def resend_stalled(
    app: Any,
    store: Store,
    *,
    settings: WorkerSettings,
    batch_id: str | None = None,
    after: float | None = None,
) -> list[str]:
    """Publish again the queued chunks (of `batch_id`, else of every batch) no worker took for
    `after` seconds (default `stall_seconds(settings)`) while the broker's queue for them is
    empty: their messages were lost (a broker restarted without persistence before a worker
    took them). Each queue on its own: messages waiting in the gpu queue for a GPU worker that
    is not running hold back no cpu chunk. Safe, since a chunk is claimed by one delivery at a
    time. Returns the ids sent; an `InputError` when the broker cannot be reached."""
    waited = stall_seconds(settings) if after is None else after
    stalled = store.chunks.stalled(unchanged_since=time.time() - waited, batch_id=batch_id)
    empty = {queue for queue in {c.queue for c in stalled} if queued_messages(app, [queue]) == 0}
    mine = [c for c in stalled if c.queue in empty and store.chunks.touch_stalled(c)]
    publish(app, mine, ahead=True)
    return [c.id for c in mine]


def stall_seconds(settings: WorkerSettings) -> float:
    """How long a queued chunk waits before the workers' sweep sends its message again: a
    lease and two heartbeats, plus the longest retry backoff (a chunk waiting out its retry is
    queued, its message held by the worker that will retry it)."""
    return settings.lease_timeout + 2 * settings.heartbeat_interval + settings.retry_backoff_max


def progress_of(store: Store, batch_id: str, total: int) -> BatchProgress:
    counts = store.count_by_status(batch_id)
    return BatchProgress(
        batch_id=batch_id,
        total=total,
        stored=sum(counts.values()),
        failed=sum(n for (_m, status), n in counts.items() if status == "failed"),
        chunks=store.chunks.totals(batch_id),
    )


def chunk_generated(store: Store, chunk_id: str) -> bool:
    """Whether a chunk needs no worker any more (generated, or already judged)."""
    chunk = store.chunks.get(chunk_id)
    return chunk is not None and chunk.status in FINISHED


def queued_messages(app: Any, queues: Iterable[str] = QUEUES) -> int | None:
    """Messages waiting in the broker's `queues` (None when the broker cannot be asked)."""
    from kombu.exceptions import ChannelError

    waiting = 0
    try:
        with app.connection_for_read() as connection:
            channel = connection.default_channel
            for queue in queues:
                try:
                    waiting += channel.queue_declare(queue=queue, passive=True).message_count
                except ChannelError:
                    continue  # never declared, or forgotten in a broker restart: empty
    except Exception:  # an unreachable broker: no answer
        return None
    return waiting


def wait_for_batch(
    app: Any,
    store: Store,
    batch_id: str,
    *,
    total: int,
    settings: WorkerSettings,
    on_progress: Callable[[BatchProgress], None] | None = None,
    on_resend: Callable[[int], None] | None = None,
    poll_seconds: float = 0.5,
    timeout: float | None = None,
    until: Callable[[BatchProgress], bool] | None = None,
) -> BatchProgress:
    """Follow a batch in the database until every chunk is generated (or `until` holds).

    Every `heartbeat_interval` it sweeps the batch's chunks as the workers do: those whose
    lease ran out (`recover_lost`), and the queued ones no worker took for `stall_seconds`
    while the broker's queue for them is empty (`resend_stalled`): their messages were lost (a
    broker restarted without persistence), and they are published again. The wait includes
    the longest retry backoff, as the workers' sweep does: a chunk waiting out its retry is
    queued, its message held by the worker that retries it, and was sent again early. That is
    safe because a chunk is claimed by one delivery at a time: a second message finds it held,
    or finished.
    """
    stall_after = stall_seconds(settings)
    started = time.monotonic()
    last_sweep = 0.0
    while True:
        try:
            if time.monotonic() - last_sweep > settings.heartbeat_interval:
                last_sweep = time.monotonic()
                with contextlib.suppress(InputError):  # no broker: the next sweep tries again
                    recover_lost(app, store, batch_id=batch_id)
                try:
                    # not in its first `stall_after`: the chunks just sent are on their way
                    sent = (
                        resend_stalled(
                            app, store, settings=settings, batch_id=batch_id, after=stall_after
                        )
                        if time.monotonic() - started > stall_after
                        else []
                    )
                except InputError:
                    sent = []  # still no broker; the next sweep tries again
                if on_resend is not None and sent:
                    on_resend(len(sent))
            progress = progress_of(store, batch_id, total)
        except TRANSIENT_ERRORS:  # the database restarts or is busy: the workers wait too
            time.sleep(poll_seconds)
            continue
        if on_progress is not None:
            on_progress(progress)
        if until(progress) if until is not None else progress.finished:
            return progress
        if timeout is not None and time.monotonic() - started > timeout:
            raise InputError(
                f"batch {batch_id}: not finished after {timeout:g}s ({progress.stored} of "
                f"{total} samples); `synthgate status {batch_id}` (with the same {{db}}) shows "
                "where it stands",
                options=("db",),
            )
        time.sleep(poll_seconds)
