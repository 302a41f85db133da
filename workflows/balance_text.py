"""`synthgate balance --jsonl`: text classification data balanced by label and name attributes.

`balance_jsonl(...)` checks the rows, counts labels, infers each real row's gender/locale from its
names (generators/text/counterfactual.py) so new samples fill the under-represented groups of
each label, runs the plan through the pipeline (the `counterfactual` generator by default, or any
text generator the balance config names), merges the accepted rows into merged.jsonl (real lines
byte for byte) and reports the label rate per attribute group before and after.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from synthgate.errors import InputError
from synthgate.files import write_atomic
from synthgate.formats.jsonl import read_jsonl
from synthgate.generators import Generator, build_generator
from synthgate.generators.text.counterfactual import NameBank, bias_report, infer_attributes
from synthgate.pipeline import Progress
from synthgate.storage.folders import publish_out
from synthgate.workflows.balance import (
    BalanceResult,
    finish_output,
    generator_sections,
    prepare_output,
    run_sections,
    summarise,
)
from synthgate.workflows.merge import MergeResult, merge_jsonl, refuse_out_holding
from synthgate.workflows.quotas import (
    attribute_shares,
    class_targets,
    deficits,
    label_counts,
    load_balance_config,
    parse_target,
    split_deficits,
)


def _check_rows(
    rows: list[dict[str, Any]], path: Path, *, text_field: str, label_field: str
) -> None:
    bad = [
        str(number)
        for number, row in enumerate(rows, start=1)
        if not isinstance(row.get(text_field), str) or row.get(label_field) is None
    ]
    if bad:
        raise InputError(
            f"{path}: row(s) {', '.join(bad[:20])} lack a text `{text_field}` or a label "
            f"`{label_field}`; fix them or pass --label-field / --text-field"
        )
    ids = Counter(row["id"] for row in rows if "id" in row)
    repeated = sorted(str(i) for i, n in ids.items() if n > 1)
    if repeated:
        raise InputError(f"{path}: duplicate row ids {repeated[:20]}; ids must be unique")


def balance_text(
    jsonl: Path | str,
    *,
    out: Path | str,
    label_field: str = "label",
    text_field: str = "text",
    target: str | int | None = None,
    config: Path | str | None = None,
    progress: Progress | None = None,
) -> BalanceResult:
    """Balance a text classification JSONL by label and by name attributes (see module doc).

    Args:
        jsonl: the real rows, one JSON object a line.
        out: the output folder (new, or an earlier balance output).
        label_field, text_field: the fields holding each row's label and text.
        target: max | median | an integer | a YAML of class: target (default: the config's).
        config: a balance config YAML.
        progress: called with (modality, samples just finished, total).

    Returns:
        A `BalanceResult`: `.out`, `.merged` (merged.jsonl) and `.summary`.

    Example:
        >>> balance_text("reviews.jsonl", out="balanced-text/", target="max")
    """
    jsonl_path, out = Path(jsonl), Path(out)
    config_path = Path(config) if config is not None else None
    balance = load_balance_config(config_path)
    strategy = parse_target(str(target) if target is not None else balance.target)
    if not jsonl_path.is_file():
        raise InputError(field="jsonl", value=jsonl_path, problem="file not found")
    refuse_out_holding(out, jsonl_path)
    rows = read_jsonl(jsonl_path)
    if not rows:
        raise InputError(
            field="jsonl",
            value=jsonl_path,
            problem="no rows; pass a JSONL file with one row per line",
        )
    _check_rows(rows, jsonl_path, text_field=text_field, label_field=label_field)
    sections = generator_sections(balance.text, {"generator": "counterfactual"})
    locales = sorted({loc for s in sections for loc in s.get("locales", ["en_US"])})
    for section in sections:
        if section.get("generator", "counterfactual") == "counterfactual":
            section.setdefault("source", str(jsonl_path.resolve()))
            section.setdefault("text_field", text_field)
            section.setdefault("label_field", label_field)
    bank = NameBank.build(locales)

    def attributes_of(row: dict[str, Any]) -> dict[str, str]:
        given = row.get("attributes")
        if isinstance(given, dict) and given:
            return {k: str(v) for k, v in given.items()}
        return infer_attributes(str(row.get(text_field, "")), bank)

    before = label_counts(rows, label_field=label_field)
    targets = class_targets(
        before, strategy, image_count=len(rows), repeat_threshold=balance.repeat_threshold
    )
    lacking = deficits(
        before, targets, classes=balance.classes, max_new_per_class=balance.max_new_per_class
    )
    shares = attribute_shares(balance.attributes or {"gender": ["female", "male"]})
    existing: dict[str, dict[str, Counter[str]]] = {}
    for row in rows:
        for axis, value in attributes_of(row).items():
            existing.setdefault(str(row[label_field]), {}).setdefault(axis, Counter())[value] += 1

    def build(config: Any) -> Generator:
        components = {"rows": rows, "bank": bank} if config.generator == "counterfactual" else {}
        return build_generator(config, categories=list(before), **components)

    temporary = prepare_output(out)
    try:
        runs = run_sections(
            modality="text",
            sections=sections,
            parts=split_deficits(lacking, len(sections)),
            balance=balance,
            source=config_path or jsonl_path,
            categories=list(before),
            runs_dir=temporary / "runs",
            build=build,
            shares=shares,
            existing=existing,
            progress=progress,
        )
        lines = jsonl_path.read_text(encoding="utf-8").splitlines(keepends=True)
        result = MergeResult()
        for run_dir, _config in runs:
            lines = merge_jsonl(
                lines,
                read_jsonl(run_dir / "text.jsonl"),
                text_field=text_field,
                label_field=label_field,
                result=result,
            )
        write_atomic(temporary / "merged.jsonl", "".join(lines))
        merged_rows = read_jsonl(temporary / "merged.jsonl")
        after = label_counts(merged_rows, label_field=label_field)
        bias = {
            axis: {
                "before": bias_report(
                    rows,
                    label_of=lambda r: str(r[label_field]),
                    axis=axis,
                    attributes_of=attributes_of,
                ),
                "after": bias_report(
                    merged_rows,
                    label_of=lambda r: str(r[label_field]),
                    axis=axis,
                    attributes_of=attributes_of,
                ),
            }
            for axis in shares
        }
        summary = summarise(
            kind="jsonl",
            source=jsonl_path,
            strategy=strategy,
            before=before,
            after=after,
            targets=targets,
            lacking=lacking,
            why_not={},
            result=result,
            runs=runs,
            temporary=temporary,
            skipped=[],
            extra={"bias": bias},
        )
        finish_output(temporary, summary, runs)
        publish_out(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return BalanceResult(out=out, summary=summary)
