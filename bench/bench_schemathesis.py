"""Schemathesis against a served synthgate: no server errors, no response that breaks the OpenAPI
schema the service publishes.

It runs a small batch (procedural images and support-ticket texts, half of the accepted ones
audited) into a SQLite database, queues its review items with gold tasks, adds an admin, an
annotator and a requester, starts `synthgate serve` on 127.0.0.1 as its own process and runs
`st run <served>/openapi.json` once per token (admin, annotator), every phase (examples,
coverage, fuzzing, stateful), at least `--examples` (default 50) generated cases per operation,
with every check that judges the server against its schema or HTTP itself: not_a_server_error,
status_code_conformance, content_type_conformance, response_headers_conformance,
response_schema_conformance, negative_data_rejection, missing_required_header,
unsupported_method, allow_header_conformance, ignored_auth, use_after_free,
ensure_resource_availability. Left out: positive_data_acceptance (a schema-valid item id or
batch config that names nothing real is rightly refused) and object_level_authorization (it
needs a second identity per resource; tests/test_api_ownership.py covers it).

It prints, per token: operations, test cases (and the fewest any operation got: target >=
`--examples`), server errors and failures per check (target: 0 and 0), the wall and CPU seconds,
and exits 1 when a target is missed. Needs the `serve` extra
and schemathesis (`pip install schemathesis`).
Usage: python bench/bench_schemathesis.py [--examples 50] [--seed 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from _support import free_port

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
    "use_after_free",
    "ensure_resource_availability",
]

SEED = """
import json, sys
from pathlib import Path
import yaml
from synthgate.config import PACKAGE_ROOT
from synthgate.review.queue import ReviewQueue
from synthgate.runner import run
from synthgate.storage.store import Store, sqlite_url
from synthgate.storage.users import Users

folder = Path(sys.argv[1])
rubrics = {}
for name in ("detection", "ner"):
    data = yaml.safe_load((PACKAGE_ROOT / "configs" / "rubrics" / f"{name}.yaml").read_text())
    data["routing"]["audit_rate"] = 0.5
    rubrics[name] = folder / f"{name}.yaml"
    rubrics[name].write_text(yaml.safe_dump(data))
config = {
    "name": "st", "seed": 3, "categories": ["circle", "square"],
    "image": {"count": 16, "size": [96, 64], "rubric": str(rubrics["detection"])},
    "text": {"templates": "configs/templates/support_tickets.yaml", "count": 16,
             "rubric": str(rubrics["ner"])},
}
result = run(config, out=folder / "run")
store = Store(sqlite_url(folder / "run" / "synthgate.db"))
ReviewQueue(store, annotators_per_item=2, gold_rate=0.3).enqueue_batch(result.batch_id)
users = Users(store.engine)
print(json.dumps({role: users.add(role, role) for role in ("admin", "annotator", "requester")}))
store.close()
"""


def serve(folder: Path, db: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(folder / "serve.log", "wb")  # open for the server's whole life
    env = {**os.environ, "SYNTHGATE_MAX_SAMPLES": "20", "SYNTHGATE_BATCH_THREADS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "synthgate", "serve", "--db", db, "--port", str(port),
         "--runs-dir", str(folder / "runs"), "-k", "2", "--gold-rate", "0.3"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/openapi.json", timeout=2).read()
            return process, url
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"serve did not start; see {folder / 'serve.log'}") from None
            time.sleep(0.2)


def schemathesis(url: str, token: str, *, examples: int, seed: int, report: Path) -> dict:
    """One `st run`; its JUnit report read back as operations, cases and failures per check."""
    st = Path(sys.executable).with_name("st")
    command = [
        str(st), "run", f"{url}/openapi.json",
        "-H", f"Authorization: Bearer {token}",
        "--checks", ",".join(CHECKS),
        "--max-examples", str(examples),
        "--seed", str(seed),
        "--continue-on-failure",
        # one worker: hypothesis parses its lambdas' source with `ast`, and CPython 3.11.7 can
        # raise "AST constructor recursion depth mismatch" when two threads do that at once
        "--workers", "1",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "junit,ndjson",
        "--report-junit-path", str(report),
        "--report-ndjson-path", str(report.with_suffix(".ndjson")),
        "--no-color",
    ]  # fmt: skip
    started = time.monotonic()
    before = os.times()
    done = subprocess.run(command, capture_output=True, text=True)
    after = os.times()
    output = done.stdout + done.stderr
    tree = ElementTree.parse(report)
    failures: dict[str, int] = {}
    for case in tree.findall(".//testcase"):
        for failed in case.findall("failure") + case.findall("error"):
            text = (failed.get("message") or "") + (failed.text or "")
            kind = next((c for c in CHECKS if c in text or c.replace("_", " ") in text.lower()), "")
            failures[kind or "other"] = failures.get(kind or "other", 0) + 1
    per_operation = _cases_per_operation(report.with_suffix(".ndjson"))
    return {
        "exit": done.returncode,
        "operations": len(per_operation),
        "cases": sum(per_operation.values()),
        "fewest": min(per_operation.items(), key=lambda item: item[1], default=("-", 0)),
        "failures": failures,
        "wall": time.monotonic() - started,
        "cpu": (after.children_user + after.children_system)
        - (before.children_user + before.children_system),
        "output": output,
    }


def _cases_per_operation(events: Path) -> dict[str, int]:
    """Test cases schemathesis generated per operation (examples, coverage and fuzzing phases;
    the stateful phase chains operations), from its NDJSON event log."""
    counts: dict[str, int] = {}
    for line in events.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished or finished.get("phase") == "stateful":
            continue
        recorder = finished.get("recorder") or {}
        label = recorder.get("label", "?")
        counts[label] = counts.get(label, 0) + len(recorder.get("cases") or {})
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, default=None, help="keep the run folder here")
    args = parser.parse_args()
    if shutil.which("st", path=str(Path(sys.executable).parent)) is None:
        print("schemathesis is not installed: pip install schemathesis", file=sys.stderr)
        return 2
    folder = Path(tempfile.mkdtemp(prefix="bench-st-")) if args.keep is None else args.keep
    folder.mkdir(parents=True, exist_ok=True)
    seeded = subprocess.run(
        [sys.executable, "-c", SEED, str(folder)], capture_output=True, text=True, check=True
    )
    tokens = json.loads(seeded.stdout.strip().splitlines()[-1])
    db = f"sqlite:///{folder / 'run' / 'synthgate.db'}"
    process, url = serve(folder, db)
    missed = False
    try:
        for role in ("admin", "annotator"):
            found = schemathesis(
                url, tokens[role], examples=args.examples, seed=args.seed,
                report=folder / f"junit-{role}.xml",
            )  # fmt: skip
            errors = found["failures"].get("not_a_server_error", 0)
            other = sum(
                n for check, n in found["failures"].items() if check != "not_a_server_error"
            )
            fewest_label, fewest = found["fewest"]
            print(
                f"{role:9} token: {found['operations']} operations, {found['cases']} test cases "
                f"(fewest: {fewest} for {fewest_label}); server errors {errors}, "
                f"schema/conformance failures {other} {found['failures'] or ''}; "
                f"st exit {found['exit']}; wall {found['wall']:.0f}s, st CPU {found['cpu']:.0f}s"
            )
            if errors or other or found["exit"] != 0 or fewest < args.examples:
                missed = True
                tail = found["output"][-6000:]
                print(f"--- st output ({role}) ---\n{tail}")
    finally:
        process.terminate()
        process.wait(timeout=30)
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print("targets: 0 server errors, 0 schema/conformance failures:", "MISSED" if missed else "met")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
