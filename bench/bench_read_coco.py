"""Reading a real COCO file whole, as `export`, `merge` and `balance` do, against the honest
floor, per N.

Builds COCO files by replicating a small real dataset (bench_scale.py's `replicate`: new image
and annotation ids) at N = 10k, 100k and 1M annotations. Each measurement is a fresh process
timed by the kernel (wall, CPU, peak RSS), best of `--rounds` by CPU, rounds interleaved. Both
processes import synthgate's COCO module first, so what differs is the work alone:

- floor: the file decoded as UTF-8 and parsed by Python's json (the least any reader that keeps
  the whole file must do: the entries are copied into the output);
- `read_coco(path, non_finite=[])`: the same parse, noting NaN and Infinity as it goes, and the
  gate for numbers beyond a float's range (`beyond_float`), which tells the caller whether to
  walk every value for them;
- `read_coco_streaming(path, non_finite=[])`, what the commands call: the same mapping parsed
  by yajl as the file streams (its reading bar moves), the bytes screened on the way (lone
  surrogate escapes, form feeds, nesting depth); read whole by `read_coco` when the file holds
  what yajl reads otherwise than json (formats/coco_reader.py lists it: NaN, numbers beyond
  64 bits or a float's range, members given twice, ...).

Printed per N: each, the CPU ratios to the floor and the CPU per annotation of each.
Usage: python bench/bench_read_coco.py [DATA] [--sizes 10000 100000 1000000] [--rounds 3]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from _support import best_of
from bench_scale import arguments, replicate, row

IMPORTS = "import json, sys; import synthgate.formats.coco as coco; path = sys.argv[1]; "
FLOOR = IMPORTS + "json.loads(open(path, encoding='utf-8').read())"
READ = IMPORTS + "coco.read_coco(path, non_finite=[])"
STREAMED = (
    IMPORTS.replace("coco;", "coco; import synthgate.formats.coco_reader as reader;")
    + "reader.read_coco_streaming(path, non_finite=[])"
)


def main() -> None:
    args = arguments(__doc__)
    source_file = args.data / "annotations.json"
    if not source_file.is_file():
        raise SystemExit(f"{source_file}: not found; pass a COCO dataset folder (annotations.json)")
    source = json.loads(source_file.read_text(encoding="utf-8"))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for count in sorted(args.sizes):
            path = Path(tmp) / f"coco-{count}.json"
            images = replicate(source, count, path)
            size_mib = path.stat().st_size / 2**20
            print(f"N={count} annotations ({images} images, {size_mib:.0f} MiB), best of "
                  f"{args.rounds}:", flush=True)  # fmt: skip
            found = best_of(
                {
                    "floor (decode + json)": [sys.executable, "-c", FLOOR, str(path)],
                    "read_coco": [sys.executable, "-c", READ, str(path)],
                    "read_coco_streaming": [sys.executable, "-c", STREAMED, str(path)],
                },
                args.rounds,
            )
            for name, measured in found.items():
                print(row(name, measured, count))
            floor = found["floor (decode + json)"].cpu
            for name in ("read_coco", "read_coco_streaming"):
                print(f"  CPU ratio {name}/floor: {found[name].cpu / floor:.2f}", flush=True)
            path.unlink()
    print(f"bench took {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
