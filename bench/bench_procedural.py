"""`synthgate run` of procedural images against its floor: CPU per image, and memory as it grows.

Each measurement is a fresh process, timed by the kernel (`os.wait4`): wall seconds, CPU seconds
(user + system, every thread) and peak RSS. The floor does the work a run cannot skip: the same
generator drawing the same specs (the same plan and seeds), the same PNG encoder, and each PNG
written to its own file in a fresh folder (a run's images are its output; on this machine a
file of ~100 KB costs ~0.2 ms of kernel time), in one process, with nothing judged. The run adds
labels' checks, the rubric, the label files, the database and the report.

For N and 10N images (default 1,000 and 10,000 at 256x256), best of `--rounds`, it prints wall
and CPU per image for the floor and the run, their CPU ratio (target <= 1.3), the peak RSS of
the run, and the RSS ratio 10N/N (target <= 1.1: a run streams, its memory must not grow with
the batch). Usage: python bench/bench_procedural.py [--count 1000] [--size 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _support import Measured, measure

FLOOR = """
import itertools, json, sys
from pathlib import Path
from synthgate.config import parse_config
from synthgate.generators import build_generator
from synthgate.generators.png import encode_png
from synthgate.pipeline import batch_id_for, chunk_size, plan
config = parse_config(json.loads(sys.argv[1]), source=Path("bench"))
out = Path(sys.argv[2])
out.mkdir()
generator = build_generator(config.image, categories=config.categories)
specs = plan(config, "image", batch_id=batch_id_for(config),
             quota_categories=generator.quota_categories())
while chunk := list(itertools.islice(specs, chunk_size(generator, "image"))):
    for generated in generator.generate(chunk):
        (out / f"{generated.sample.spec.index:06d}.png").write_bytes(encode_png(generated.pixels))
"""


def image_config(count: int, size: int) -> dict:
    return {
        "name": "bench",
        "seed": 11,
        "categories": ["circle", "square", "triangle", "star", "ring"],
        "image": {
            "generator": "procedural",
            "count": count,
            "size": [size, size],
            "objects_per_image": [1, 5],
        },
    }


def best(command: list[str], rounds: int) -> Measured:
    runs = [measure(command) for _ in range(rounds)]
    return min(runs, key=lambda m: m.cpu)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1000, help="N: images of the smaller run")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    python = sys.executable
    results: dict[int, tuple[Measured, Measured]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for count in (args.count, args.count * 10):
            data = image_config(count, args.size)
            config = folder / f"run-{count}.yaml"
            config.write_text(json.dumps(data))
            out = folder / f"out-{count}"
            run = [python, "-m", "synthgate", "run", str(config), "--out", str(out)]
            floor = [python, "-c", FLOOR, json.dumps(data), str(folder / "floor")]
            rounds = []
            for _ in range(args.rounds):  # interleaved, each into a fresh folder
                rounds.append((best(floor, 1), best(run, 1)))
                shutil.rmtree(folder / "floor")
                shutil.rmtree(out)
            floor_best = min((f for f, _ in rounds), key=lambda m: m.cpu)
            run_best = min((r for _, r in rounds), key=lambda m: m.cpu)
            results[count] = (floor_best, run_best)
            print(f"N={count} images of {args.size}x{args.size}, best of {args.rounds}:")
            for name, m in (("floor (draw, PNG, file)", floor_best), ("synthgate run", run_best)):
                print(
                    f"  {name:20} wall {m.wall:7.1f} s  CPU {m.cpu:7.1f} s  "
                    f"CPU/image {1000 * m.cpu / count:6.2f} ms  peak RSS {m.rss_mib:7.1f} MiB"
                )
            print(f"  CPU ratio run/floor: {run_best.cpu / floor_best.cpu:.2f}   (target <= 1.3)")
    small, large = results[args.count][1], results[args.count * 10][1]
    print(
        f"peak RSS of the run: {small.rss_mib:.1f} MiB at N, {large.rss_mib:.1f} MiB at 10N: "
        f"ratio {large.rss_mib / small.rss_mib:.2f}   (target <= 1.1)"
    )


if __name__ == "__main__":
    main()
