"""Near-duplicate lookups (`HashIndex.nearest`, then `add`, as the batch check does) at 1k, 10k,
100k and 1M entries: the index against a scan of every entry, CPU and wall per lookup.

Entries look like a real batch's fingerprints: 64-bit hashes with 32 set bits (imagehash's pHash
sets exactly half, above the median), and mean colours drawn from a normal distribution fitted
to the fingerprints of ../shared/data/coco-tiny-val2017 (or --images). That is the hard case for
the index: unique images, whose nearest earlier hash within the colour gate (16) lies about 16
bits away, so every lookup must prove that no entry is closer. Each size is filled first, then
`--lookups` queries are timed, best of `--rounds`: lookups alone (the index stays at its size),
and lookups each followed by its add (the index's merges of new entries included); the scan is
timed on fewer queries at the large sizes. Every answer of the index is compared with
the scan's. Target: per-lookup time at 1M within 2x of that at 1k. A second table gives every
entry one colour (all within the gate, as a batch of one flat background may be): the colour
cells then narrow nothing and the hash bands do all the work.
Usage: python bench/bench_near_duplicates.py [--sizes 1000,10000,100000,1000000] [--lookups 4096]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from _support import shared_data
from PIL import Image

from synthgate.validators.context import fingerprint
from synthgate.validators.hash_index import HashIndex

TOLERANCE = 16  # clarity_near_duplicate's default colour_tolerance


def colour_model(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the mean colours of real images."""
    colours = []
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as image:
            colours.append(fingerprint(np.asarray(image.convert("RGB")))[1])
    if len(colours) < 3:
        raise SystemExit(f"{folder}: need a few JPEG images to fit the colours (pass --images)")
    values = np.array(colours, dtype=np.float64)
    return values.mean(axis=0), np.cov(values.T)


def fingerprints(
    count: int, model: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`count` hashes with 32 of 64 bits set and mean colours from `model`."""
    hashes = np.empty(count, dtype=np.uint64)
    for start in range(0, count, 65536):  # in slices: the random keys are 512 bytes per hash
        size = min(65536, count - start)
        ones = rng.random((size, 64)).argsort(axis=1)[:, :32]
        bits = np.zeros((size, 64), dtype=np.uint8)
        np.put_along_axis(bits, ones, 1, axis=1)
        hashes[start : start + size] = np.packbits(bits, axis=1).view(">u8")[:, 0]
    colours = np.clip(rng.multivariate_normal(*model, size=count), 0, 255).astype(np.float32)
    return hashes, colours


def timed_lookups(
    index: HashIndex,
    hashes: np.ndarray,
    colours: np.ndarray,
    first: int,
    count: int,
    *,
    add: bool,
    warm: bool = False,
) -> tuple[float, float, list[tuple[int, str] | None]]:
    """(CPU s, wall s, answers) of `count` lookups of entries first, first+1, ...; `add`: each
    one added after its lookup, as the batch check does (the index's merges included);
    `warm`: one lookup first, untimed (a filled index builds its tables on the first)."""
    if warm:
        index.nearest(hashes[first], colours[first], colour_tolerance=TOLERANCE)
    answers = []
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(first, first + count):
        name = f"img-{i}"
        answers.append(
            index.nearest(hashes[i], colours[i], colour_tolerance=TOLERANCE, before=name)
        )
        if add:
            index.add(name, hashes[i], colours[i])
    return time.process_time() - cpu, time.perf_counter() - wall, answers


def filled(hashes: np.ndarray, colours: np.ndarray, size: int, *, scan: bool) -> HashIndex:
    """An index of the first `size` entries; `scan`: one that always scans every entry."""
    index = HashIndex(brute_force_entries=1 << 62) if scan else HashIndex()
    for i in range(size):
        index.add(f"img-{i}", hashes[i], colours[i])
    return index


def scenario(
    title: str, hashes: np.ndarray, colours: np.ndarray, sizes: list[int], args: argparse.Namespace
) -> None:
    """Print the index against the scan at every size, and the ratio largest / smallest."""
    print(f"\n{title}")
    print(
        f"{'entries':>9}  {'index: lookup CPU':>17} {'wall':>8}  {'lookup+add CPU':>14}  "
        f"{'scan: lookup CPU':>16} {'wall':>9}  speed-up"
    )
    per_lookup, per_judged = {}, {}
    for size in sizes:
        index = filled(hashes, colours, size, scan=False)
        rounds = [
            timed_lookups(index, hashes, colours, size, args.lookups, add=False, warm=True)
            for _ in range(args.rounds)
        ]
        cpu, wall, answers = min(rounds, key=lambda r: r[0])
        window = min(size, args.lookups)  # the index grows by at most 2x while adding
        added = min(
            timed_lookups(
                filled(hashes, colours, size, scan=False),
                hashes,
                colours,
                size,
                window,
                add=True,
                warm=True,
            )[0]
            for _ in range(args.rounds)
        )
        scan_count = max(16, min(args.lookups, 2_000_000_000 // (size * 2000)))
        scan = filled(hashes, colours, size, scan=True)
        scan_cpu, scan_wall, expected = timed_lookups(
            scan, hashes, colours, size, scan_count, add=False
        )
        if answers[:scan_count] != expected:
            raise SystemExit(f"{size} entries: the index and the scan disagree")
        per_lookup[size], per_judged[size] = cpu / args.lookups, added / window
        print(
            f"{size:>9,}  {1e3 * cpu / args.lookups:>14.3f} ms {1e3 * wall / args.lookups:>5.3f} ms"
            f"  {1e3 * added / window:>11.3f} ms"
            f"  {1e3 * scan_cpu / scan_count:>13.3f} ms {1e3 * scan_wall / scan_count:>6.3f} ms"
            f"  {scan_cpu / scan_count / (cpu / args.lookups):7.1f}x"
            f"   (scan: {scan_count} lookups, same answers)"
        )
        distances = [a[0] for a in answers if a is not None]
        if distances:
            print(f"{'':>11}nearest within the gate: median {int(np.median(distances))} bits")
    smallest, largest = min(sizes), max(sizes)
    print(
        f"index CPU at {largest:,} / at {smallest:,}: lookup "
        f"{per_lookup[largest] / per_lookup[smallest]:.2f}, lookup+add "
        f"{per_judged[largest] / per_judged[smallest]:.2f}   (target <= 2)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,10000,100000,1000000")
    parser.add_argument("--lookups", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=Path, default=shared_data() / "images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = np.random.default_rng(args.seed)
    mean, covariance = colour_model(args.images)
    count = max(sizes) + args.lookups
    hashes, colours = fingerprints(count, (mean, covariance), rng)
    scenario(
        f"Photo-like colours (fitted to {args.images}: mean {np.round(mean, 1).tolist()})",
        hashes,
        colours,
        sizes,
        args,
    )
    one = np.clip(rng.normal(mean, 2.0, size=(count, 3)), 0, 255).astype(np.float32)
    scenario(
        "One colour (every entry within the gate): the hash bands alone", hashes, one, sizes, args
    )


if __name__ == "__main__":
    main()
