"""What a set of reports says together: counts per criterion level, routes, and *why*.

`ValidationSummary` is fed one report at a time (it keeps counters and a few example ids, never
the reports) and answers with a dict (`--json`), a plain-text table (`synthgate validate`) and
the Markdown error analysis of a run report: findings counted by criterion, check and level,
with the rubric's descriptor ("precision_box_tightness: 212 findings, needs re-annotation: > 5
px"), so a reader learns why samples failed, not only how many.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from synthgate.errors import counted
from synthgate.samples import Finding, RubricReport
from synthgate.validators.checks.base import CHECKS
from synthgate.validators.rubric import Rubric

EXAMPLES = 3
ROUTES = ("accepted", "review", "rejected")
# Where a `<` can open raw HTML in CommonMark: a tag, a closing tag, a comment or declaration,
# a processing instruction (and an autolink, which also starts with a letter).
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def markdown_text(value: object) -> str:
    """Text for report.md, where Markdown viewers (GitHub, VS Code, Jupyter) render raw HTML: a
    class name such as `<img src=x onerror=...>` from a real dataset is shown, not run. Only a
    `<` that could open a tag is written `&lt;`; a rule's "< 8 px" stays as it reads."""
    return _TAG_START.sub("&lt;", str(value))


@dataclass
class FindingGroup:
    criterion: str
    check: str
    measure: str | None
    level: int
    count: int = 0
    samples: int = 0
    examples: list[str] = field(default_factory=list)
    _last: str | None = field(default=None, repr=False)  # the sample counted last


