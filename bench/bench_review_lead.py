"""The review claim of an annotator far ahead of the team, at growing leads, on SQLite and
PostgreSQL.

A queue of `--size` open items (built as bench_review_queue.py builds it: k = 2, gold rate 0.1)
is worked by one annotator alone, in process through the library (`next_item` then `decide`),
until they hold each lead in `--leads` (items they started that nobody else has taken yet, as
when one person works ahead of the team overnight). At each lead, `--cycles` more of their
next + decide cycles are timed: the process's CPU per cycle and, on PostgreSQL, the server's
(the postmaster and its children). The floor is the same cycle of an annotator who holds
nothing alone (a teammate taking the leader's started items), timed beside it at each lead.
Printed per lead: the leader's ms per cycle, the teammate's, and their ratio; and the leader's
growth from the first lead to the last (O(log n) claims: within 1.3x). Best of `--rounds`.

Usage: python bench/bench_review_lead.py [--size 40000] [--leads 1000,4000,16000]
       [--cycles 200] [--rounds 3] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _support import tree_cpu_seconds
from bench_review_queue import BATCH, DECISION, build

from synthgate.review.decision import Decision
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL cluster the tests use

LEADER, TEAMMATE = "leader", "teammate"


def server_cpu(cluster: Any | None) -> float:
    """CPU seconds of the PostgreSQL cluster's processes so far: the postmaster and its children
    (the sessions' backends among them); 0 without one."""
    if cluster is None:
        return 0.0
    postmaster = int((cluster.folder / "data" / "postmaster.pid").read_text().split()[0])
    return tree_cpu_seconds([postmaster])


def cycles(queue: ReviewQueue, who: str, count: int, cluster: Any | None) -> float:
    """ms of CPU (this process and the database server's) per next + decide of `who`."""
    decision = Decision.model_validate_json(DECISION)
    began, server = time.process_time(), server_cpu(cluster)
    done = 0
    for _ in range(count):
        task = queue.next_item(who)
        if task is None:
            raise SystemExit(f"the queue ran dry at {who}'s cycle {done}: use a larger --size")
        queue.decide(task.item_id, who, decision)
        done += 1
    spent = time.process_time() - began + server_cpu(cluster) - server
    return spent / done * 1000


def lead_of(store: Store, who: str) -> int:
    """Items `who` holds that nobody else has taken (sample items taken once, by them)."""
    from sqlalchemy import text

    with store.engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM review_items i JOIN review_assignments a "
                    "ON a.item_id = i.id WHERE i.kind = 'sample' AND i.taken = 1 "
                    "AND a.annotator = :who"
                ),
                {"who": who},
            ).scalar()
        )


def one_round(
    url: str, size: int, leads: list[int], count: int, cluster: Any | None
) -> list[tuple[int, float, float]]:
    """(lead, leader ms, teammate ms) per lead, on a queue of `size` items built at `url`."""
    build(url, size)
    store = Store(url)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.1)
    decision = Decision.model_validate_json(DECISION)
    rows = []
    for lead in leads:
        while (held := lead_of(store, LEADER)) < lead:
            for _ in range(min(500, lead - held)):
                task = queue.next_item(LEADER)
                assert task is not None, "the queue ran dry: use a larger --size"
                queue.decide(task.item_id, LEADER, decision)
        # the teammate takes the leader's started items; the leader's lead shrinks by as many,
        # and grows back by as many of theirs: measured in turn, half each way
        leader = cycles(queue, LEADER, count, cluster)
        teammate = cycles(queue, TEAMMATE, count, cluster)
        rows.append((lead_of(store, LEADER), leader, teammate))
    store.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=40_000)
    parser.add_argument("--leads", default="1000,4000,16000")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    leads = [int(n) for n in args.leads.split(",")]
    began = time.perf_counter()
    for database in args.databases.split(","):
        cluster = None
        if database == "postgresql":
            from postgres_support import PostgresCluster

            cluster = PostgresCluster()
            cluster.start()
        try:
            best: dict[int, tuple[int, float, float]] = {}
            for turn in range(args.rounds):
                if cluster is not None:
                    url = cluster.database(f"lead{turn}")
                else:
                    url = f"sqlite:///{tempfile.mkdtemp(prefix='lead-')}/queue.db"
                rows = one_round(url, args.size, leads, args.cycles, cluster)
                for index, row in enumerate(rows):
                    if index not in best or row[1] < best[index][1]:
                        best[index] = row
            for index in sorted(best):
                lead, leader, teammate = best[index]
                print(
                    f"{database:10s} lead {lead:6d}  leader {leader:6.2f} ms/cycle  "
                    f"teammate {teammate:6.2f} ms/cycle  ({leader / teammate:.2f}x)",
                    flush=True,
                )
            first, last = best[0][1], best[max(best)][1]
            print(
                f"{database:10s} leader's cycle at lead {best[max(best)][0]} / at "
                f"{best[0][0]}: {last / first:.2f}x (target <= 1.3x)",
                flush=True,
            )
        finally:
            if cluster is not None:
                cluster.stop()
    print(
        f"best of {args.rounds} rounds of {args.cycles} cycles, queue of {args.size} items "
        f"({BATCH}), CPU of this process and the database server; bench wall "
        f"{time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
