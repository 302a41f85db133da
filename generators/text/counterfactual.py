"""Counterfactual text: label-preserving rewrites that swap names and gendered terms.

`rewrite(text, …)` replaces every first name the text uses as a name (generators/text/names.py:
a gazetteer read with its context) with one of the target locale and gender (the same name
always by the same replacement) and, when the gender changes, every gendered term (he/she,
his/her, father/mother, Mr/Ms, …, case kept); `infer_attributes` reads a row's gender and
locale from its first name or its gendered terms, and gives none the text does not carry;
`bias_report` gives the label rate per attribute group and the largest gap between groups.

`CounterfactualGenerator` (registry name `counterfactual`) makes one rewrite of a real row per
`SampleSpec`: a row of the spec's class that has a name or a gendered term to swap, rewritten to
the spec's gender and locale, with the label of the row it came from. It never copies a row: a
rewrite that swapped nothing is made again toward the other gender, and a class without a row to
swap is an error. A row is drawn among those a rewrite can turn to the spec's gender (a row whose
only gendered terms are of that gender swaps nothing and is flipped to the other, so it is drawn
only when no other row can be); a plan made whole before it runs (balance's) draws them without
replacement, each row once before any twice (`assign_sources`), else each spec draws its own.
A sample records only the attributes its text carries (the gender of the names or terms it now
holds, the locale of the names it placed). `capacity(label)` is how many distinct rewrites a
class allows: a row with names one per (gender, locale), a row with only gendered terms one (its
flip); past that, rewrites repeat, and balancing fills the rest with another strategy
(workflows/balance_text.py). Every sample carries the generator's rows as the
reference the copy check compares it with (`extras["text_reference"]`).
"""

from __future__ import annotations

import copy
import heapq
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from synthgate.config import CounterfactualTextConfig
from synthgate.errors import InputError
from synthgate.formats.jsonl import read_jsonl, row_class, row_spans
from synthgate.generators.text.names import GENDERS, WORD, NameBank
from synthgate.generators.text.rows import reference_rows
from synthgate.samples import GeneratedSample, Provenance, Sample, SampleSpec, Span, sample_id

# (male, female) pairs; "her" maps back to "his" or "him" by what follows it.
TERM_PAIRS: tuple[tuple[str, str], ...] = (
    ("he", "she"),
    ("him", "her"),
    ("his", "her"),
    ("himself", "herself"),
    ("man", "woman"),
    ("men", "women"),
    ("boy", "girl"),
    ("boys", "girls"),
    ("father", "mother"),
    ("dad", "mom"),
    ("son", "daughter"),
    ("sons", "daughters"),
    ("brother", "sister"),
    ("brothers", "sisters"),
    ("husband", "wife"),
    ("boyfriend", "girlfriend"),
    ("uncle", "aunt"),
    ("nephew", "niece"),
    ("grandfather", "grandmother"),
    ("grandson", "granddaughter"),
    ("gentleman", "lady"),
    ("gentlemen", "ladies"),
    ("mr", "ms"),
    ("sir", "madam"),
    ("king", "queen"),
    ("male", "female"),
)
TO_FEMALE = {m: f for m, f in TERM_PAIRS}
TO_MALE = {f: m for m, f in reversed(TERM_PAIRS)}  # "her" -> "him" here; "his" by context below
TERM_GENDER = {**dict.fromkeys(TO_FEMALE, "male"), **dict.fromkeys(TO_MALE, "female")}
HIM_FOLLOWERS = frozenset(
    [
        "and",
        "or",
        "but",
        "to",
        "the",
        "a",
        "an",
        "for",
        "with",
        "at",
        "in",
        "on",
        "of",
        "by",
        "from",
        "up",
        "out",
        ".",
        ",",
        "!",
        "?",
    ]
)


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def has_gendered_term(text: str) -> bool:
    """Whether the text holds any gendered term (he, her, wife, ...), of one gender or both."""
    return any(w.lower() in TERM_GENDER for w in WORD.findall(text))


def term_gender(text: str) -> str | None:
    """The gender most of the text's gendered terms point to (None if none or a tie)."""
    votes = Counter(TERM_GENDER[w.lower()] for w in WORD.findall(text) if w.lower() in TERM_GENDER)
    if not votes or votes["female"] == votes["male"]:
        return None
    return votes.most_common(1)[0][0]


def infer_attributes(text: str, bank: NameBank) -> dict[str, str]:
    """Gender and locale of a text: from its first known name, else gender from its terms."""
    found = bank.find(text)
    if found:
        locale, gender = bank.owner[found[0][2]]
        return {"gender": gender, "locale": locale}
    from_terms = term_gender(text)
    return {"gender": from_terms} if from_terms else {}


