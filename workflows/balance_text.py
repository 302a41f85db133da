"""`synthgate balance --jsonl`: text classification data balanced by label and name attributes.

`balance_text(...)` checks the rows, counts labels, infers each real row's gender/locale from its
names (generators/text/counterfactual.py) so new samples fill the under-represented groups of
each label, runs the plan through the pipeline (the `counterfactual` generator by default, or any
text generator the balance config names), merges the accepted rows into merged.jsonl (real lines
byte for byte) and reports the label rate per attribute group before and after.

Rewrites cannot fill a class beyond the distinct rewrites its rows allow (`capacity`: rows with
a name or gendered term to swap), nor make a gender its rows cannot turn to (rows of only female
terms flip to male: `gender_limits`, which the plan keeps to), and the rubric rejects a rewrite
that copies a real row or an earlier sample. What they leave missing goes to the counterfactual section's `fallback`: by
default templates mined from the class's own rows (generators/text/mined.py, written to
mined_templates.yaml and run by the `templates` generator), or a local text-generation model
(`model.path`, the `text_model` generator) when one is configured. What still lacks is left
short. balance.json (`text`) and report.md say, per class, what each strategy could make,
made and had accepted, and by how much a class stays short of its target.
"""

from __future__ import annotations

import functools
import json
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from synthgate.arguments import callback, path_argument, switch
from synthgate.class_names import category_name_problem, class_name_warning
from synthgate.config import BatchConfig, CounterfactualTextConfig
from synthgate.errors import InputError, quoted
from synthgate.files import dumps, write_atomic
from synthgate.formats.jsonl import (
    check_row_ids,
    check_string_labels,
    jsonl_lines,
    read_jsonl,
    row_class,
)
from synthgate.generators import Generator, build_generator
from synthgate.generators.text.counterfactual import (
    CounterfactualGenerator,
    NameBank,
    bias_report,
    infer_attributes,
    rows_read,
)
from synthgate.generators.text.mined import mine_templates
from synthgate.generators.text.rows import reference_rows
from synthgate.outputs import building_out, check_out, refuse_out_holding
from synthgate.pipeline import Progress
from synthgate.storage.store import Store, sqlite_url
from synthgate.workflows.balance import (
    BALANCE_OUT,
    BalanceResult,
    check_sections,
    finish_output,
    generator_sections,
    run_sections,
    section_config,
    section_place,
    sections_source,
    summarise,
)
from synthgate.workflows.merge import MergeResult, merge_jsonl
from synthgate.workflows.quotas import (
    AttributeGoal,
    attribute_shares,
    balance_target,
    check_classes,
    class_targets,
    deficits,
    label_counts,
    load_balance_config,
    split_deficits,
    target_named,
)

ROWS_NAMED = 10


def _numbers(numbers: list[int]) -> str:
    """Row numbers as an error names them: the first ten, and how many more."""
    more = len(numbers) - ROWS_NAMED
    return ", ".join(map(str, numbers[:ROWS_NAMED])) + (f" … and {more} more" if more > 0 else "")


def _check_rows(
    rows: list[dict[str, Any]], path: Path, *, text_field: str, label_field: str
) -> None:
    textless = [
        n for n, row in enumerate(rows, start=1) if not isinstance(row.get(text_field), str)
    ]
    if textless:
        raise InputError(
            f"{path}: row(s) {_numbers(textless)} lack a text `{text_field}`; fix them or name "
            "the field the rows hold their text in with {text_field}",
            options=("text_field",),
        )
    unlabelled = [n for n, row in enumerate(rows, start=1) if row.get(label_field) is None]
    if unlabelled:
        # a span list that holds spans: every text row synthgate writes has one, empty or not
        spans = any(rows[n - 1].get("spans") or rows[n - 1].get("entities") for n in unlabelled)
        raise InputError(
            f"{path}: row(s) {_numbers(unlabelled)} lack a label `{label_field}`"
            + (
                " (they hold spans: balance raises the classes of a classification JSONL, "
                "one label a row, not span labels)"
                if spans
                else ""
            )
            + "; fix them or name the field the rows hold their label in with {label_field}",
            options=("label_field",),
        )
    check_string_labels(rows, path, label_field=label_field)
    for number, row in enumerate(rows, start=1):
        label = row_class(row, label_field)
        problem = category_name_problem(label)
        if problem is not None:
            raise InputError(
                f"{path}: row {number}: label `{label_field}` {quoted(label)} "
                f"{problem} (balance writes new rows, and exports, under the labels as they are)"
            )
    check_row_ids(rows, path)
    ids = Counter(row["id"] for row in rows if "id" in row)
    repeated = sorted(str(i) for i, n in ids.items() if n > 1)
    if repeated:
        raise InputError(f"{path}: duplicate row ids {repeated[:20]}; ids must be unique")