class ValidationSummary:
    """Counters over a stream of reports, for one rubric."""

    def __init__(self, rubric: Rubric) -> None:
        self.rubric = rubric
        self.samples = 0
        self.score_total = 0.0
        self.routes: Counter[str] = Counter()
        self.audit = 0
        self.levels: dict[str, Counter[int]] = {c: Counter() for c in rubric.criteria}
        self.groups: dict[tuple[str, str, str | None, int], FindingGroup] = {}
        self.dataset: list[Finding] = []

    def add(self, name: str, report: RubricReport) -> None:
        """Count one report; `name` is how examples refer to the sample (its id)."""
        self.samples += 1
        self.score_total += report.score
        self.routes[report.route] += 1
        self.audit += int(report.audit)
        for criterion, level in report.levels.items():
            self.levels.setdefault(criterion, Counter())[level] += 1
        for finding in report.findings:
            key = (finding.criterion, finding.check, finding.measure, finding.level)
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = FindingGroup(*key)
            group.count += 1
            if group._last != name:
                group.samples += 1
                group._last = name
                if len(group.examples) < EXAMPLES:
                    where = "" if finding.annotation_id is None else f" ann {finding.annotation_id}"
                    group.examples.append(f"{name}{where}")

    def __eq__(self, other: object) -> bool:
        """The same rubric and counts: a file judged again gives an equal summary (and so an
        equal `ValidationResult`), where it was equal to itself alone."""
        if not isinstance(other, ValidationSummary):
            return NotImplemented
        return vars(self) == vars(other)

    def __repr__(self) -> str:
        return f"ValidationSummary(rubric={self.rubric.name!r}, {self.brief()})"

    def brief(self) -> str:
        """The counts, as a repr shows them (a notebook prints a repr whole: no findings), each
        by the name of the attribute that holds it: `findings` and `dataset` counted."""
        routes = {route: self.routes.get(route, 0) for route in ROUTES}
        return (
            f"samples={self.samples}, mean_score={self.mean_score}, routes={routes}, "
            f"audit={self.audit}, findings=<{counted(len(self.groups), 'group')}>, "
            f"dataset=<{counted(len(self.dataset), 'finding')}>"
        )

    def __str__(self) -> str:
        return self.table()

    @property
    def mean_score(self) -> float:
        return round(self.score_total / self.samples, 3) if self.samples else 0.0

    @property
    def findings(self) -> list[FindingGroup]:
        """The findings by criterion, check, measure and level (`ranked`): what `as_dict()`
        lists as "findings", and what `validate_coco`'s docstring names."""
        return self.ranked()

    def ranked(self) -> list[FindingGroup]:
        """Finding groups, worst level first, then most frequent."""
        return sorted(self.groups.values(), key=lambda g: (g.level, -g.count, g.check))

    def describe(self, group: FindingGroup) -> str:
        """The rubric's descriptor of a group's level, e.g. 'needs re-annotation: > 5 px'."""
        if group.measure is None:
            return ""
        threshold = self.rubric.threshold_of(group.check, group.measure)
        check = CHECKS.get(group.check)
        if threshold is None or check is None or group.measure not in check.measures:
            return ""
        return threshold.describe(group.level, check.measures[group.measure])  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "mean_score": self.mean_score,
            "routes": {route: self.routes.get(route, 0) for route in ROUTES},
            "audit": self.audit,
            "levels": {
                criterion: {str(level): counts.get(level, 0) for level in (5, 3, 1)}
                for criterion, counts in self.levels.items()
            },
            "findings": [
                {
                    "criterion": g.criterion,
                    "check": g.check,
                    "measure": g.measure,
                    "level": g.level,
                    "rule": self.describe(g),
                    "findings": g.count,
                    "samples": g.samples,
                    "examples": g.examples,
                }
                for g in self.ranked()
            ],
            "dataset": [f.model_dump(exclude_none=True) for f in self.dataset],
        }

    def table(self, *, top: int = 10) -> str:
        """Plain-text summary: levels per criterion, routes, then the most frequent findings."""
        lines = [
            f"rubric {self.rubric.name}: {counted(self.samples, 'sample')}, "
            f"mean score {self.mean_score:.2f}",
            "routes: "
            + ", ".join(f"{route} {self.routes.get(route, 0)}" for route in ROUTES)
            + (f" (audit {self.audit})" if self.audit else ""),
            "",
            f"{'criterion':<14}{'severity':<10}{'5':>8}{'3':>8}{'1':>8}",
        ]
        for name, criterion in self.rubric.criteria.items():
            counts = self.levels.get(name, Counter())
            lines.append(
                f"{name:<14}{criterion.severity:<10}"
                + "".join(f"{counts.get(level, 0):>8}" for level in (5, 3, 1))
            )
        ranked = self.ranked()
        if ranked:
            lines += ["", "most frequent findings (level, check, rule: findings in samples; e.g.)"]
            for g in ranked[:top]:
                lines.append(
                    f"  {g.level}  {g.check}.{g.measure}  {self.describe(g)}: "
                    f"{g.count} in {counted(g.samples, 'sample')}; e.g. {', '.join(g.examples)}"
                )
            if len(ranked) > top:
                lines.append(f"  … and {len(ranked) - top} more kinds of finding (see --json)")
        if self.dataset:
            lines += ["", "dataset findings"]
            lines += [f"  {f.level}  {f.check}: {f.message}" for f in self.dataset]
        return "\n".join(lines)

    def markdown(self, *, title: str = "Error analysis") -> str:
        """The error-analysis section of a run report."""
        out = [f"### {title} (rubric `{markdown_text(self.rubric.name)}`)", ""]
        out.append(
            f"{counted(self.samples, 'sample')}, mean score {self.mean_score:.2f}; "
            + ", ".join(f"{route} {self.routes.get(route, 0)}" for route in ROUTES)
            + (f" ({self.audit} accepted samples drawn for audit)" if self.audit else "")
            + "."
        )
        out += [
            "",
            "| criterion | severity | level 5 | level 3 | level 1 |",
            "|---|---|---:|---:|---:|",
        ]
        for name, criterion in self.rubric.criteria.items():
            counts = self.levels.get(name, Counter())
            out.append(
                f"| {markdown_text(name)} | {criterion.severity} | "
                + " | ".join(str(counts.get(level, 0)) for level in (5, 3, 1))
                + " |"
            )
        ranked = self.ranked()
        out.append("")
        if not ranked:
            out.append("No findings: every check measured gold.")
        else:
            out += [
                "Why samples lost points, by criterion and check:",
                "",
                "| criterion | check | measure | level | rule | findings | samples | examples |",
                "|---|---|---|---:|---|---:|---:|---|",
            ]
            for g in ranked:
                out.append(
                    f"| {markdown_text(g.criterion)} | {g.check} | {g.measure or ''} | {g.level} | "
                    f"{markdown_text(self.describe(g))} | {g.count} | {g.samples} | "
                    f"{markdown_text(', '.join(g.examples))} |"
                )
        if self.dataset:
            out += ["", "Dataset checks:", ""]
            # A dataset finding names classes of the data (class_quotas: "class '<img ...>'")
            out += [
                f"- level {f.level} `{f.check}`: {markdown_text(f.message)}" for f in self.dataset
            ]
        return "\n".join(out) + "\n"


def run_report_markdown(
    name: str, batch_id: str, summaries: Mapping[str, ValidationSummary]
) -> str:
    """report.md of a run: per modality, the routes, the levels and the error analysis."""
    out = [f"# Run report: {markdown_text(name)}", "", f"Batch `{markdown_text(batch_id)}`.", ""]
    for modality, summary in summaries.items():
        out += [f"## {modality}", "", summary.markdown()]
    return "\n".join(out)