@dataclass
class Rewrite:
    text: str
    swaps: list[tuple[str, str]]
    # (start, end) of each piece of the old text replaced, in order, and what replaced it
    edits: list[tuple[int, int, str]]

    def moved(self, position: int, *, end: bool) -> int:
        """Where an offset of the old text lies in the new one: after the edits before it; one
        inside an edit goes to the edit's start (a span's start) or end (a span's end)."""
        shift = 0
        for start, stop, new in self.edits:
            if stop <= position:
                shift += len(new) - (stop - start)
            elif start < position:
                return start + shift + (len(new) if end else 0)
            else:
                break
        return position + shift


def rewrite(
    text: str, *, gender: str, locale: str, bank: NameBank, rng: np.random.Generator
) -> Rewrite:
    """`text` with its names from `locale`/`gender`, and its gendered terms turned to `gender`.

    The text's own gender comes from its first name, else from its gendered terms.
    """
    pool = bank.names.get(locale, {}).get(gender)
    if not pool:
        raise InputError(f"counterfactual: Faker has no {gender} first names for {locale!r}")
    replacement: dict[str, str] = {}
    edits: list[tuple[int, int, str]] = []
    for start, end, name in bank.find(text):
        if name not in replacement:
            choices = [n for n in pool if n != name and n not in replacement.values()] or pool
            replacement[name] = choices[int(rng.integers(len(choices)))]
        edits.append((start, end, replacement[name]))
    # When the text's own gender is known and differs, every gendered term flips (as in
    # counterfactual data augmentation: "she gave her dad" -> "he gave his mom"); when it is
    # unknown, terms of the other gender are turned to the target one.
    source = infer_attributes(text, bank).get("gender")
    flip_all = source is not None and source != gender
    words = list(WORD.finditer(text))
    for position, match in enumerate(words):
        word = match.group()
        lower = word.lower()
        if lower not in TERM_GENDER or source == gender:
            continue
        if not flip_all and TERM_GENDER[lower] == gender:
            continue
        if any(s <= match.start() < e for s, e, _ in edits):
            continue
        new = (TO_MALE if TERM_GENDER[lower] == "female" else TO_FEMALE)[lower]
        if lower == "her":  # possessive (her book -> his book) or object (to her -> to him)
            following = text[match.end() :].lstrip()[:1]
            nxt = words[position + 1].group().lower() if position + 1 < len(words) else ""
            possessive = following.isalnum() and nxt not in HIM_FOLLOWERS
            new = "his" if possessive else "him"
        edits.append((match.start(), match.end(), _match_case(word, new)))
    pieces, last, swaps = [], 0, []
    for start, end, new in sorted(edits):
        pieces += [text[last:start], new]
        swaps.append((text[start:end], new))
        last = end
    pieces.append(text[last:])
    return Rewrite(text="".join(pieces), swaps=swaps, edits=sorted(edits))


def bias_report(
    rows: list[dict[str, Any]],
    *,
    label_of: Callable[[dict[str, Any]], str],
    axis: str,
    attributes_of: Callable[[dict[str, Any]], dict[str, str]],
) -> dict[str, Any]:
    """Label rate per group of `axis` and the gap; rows without the attribute are left out,
    and counted (`without`): a text that names no one and holds no gendered term has no gender.

    `largest_gap` is the label whose rate differs most between two groups, with both groups.
    """
    groups: dict[str, Counter[str]] = defaultdict(Counter)
    without = 0
    for row in rows:
        value = attributes_of(row).get(axis)
        if value is not None:
            groups[value][label_of(row)] += 1
        else:
            without += 1
    labels = sorted({label for counts in groups.values() for label in counts})
    table: dict[str, dict[str, Any]] = {
        value: {
            "n": sum(counts.values()),
            "rates": {label: counts[label] / sum(counts.values()) for label in labels},
        }
        for value, counts in sorted(groups.items())
    }
    largest: dict[str, Any] = {"label": None, "groups": [], "gap": 0.0}
    for label in labels:
        rates = {value: info["rates"][label] for value, info in table.items()}
        if len(rates) < 2:
            continue
        high, low = max(rates, key=rates.__getitem__), min(rates, key=rates.__getitem__)
        if rates[high] - rates[low] > largest["gap"]:
            largest = {"label": label, "groups": [high, low], "gap": rates[high] - rates[low]}
    return {"axis": axis, "groups": table, "without": without, "largest_gap": largest}


def rows_read(config: CounterfactualTextConfig) -> tuple[Path, str, str]:
    """What a generator's analysis of its rows depends on: their file and the fields it reads."""
    return config.source, config.text_field, config.label_field