def _classes_read(rows: list[dict[str, Any]], label_field: str) -> list[dict[str, Any]]:
    """The rows with each class as `row_class` reads it, doccano's ["pos"] as "pos": what the
    plan counts and the generators read (merged.jsonl keeps the rows' own form)."""
    return [
        {**row, label_field: row_class(row, label_field)}
        if isinstance(row.get(label_field), list)
        else row
        for row in rows
    ]


def _looks_like_coco(path: Path) -> bool:
    """A .json file whose first line is no JSON row, the file one object with a list of
    `images`: a COCO file (pretty-printed or not, with or without the byte-order mark the
    COCO reader skips), not JSONL rows."""
    if path.suffix.lower() != ".json":
        return False
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            first = handle.readline(1 << 16)
            head = first + handle.read(1 << 16)
    except OSError:
        return False
    try:
        row = json.loads(first)
    except ValueError:  # no JSONL file (refused either way): pretty-printed COCO opens so
        return first.strip() == "{" and '"images"' in head
    return isinstance(row, dict) and isinstance(row.get("images"), list)


def balance_text(
    jsonl: Path | str,
    *,
    out: Path | str,
    label_field: str = "label",
    text_field: str = "text",
    target: str | int | Path | Mapping[str, int] | None = None,
    config: Path | str | Mapping[str, Any] | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> BalanceResult:
    """Balance a text classification JSONL by label and by name attributes (see module doc).

    Args:
        jsonl: the real rows, one JSON object a line.
        out: the output folder (new, or an earlier balance output).
        label_field, text_field: the fields holding each row's label and text.
        target: max | median | an integer | a YAML of class: target | a mapping of class:
            target, as such a YAML holds (`{"positive": 300}`) (default: the config's).
        config: a balance config YAML, or the config as a dict.
        progress: called with (modality, samples just finished, total).
        dry_run: refused (an InputError saying why), as `balance`'s is for images: a text
            balance cannot be planned without generating.

    Returns:
        A `BalanceResult`: `.out`, `.merged` (merged.jsonl) and `.summary`, whose `warnings`,
        where there are any, name classes tools would read otherwise (' skis ').

    Example:
        >>> balance_text("reviews.jsonl", out="balanced-text/", target="max")
    """
    if switch(dry_run, "dry_run"):
        raise InputError(
            field="dry_run",
            problem="applies to images: a text balance cannot be planned without generating "
            "(its fallback makes what the rewrites leave short, known only once the rubric has "
            "judged them)",
            fix="leave it out and balance into a scratch out folder: its balance.json and "
            "report.md say per class what was planned, made and accepted, and the input file "
            "is not changed",
        )
    jsonl_path, out = path_argument(jsonl, "jsonl"), path_argument(out, "out")
    if label_field == text_field:  # each row's text would be a class of its own
        raise InputError(
            field="label_field",
            value=label_field,
            problem="is the text field too: each row's text would be its class",
            fix="name the field that holds each row's class",
        )
    progress = callback(progress, "progress")
    balance = load_balance_config(config)  # refuses a config of the wrong type first
    config_path = (
        None if config is None or isinstance(config, Mapping) else path_argument(config, "config")
    )
    sections_from = sections_source(config, config_path, jsonl_path)
    strategy = balance_target(target, balance, source=config_path)
    if not jsonl_path.is_file():
        raise InputError(field="jsonl", value=jsonl_path, problem="file not found")
    if _looks_like_coco(jsonl_path):  # else "line 1: not valid JSON (Expecting property ...)"
        raise InputError(
            field="jsonl",
            value=jsonl_path,
            problem="is a COCO file (one JSON object with images), not JSONL rows",
            fix="balance images with balance(coco, images=...) (the CLI: --coco)",
        )
    target_file = strategy if isinstance(strategy, Path) else None
    refuse_out_holding(out, jsonl_path, config_path, target_file)
    check_out(out, **BALANCE_OUT)  # before the rows are read and planned, as balance does
    rows = read_jsonl(jsonl_path, strict=True)  # copied into merged.jsonl
    if not rows:
        raise InputError(
            field="jsonl",
            value=jsonl_path,
            problem="no rows; pass a JSONL file with one row per line",
        )
    _check_rows(rows, jsonl_path, text_field=text_field, label_field=label_field)
    rows = _classes_read(rows, label_field)
    own_classes = _own_classes_warning(rows, label_field, source=jsonl_path)
    sections = generator_sections(balance.text, {"generator": "counterfactual"})
    written = [dict(section) for section in sections]  # as the config writes them, for errors
    for section in sections:
        if section.get("generator", "counterfactual") == "counterfactual":
            section.setdefault("source", str(jsonl_path.resolve()))
            section.setdefault("text_field", text_field)
            section.setdefault("label_field", label_field)
    before = label_counts(rows, label_field=label_field)
    named = class_name_warning(before, source=jsonl_path)
    warnings = [warning for warning in (own_classes, named) if warning is not None]
    check_classes(balance.classes, before, source=config_path or "<config>")
    check_sections(
        sections,
        modality="text",
        default="counterfactual",
        balance=balance,
        source=sections_from,
        categories=list(before),
        written=written,
    )
    locales = sorted({loc for s in sections for loc in s.get("locales", ["en_US"])})
    bank = NameBank.build(locales)

    def attributes_of(row: dict[str, Any]) -> dict[str, str]:
        given = row.get("attributes")
        if isinstance(given, dict) and given:
            return {k: str(v) for k, v in given.items()}
        return infer_attributes(str(row.get(text_field, "")), bank)

    targets = class_targets(
        before,
        strategy,
        image_count=len(rows),
        repeat_threshold=balance.repeat_threshold,
        named=target_named(target, config_path),
    )
    lacking = deficits(
        before, targets, classes=balance.classes, max_new_per_class=balance.max_new_per_class
    )
    shares = attribute_shares(balance.attributes or {"gender": ["female", "male"]})
    # New rows' values draw the groups' label rates together, unless the config weighs the
    # values itself ({female: 0.7, male: 0.3}): then they follow those shares, as it asks.
    weighed = any(isinstance(values, dict) for values in balance.attributes.values())
    goal: AttributeGoal = "shares" if weighed else "label_parity"
    existing: dict[str, dict[str, Counter[str]]] = {}
    for row in rows:
        for axis, value in attributes_of(row).items():
            existing.setdefault(str(row[label_field]), {}).setdefault(axis, Counter())[value] += 1

    # Every text generator gets the real rows: the copy check compares its samples with them.
    reference = reference_rows(rows, text_field=text_field, source=jsonl_path.name)

    # The planning's rewriters, by the rows they read: a section runs with the one it was
    # planned with (analysing every row's names is most of building one)
    planned: dict[tuple[Path, str, str], CounterfactualGenerator] = {}

    def build(config: Any) -> Generator:
        if config.generator == "counterfactual" and rows_read(config) in planned:
            return planned[rows_read(config)].under(config)
        components: dict[str, Any] = {"reference": reference}
        if config.generator in ("counterfactual", "text_model"):
            components = {"rows": rows} | (
                {"bank": bank} if config.generator == "counterfactual" else {}
            )
        return build_generator(config, categories=list(before), **components)

    plan = _Plan(lacking)
    parts = split_deficits(lacking, len(sections))
    # per section, the rewrites of each gender a class can make (rows flipped one way only):
    # planned for a gender it cannot make, a rewrite was flipped to the other, and the plan's
    # reckoning of the groups' label rates was off by it
    limits: list[dict[str, dict[str, dict[str, int]]] | None] = []
    fallback: CounterfactualTextConfig | None = None
    fallback_place = "text"  # the section the fallback is made from, which its errors name
    for turn, (section, part) in enumerate(zip(sections, parts, strict=True)):
        if section.get("generator", "counterfactual") != "counterfactual":
            for label, wanted in part.items():  # its capacity is not known
                plan.note(label, str(section.get("generator")), capacity=None, wanted=wanted)
            limits.append(None)
            continue
        # Built as run_sections builds it (its rubric, paths beside the config file), so a bad
        # key is the same clear error and the fallback inherits what the section really runs with.
        rewrites = section_config(
            {**section, "generator": "counterfactual"},  # the default, as check_sections reads it
            count=1,
            modality="text",
            balance=balance,
            source=sections_from,
            categories=list(before),
            name=balance.name,
        ).text
        assert isinstance(rewrites, CounterfactualTextConfig)
        if fallback is None:
            fallback, fallback_place = rewrites, section_place(balance, "text", turn)
        if rows_read(rewrites) not in planned:
            planned[rows_read(rewrites)] = CounterfactualGenerator(
                rewrites, categories=list(before), rows=rows, bank=bank
            )
        rewriter = planned[rows_read(rewrites)].under(rewrites)
        limits.append(rewriter.gender_limits())
        for label, wanted in part.items():
            part[label] = min(wanted, rewriter.capacity(label))
            plan.note(label, "counterfactual", capacity=rewriter.capacity(label), wanted=wanted)

    with building_out(
        out, doing=f"writing the balanced dataset to {out}", checked=True, **BALANCE_OUT
    ) as temporary:
        run = functools.partial(
            run_sections,
            modality="text",
            source=sections_from,
            categories=list(before),
            runs_dir=temporary / "runs",
            build=build,
            shares=shares,
            progress=progress,
            attribute_goal=goal,
        )
        runs = run(
            sections=sections, parts=parts, balance=balance, existing=existing, limits=limits
        )
        plan.made(runs, strategy=None)
        rest = plan.missing()
        if fallback is not None and fallback.fallback != "none" and any(rest.values()):
            filler, section, part = _fallback_section(
                fallback,
                rows,
                rest,
                plan,
                jsonl_path=jsonl_path,
                text_field=text_field,
                label_field=label_field,
                bank=bank,
                seed=balance.seed,
                folder=temporary,
            )
            fallback_balance = balance.model_copy(update={"name": f"{balance.name}-fallback"})
            # Planned on what the data holds now: the rewrites' rows moved the groups' rates.
            filled = run(
                sections=[section],
                parts=[part],
                balance=fallback_balance,
                existing=_with_accepted(existing, runs, text_field, attributes_of),
                place=fallback_place,
            )
            if section["generator"] == "templates":  # read from the temporary folder
                _templates_as_published(filled, folder=temporary)
            plan.made(filled, strategy=filler)
            runs += filled
        lines = jsonl_lines(jsonl_path)
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
        merged_rows = _classes_read(read_jsonl(temporary / "merged.jsonl"), label_field)
        after = label_counts(merged_rows, label_field=label_field)
        bias: dict[str, dict[str, Any]] = {
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
        for axis, pair in bias.items():
            pair["note"] = _gap_note(axis, pair["before"], pair["after"], values=list(shares[axis]))
        summary = summarise(
            kind="jsonl",
            source=jsonl_path,
            strategy=strategy,
            before=before,
            after=after,
            targets=targets,
            lacking=plan.planned(),  # what the strategies planned, not the deficit
            why_not=plan.why_not(targets, after),
            result=result,
            runs=runs,
            temporary=temporary,
            skipped=[],
            extra={"bias": bias, "text": plan.as_json(targets, after)}
            | ({"warnings": warnings} if warnings else {}),
        )
        finish_output(temporary, summary, runs)
    return BalanceResult(out=out, summary=summary)


def _own_classes_warning(
    rows: list[dict[str, Any]], label_field: str, *, source: Path
) -> str | None:
    """A warning where every row of three or more holds its own class: an id or a text read as
    the class (`--label-field id`), which leaves none rarer than another, so a median or max
    target adds nothing. Not refused: a seed set of one row per class is balanced that way
    too, toward a target given as a number (two rows of two classes may be a smallest sample)."""
    classes = [row[label_field] for row in rows]
    if len(rows) < 3 or len(set(classes)) < len(rows):
        return None
    shown = ", ".join(map(quoted, classes[:3])) + (", …" if len(rows) > 3 else "")
    return (
        f"{source}: `{label_field}` holds a different value in every row ({shown}): each row "
        f"is a class of its own; if `{label_field}` is not the rows' class, name the field "
        "that holds it (a value rows share)"
    )


def _with_accepted(
    existing: dict[str, dict[str, Counter[str]]],
    runs: list[tuple[Path, BatchConfig]],
    text_field: str,
    attributes_of: Callable[[dict[str, Any]], dict[str, str]],
) -> dict[str, dict[str, Counter[str]]]:
    """`existing` (class -> axis -> value -> rows) with the accepted rows of `runs`, their
    attributes read as the bias report reads them in merged.jsonl."""
    held = {label: {a: Counter(c) for a, c in axes.items()} for label, axes in existing.items()}
    for run_dir, _config in runs:
        for row in read_jsonl(run_dir / "text.jsonl"):
            if row["status"] != "accepted":  # only accepted rows are merged
                continue
            merged = {text_field: row["text"], "attributes": row.get("attributes")}
            for axis, value in attributes_of(merged).items():
                held.setdefault(str(row["label"]), {}).setdefault(axis, Counter())[value] += 1
    return held


def _templates_as_published(runs: list[tuple[Path, BatchConfig]], *, folder: Path) -> None:
    """Name the mined templates in the runs' manifest.json and synthgate.db as the output holds
    them, `mined_templates.yaml` (relative to the output, as balance.json names the runs): they
    were read from the temporary `folder`, gone once the output is published."""
    for run_dir, _config in runs:
        manifest_path = run_dir / "manifest.json"
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        config = manifest["config"]
        # the config holds it absolute, `folder` is as --out gave it (maybe 'out' or '../out')
        config["text"]["templates"] = (
            Path(config["text"]["templates"]).resolve().relative_to(folder.resolve()).as_posix()
        )
        write_atomic(manifest_path, dumps(manifest) + "\n")
        with Store(sqlite_url(run_dir / "synthgate.db")) as store:
            store.put_batch(
                manifest["batch_id"], name=manifest["name"], seed=manifest["seed"], config=config
            )


# How rows write the genders new rows are given as female and male (casefolded)
GENDER_SPELLINGS = {"f": "female", "w": "female", "woman": "female", "m": "male", "man": "male"}


def _spelt_otherwise(real: list[str], values: list[str]) -> dict[str, str]:
    """The real rows' values of an axis that spell a value new rows are given otherwise ('F',
    'Female' or 'woman' for 'female'), each with that value, in the order of `values`."""
    spelt = {}
    for value in real:
        key = value.strip().casefold()
        own = next((v for v in values if v.casefold() == GENDER_SPELLINGS.get(key, key)), None)
        if own is not None and own != value:
            spelt[value] = own
    return dict(sorted(spelt.items(), key=lambda item: values.index(item[1])))


def _gap_note(
    axis: str, before: dict[str, Any], after: dict[str, Any], *, values: list[str]
) -> str:
    """What balancing did to an axis's largest label-rate gap, and what the added rows carry:
    rows without the attribute are left out of the rates, so they cannot narrow the gap. Real
    rows that spell the new rows' `values` otherwise ('F' beside 'female') are groups of their
    own, whose gap to the new rows' ('female vs M') says nothing: the note says so instead."""
    old, new = before["largest_gap"], after["largest_gap"]
    added = {
        value: info["n"] - before["groups"].get(value, {"n": 0})["n"]
        for value, info in after["groups"].items()
    }
    carried = ", ".join(f"{n} {value}" for value, n in added.items() if n > 0) or "none"
    blank = after["without"] - before["without"]
    spelt = _spelt_otherwise(list(before["groups"]), values)
    if spelt:
        theirs = " and ".join(f"{own} as {value!r}" for value, own in spelt.items())
        owns = list(dict.fromkeys(spelt.values()))
        # only the values rows were added with: none may have been, or one gender alone
        grown = [own for own in owns if added.get(own, 0) > 0]
        as_added = f", the rows added as {' and '.join(map(repr, grown))}" if grown else ""
        return (
            f"{axis}: the rows write {theirs}{as_added}: the gap between groups cannot be "
            f"compared; write the rows' attributes.{axis} as {' or '.join(map(repr, owns))}. "
            f"Rows added with a {axis}: {carried}; without one: {blank}."
        )
    change = new["gap"] - old["gap"]
    moved = "narrowed" if change < -1e-9 else "grew" if change > 1e-9 else "did not narrow"
    said = (
        f"{axis}: the largest gap in a label's rate between groups {moved}, "
        f"{old['gap']:.3f} -> {new['gap']:.3f}"
        + (f" ({new['label']}: {' vs '.join(new['groups'])})" if new["label"] is not None else "")
        + f". Rows added with a {axis}: {carried}; without one: {blank}"
    )
    if blank and moved != "narrowed":
        said += f" (a row without a {axis} is left out of the rates and cannot move the gap)"
    return said + "."


STRATEGY_NAMES = {
    "counterfactual": "counterfactual rewrites",
    "mined_templates": "templates mined from the class's rows",
    "model": "the local text-generation model",
}


def _strategy_name(strategy: str) -> str:
    return STRATEGY_NAMES.get(strategy, f"the {strategy} generator")


class _Plan:
    """What each strategy could make of each class, was asked for, made and had accepted."""

    def __init__(self, lacking: dict[str, int]) -> None:
        self.lacking = lacking
        self.steps: dict[str, list[dict[str, Any]]] = {label: [] for label in lacking}

    def note(self, label: str, strategy: str, *, capacity: int | None, wanted: int) -> None:
        """A strategy asked for `wanted` rows of a class, of which it can make `capacity`
        distinct ones (None: not known)."""
        if wanted > 0:
            planned = wanted if capacity is None else min(wanted, capacity)
            self.steps[label].append(
                {"strategy": strategy, "capacity": capacity, "planned": planned}
            )

    def made(self, runs: list[tuple[Path, BatchConfig]], *, strategy: str | None) -> None:
        """Count each run's rows by status into the step that planned them (the strategy, else
        the one named after the run's generator)."""
        for run_dir, config in runs:
            step_name = strategy or (config.text.generator if config.text is not None else "")
            counts: dict[str, Counter[str]] = {}
            for row in read_jsonl(run_dir / "text.jsonl"):
                counts.setdefault(str(row["label"]), Counter())[str(row["status"])] += 1
            for label, statuses in counts.items():
                step = next(
                    (s for s in self.steps.get(label, []) if s["strategy"] == step_name), None
                )
                if step is not None:
                    for status in ("accepted", "review", "rejected"):
                        step[status] = step.get(status, 0) + statuses[status]

    def planned(self) -> dict[str, int]:
        """Per class: the rows its strategies planned, together, up to its deficit (the classes
        table's `planned`, as the image balance's is): a fallback plans again the rows an
        earlier strategy's rejects left short, which the sum would count twice; 0 for a class
        none could make a row of, though it lacked some."""
        return {
            label: min(self.lacking[label], sum(step["planned"] for step in steps))
            for label, steps in self.steps.items()
        }

    def missing(self) -> dict[str, int]:
        """Per class: the deficit less what was accepted or waits for review."""
        return {
            label: max(
                0, lack - sum(s.get("accepted", 0) + s.get("review", 0) for s in self.steps[label])
            )
            for label, lack in self.lacking.items()
        }

    def notes(self, targets: dict[str, int], after: dict[str, Any]) -> list[str]:
        lines = []
        for label, steps in self.steps.items():
            if not steps:
                continue
            lack = self.lacking[label]
            for turn, step in enumerate(steps):
                name = _strategy_name(step["strategy"])
                capacity = step["capacity"]
                said = f"{label}: {name}" + (
                    " (capacity not known)"
                    if capacity is None
                    else f" can make {capacity} distinct rows"
                )
                if capacity == 0 and step["strategy"] == "counterfactual":
                    said += ": no row of the class has a first name or a gendered term to swap"
                elif turn == 0 and capacity is not None and capacity < lack:
                    said += (
                        f", fewer than the {lack} missing: they cannot fill the class without "
                        "repeating themselves"
                    )
                said += (
                    f"; {step['planned']} planned, {step.get('accepted', 0)} accepted, "
                    f"{step.get('rejected', 0)} rejected (copies and defects), "
                    f"{step.get('review', 0)} waiting for review."
                )
                lines.append(said)
            short = targets.get(label, 0) - after[label].instances if label in after else 0
            if short > 0:
                lines.append(f"{label}: stops {short} short of its target {targets[label]}.")
        return lines

    def why_not(self, targets: dict[str, int], after: dict[str, Any]) -> dict[str, str]:
        reasons = {}
        for label, steps in self.steps.items():
            short = targets.get(label, 0) - (after[label].instances if label in after else 0)
            if short > 0 and steps:
                made = "; ".join(
                    f"{_strategy_name(s['strategy'])}: {s.get('accepted', 0)} accepted of "
                    f"{s['planned']} planned"
                    + ("" if s["capacity"] is None else f" (could make {s['capacity']})")
                    for s in steps
                )
                waiting = sum(s.get("review", 0) for s in steps)
                reasons[label] = f"{short} short: {made}" + (
                    f"; {waiting} in samples review" if waiting else ""
                )
                if not any(s["strategy"] in ("model", "text_model") for s in steps):
                    reasons[label] += (
                        "; a local text model writes new rows of a class: give the balance "
                        "config's counterfactual section model: {path: ...} (a causal language "
                        "model's folder)"
                    )
        return reasons

    def as_json(self, targets: dict[str, int], after: dict[str, Any]) -> dict[str, Any]:
        return {
            "strategies": {label: steps for label, steps in self.steps.items() if steps},
            "notes": self.notes(targets, after),
        }


def _fallback_section(
    config: CounterfactualTextConfig,
    rows: list[dict[str, Any]],
    rest: dict[str, int],
    plan: _Plan,
    *,
    jsonl_path: Path,
    text_field: str,
    label_field: str,
    bank: NameBank,
    seed: int,
    folder: Path,
) -> tuple[str, dict[str, Any], dict[str, int]]:
    """The strategy, generator section and each class's part that fill what rewrites left."""
    strategy = config.fallback
    if strategy == "auto":
        strategy = "model" if config.model is not None else "mined_templates"
    if strategy == "model":
        assert config.model is not None  # the config's validator requires it
        for label, wanted in rest.items():
            plan.note(label, "model", capacity=None, wanted=wanted)
        section = {
            "generator": "text_model",
            "source": str(jsonl_path.resolve()),
            "text_field": text_field,
            "label_field": label_field,
            "model": config.model.model_dump(mode="json"),
        }
        if config.rubric is not None:
            section["rubric"] = config.rubric
        return strategy, section, rest
    mined = mine_templates(
        rows, rest, text_field=text_field, label_field=label_field, bank=bank, seed=seed
    )
    mined.data["order"] = "cycle"  # each template once: they are as many as the rows missing
    part = {}
    for label, wanted in rest.items():
        plan.note(label, "mined_templates", capacity=mined.capacity.get(label, 0), wanted=wanted)
        part[label] = min(wanted, mined.capacity.get(label, 0))
    path = folder / "mined_templates.yaml"
    if mined.data["labels"]:  # else nothing is planned and the section does not run
        write_atomic(path, yaml.safe_dump(mined.data, allow_unicode=True, sort_keys=False))
    section = {"generator": "templates", "templates": str(path), "locales": config.locales}
    if config.rubric is not None:
        section["rubric"] = config.rubric
    return strategy, section, part
