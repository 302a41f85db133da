"""The review claim of an annotator far ahead of the team, at growing leads, on SQLite and
PostgreSQL.

A queue of `--size` open items (built as bench_review_queue.py builds it: k = 2, gold rate 0.1)
has a team of `--team` annotators who each did a task (so that a claim far ahead seeks each of
them). One annotator then works alone, in process through the library (`next_item` then
`decide`), until they hold each lead in `--leads` (items they started that nobody else has
taken yet, as when one person works ahead of the team overnight). At each lead, `--cycles` more
of their next + decide cycles are timed: the CPU of this process and of the PostgreSQL server
(the postmaster and its children).

The floor is the same annotator's same cycle (a fresh item claimed, a first verdict recorded)
with no lead: timed first, while a teammate (not timed) takes each item they start. Printed per
lead: the leader's ms per cycle and its ratio to the floor, and the growth from the first lead
to the last (O(log n) claims: within 1.3x). Best of `--rounds`.

Usage: python bench/bench_review_lead.py [--size 40000] [--leads 1000,4000,16000]
       [--team 20] [--cycles 200] [--rounds 3] [--databases sqlite,postgresql]
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
from sqlalchemy import text

from synthgate.review.decision import Decision
from synthgate.review.queue import ReviewQueue
from synthgate.storage.store import Store

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL cluster the tests use

LEADER, TEAMMATE = "leader", "teammate"  # the floor's teammate takes what the leader starts
ACCEPT = Decision.model_validate_json(DECISION)


def server_cpu(cluster: Any | None) -> float:
    """CPU seconds of the PostgreSQL cluster's processes so far: the postmaster and its children
    (the sessions' backends among them); 0 without one."""
    if cluster is None:
        return 0.0
    postmaster = int((cluster.folder / "data" / "postmaster.pid").read_text().split()[0])
    return tree_cpu_seconds([postmaster])


def cycles(
    queue: ReviewQueue, who: str, count: int, cluster: Any | None, after: str | None = None
) -> float:
    """ms of CPU (this process and the database server's) per next + decide of `who`; with
    `after`, that annotator's cycle follows each one, not timed."""
    spent = 0.0
    for done in range(count):
        server = server_cpu(cluster)  # read outside the process's timed span
        began = time.process_time()
        task = queue.next_item(who)
        if task is None:
            raise SystemExit(f"the queue ran dry at {who}'s cycle {done}: use a larger --size")
        queue.decide(task.item_id, who, ACCEPT)
        spent += time.process_time() - began
        spent += server_cpu(cluster) - server
        if after is not None:
            cycles(queue, after, 1, None)
    return spent / count * 1000


def settle(store: Store) -> None:
    """PostgreSQL: vacuum and analyze now, so that autovacuum's work on the rows just written
    (counted with the server's CPU) does not fall into the timed cycles."""
    if store.engine.dialect.name != "postgresql":
        return
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")


def lead_of(store: Store, who: str) -> int:
    """Items `who` holds that nobody else has taken (sample items taken once, by them)."""
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
    url: str, size: int, team: int, leads: list[int], count: int, cluster: Any | None
) -> tuple[float, list[tuple[int, float]]]:
    """The floor's ms, and (lead, leader ms) per lead, on a queue of `size` items at `url`."""
    build(url, size)
    store = Store(url)
    queue = ReviewQueue(store, annotators_per_item=2, gold_rate=0.1)
    for member in range(team):
        cycles(queue, f"member-{member}", 1, None)
    settle(store)
    floor = cycles(queue, LEADER, count, cluster, after=TEAMMATE)
    rows = []
    for lead in leads:
        while (held := lead_of(store, LEADER)) < lead:
            cycles(queue, LEADER, min(500, lead - held), None)
        settle(store)
        rows.append((lead_of(store, LEADER), cycles(queue, LEADER, count, cluster)))
    store.close()
    return floor, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=40_000)
    parser.add_argument("--leads", default="1000,4000,16000")
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--team", type=int, default=20)
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
            best: dict[int, tuple[int, float]] = {}
            floor = float("inf")
            for turn in range(args.rounds):
                if cluster is not None:
                    url = cluster.database(f"lead{turn}")
                else:
                    url = f"sqlite:///{tempfile.mkdtemp(prefix='lead-')}/queue.db"
                least, rows = one_round(url, args.size, args.team, leads, args.cycles, cluster)
                floor = min(floor, least)
                for index, row in enumerate(rows):
                    if index not in best or row[1] < best[index][1]:
                        best[index] = row
            print(f"{database:10s} no lead (floor) {floor:6.2f} ms/cycle", flush=True)
            for index in sorted(best):
                lead, leader = best[index]
                print(
                    f"{database:10s} lead {lead:6d}  {leader:6.2f} ms/cycle  "
                    f"({leader / floor:.2f}x the floor)",
                    flush=True,
                )
            first, last = best[0][1], best[max(best)][1]
            print(
                f"{database:10s} cycle at lead {best[max(best)][0]} / at "
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
