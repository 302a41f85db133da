"""Does the rubric catch known defects? Recall per defect type and false flags on clean samples.

Generates procedural images and template texts (support tickets, NER), injects one known defect
(validators/defects.py) into a random 30 % of them, validates everything in order with the
shipped rubrics, and prints the confusion table per defect type:

- caught: the sample has a finding at level < 5 in the criterion that must catch the defect
  (box loosened by k px -> precision, label dropped -> completeness, class renamed or image
  blanked or box duplicated -> correctness; span shifted -> correctness, slot unfilled ->
  completeness); recall = caught / injected, target >= 0.99 per type;
- routes: how many of them were accepted / sent to review / rejected;
- clean: a clean sample is falsely flagged when it is not routed accepted; target <= 1 %.

The box loosening k is drawn from [2, 10] px: detection.yaml calls boxes within 1 px gold (real
files' rasterisation), so a 1 px loosening is gold by design. Exit code 1 when a target is missed.
Usage: python bench/bench_defects.py [--images 1000] [--texts 1000] [--size 128] [--seed 0]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from synthgate.config import PACKAGE_ROOT, ProceduralImageConfig, TemplateTextConfig
from synthgate.generators.procedural import ProceduralGenerator
from synthgate.generators.text.templates import TemplateGenerator
from synthgate.samples import GeneratedSample, RubricReport, SampleSpec, sample_seed
from synthgate.validators.context import ValidationContext
from synthgate.validators.defects import DEFECTS
from synthgate.validators.validate import Judge, rubric_for

CATEGORIES = ["circle", "square", "triangle", "star", "ring"]
TEMPLATES = PACKAGE_ROOT / "configs" / "templates" / "support_tickets.yaml"
LOCALES = ["en_US", "de_DE", "ja_JP"]


def image_samples(count: int, size: int, seed: int) -> list[GeneratedSample]:
    generator = ProceduralGenerator(
        ProceduralImageConfig(count=count, size=(size, size)), categories=CATEGORIES
    )
    specs = [
        SampleSpec(
            batch_id="bench-defects",
            index=i,
            modality="image",
            generator="procedural",
            category=CATEGORIES[i % len(CATEGORIES)],
            seed=sample_seed(seed, "image", i),
        )
        for i in range(count)
    ]
    return generator.generate(specs)


def text_samples(count: int, seed: int) -> tuple[list[GeneratedSample], list[str], str]:
    generator = TemplateGenerator(
        TemplateTextConfig(templates=Path(TEMPLATES), count=count, locales=LOCALES),
        categories=[],
    )
    specs = [
        SampleSpec(
            batch_id="bench-defects",
            index=i,
            modality="text",
            generator="templates",
            attributes={"locale": LOCALES[i % len(LOCALES)]},
            seed=sample_seed(seed, "text", i),
        )
        for i in range(count)
    ]
    template_file = generator.template_file
    return generator.generate(specs), list(template_file.labels), template_file.task


def inject(
    samples: list[GeneratedSample], modality: str, rate: float, rng: np.random.Generator
) -> list[tuple[str, GeneratedSample]]:
    """(defect name or "clean", sample) for each sample; a defect that does not fit a sample
    (no span to shift) gives way to another of the modality."""
    names = [name for name, d in DEFECTS.items() if d.modality == modality]
    out: list[tuple[str, GeneratedSample]] = []
    for generated in samples:
        if rng.random() >= rate:
            out.append(("clean", generated))
            continue
        for name in rng.permutation(names):
            defect = DEFECTS[str(name)]
            extra = {"k": int(rng.integers(2, 11))} if name == "loosen_box" else {}
            damaged = defect.inject(generated, rng, **extra)
            if damaged is not None:
                out.append((str(name), damaged))
                break
        else:
            out.append(("clean", generated))
    return out


def confusion(labelled: list[tuple[str, GeneratedSample]], judge: Judge) -> dict[str, Counter[str]]:
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for name, generated in labelled:
        report: RubricReport = judge(generated)
        row = table[name]
        row["n"] += 1
        row[report.route] += 1
        if name == "clean":
            row["flagged"] += report.route != "accepted"
            row["any finding"] += bool(report.findings)
        else:
            criterion = DEFECTS[name].criterion
            row["caught"] += any(f.criterion == criterion and f.level < 5 for f in report.findings)
    return table


def print_table(modality: str, table: dict[str, Counter[str]]) -> bool:
    print(f"\n{modality}")
    header = f"  {'defect':<14}{'n':>6}{'caught':>8}{'recall':>8}{'accepted':>10}{'review':>8}{'rejected':>10}"
    print(header)
    ok = True
    for name in sorted(table, key=lambda n: (n == "clean", n)):
        row = table[name]
        routes = f"{row['accepted']:>10}{row['review']:>8}{row['rejected']:>10}"
        if name == "clean":
            rate = row["flagged"] / row["n"] if row["n"] else 0.0
            ok &= rate <= 0.01
            print(f"  {'clean':<14}{row['n']:>6}{'':>8}{'':>8}{routes}")
            print(
                f"  false flags on clean samples: {row['flagged']} / {row['n']} = {rate:.2%} "
                f"(target <= 1 %); clean samples with any finding: {row['any finding']}"
            )
        else:
            recall = row["caught"] / row["n"] if row["n"] else 0.0
            ok &= recall >= 0.99
            print(f"  {name:<14}{row['n']:>6}{row['caught']:>8}{recall:>8.3f}{routes}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128, help="image side in px")
    parser.add_argument("--rate", type=float, default=0.3, help="share of samples damaged")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    ok = True

    started = time.perf_counter()
    images = inject(image_samples(args.images, args.size, args.seed), "image", args.rate, rng)
    judge = Judge(rubric_for("image"), ValidationContext.for_taxonomy(CATEGORIES))
    ok &= print_table(
        f"images ({args.images} of {args.size}x{args.size}, rubric detection)",
        confusion(images, judge),
    )

    texts, labels, task = text_samples(args.texts, args.seed)
    labelled = inject(texts, "text", args.rate, rng)
    judge = Judge(rubric_for("text", task=task), ValidationContext.for_taxonomy(labels))
    ok &= print_table(
        f"texts ({args.texts} support tickets, rubric {task})", confusion(labelled, judge)
    )
    print(f"\n{time.perf_counter() - started:.1f} s; targets {'met' if ok else 'MISSED'}")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
