"""The review claim when many items are started and wait for their next annotator: one annotator
far ahead of the team (k = 2; they took S items that nobody else has yet), in process on SQLite.

For S = --started (default 1,000 and 10,000) it builds a queue of 2S open items (the bench's
samples, gold rate 0.1; bench_review_queue.build), lets annotator "ahead" take and accept S of
them, then times `--cycles` claim-and-decide cycles (next_item + decide, CPU per cycle, best of
`--rounds` on copies of the queue) for:
- "other": a second annotator, who takes the started items. The claim walks the claim index in
  its own order to the first started item that is not theirs, so its cost stays flat from S to
  10S (target: within 1.3x);
- "ahead": the annotator who holds every started item. Their claim passes each of them (one
  index probe each) before it takes a fresh item, so its cost grows with S; printed so that
  growth is seen, not hidden.
Usage: python bench/bench_review_started.py [--started 1000 10000] [--cycles 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench_review_queue import build

from synthgate.review.decision import Decision
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store

ACCEPT = Decision(verdict="accept")


def cycles(url: str, who: str, count: int) -> float:
    """CPU seconds per claim-and-decide cycle of `who`, over `count` cycles."""
    store = Store(url)
    try:
        queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.1)
        began = time.process_time()
        for _ in range(count):
            task = queue.next_item(who)
            if task is None:
                raise SystemExit(f"{who}: the queue ran dry; use fewer --cycles")
            queue.decide(task.item_id, who, ACCEPT)
        return (time.process_time() - began) / count
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--started", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-review-started-"))
    per_cycle: dict[tuple[str, int], float] = {}
    try:
        for started in args.started:
            built = folder / f"queue-{started}.db"
            build(f"sqlite:///{built}", 2 * started)
            cycles(f"sqlite:///{built}", "ahead", started)  # S items started, all theirs
            for who in ("other", "ahead"):
                best = float("inf")
                for round_index in range(args.rounds):
                    copy = folder / f"round-{started}-{who}-{round_index}.db"
                    shutil.copy(built, copy)
                    best = min(best, cycles(f"sqlite:///{copy}", who, args.cycles))
                per_cycle[(who, started)] = best
                print(
                    f"{started:>7} started  {who:<6} {best * 1000:6.2f} ms CPU a cycle", flush=True
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    small, large = min(args.started), max(args.started)
    for who, target in (("other", " (target <= 1.3x)"), ("ahead", "")):
        growth = per_cycle[(who, large)] / per_cycle[(who, small)]
        print(f"{who:<6} CPU a cycle at {large} / at {small} started: {growth:.2f}x{target}")


if __name__ == "__main__":
    main()
