"""`synthgate validate` at dataset scale: CPU and memory against the honest floor, per N.

Builds COCO files by replicating a small real dataset (default ../shared/data/coco-tiny-val2017:
80 images, 815 annotations) with new image and annotation ids, at N = 10k, 100k and 1M
annotations, written like COCO's own files (images, annotations, categories), into a temporary
folder. Each measurement is a fresh process timed by the kernel (`os.wait4`: wall, CPU = user +
system, peak RSS); rounds are interleaved and the best of `--rounds` (by CPU) is kept. Per N:

- floor: pycocotools loads the file (`COCO(path)`) and, per annotation, `annToRLE` + `area` +
  `toBbox`: the work a label check needs (no mask is decoded);
- `synthgate validate FILE` (the full detection rubric, summary printed) and
  `synthgate validate FILE --json OUT` (every sample's row streamed to a file);
  CPU ratio validate / floor (target <= 1.3), CPU per annotation (target: flat within 1.2x
  from the smallest N to the largest), peak RSS (target at 1M: <= 1.5 GiB).

First a tiny `validate` of the source file against a bare `python -c "COCO(path)"` process
(target <= 2x): a process's fixed cost, also taken off the CPU per annotation of each N. At the
smallest N, `validate --images` against its floor (the same load + RLE work, plus decoding every
image to RGB; target <= 1.5x).
Usage: python bench/bench_scale.py [DATA] [--sizes 10000 100000 1000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from _support import Measured, best_of, shared_data

FLOOR = """
import contextlib, io, sys
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO(sys.argv[1])
for annotation in coco.dataset["annotations"]:
    rle = coco.annToRLE(annotation)
    mask_utils.area(rle)
    mask_utils.toBbox(rle)
"""

FLOOR_IMAGES = (
    FLOOR
    + """
import numpy as np
from PIL import Image
from pathlib import Path
folder = Path(sys.argv[2])
for image in coco.dataset["images"]:
    with Image.open(folder / image["file_name"]) as opened:
        np.asarray(opened.convert("RGB"))
"""
)

BARE = "import sys; from pycocotools.coco import COCO; COCO(sys.argv[1])"


def replicate(source: dict, annotations: int, out: Path) -> int:
    """Write a COCO file of `annotations` annotations: copies of `source` with new ids, in
    COCO's own key order, entry by entry (the 1M file is never held in memory). Returns the
    number of images written."""
    per_copy = len(source["annotations"])
    copies = -(-annotations // per_copy)
    written_images = 0
    with open(out, "w", encoding="utf-8") as handle:
        handle.write('{"images": [')
        first = True
        for copy in range(copies):
            for position, image in enumerate(source["images"]):
                entry = {**image, "id": copy * len(source["images"]) + position + 1}
                handle.write(("" if first else ", ") + json.dumps(entry))
                first = False
                written_images += 1
        handle.write('], "annotations": [')
        image_position = {image["id"]: n for n, image in enumerate(source["images"])}
        next_id = 1
        for copy in range(copies):
            for annotation in source["annotations"]:
                if next_id > annotations:
                    break
                image_id = copy * len(source["images"]) + image_position[annotation["image_id"]] + 1
                entry = {**annotation, "id": next_id, "image_id": image_id}
                handle.write((", " if next_id > 1 else "") + json.dumps(entry))
                next_id += 1
        handle.write('], "categories": ' + json.dumps(source["categories"]) + "}")
    return written_images


def row(name: str, m: Measured, annotations: int | None = None) -> str:
    per = f"  CPU/annotation {1e6 * m.cpu / annotations:6.1f} us" if annotations else ""
    return (
        f"  {name:28} wall {m.wall:7.2f} s  CPU {m.cpu:7.2f} s{per}  peak RSS {m.rss_mib:7.0f} MiB"
    )


def arguments(description: str) -> argparse.Namespace:
    """DATA, --sizes and --rounds, as the benches of replicated COCO files take them."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="?", type=Path, default=shared_data())
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args()


