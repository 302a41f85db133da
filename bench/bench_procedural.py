"""How close `synthgate run` comes to the procedural generator's own speed, and its memory.

Prints images/s of the whole embedded run (plan, generate, label, PNG, database, COCO files)
against the floor (the generator's drawing plus PNG encoding alone, same specs), their ratio
(target >= 0.8), and the peak RSS of `synthgate run` at N and 10N images (target: 10N within
1.3x of N). Usage: python bench/bench_procedural.py [--count 100] [--size 512]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from synthgate.config import parse_config
from synthgate.generators import build_generator
from synthgate.generators.png import encode_png
from synthgate.pipeline import batch_id_for, plan
from synthgate.runner import run_batch


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


def floor_seconds(data: dict) -> float:
    config = parse_config(data, source=Path("bench"))
    generator = build_generator(config.image, categories=config.categories)
    specs = list(
        plan(
            config,
            "image",
            batch_id=batch_id_for(config),
            quota_categories=generator.quota_categories(),
        )
    )
    started = time.perf_counter()
    for start in range(0, len(specs), 8):
        for generated in generator.generate(specs[start : start + 8]):
            encode_png(generated.pixels)
    return time.perf_counter() - started


def run_seconds(data: dict, folder: Path) -> float:
    config = parse_config(data, source=Path("bench"))
    started = time.perf_counter()
    run_batch(config, folder / "run")
    return time.perf_counter() - started


def peak_rss_mib(data: dict, folder: Path) -> float:
    """Peak RSS of a fresh `synthgate run` process (children's max RSS, Linux KiB)."""
    path = folder / f"rss-{data['image']['count']}.yaml"
    path.write_text(yaml.safe_dump(data))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    subprocess.run(
        [sys.executable, "-m", "synthgate", "run", str(path), "--out", str(folder / path.stem)],
        check=True,
        capture_output=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(after, before) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = image_config(args.count, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        warm = image_config(4, args.size)
        floor_seconds(warm)
        run_seconds(warm, folder)  # warm imports, caches and SQLite
        # Interleave the two and keep each one's best: the machine's other load moves both.
        floors, runs = [], []
        for _ in range(args.rounds):
            floors.append(floor_seconds(data))
            runs.append(run_seconds(data, folder))
        floor, whole = min(floors), min(runs)
        print(f"images: {args.count} of {args.size}x{args.size}")
        print(f"floor (draw + PNG):  {args.count / floor:8.1f} images/s")
        print(f"synthgate run:       {args.count / whole:8.1f} images/s")
        print(f"ratio run/floor:     {floor / whole:8.2f}   (target >= 0.8)")
        small = peak_rss_mib(data, folder)
        # RUSAGE_CHILDREN keeps the maximum over all children, so measure 10N in a fresh shell.
        large_data = image_config(args.count * 10, args.size)
        path = folder / "large.yaml"
        path.write_text(yaml.safe_dump(large_data))
        code = (
            "import resource,subprocess,sys;"
            f"subprocess.run([sys.executable,'-m','synthgate','run',{str(path)!r},'--out',{str(folder / 'large')!r}],check=True,capture_output=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        large = (
            int(
                subprocess.run(
                    [sys.executable, "-c", code], check=True, capture_output=True, text=True
                ).stdout
            )
            / 1024
        )
        print(f"peak RSS at N={args.count}:    {small:8.1f} MiB")
        print(f"peak RSS at 10N={args.count * 10}: {large:8.1f} MiB")
        print(f"ratio 10N/N:         {large / small:8.2f}   (target <= 1.3)")


if __name__ == "__main__":
    main()
