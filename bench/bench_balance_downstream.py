"""Does balancing with synthgate help a downstream classifier? A TF-IDF + logistic regression check.

The "real" training set is made from the shipped review templates (configs/templates/reviews.yaml,
labels positive/negative/neutral) with `negative` made rare (5 % by default). Each label's
templates are split in two: the training data (and every synthetic generator) only ever sees the
first half; the held-out test split is written from the second half ("real-style": same domain,
unseen phrasing), balanced across labels. A second test split uses the training templates with
fresh fills, for contrast. The model (TfidfVectorizer 1-2 grams + LogisticRegression) is trained
on: the real set; the real set with class_weight="balanced" (the no-synthetic baseline); and the
real set merged with synthgate's accepted samples (`synthgate balance --target max`), with the
`templates` generator on the training templates and with the `counterfactual` generator.

Prints macro-F1 and the rare class's recall per setting, averaged over seeds, and for every
balanced setting what it merged: synthetic rows that are exact or near copies of a real row
(Jaccard >= 0.9 on word 5-grams, computed by brute force, not by the LSH the rubric uses), the
share of distinct synthetic texts, and which strategies filled the rare class. Wall and CPU
seconds at the end.
Usage: python bench/bench_balance_downstream.py [--train 600] [--rare 0.05] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

import yaml
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, recall_score
from sklearn.pipeline import make_pipeline

from synthgate.config import PACKAGE_ROOT, TemplateTextConfig
from synthgate.generators.text.templates import TemplateGenerator
from synthgate.samples import SampleSpec, sample_seed
from synthgate.workflows.balance_text import balance_text

REVIEWS = PACKAGE_ROOT / "configs" / "templates" / "reviews.yaml"
RARE = "negative"
LOCALES = ["en_US", "de_DE", "es_ES"]


def split_templates(folder: Path) -> tuple[Path, Path]:
    """Two template files with the same lexicons: each label's first half, and its second half."""
    data = yaml.safe_load(REVIEWS.read_text(encoding="utf-8"))
    halves = []
    for part in (0, 1):
        copy = dict(data)
        copy["templates"] = {
            label: [t for i, t in enumerate(templates) if i % 2 == part]
            for label, templates in data["templates"].items()
        }
        path = folder / f"reviews_{'train' if part == 0 else 'heldout'}.yaml"
        path.write_text(yaml.safe_dump(copy, allow_unicode=True), encoding="utf-8")
        halves.append(path)
    return halves[0], halves[1]


def make_rows(
    templates: Path, counts: dict[str, int], *, seed: int, tag: str
) -> list[dict[str, Any]]:
    """Rows {id, text, label} from a template file, `counts[label]` of each, from `seed`."""
    generator = TemplateGenerator(
        TemplateTextConfig(templates=templates, count=1, locales=LOCALES), categories=[]
    )
    specs, index = [], 0
    for label, n in counts.items():
        for _ in range(n):
            specs.append(
                SampleSpec(
                    batch_id=tag,
                    index=index,
                    modality="text",
                    generator="templates",
                    category=label,
                    attributes={"locale": LOCALES[index % len(LOCALES)]},
                    seed=sample_seed(seed, "text", index),
                )
            )
            index += 1
    return [
        {"id": f"{tag}-{g.sample.spec.index}", "text": g.sample.text, "label": g.sample.doc_label}
        for g in generator.generate(specs)
    ]


def evaluate(
    train: list[dict[str, Any]], tests: dict[str, list[dict[str, Any]]], *, weighted: bool = False
) -> dict[str, float]:
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegression(max_iter=2000, class_weight="balanced" if weighted else None),
    )
    model.fit([r["text"] for r in train], [r["label"] for r in train])
    scores = {}
    for name, rows in tests.items():
        truth = [r["label"] for r in rows]
        predicted = model.predict([r["text"] for r in rows])
        scores[f"{name}_macro_f1"] = f1_score(truth, predicted, average="macro")
        scores[f"{name}_rare_recall"] = recall_score(
            truth, predicted, labels=[RARE], average="macro"
        )
    return scores


WORD = re.compile(r"\w+")


def shingles(text: str) -> frozenset[str]:
    """Word 5-grams, case folded (a text of 5 words or fewer is one shingle)."""
    words = WORD.findall(text.casefold())
    if len(words) <= 5:
        return frozenset([" ".join(words)])
    return frozenset(" ".join(words[i : i + 5]) for i in range(len(words) - 4))


def copies_and_distinct(
    real: list[dict[str, Any]], synthetic: list[dict[str, Any]]
) -> tuple[int, int, float]:
    """(exact copies of a real row, near copies (Jaccard >= 0.9, exact included), share of
    distinct synthetic texts), by brute force over every pair."""
    real_texts = {" ".join(r["text"].casefold().split()) for r in real}
    real_shingles = [shingles(r["text"]) for r in real]
    exact = sum(" ".join(r["text"].casefold().split()) in real_texts for r in synthetic)
    near = 0
    for row in synthetic:
        mine = shingles(row["text"])
        if any(len(mine & other) >= 0.9 * len(mine | other) for other in real_shingles):
            near += 1
    distinct = len({r["text"] for r in synthetic}) / len(synthetic) if synthetic else 1.0
    return exact, near, distinct