def main() -> None:
    args = arguments(__doc__)
    data = args.data
    source_file, images = data / "annotations.json", data / "images"
    if not source_file.is_file():
        raise SystemExit(
            f"{source_file}: not found; pass a COCO dataset folder (annotations.json, images/)"
        )
    source = json.loads(source_file.read_text(encoding="utf-8"))
    python = sys.executable
    validate = [python, "-m", "synthgate", "validate"]
    per_annotation: dict[int, float] = {}
    net: dict[int, float] = {}  # per annotation beyond the tiny file's whole process
    started = time.perf_counter()
    # First: a process's fixed cost (start-up, imports), which the tiny file shows.
    tiny = best_of(
        {
            "bare pycocotools": [python, "-c", BARE, str(source_file)],
            "validate (tiny)": [*validate, str(source_file)],
        },
        max(args.rounds, 5),
    )
    print(f"tiny file ({len(source['annotations'])} annotations), best of {max(args.rounds, 5)}:")
    for name, m in tiny.items():
        print(row(name, m))
    ratio = tiny["validate (tiny)"].cpu / tiny["bare pycocotools"].cpu
    wall = tiny["validate (tiny)"].wall / tiny["bare pycocotools"].wall
    print(f"  CPU ratio {ratio:.2f}, wall ratio {wall:.2f}   (target <= 2)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sizes = sorted(args.sizes)
        for count in sizes:
            path = folder / f"coco-{count}.json"
            image_count = replicate(source, count, path)
            size_mib = path.stat().st_size / 2**20
            print(f"N={count} annotations ({image_count} images, {size_mib:.0f} MiB), best of "
                  f"{args.rounds}:", flush=True)  # fmt: skip
            found = best_of(
                {
                    "floor": [python, "-c", FLOOR, str(path)],
                    "validate": [*validate, str(path)],
                    "validate --json": [*validate, str(path), "--json", str(folder / "out.json")],
                },
                args.rounds,
            )
            for name, m in found.items():
                print(row(name if name != "floor" else "floor (load + RLE)", m, count))
            floor = found["floor"].cpu
            per_annotation[count] = found["validate"].cpu / count
            fixed = tiny["validate (tiny)"].cpu  # start-up, imports and 815 annotations
            net[count] = (found["validate"].cpu - fixed) / (count - len(source["annotations"]))
            print(
                f"  CPU ratio validate/floor: {found['validate'].cpu / floor:.2f}, "
                f"with --json {found['validate --json'].cpu / floor:.2f}   (target <= 1.3)",
                flush=True,
            )
            if count == sizes[0]:
                pixels = best_of(
                    {
                        "floor": [python, "-c", FLOOR_IMAGES, str(path), str(images)],
                        "validate --images": [*validate, str(path), "--images", str(images)],
                    },
                    args.rounds,
                )
                print(row("floor (load + RLE + decode)", pixels["floor"], count))
                print(row("validate --images", pixels["validate --images"], count))
                ratio = pixels["validate --images"].cpu / pixels["floor"].cpu
                wall = pixels["validate --images"].wall / pixels["floor"].wall
                print(
                    f"  CPU ratio validate --images/floor: {ratio:.2f}   (target <= 1.5); "
                    f"wall ratio {wall:.2f} (images decode on two threads beside the judge)"
                )
            path.unlink()
        flat = per_annotation[sizes[-1]] / per_annotation[sizes[0]]
        print(
            f"CPU per annotation at N={sizes[-1]} / at N={sizes[0]}: {flat:.2f}   "
            "(target: within 1.2x)"
        )
        beyond = ", ".join(f"{1e6 * net[n]:.1f} us at N={n}" for n in sizes)
        flat_net = net[sizes[-1]] / net[sizes[0]]
        print(
            f"  beyond the tiny file's whole process (start-up, imports): {beyond}; "
            f"ratio {flat_net:.2f}"
        )
    print(f"bench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
