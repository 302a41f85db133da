"""Templates mined from a class's real rows: what balancing falls back on when rewrites run out.

`mine_templates(rows, wanted, …)` turns the rows of each class into classification templates
for the `templates` generator: every template joins the opening sentence of one row with a later
sentence of another row of the same class (rows of one sentence pair with each other), so it
says what the class's rows say without being any one of them, and its slots are the parts of
the sentences that vary between rows: first names (generators/text/names.py, read with their
context) become `{:first_name}`, numbers `{:@number}` (the numbers the rows use). A pair whose
sentences come from one row, or that spells out a real row, is never a template; nor is one
that holds a whole real row word for word (a one-sentence row with no slot to vary): two such
rows joined end to end were templates, copies of both that the copy check could not see. Nor
is a pair of the same sentence twice, or one with a name slot and a gendered term ("his", "her
husband"): the templates generator fills the name by the sample's gender, the term stays as the
row wrote it, so "{:first_name} said nobody answered his emails" made "Linda ... his emails".

`MinedTemplates.capacity[label]` is how many distinct templates the class's rows give; the
file holds at most `wanted[label]` of them per class, in a seeded order, for the templates
generator's `order: cycle` to use each once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synthgate.generators.text.counterfactual import has_gendered_term
from synthgate.generators.text.names import NameBank
from synthgate.generators.text.slots import clean_whitespace

END_MARK = re.compile(r"[.!?…]+[\"'”’)]*(?=\s|$)")  # closing quotes and brackets stay with it
# Words a full stop follows inside a sentence: "Dr. Smith", "e.g. this", "5 p.m. today"
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st sr jr mt vs etc approx dept est fig inc ltd co corp".split()  # noqa: SIM905
)
INITIALS = re.compile(r"(?:[^\W\d_]\.)*[^\W\d_]")  # the word before the stop
NUMBER = re.compile(r"(?<![\w.,])\d+(?![\w.,]\d)")


@dataclass
class MinedTemplates:
    """A template file's content (`data`, for YAML) and how many templates each class allows."""

    data: dict[str, Any]
    capacity: dict[str, int] = field(default_factory=dict)


def sentences(text: str) -> list[str]:
    """The sentences of a text, whitespace collapsed (a text without an end mark is one).

    A sentence ends at an end mark followed by a space (or the text's end), not inside a number
    ("3.50"), not after an abbreviation or an initial ("Dr.", "e.g.", "p.m.", "J."), and not at
    a full stop or an ellipsis the next word follows in lower case ("!" and "?" always end one)."""
    text = clean_whitespace(text)
    found, start = [], 0
    for mark in END_MARK.finditer(text):
        if mark.end() < len(text) and not _ends_sentence(text, mark):
            continue
        found.append(text[start : mark.end()].strip())
        start = mark.end()
    found.append(text[start:].strip())
    return [s for s in found if any(c.isalnum() for c in s)]


def _ends_sentence(text: str, mark: re.Match[str]) -> bool:
    stops = mark.group().rstrip("\"'”’)")
    if "!" in stops or "?" in stops:
        return True
    if text[mark.end() :].lstrip()[:1].islower():  # "I was... not sure", "e.g. this"
        return False
    if stops != ".":
        return True
    word = text[: mark.start()].rsplit(" ", 1)[-1]
    # an initial ("J."), or letters each with its stop ("e.g.", "p.m.", "U.S."), but not a
    # price, a date or a domain ("12.99.", "12.03.2024.", "example.com."), which end one
    initial = INITIALS.fullmatch(word) is not None
    return not (initial or word.lower() in ABBREVIATIONS)


def slotted(sentence: str, bank: NameBank) -> str:
    """A sentence as template text: braces doubled, names and numbers turned into slots."""
    edits = [(start, end, NAME_SLOT) for start, end, _ in bank.find(sentence)]
    taken = [(start, end) for start, end, _ in edits]
    for match in NUMBER.finditer(sentence):
        if not any(s < match.end() and match.start() < e for s, e in taken):
            edits.append((match.start(), match.end(), "{:@number}"))
    pieces, last = [], 0
    for start, end, slot in sorted(edits):
        pieces += [_escaped(sentence[last:start]), slot]
        last = end
    pieces.append(_escaped(sentence[last:]))
    return "".join(pieces)


def _folded(text: str) -> str:
    """A text as rows are compared: case folded, whitespace collapsed."""
    return " ".join(text.casefold().split())


NAME_SLOT = "{:first_name}"


def _escaped(literal: str) -> str:
    return literal.replace("{", "{{").replace("}", "}}")


def mine_templates(
    rows: Sequence[Mapping[str, Any]],
    wanted: Mapping[str, int],
    *,
    text_field: str,
    label_field: str,
    bank: NameBank,
    seed: int,
) -> MinedTemplates:
    """Templates for every class in `wanted` (at most `wanted[label]` each); see module doc."""
    real = {_folded(str(row[text_field])) for row in rows}
    numbers: set[str] = set()
    templates: dict[str, list[str]] = {}
    capacity: dict[str, int] = {}
    for label, count in wanted.items():
        split = [sentences(str(r[text_field])) for r in rows if str(r[label_field]) == label]
        split = [s for s in split if s]
        openings = [(row, s[0]) for row, s in enumerate(split)]
        later = [(row, t) for row, s in enumerate(split) for t in s[1:]] or openings
        slots = {t: slotted(t, bank) for _, t in (*openings, *later)}  # once per sentence
        verbatim = {t for t in slots if slots[t] == _escaped(t) and _folded(t) in real}
        gendered = {t: has_gendered_term(t) for t in slots}  # "She told him": both
        pairs: dict[str, None] = {}  # template text -> None: distinct, in a stable order
        for row_a, first in openings:
            for row_b, second in later:
                text = f"{first} {second}"
                if row_a == row_b or _folded(text) in real or {first, second} & verbatim:
                    continue
                template = f"{slots[first]} {slots[second]}"
                mixed = NAME_SLOT in template and (gendered[first] or gendered[second])
                if slots[first] == slots[second] or mixed:
                    continue
                pairs.setdefault(template, None)
        choices = list(pairs)
        capacity[label] = len(choices)
        if not choices or count <= 0:
            continue
        order = np.random.default_rng([seed, len(label), *label.encode()]).permutation(len(choices))
        templates[label] = [choices[i] for i in order[:count]]
        if any("{:@number}" in template for template in templates[label]):
            numbers.update(_numbers_of(split))
    data: dict[str, Any] = {"task": "classification", "labels": sorted(templates)}
    if numbers:
        data["lexicons"] = {"number": sorted(numbers, key=lambda n: (len(n), n))}
    data["templates"] = templates
    return MinedTemplates(data=data, capacity=capacity)


def _numbers_of(split: list[list[str]]) -> set[str]:
    return {m.group() for row in split for s in row for m in NUMBER.finditer(s)}