class CounterfactualGenerator:
    """One rewrite of a real row of the spec's class per spec; the label is the row's label."""

    name: ClassVar[str] = "counterfactual"
    version: ClassVar[str] = "2"
    modality: ClassVar[str] = "text"

    def __init__(
        self,
        config: CounterfactualTextConfig,
        *,
        categories: list[str],
        rows: list[dict[str, Any]] | None = None,
        bank: NameBank | None = None,
    ) -> None:
        self.config = config
        self.rows = rows if rows is not None else read_jsonl(config.source)
        self.bank_given = bank is not None  # else built from the config's locales
        self.bank = bank or NameBank.build(config.locales)
        self.by_label: dict[str, list[int]] = defaultdict(list)
        # A row of a classification file may label names and places too (NER): a rewrite keeps
        # its row's spans, moved with the swaps. A field of that name holding no spans (keywords,
        # `entities: ["Sarah"]`) gives its rewrites none, as they had before they kept spans.
        self.spans: list[list[Span]] = []
        for position, row in enumerate(self.rows):
            text, label = row.get(config.text_field), row_class(row, config.label_field)
            if not isinstance(text, str) or label is None:
                raise InputError(
                    f"{config.source}: row {position + 1} needs a text `{config.text_field}` "
                    f"and a label `{config.label_field}`"
                )
            self.by_label[str(label)].append(position)
            try:
                self.spans.append(row_spans(row, label_field=config.label_field))
            except ValueError:
                self.spans.append([])
        # The judge's taxonomy: every class of the rows (a rewrite keeps its row's label) and
        # their span labels. A run of a config without `categories` judged against none: every
        # sample went to review.
        span_labels = [span.label for spans in self.spans for span in spans]
        self.label_names = list(dict.fromkeys([*categories, *self.by_label, *span_labels]))
        # Only rows with something to swap: rewriting a row with nothing to swap copies it.
        self.named: dict[str, list[int]] = {}
        self.swappable: dict[str, list[int]] = {}
        self.toward: dict[str, dict[str, list[int]]] = {}
        # each pool as a set, made once: a plan's drawn row is checked against it per spec
        self._pool_members: dict[tuple[str, str | None], frozenset[int]] = {}
        for label, positions in self.by_label.items():
            texts = {i: self.rows[i][config.text_field] for i in positions}
            self.named[label] = [i for i in positions if self.bank.find(texts[i])]
            self.swappable[label] = [
                i for i in positions if i in self.named[label] or term_gender(texts[i])
            ]
            # Per gender, the rows a rewrite can turn to it: any with a name, and those whose
            # terms are of the other gender.
            named = set(self.named[label])
            self.toward[label] = {
                gender: [
                    i
                    for i in self.swappable[label]
                    if i in named or term_gender(texts[i]) != gender
                ]
                for gender in GENDERS
            }
        self.reference = reference_rows(
            self.rows, text_field=config.text_field, source=config.source.name
        )

    def under(self, config: CounterfactualTextConfig) -> CounterfactualGenerator:
        """This generator under another config that reads the same rows (`rows_read`) with the
        same names: the rows' analysis is kept, not redone (a balance plans with one and runs
        with another, both on its bank)."""
        if rows_read(config) != rows_read(self.config):
            raise ValueError(f"{rows_read(config)} reads other rows than {rows_read(self.config)}")
        if not self.bank_given and config.locales != self.config.locales:
            raise ValueError(
                f"locales {config.locales} find other names than {self.config.locales}, "
                "whose names this generator's bank holds; pass one bank to both"
            )
        twin = copy.copy(self)
        twin.config = config
        return twin

    def capacity(self, label: str) -> int:
        """Distinct rewrites the class allows: per row with names one per (gender, locale),
        per row with only gendered terms one (its flip)."""
        named = len(self.named.get(label, []))
        terms_only = len(self.swappable.get(label, [])) - named
        return named * len(GENDERS) * len(self.config.locales) + terms_only

    def gender_limits(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per class without a name to swap, how many distinct rewrites of each gender it can
        make (`{label: {"gender": {gender: n}}}`): a row of gendered terms flips one way only, so
        a class of rows of female terms makes no female rewrite. A class with names makes any."""
        return {
            label: {"gender": {gender: len(self.toward[label][gender]) for gender in GENDERS}}
            for label, rows in self.swappable.items()
            if rows and not self.named[label]
        }

    def quota_categories(self) -> list[str | None]:
        labels: list[str | None] = [label for label, rows in self.swappable.items() if rows]
        if not labels:
            raise InputError(
                f"{self.config.source}: no row has a first name or a gendered term to swap, so "
                "every counterfactual rewrite would copy a real row; use the templates "
                "generator, or balance, which mines templates from the rows"
            )
        return labels

    def assign_sources(self, specs: list[SampleSpec]) -> list[SampleSpec]:
        """A whole plan's specs, each with the row it rewrites (params `row`, its position):
        per class, each row a rewrite can turn to the spec's gender is drawn once before any is
        drawn again (fewest draws first, ties in an order shuffled by the class's first seed).
        Drawn per spec, a row came up twice while others were left, and a row with only
        gendered terms flips to the same text each time: the copy check rejected the second.
        Run on the whole plan at once (balance), so that each chunk makes what it would alone."""
        draws: Counter[int] = Counter()
        rank: dict[str, dict[int, int]] = {}
        # per pool, its rows as (draws, rank, position); a row drawn from another pool (the
        # other gender's) is stale there and put back with its draws when it comes up
        heaps: dict[tuple[str, str | None], list[tuple[int, int, int]]] = {}
        assigned = []
        for spec in specs:
            label = spec.category
            if label is None or not self.swappable.get(label):
                assigned.append(spec)  # `_make` draws, or names what is wrong
                continue
            if label not in rank:
                order = np.random.default_rng(spec.seed).permutation(len(self.swappable[label]))
                rank[label] = {self.swappable[label][k]: turn for turn, k in enumerate(order)}
            asked = spec.attributes.get("gender")
            pool = self._pool(label, asked)
            key = (label, asked if asked in GENDERS and self.toward[label][asked] else None)
            if key not in heaps:
                heaps[key] = [(draws[i], rank[label][i], i) for i in pool]
                heapq.heapify(heaps[key])
            heap = heaps[key]
            while heap[0][0] != draws[heap[0][2]]:
                _, turn, position = heap[0]
                heapq.heapreplace(heap, (draws[position], turn, position))
            _, turn, position = heap[0]
            draws[position] += 1
            heapq.heapreplace(heap, (draws[position], turn, position))
            assigned.append(spec.model_copy(update={"params": {**spec.params, "row": position}}))
        return assigned

    def _pool(self, label: str, asked: str | None) -> list[int]:
        """The rows of a class a rewrite toward `asked` is drawn from: those it can turn to that
        gender (a row with only terms of that gender could only be flipped away), else any."""
        pool = self.swappable[label]
        if asked in GENDERS:
            pool = self.toward[label][asked] or pool
        return pool

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        return [
            GeneratedSample(sample=self._make(spec), extras={"text_reference": self.reference})
            for spec in specs
        ]

    def _make(self, spec: SampleSpec) -> Sample:
        config = self.config
        rng = np.random.default_rng(spec.seed)
        label = spec.category
        if label is None:  # no quota asked for: any class with a row to rewrite
            labels = self.quota_categories()
            label = str(labels[int(rng.integers(len(labels)))])
        if label not in self.by_label:
            raise InputError(
                f"{config.source}: no row with {config.label_field} {label!r} to rewrite"
            )
        pool = self.swappable[label]
        if not pool:
            raise InputError(
                f"{config.source}: no row with {config.label_field} {label!r} has a first name "
                "or a gendered term to swap; a rewrite would copy it (balance fills such a "
                "class with templates mined from its rows)"
            )
        asked = spec.attributes.get("gender")
        pool = self._pool(label, asked)
        position = spec.params.get("row")  # drawn for the whole plan (`assign_sources`)
        key = (label, asked if asked in GENDERS else None)  # `_pool` reads no other value
        members = self._pool_members.get(key)
        if members is None:
            members = self._pool_members[key] = frozenset(pool)
        if type(position) is not int or position not in members:
            position = pool[int(rng.integers(len(pool)))]
        row = self.rows[position]
        gender = asked or GENDERS[int(rng.integers(2))]
        locale = (
            spec.attributes.get("locale") or config.locales[int(rng.integers(len(config.locales)))]
        )
        text = row[config.text_field]
        result = rewrite(text, gender=gender, locale=locale, bank=self.bank, rng=rng)
        if not result.swaps:  # gendered terms of the target gender already: flip them instead
            gender = GENDERS[1 - GENDERS.index(gender)]
            result = rewrite(text, gender=gender, locale=locale, bank=self.bank, rng=rng)
        names_placed = any(old in self.bank.owner for old, _ in result.swaps)
        attributes = {}
        if names_placed or term_gender(result.text) == gender:
            attributes["gender"] = gender
        if names_placed:
            attributes["locale"] = locale
        return Sample(
            id=sample_id(spec.batch_id, "text", spec.index),
            spec=spec,
            text=result.text,
            spans=[
                Span(
                    start=result.moved(span.start, end=False),
                    end=result.moved(span.end, end=True),
                    label=span.label,
                )
                for span in self.spans[position]
            ],
            doc_label=label,
            attributes=attributes,
            provenance=Provenance(
                generator=self.name,
                generator_version=self.version,
                seed=spec.seed,
                params={
                    "source": config.source.name,
                    "source_row": position + 1,
                    "source_id": row.get("id"),
                    "swaps": [list(s) for s in result.swaps],
                },
            ),
        )
