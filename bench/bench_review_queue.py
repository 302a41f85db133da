"""The review queue under a team: 4 annotators over HTTP against `synthgate serve`, at 1k, 10k
and 100k open items, on SQLite and PostgreSQL, beside a minimal floor app.

Each size is built once through the library (samples upserted, `ReviewQueue.enqueue_batch`:
review items plus honeypots at gold rate 0.1, k = 2), then copied for every round so that each
round starts from the same queue. A round starts a server (`python -m synthgate serve --db URL`,
uvicorn on 127.0.0.1, as a user would), and 4 client threads, each with its own Bearer token
and keep-alive connection, loop `GET /api/review/next` -> `POST /api/review/{item}/decision`
`--decisions` times each after a warm-up (the queue loses at most 4 x (warm-up + decisions)
/ k of its open items during a round). Printed per size and database: `next` p50/p95 (ms),
decisions/s, and the server's CPU ms per decision (psutil; a busy neighbour on a shared machine
moves wall time more than CPU time); best of `--rounds`. Every size is built first and the rounds
go over all sizes in turn, so a machine that slows down mid-bench slows every size alike; the
floor's own `next` growth is printed beside synthgate's as the check.

The floor is an app written here with FastAPI + sqlite3 doing the same two calls with the same
Bearer check (SHA-256 of the token looked up in a users table): a claim with a kept `taken` count
and an index (started items first, then fresh ones; a seeded gold draw per claim and the first
unseen gold item from a seeded point), the task's stored sample JSON returned blind (with json:
the rubric's report, the id, uri, spec and provenance dropped, the criteria to grade listed,
as an annotator must receive it), and a decision checked against the item's criteria and recorded
with the item's result made final (majority of k) in one transaction. It runs under uvicorn
with the same defaults. Targets: `next` p50 at 100k within 1.3x of 1k;
decisions/s >= 0.6x the floor's.

PostgreSQL: a throwaway cluster from the server binaries (tests/postgres_support.py, the one the
tests use; Unix socket only), each round on a copy (CREATE DATABASE ... TEMPLATE).
Usage: python bench/bench_review_queue.py [--sizes 1000,10000,100000] [--decisions 150]
       [--rounds 3] [--databases sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing, suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from _support import free_port, same_threads

from synthgate.review.queue import ReviewQueue
from synthgate.samples import (
    CRITERIA,
    Finding,
    ObjectLabel,
    Provenance,
    RubricReport,
    Sample,
    SampleSpec,
    sample_id,
)
from synthgate.storage.store import Store
from synthgate.storage.users import Users

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the throwaway PostgreSQL cluster the tests use

ANNOTATORS = 4
K = 2
GOLD_RATE = 0.1
BATCH = "bench-queue"
WARMUP = 15  # decisions per annotator before timing: the server's first requests import code
DECISION = json.dumps({"verdict": "accept", "levels": {"precision": 5}}).encode()

FLOOR_APP = r'''
"""The floor: the two review calls with FastAPI + sqlite3 and nothing else."""
import hashlib
import json
import random
import sqlite3
import sys
import threading
import time
from collections import Counter
from typing import Literal

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

DB, PORT, GOLD_RATE = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
CRITERIA = ["correctness", "completeness", "precision", "clarity"]
local = threading.local()
bearer = HTTPBearer(auto_error=False)
app = FastAPI()
STARTED = (
    "SELECT i.id FROM items i LEFT JOIN assignments a ON a.item_id = i.id AND a.annotator = ? "
    "WHERE i.kind = 'sample' AND i.status = 'open' AND i.taken > 0 AND i.taken < i.k "
    "AND a.id IS NULL ORDER BY i.taken DESC, i.priority, i.id LIMIT 1"
)
FRESH = (
    "SELECT id FROM items WHERE kind = 'sample' AND status = 'open' AND taken = 0 "
    "ORDER BY priority, id LIMIT 1"
)
GOLD = (
    "SELECT i.id FROM items i LEFT JOIN assignments a ON a.item_id = i.id AND a.annotator = ? "
    "WHERE i.kind = 'gold' AND i.status = 'open' AND i.priority {} ? AND a.id IS NULL "
    "ORDER BY i.priority, i.id LIMIT 1"
)


def db():
    connection = getattr(local, "connection", None)
    if connection is None:
        # the file is in WAL mode already (floor_database): no connection switches it
        connection = sqlite3.connect(DB, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA synchronous=NORMAL")
        local.connection = connection
    return connection


def annotator(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    if credentials is None:
        raise HTTPException(401, "missing token")
    digest = hashlib.sha256(credentials.credentials.encode()).hexdigest()
    row = db().execute("SELECT name, role FROM users WHERE token_hash = ?", (digest,)).fetchone()
    if row is None:
        raise HTTPException(401, "invalid token")
    if row[1] not in ("annotator", "admin"):
        raise HTTPException(403, "not an annotator")
    return row[0]


def sample_of(c, item_id):
    data = c.execute(
        "SELECT s.data FROM items i JOIN samples s ON s.id = i.sample_id WHERE i.id = ?",
        (item_id,),
    ).fetchone()[0]
    return json.loads(data)


def criteria_of(sample):
    """The criteria an annotator grades: the report's, else the standard four."""
    return list((sample.get("report") or {}).get("levels") or CRITERIA)


