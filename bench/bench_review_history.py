"""The review claim as a queue's history grows, in process on SQLite: CPU per claim-and-decide
cycle (next_item + decide, best of `--rounds` on copies of the queue) after S earlier tasks,
for S = --history (default 1,000 and 10,000). The bench's samples, gold rate 0.1.

- "long": one annotator who already did S tasks (k = 1, so their items are final). The claim
  reads their open task and their count of tasks given (it seeds their gold draw) from an index
  and a kept count, not from their history: flat from S to 10S (target: within 1.3x; what grows
  is the walk past the gold tasks they have seen, about one in ten of their tasks).
- "other": k = 2, one annotator took S items ahead of the team; a second annotator takes them.
  The claim walks the claim index in its own order to the first started item that is not
  theirs: flat (target: within 1.3x).
The annotator who holds those S started items (whose claim walked past each of them until
session 24) is measured by bench_review_lead.py, on SQLite and PostgreSQL.
Usage: python bench/bench_review_history.py [--history 1000 10000] [--cycles 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from bench_review_queue import GOLD_RATE, build

from synthgate.review.decision import Decision
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store

ACCEPT = Decision(verdict="accept")


def cycles(path: Path, who: str, count: int) -> float:
    """CPU seconds per claim-and-decide cycle of `who`, over `count` cycles."""
    store = Store(f"sqlite:///{path}")
    try:
        queue = ReviewQueue(store, gold_rate=GOLD_RATE)
        began = time.process_time()
        for _ in range(count):
            task = queue.next_item(who)
            if task is None:
                raise SystemExit(f"{who}: the queue ran dry; use fewer --cycles")
            queue.decide(task.item_id, who, ACCEPT)
        return (time.process_time() - began) / count
    finally:
        store.close()


def best(built: Path, who: str, count: int, rounds: int) -> float:
    """The least CPU a cycle over `rounds` copies of the queue at `built`."""
    least = float("inf")
    for round_index in range(rounds):
        copy = built.with_name(f"{built.stem}-{who}-{round_index}.db")
        shutil.copy(built, copy)
        least = min(least, cycles(copy, who, count))
        copy.unlink()
    return least


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--history", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-review-history-"))
    per_cycle: dict[tuple[str, int], float] = {}
    try:
        for history in args.history:
            long = folder / f"long-{history}.db"
            build(f"sqlite:///{long}", history + 2 * args.cycles, k=1)
            cycles(long, "long", history)  # their S tasks, done
            team = folder / f"team-{history}.db"
            build(f"sqlite:///{team}", 2 * history, k=2)
            cycles(team, "ahead", history)  # S items started, all theirs
            for who, built in (("long", long), ("other", team)):
                per_cycle[(who, history)] = best(built, who, args.cycles, args.rounds)
                print(
                    f"{history:>7} earlier tasks  {who:<6} "
                    f"{per_cycle[(who, history)] * 1000:6.2f} ms CPU a cycle",
                    flush=True,
                )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    small, large = min(args.history), max(args.history)
    for who, target in (("long", " (target <= 1.3x)"), ("other", " (target <= 1.3x)")):
        growth = per_cycle[(who, large)] / per_cycle[(who, small)]
        print(f"{who:<6} CPU a cycle at {large} / at {small}: {growth:.2f}x{target}")


if __name__ == "__main__":
    main()