def balanced_rows(
    train_path: Path, out: Path, config: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    config_path = out.parent / f"{out.name}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    outcome = balance_text(
        train_path, out=out, label_field="label", target="max", config=config_path
    )
    rows = [
        json.loads(line) for line in (out / "merged.jsonl").read_text().splitlines() if line.strip()
    ]
    return rows, outcome.summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=600, help="real training rows")
    parser.add_argument("--rare", type=float, default=0.05, help="share of the rare class")
    parser.add_argument("--test", type=int, default=300, help="rows per test split (balanced)")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    results: dict[str, list[dict[str, float]]] = {}
    merged: dict[str, list[tuple[int, int, float, int]]] = {}
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train_templates, heldout_templates = split_templates(folder)
        for seed in range(args.seeds):
            rare = round(args.train * args.rare)
            common = (args.train - rare) // 2
            train = make_rows(
                train_templates,
                {"positive": common, "neutral": args.train - rare - common, RARE: rare},
                seed=100 + seed,
                tag=f"train{seed}",
            )
            per_label = args.test // 3
            tests = {
                "heldout": make_rows(
                    heldout_templates,
                    dict.fromkeys(("positive", "neutral", RARE), per_label),
                    seed=200 + seed,
                    tag=f"heldout{seed}",
                ),
                "same_templates": make_rows(
                    train_templates,
                    dict.fromkeys(("positive", "neutral", RARE), per_label),
                    seed=300 + seed,
                    tag=f"same{seed}",
                ),
            }
            train_path = folder / f"train{seed}.jsonl"
            train_path.write_text("".join(json.dumps(r) + "\n" for r in train))
            results.setdefault("real only", []).append(evaluate(train, tests))
            results.setdefault("real, class_weight=balanced", []).append(
                evaluate(train, tests, weighted=True)
            )
            for generator, section in (
                (
                    "templates",
                    {
                        "generator": "templates",
                        "templates": str(train_templates),
                        "locales": LOCALES,
                    },
                ),
                ("counterfactual", {"generator": "counterfactual", "locales": LOCALES}),
            ):
                rows, summary = balanced_rows(
                    train_path,
                    folder / f"bal-{generator}-{seed}",
                    {"name": f"bench-{generator}", "seed": seed, "text": section},
                )
                name = f"real + synthgate {generator}"
                results.setdefault(name, []).append(evaluate(rows, tests))
                synthetic = rows[len(train) :]
                exact, near, distinct = copies_and_distinct(train, synthetic)
                merged.setdefault(name, []).append((exact, near, distinct, len(synthetic)))
                counts = {k: (v["before"], v["after"]) for k, v in summary["classes"].items()}
                left_out = {k: len(v) for k, v in summary["left_out"].items()}
                print(
                    f"seed {seed} {generator}: rows before/after {counts}, added "
                    f"{summary['added']['rows']}, left out {left_out}; merged copies of real "
                    f"rows: {exact} exact, {near} near (J>=0.9); distinct synthetic {distinct:.1%}"
                )
                for note in summary.get("text", {}).get("notes", []):
                    print(f"    {note}")

    columns = [
        "heldout_macro_f1",
        "heldout_rare_recall",
        "same_templates_macro_f1",
        "same_templates_rare_recall",
    ]
    print(
        f"\nTF-IDF + logistic regression; train {args.train} rows, '{RARE}' at {args.rare:.0%}; {args.seeds} seed(s); mean over seeds"
    )
    print(f"{'setting':34s} " + " ".join(f"{c:>26s}" for c in columns))
    for name, runs in results.items():
        print(f"{name:34s} " + " ".join(f"{mean(r[c] for r in runs):26.3f}" for c in columns))
    print("\nmerged synthetic rows, summed over seeds")
    print(
        f"{'setting':34s} {'rows':>6s} {'exact copies':>13s} {'near (J>=0.9)':>14s} {'distinct':>9s}"
    )
    for name, seeds in merged.items():
        rows_total = sum(n for *_, n in seeds)
        share = sum(d * n for _, _, d, n in seeds) / rows_total if rows_total else 1.0
        exact_total, near_total = sum(s[0] for s in seeds), sum(s[1] for s in seeds)
        print(f"{name:34s} {rows_total:6d} {exact_total:13d} {near_total:14d} {share:9.1%}")
    print(
        f"\n{time.perf_counter() - wall:.1f} s wall, {time.process_time() - cpu:.1f} s CPU "
        "(this process; balancing runs in it)"
    )


if __name__ == "__main__":
    main()