class Decision(BaseModel):
    verdict: Literal["accept", "reject", "fix"]
    levels: dict[str, Literal[5, 3, 1]] = {}
    comment: str = ""


def claim(c, name):
    row = c.execute(STARTED, (name,)).fetchone() or c.execute(FRESH).fetchone()
    if row is None:
        return None
    position = c.execute("SELECT count(*) FROM assignments WHERE annotator = ?", (name,)).fetchone()[0]
    draw = random.Random(f"{name}/{position}")
    if draw.random() < GOLD_RATE:
        start = draw.random()
        golden = c.execute(GOLD.format(">="), (name, start)).fetchone() or c.execute(
            GOLD.format("<"), (name, start)
        ).fetchone()
        if golden is not None:
            return golden[0]
    return row[0]


@app.get("/api/review/next")
def next_item(name: str = Depends(annotator)):
    c = db()
    c.execute("BEGIN IMMEDIATE")
    try:
        row = c.execute(
            "SELECT item_id FROM assignments WHERE annotator = ? AND decided_at IS NULL LIMIT 1",
            (name,),
        ).fetchone()
        item_id = row[0] if row else claim(c, name)
        if item_id is None:
            c.execute("COMMIT")
            return Response(status_code=204)
        if row is None:
            c.execute(
                "INSERT INTO assignments (item_id, annotator, assigned_at) VALUES (?, ?, ?)",
                (item_id, name, time.time()),
            )
            c.execute("UPDATE items SET taken = taken + 1 WHERE id = ?", (item_id,))
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    sample = sample_of(c, item_id)
    criteria = criteria_of(sample)
    # blind, as review/gold.py `blind`: no verdict, nothing that tells where it came from
    modality = sample["spec"]["modality"]
    objects = [{**o, "attributes": {"ref": i}} for i, o in enumerate(sample["objects"])]
    sample.update(id="", uri=None, attributes={}, objects=objects, report=None, status="review")
    sample["spec"] = {"batch_id": "", "index": 0, "modality": modality, "generator": "", "seed": 0}
    sample["provenance"] = {"generator": "", "generator_version": "", "seed": 0}
    task = {"item_id": item_id, "criteria": criteria, "sample": sample}
    return Response(json.dumps(task), media_type="application/json")


@app.post("/api/review/{item_id}/decision")
def decide(item_id: int, decision: Decision, name: str = Depends(annotator)):
    c = db()
    c.execute("BEGIN IMMEDIATE")
    try:
        mine = c.execute(
            "SELECT id, decided_at FROM assignments WHERE item_id = ? AND annotator = ?",
            (item_id, name),
        ).fetchone()
        if mine is None or mine[1] is not None:
            raise HTTPException(400, "not your open item")
        if not set(decision.levels) <= set(criteria_of(sample_of(c, item_id))):
            raise HTTPException(400, "levels for criteria the item does not have")
        now = time.time()
        c.execute(
            "INSERT INTO decisions (item_id, annotator, verdict, levels, comment, decided_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (item_id, name, decision.verdict, str(decision.levels), decision.comment, now),
        )
        c.execute("UPDATE assignments SET decided_at = ? WHERE id = ?", (now, mine[0]))
        kind, k, sample = c.execute(
            "SELECT kind, k, sample_id FROM items WHERE id = ?", (item_id,)
        ).fetchone()
        verdicts = [v for (v,) in c.execute("SELECT verdict FROM decisions WHERE item_id = ?", (item_id,))]
        if kind == "sample" and len(verdicts) >= k:
            verdict, votes = Counter(verdicts).most_common(1)[0]
            if votes * 2 > len(verdicts):
                c.execute(
                    "UPDATE items SET status = 'final', final_verdict = ? WHERE id = ?",
                    (verdict, item_id),
                )
                status = "rejected" if verdict == "reject" else "accepted"
                c.execute("UPDATE samples SET status = ? WHERE id = ?", (status, sample))
            else:
                c.execute("UPDATE items SET status = 'adjudication' WHERE id = ?", (item_id,))
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return {"item_id": item_id, "saved": True}


uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="info")
'''

FLOOR_SCHEMA = """
CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash TEXT UNIQUE NOT NULL);
CREATE TABLE samples (id TEXT PRIMARY KEY, status TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE items (id INTEGER PRIMARY KEY, sample_id TEXT NOT NULL, kind TEXT NOT NULL,
  status TEXT NOT NULL, k INTEGER NOT NULL, taken INTEGER NOT NULL DEFAULT 0,
  priority REAL NOT NULL DEFAULT 0, final_verdict TEXT);
CREATE INDEX items_claim ON items (kind, status, taken DESC, priority, id, k);
CREATE INDEX items_gold ON items (kind, status, priority, id);
CREATE TABLE assignments (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL,
  annotator TEXT NOT NULL, assigned_at REAL NOT NULL, decided_at REAL,
  UNIQUE (item_id, annotator));
CREATE INDEX assignments_open ON assignments (annotator, decided_at);
CREATE TABLE decisions (id INTEGER PRIMARY KEY, item_id INTEGER NOT NULL, annotator TEXT NOT NULL,
  verdict TEXT NOT NULL, levels TEXT NOT NULL, comment TEXT NOT NULL, decided_at REAL NOT NULL);
CREATE INDEX decisions_item ON decisions (item_id);
"""


def review_sample(index: int, status: str) -> Sample:
    """An image sample as the rubric leaves it: three boxes, a finding, its measurements."""
    spec = SampleSpec(
        batch_id=BATCH,
        index=index,
        modality="image",
        generator="procedural",
        category="circle",
        seed=index,
    )
    review = status == "review"
    return Sample(
        id=sample_id(BATCH, "image", index),
        spec=spec,
        uri=f"images/{index:06d}.png",
        width=256,
        height=256,
        objects=[
            ObjectLabel(category=name, bbox=[10.0 + 40 * i, 20.0, 30.0, 28.0], area=700.0)
            for i, name in enumerate(["circle", "square", "star"])
        ],
        provenance=Provenance(
            generator="procedural", generator_version="1", seed=index, params={"size": 256}
        ),
        report=RubricReport(
            rubric="detection",
            score=3.8 if review else 5.0,
            levels={c: (1 if review and c == "precision" else 5) for c in CRITERIA},
            route="review" if review else "accepted",
            findings=[
                Finding(
                    criterion="precision",
                    level=1,
                    check="precision_box_tightness",
                    measure="box_tightness_px",
                    message="box 6.0 px loose (needs re-annotation: > 5 px)",
                    object_index=1,
                )
            ]
            if review
            else [],
            measurements={"box_tightness_px": 6.0 if review else 0.5, "min_side_px": 28.0},
        ),
        status=status,
    )


def build(url: str, size: int, k: int = K) -> float:
    """The queue of `size` open items (plus honeypots; `k` annotators an item) in the database
    at `url`; seconds."""
    began = time.perf_counter()
    store = Store(url)
    accepted = max(10, size // 10)
    for start in range(0, size + accepted, 5000):
        stop = min(size + accepted, start + 5000)
        store.upsert_samples(
            review_sample(i, "review" if i < size else "accepted") for i in range(start, stop)
        )
    store.put_batch(BATCH, name=BATCH, seed=0, config={})
    ReviewQueue(store, annotators_per_item=k, gold_rate=GOLD_RATE).enqueue_batch(BATCH)
    store.close()
    return time.perf_counter() - began


def floor_database(source: Path, target: Path) -> None:
    """The floor's tables, filled with the same samples and items as the synthgate database."""
    target.unlink(missing_ok=True)
    with closing(sqlite3.connect(target)) as connection:
        connection.executescript(FLOOR_SCHEMA)
        connection.execute("ATTACH DATABASE ? AS sg", (str(source),))
        connection.execute(
            "INSERT INTO samples (id, status, data) SELECT id, status, data FROM sg.samples"
        )
        connection.execute(
            "INSERT INTO items (id, sample_id, kind, status, k, taken, priority) "
            "SELECT id, sample_id, kind, status, k, taken, priority FROM sg.review_items"
        )
        connection.commit()
        connection.execute("DETACH DATABASE sg")
        # WAL from the start (it stays with the file and its copies): the app's threads, opening
        # their connections at once, would each switch it, and a switch is refused while
        # another connection holds the file ("database is locked", no busy wait)
        connection.execute("PRAGMA journal_mode=WAL")


def fresh_copy(source: Path, target: Path) -> Path:
    """A copy of a closed SQLite database (no -wal left), replacing the last round's."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    if Path(f"{source}-wal").exists():
        sys.exit(f"{source} is still open (its -wal file exists): close it before copying")
    shutil.copy(source, target)
    return target


def wait_until_serving(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode} before serving")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit("the server did not start within 60 s")


@dataclass
class Round:
    next_ms: list[float] = field(default_factory=list)
    decisions: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    error: str | None = None  # what stopped a client early

    @property
    def rate(self) -> float:
        return self.decisions / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        ordered = sorted(self.next_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def work(port: int, token: str, decisions: int, ready: threading.Barrier, out: Round) -> None:
    """One annotator: WARMUP decisions, then (all together) `decisions` timed ones."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(WARMUP):
            annotate(connection, token)
        ready.wait(timeout=120)
        began = time.perf_counter()
        for _ in range(decisions):
            out.next_ms.append(annotate(connection, token) * 1000)
            out.decisions += 1
        out.seconds = time.perf_counter() - began
    except Exception as error:  # reported by the main thread
        out.error = f"{type(error).__name__}: {error}"
        ready.abort()


class Stop(Exception):
    """The server answered something a working queue never answers."""


def annotate(connection: http.client.HTTPConnection, token: str) -> float:
    """One task: GET next, POST an accept; returns how long `next` took (s)."""
    headers = {"Authorization": f"Bearer {token}"}
    began = time.perf_counter()
    connection.request("GET", "/api/review/next", headers=headers)
    answer = connection.getresponse()
    payload = answer.read()
    took = time.perf_counter() - began
    if answer.status == 204:
        raise Stop("the queue ran dry: use a larger size or fewer --decisions")
    if answer.status != 200:
        raise Stop(f"GET next answered {answer.status}: {payload[:300]!r}")
    item_id = json.loads(payload)["item_id"]
    connection.request(
        "POST",
        f"/api/review/{item_id}/decision",
        body=DECISION,
        headers={**headers, "Content-Type": "application/json"},
    )
    answer = connection.getresponse()
    payload = answer.read()
    if answer.status != 200:
        raise Stop(f"POST decision answered {answer.status}: {payload[:300]!r}")
    return took


def one_round(
    system: str, command: list[str], port: int, tokens: list[str], decisions: int
) -> Round:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=same_threads()
    )
    try:
        wait_until_serving(process, port)
        server = psutil.Process(process.pid)
        outs = [Round() for _ in tokens]
        # the main thread passes the barrier too: it reads the server's CPU time there
        ready = threading.Barrier(len(tokens) + 1)
        threads = [
            threading.Thread(target=work, args=(port, token, decisions, ready, out))
            for token, out in zip(tokens, outs, strict=True)
        ]
        for thread in threads:
            thread.start()
        with suppress(threading.BrokenBarrierError):  # a client failed: reported below
            ready.wait(timeout=120)
        cpu_began = sum(server.cpu_times()[:2])
        for thread in threads:
            thread.join()
        cpu_s = sum(server.cpu_times()[:2]) - cpu_began
        errors = [out.error for out in outs if out.error]
        if errors:
            process.terminate()
            _, stderr = process.communicate(timeout=20)
            sys.exit(f"{system}: {errors[0]}\n{stderr.decode(errors='replace')[-2000:]}")
        result = Round(
            next_ms=[ms for out in outs for ms in out.next_ms],
            decisions=sum(out.decisions for out in outs),
            seconds=max(out.seconds for out in outs),
            server_cpu_s=cpu_s,
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
    return result


def add_users(url: str) -> list[str]:
    store = Store(url)
    users = Users(store.engine)
    tokens = [users.add(f"annotator{i}", "annotator") for i in range(ANNOTATORS)]
    store.close()
    return tokens


def floor_users(path: Path, tokens: list[str]) -> None:
    import hashlib

    with closing(sqlite3.connect(path)) as connection:
        connection.executemany(
            "INSERT INTO users VALUES (?, 'annotator', ?)",
            [
                (f"annotator{i}", hashlib.sha256(t.encode()).hexdigest())
                for i, t in enumerate(tokens)
            ],
        )
        connection.commit()


@dataclass
class Best:
    rounds: list[Round] = field(default_factory=list)

    def line(self) -> str:
        p50 = min(r.p(0.5) for r in self.rounds)
        p95 = min(r.p(0.95) for r in self.rounds)
        rate = max(r.rate for r in self.rounds)
        cpu = min(r.server_cpu_s / r.decisions * 1000 for r in self.rounds if r.decisions)
        return f"next p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  {rate:6.1f} decisions/s  {cpu:5.2f} CPU ms/decision"

    @property
    def p50(self) -> float:
        return min(r.p(0.5) for r in self.rounds)

    @property
    def rate(self) -> float:
        return max(r.rate for r in self.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument(
        "--decisions", type=int, default=150, help="timed decisions per annotator and round"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    databases = args.databases.split(",")
    folder = Path(tempfile.mkdtemp(prefix="bench-review-queue-"))
    cluster = None
    if "postgresql" in databases:
        from postgres_support import PostgresCluster

        cluster = PostgresCluster()
        cluster.start()
    bench_began = time.perf_counter()
    results: dict[tuple[str, int], Best] = {}
    try:
        queues = []  # every size built first: its rounds are interleaved with the others'
        for size in sizes:
            built = folder / f"queue-{size}.db"
            seconds = build(f"sqlite:///{built}", size)
            tokens = add_users(f"sqlite:///{built}")
            print(f"{size:>7} open items: SQLite queue built in {seconds:.1f} s", flush=True)
            floor_built = folder / f"floor-{size}.db"
            floor_database(built, floor_built)
            floor_users(floor_built, tokens)
            template, pg_tokens = None, []
            if cluster is not None:
                template = f"queue{size}"
                url = cluster.database(template)
                seconds = build(url, size)
                pg_tokens = add_users(url)
                print(
                    f"{size:>7} open items: PostgreSQL queue built in {seconds:.1f} s", flush=True
                )
            queues.append((size, built, floor_built, tokens, template, pg_tokens))
        # Round by round over every size: a machine that slows down (a busy neighbour) slows
        # every size alike, not the sizes measured last.
        for round_index in range(args.rounds):
            for size, built, floor_built, tokens, template, pg_tokens in queues:
                systems: list[tuple[str, list[str], int, list[str]]] = []
                copy = fresh_copy(floor_built, folder / f"round-floor-{size}.db")
                port = free_port()
                floor = [sys.executable, "-c", FLOOR_APP, str(copy), str(port), str(GOLD_RATE)]
                systems.append(("floor", floor, port, tokens))
                if "sqlite" in databases:
                    copy = fresh_copy(built, folder / f"round-{size}.db")
                    port = free_port()
                    systems.append(
                        ("sqlite", serve_command(f"sqlite:///{copy}", port), port, tokens)
                    )
                if cluster is not None and template is not None:
                    name = f"round{size}_{round_index}"
                    clone(cluster, template, name)
                    port = free_port()
                    command = serve_command(cluster.url(name), port)
                    systems.append(("postgresql", command, port, pg_tokens))
                for system, command, port, who in systems:
                    outcome = one_round(system, command, port, who, args.decisions)
                    results.setdefault((system, size), Best()).rounds.append(outcome)
        for size in sizes:
            for system in ("floor", *[d for d in ("sqlite", "postgresql") if d in databases]):
                print(f"{size:>7} {system:<11} {results[(system, size)].line()}", flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(
        f"\nbest of {args.rounds} rounds of {args.decisions} timed decisions per annotator "
        f"(after {WARMUP}), {ANNOTATORS} annotators, k={K}, "
        f"gold rate {GOLD_RATE}; bench wall {time.perf_counter() - bench_began:.0f} s"
    )
    small, large = min(sizes), max(sizes)
    floor_growth = results[("floor", large)].p50 / results[("floor", small)].p50
    for system in [d for d in ("sqlite", "postgresql") if d in databases]:
        growth = results[(system, large)].p50 / results[(system, small)].p50
        print(
            f"{system:<11} next p50 at {large} / at {small}: {growth:.2f}x (target <= 1.3x; "
            f"the floor's {floor_growth:.2f}x)"
        )
        for size in sizes:
            share = results[(system, size)].rate / results[("floor", size)].rate
            print(f"{system:<11} decisions/s at {size}: {share:.2f}x the floor's (target >= 0.6x)")


def serve_command(url: str, port: int) -> list[str]:
    return [
        sys.executable, "-m", "synthgate", "serve", "--db", url, "--host", "127.0.0.1",
        "--annotators-per-item", str(K), "--gold-rate", str(GOLD_RATE), "--port", str(port),
    ]  # fmt: skip


def clone(cluster: object, template: str, name: str) -> None:
    import psycopg

    dsn = f"host={cluster.sockets} port={cluster.port} user=postgres dbname=postgres"  # type: ignore[attr-defined]
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


if __name__ == "__main__":
    main()
