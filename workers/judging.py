"""The second half of a `gpu` chunk: judge its pending samples on the `cpu` queue.

`judge_chunk` counts the delivery like `run_chunk` does, rebuilds each pending sample's
`GeneratedSample` from the blob store and runs `pipeline.judge` on it, then upserts the judged
samples by id. Judging twice gives the same rows; a chunk whose judging lost its worker
`max_crashes` times has its pending samples marked failed with the reason.
"""

from __future__ import annotations

from synthgate.pipeline import judge
from synthgate.workers.chunks import Outcome, WorkerContext, chunk_samples
from synthgate.workers.evidence import load_generated


def judge_chunk(context: WorkerContext, chunk_id: str) -> Outcome:
    chunk = context.store.begin_chunk(chunk_id)
    if chunk is None:
        return Outcome(f"unknown chunk {chunk_id}")
    if chunk.status in ("done", "failed"):
        return Outcome(f"{chunk_id} already {chunk.status}")
    stored = chunk_samples(context, chunk)
    pending = [s for s in stored if s.status == "pending"]
    if chunk.crashes >= context.settings.max_crashes:
        reason = (
            f"judging it lost its worker {chunk.crashes} times; "
            f"gave up after {context.settings.max_crashes}"
        )
        context.store.upsert_samples(
            [s.model_copy(update={"status": "failed"}) for s in pending], reason=reason
        )
        context.store.update_chunk(chunk_id, status="failed", current=None, reason=reason)
        return Outcome(f"{chunk_id} failed: {reason}")
    judged = [judge(load_generated(context.blobs, s)).sample for s in pending]
    context.store.upsert_samples(judged)
    failed = any(s.status == "failed" for s in stored)
    context.store.update_chunk(chunk_id, status="failed" if failed else "done", current=None)
    return Outcome(f"{chunk_id} judged")
