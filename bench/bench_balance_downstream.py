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

Prints macro-F1 and the rare class's recall per setting, averaged over seeds.
Usage: python bench/bench_balance_downstream.py [--train 600] [--rare 0.05] [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
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
                counts = {k: (v["before"], v["after"]) for k, v in summary["classes"].items()}
                print(
                    f"seed {seed} {generator}: rows before/after {counts}, added {summary['added']['rows']}, left out { ({k: len(v) for k, v in summary['left_out'].items()}) }"
                )

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


if __name__ == "__main__":
    main()
