"""`synthgate validate FILE.jsonl` of text batches of 1k, 10k and 100k rows, in three shapes:
CPU and wall seconds per row, end to end, and peak RSS (best of `--rounds`; one run at 100k),
and the CPU per row past the process's start (that of a 10-row file taken away).

The copy checks (`correctness_text_copy`, `clarity_duplicate_text`) compare each row with the
closest earlier one (validators/context.py `TextIndex`); what the index must stay flat on:
- repeats: 52 texts, each repeated (a generated file that repeats its texts);
- near: 52 templates of 20 words with three slots, each filled from its own lexicon of 6 words
  (what the templates generator makes from small lexicons: 11,232 texts, rows a slot word or
  two apart, a text changed in one slot sharing about half its 5-grams);
- distinct: every row its own words, drawn from a 2,000-word vocabulary.
Target: per-row CPU past start-up at 100k within 2x of that at 1k for every shape.
Usage: python bench/bench_text_duplicates.py [--sizes 1000,10000,100000] [--rounds 3]
    [--shapes repeats,near,distinct] [--out FOLDER]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _support import best_of

TEMPLATES = 52
SLOT_WORDS = 6
START_UP_ROWS = 10  # a file this short times the process's start: imports, rubric, report


def vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = {"".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(size * 2)}
    return sorted(words)[:size]


def templates(rng: random.Random) -> list[list[str]]:
    """Word lists with "{}" where a slot goes: three slots, at least six words apart."""
    words = vocabulary(rng, 400)
    found = []
    for _ in range(TEMPLATES):
        body = rng.choices(words, k=20)
        for at in (2, 9, 16):
            body[at] = "{}"
        found.append(body)
    return found


def repeats(count: int, rng: random.Random) -> list[str]:
    texts = [" ".join(w.replace("{}", "x") for w in t) + "." for t in templates(rng)]
    return [rng.choice(texts) for _ in range(count)]


def near(count: int, rng: random.Random) -> list[str]:
    shapes = templates(rng)
    words = vocabulary(rng, SLOT_WORDS * 3)
    lexicons = [words[i : i + SLOT_WORDS] for i in range(0, len(words), SLOT_WORDS)]
    rows = []
    for _ in range(count):
        slots = iter(rng.choice(lexicon) for lexicon in lexicons)
        filled = [w if w != "{}" else next(slots) for w in rng.choice(shapes)]
        rows.append(" ".join(filled).capitalize() + ".")
    return rows


def distinct(count: int, rng: random.Random) -> list[str]:
    words = vocabulary(rng, 2000)
    return [" ".join(rng.choices(words, k=rng.randint(12, 24))) + "." for _ in range(count)]


SHAPES: dict[str, Callable[[int, random.Random], list[str]]] = {
    "repeats": repeats,
    "near": near,
    "distinct": distinct,
}


def write_rows(path: Path, texts: list[str]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for n, text in enumerate(texts):
            out.write(json.dumps({"id": f"t{n}", "text": text, "label": "positive"}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--out", type=Path, help="keep the files here (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.out or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print(
            f"{'shape':>9} {'rows':>8}  {'CPU/row':>10} {'wall/row':>10} {'peak RSS':>9}"
            f"  {'CPU/row past start-up':>21}"
        )
        for shape in args.shapes.split(","):
            per_row = {}
            start_up = None
            for size in [START_UP_ROWS, *sizes]:
                path = folder / f"{shape}-{size}.jsonl"
                write_rows(path, SHAPES[shape](size, random.Random(args.seed)))
                command = [sys.executable, "-m", "synthgate", "validate", str(path)]
                run = best_of({"validate": command}, 1 if size >= 100_000 else args.rounds)
                measured = run["validate"]
                if start_up is None:  # what every run spends whatever its rows
                    start_up = measured.cpu
                    continue
                per_row[size] = (measured.cpu - start_up) / size
                print(
                    f"{shape:>9} {size:>8,}  {1e6 * measured.cpu / size:>7.0f} µs"
                    f" {1e6 * measured.wall / size:>7.0f} µs {measured.rss_mib:>5.0f} MiB"
                    f"  {1e6 * per_row[size]:>18.0f} µs"
                )
            print(
                f"{shape:>9} CPU per row past start-up at {max(sizes):,} / at {min(sizes):,}: "
                f"{per_row[max(sizes)] / per_row[min(sizes)]:.2f}   (target <= 2)"
            )


if __name__ == "__main__":
    main()
