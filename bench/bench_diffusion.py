"""What synthgate adds on top of the diffusers pipeline it drives.

Records the pipeline calls a diffusion generator makes for K images, then times, interleaved over
several rounds (best of each):
  floor     the same diffusers pipeline called directly with the recorded inputs (prompts,
            boxes, images, masks, seeds), steps, size and batch;
  generate  the generator's `generate` over the planned specs (pipeline + segmenting + labels);
  run       the whole embedded `synthgate run` (plus PNG files, database and COCO files).
Prints images/s of each, the ratios generate/floor and run/floor in time (target <= 1.05), and
what synthgate adds per image in milliseconds.
Without --model it builds a random-weight pipeline from config, never downloading anything:
`--shape tiny` (default) is a toy whose images take milliseconds, so the ratios show synthgate's
fixed per-image cost (labels, rubric, PNG, database) at its most visible; `--shape sd15` has
Stable Diffusion 1.5's architecture, so the pipeline does a real model's arithmetic (about 10 s
an image at 256 px, 4 steps, on 2 CPU cores). With --model pointing at real weights (e.g. on a
GPU) it measures the real thing.

Usage: python bench/bench_diffusion.py [--generator diffusion_inpaint] [--count 32]
       [--size 64] [--steps 4] [--batch 4] [--model PATH] [--device auto] [--dtype auto]
       [--shape tiny|sd15] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from synthgate.config import BatchConfig, parse_config
from synthgate.generators import build_generator
from synthgate.generators.diffusion.models import KINDS, load_model
from synthgate.pipeline import batch_id_for, plan
from synthgate.runner import run_batch

KIND_OF_GENERATOR = {
    "diffusion_object_paste": "text2image",
    "diffusion_layout": "layout",
    "diffusion_inpaint": "inpaint",
}
CATEGORIES = ["dog", "cat", "bird", "car"]


def batch_config(args: argparse.Namespace, model_path: str) -> BatchConfig:
    image: dict[str, Any] = {
        "generator": args.generator,
        "count": args.count,
        "size": [args.size, args.size],
        "model": {
            "path": model_path,
            "steps": args.steps,
            "guidance": args.guidance,
            "batch_size": args.batch,
            "device": args.device,
            "dtype": args.dtype,
            "scheduler": args.scheduler,
        },
    }
    if args.generator == "diffusion_object_paste":
        # One generated instance per image, never retried: the same pipeline work as the floor.
        image.update(
            objects_per_image=[1, 1],
            pool_size=1_000_000,
            max_attempts=1,
            mask_area_range=[0.0, 1.0],
        )
    data = {"name": "bench-diffusion", "seed": 13, "categories": CATEGORIES, "image": image}
    return parse_config(data, source=Path("bench"))


class Recorder:
    """Stands in for the pipeline: records each call's inputs and seeds, then makes the call."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline
        self.calls: list[tuple[dict[str, Any], list[int]]] = []

    def __call__(self, **kwargs: Any) -> Any:
        seeds = [g.initial_seed() for g in kwargs["generator"]]
        self.calls.append(({k: v for k, v in kwargs.items() if k != "generator"}, seeds))
        return self.pipeline(**kwargs)


def record_calls(config: BatchConfig) -> list[tuple[dict[str, Any], list[int]]]:
    generator = build_generator(config.image, categories=config.categories)
    recorder = Recorder(generator.model.pipeline)
    generator.model.pipeline = recorder
    try:
        generate_seconds(config)
    finally:
        generator.model.pipeline = recorder.pipeline
    return recorder.calls


def floor_seconds(pipeline: Any, calls: list[tuple[dict[str, Any], list[int]]]) -> float:
    sync()
    started = time.perf_counter()
    for kwargs, seeds in calls:
        generators = [torch.Generator("cpu").manual_seed(seed) for seed in seeds]
        pipeline(**kwargs, generator=generators)
    sync()
    return time.perf_counter() - started


def generate_seconds(config: BatchConfig) -> float:
    sync()
    started = time.perf_counter()
    # A fresh generator each time: object_paste would otherwise serve its pool from memory.
    generator = build_generator(config.image, categories=config.categories)
    specs = list(
        plan(
            config,
            "image",
            batch_id=batch_id_for(config),
            quota_categories=generator.quota_categories(),
        )
    )
    for start in range(0, len(specs), generator.chunk_size):
        generator.generate(specs[start : start + generator.chunk_size])
    sync()
    return time.perf_counter() - started


def run_seconds(config: BatchConfig, folder: Path) -> float:
    sync()
    started = time.perf_counter()
    run_batch(config, folder / "run")
    sync()
    return time.perf_counter() - started


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def random_model(generator: str, folder: Path, shape: str) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from tiny_diffusers import save_tiny_pipeline  # the test suite's random-weight builder

    kind = KIND_OF_GENERATOR[generator]
    return str(save_tiny_pipeline(kind, folder / shape, shape=shape))  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--generator", choices=sorted(KIND_OF_GENERATOR), default="diffusion_inpaint"
    )
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--scheduler", default="ddim")
    parser.add_argument("--model", help="a local pipeline folder or a cached Hub id")
    parser.add_argument(
        "--shape",
        choices=["tiny", "sd15"],
        default="tiny",
        help="architecture of the random-weight pipeline built when --model is not given",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--rounds", type=int, default=5, help="best of this many")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model_path = args.model or random_model(args.generator, folder, args.shape)
        config = batch_config(args, model_path)
        assert config.image is not None
        loaded = load_model(config.image.model, KIND_OF_GENERATOR[args.generator])
        calls = record_calls(config)  # also warms the pipeline up
        run_seconds(config, folder)  # warm imports, SQLite and the PNG writer
        floors, generates, runs = [], [], []
        for round_ in range(args.rounds):  # interleaved: other load moves all three alike
            floors.append(floor_seconds(loaded.pipeline, calls))
            generates.append(generate_seconds(config))
            runs.append(run_seconds(config, folder))
            print(
                f"round {round_ + 1}/{args.rounds}: floor {floors[-1]:.2f} s, "
                f"generate {generates[-1]:.2f} s, run {runs[-1]:.2f} s",
                file=sys.stderr,
            )
        floor, generate, whole = min(floors), min(generates), min(runs)
    info = loaded.info
    print(
        f"generator: {args.generator} ({KINDS[KIND_OF_GENERATOR[args.generator]].pipeline_class})"
    )
    source = info["path"] if args.model else f"random weights, {args.shape} shape"
    print(f"model: {source} [{info['revision']}] on {info['device']} {info['dtype']}")
    print(
        f"images: {args.count} of {args.size}x{args.size}, {args.steps} steps, batch {args.batch}, {len(calls)} pipeline calls"
    )
    print(f"floor (diffusers direct): {args.count / floor:8.2f} images/s  {floor:7.2f} s")
    print(f"synthgate generate:       {args.count / generate:8.2f} images/s  {generate:7.2f} s")
    print(f"synthgate run:            {args.count / whole:8.2f} images/s  {whole:7.2f} s")
    print(f"ratio generate/floor:     {generate / floor:8.3f}   (target <= 1.05)")
    print(f"ratio run/floor:          {whole / floor:8.3f}   (target <= 1.05)")
    print(
        f"synthgate's own cost:     {(whole - floor) / args.count * 1000:8.1f} ms/image (run - floor)"
    )


if __name__ == "__main__":
    main()
