"""Text checks, table-driven against ner.yaml / classification.yaml: each defect trips its check
at the level the YAML gives; clean texts trip nothing."""

from __future__ import annotations

import unicodedata

import pytest

from synthgate.samples import GeneratedSample, Provenance, RubricReport, Sample, SampleSpec, Span
from synthgate.validators.checks.base import CHECKS
from synthgate.validators.context import (
    TextIndex,
    ValidationContext,
    jaccard,
    text_reference_index,
    word_shingles,
)
from synthgate.validators.measure import judge_sample
from synthgate.validators.rubric import Rubric, load_rubric

NER = load_rubric("ner")
CLASSIFICATION = load_rubric("classification")
LABELS = ["PERSON", "ORG", "PRODUCT", "positive", "negative"]
CLEAN = "Hi, I'm Ada Lovelace from Acme Corp; my router broke."


def spans_of(text: str, *pieces: tuple[str, str]) -> list[Span]:
    return [
        Span(start=text.index(value), end=text.index(value) + len(value), label=label, value=value)
        for value, label in pieces
    ]


def text_sample(
    text: str = CLEAN, spans: list[Span] | None = None, *, label: str | None = None, n: int = 0
) -> GeneratedSample:
    if spans is None:
        spans = spans_of(text, ("Ada Lovelace", "PERSON"), ("Acme Corp", "ORG"))
    sample = Sample(
        id=f"txt-{n}",
        spec=SampleSpec(batch_id="b", index=n, modality="text", generator="templates", seed=n),
        text=text,
        spans=spans,
        doc_label=label,
        provenance=Provenance(generator="templates", generator_version="1", seed=n),
    )
    return GeneratedSample(sample=sample)


def judge(
    generated: GeneratedSample, rubric: Rubric = NER, context: ValidationContext | None = None
) -> RubricReport:
    return judge_sample(generated, rubric, context or ValidationContext.for_taxonomy(LABELS))


def span(start: int, end: int, label: str = "PERSON", value: str | None = None) -> Span:
    return Span(start=start, end=end, label=label, value=value)


ADA = CLEAN.index("Ada")
ACME = CLEAN.index("Acme")
RENE = "Merci, Rene\u0301 Dubois a appelé."

# (name, text, spans, check, measure, value)
TEXT_CASES = [
    ("span swallows a trailing comma", "Hi, Ada Lovelace, here.", [span(4, 17)],
     "precision_span_boundaries", "span_edge_chars", 1),
    ("span swallows a leading space", CLEAN, [span(ADA - 1, ADA + 12)],
     "precision_span_boundaries", "span_edge_chars", 1),
    ("span cuts a word", CLEAN, [span(ADA, ADA + 10)],
     "precision_span_boundaries", "span_cuts_word", 1),
    # "Rene" + U+0301 (decomposed "René"): the accent belongs to the "e" before it
    ("span ends before a combining accent", RENE, [span(7, 11)],
     "precision_span_boundaries", "span_cuts_word", 1),
    ("span starts on a combining accent", RENE, [span(11, 19)],
     "precision_span_boundaries", "span_cuts_word", 1),
    ("span shifted by one", CLEAN, [span(ADA + 1, ADA + 13, value="Ada Lovelace")],
     "correctness_span_alignment", "span_misaligned", 1),
    ("span past the end", CLEAN, [span(ADA, len(CLEAN) + 4)],
     "correctness_span_alignment", "span_out_of_bounds", 1),
    ("empty span", CLEAN, [span(ADA, ADA)],
     "correctness_span_alignment", "span_out_of_bounds", 1),
    ("label outside taxonomy", CLEAN, [span(ADA, ADA + 12, label="ALIEN")],
     "correctness_label_in_taxonomy", "label_unknown", 1),
    ("overlapping spans", CLEAN, [span(ADA, ADA + 12), span(ADA + 4, ADA + 12, label="ORG")],
     "precision_span_overlap", "span_overlap_chars", 8),
    ("unfilled slot", "Hi, I'm {PERSON:name} from {ORG:company}.", [],
     "completeness_unfilled_slots", "unfilled_slots", 2),
    ("unfilled lexicon slot", "My {:@product} broke.", [],
     "completeness_unfilled_slots", "unfilled_slots", 1),
    ("empty text", "", [], "correctness_text_present", "text_blank", 1),
    ("whitespace-only text", " \n\t", [], "correctness_text_present", "text_blank", 1),
    ("too short", "Hi.", [], "clarity_text_length", "text_chars", 3),
    ("overlong", "word " * 600, [], "clarity_text_length", "text_overlength_chars", 999),
]  # fmt: skip


def yaml_level(rubric: Rubric, check: str, measure: str, value: float) -> int:
    threshold = rubric.threshold_of(check, measure)
    assert threshold is not None
    return threshold.level(value, CHECKS[check].measures[measure].worse)


def test_clean_text_is_gold() -> None:
    report = judge(text_sample())
    assert report.findings == [] and report.score == 5.0 and report.route == "accepted"


@pytest.mark.parametrize(
    ("name", "text", "spans", "check", "measure", "value"),
    TEXT_CASES,
    ids=[case[0] for case in TEXT_CASES],
)
def test_defect_trips_its_check_at_the_yaml_level(
    name: str, text: str, spans: list[Span], check: str, measure: str, value: float
) -> None:
    report = judge(text_sample(text, spans))
    expected = yaml_level(NER, check, measure, value)
    assert expected < 5
    hits = [f for f in report.findings if f.check == check and f.measure == measure]
    assert hits, f"{name}: no {check}.{measure} finding in {report.findings}"
    assert min(f.level for f in hits) == expected
    assert report.levels[CHECKS[check].criterion] <= expected


def test_trailing_comma_is_flagged_with_the_span_and_routed_to_review() -> None:
    report = judge(text_sample("Hi, Ada Lovelace, here.", [span(4, 17)]))
    finding = next(f for f in report.findings if f.check == "precision_span_boundaries")
    assert finding.level == 1 and finding.span_index == 0 and "'Ada Lovelace,'" in finding.message
    assert report.levels["precision"] == 1 and report.route == "review"


@pytest.mark.parametrize("label", [None, "", " "])
def test_a_classified_text_without_a_label_is_told_once_with_the_taxonomy_known(
    label: str | None,
) -> None:
    report = judge(text_sample(CLEAN, [], label=label), CLASSIFICATION)
    assert [f.message for f in report.findings if f.check == "correctness_label_in_taxonomy"] == [
        "no document label; give the text its class (needs re-annotation: any)"
    ]
    assert report.route == "review"


@pytest.mark.parametrize("rubric", [NER, CLASSIFICATION], ids=["ner", "classification"])
def test_a_blank_text_is_rejected_as_a_blank_image_is(rubric: Rubric) -> None:
    """A correctness failure (labels of no text) beside clarity's 0 characters: rejected, where
    clarity alone (minor) left it accepted."""
    report = judge(text_sample("", [], label="positive"), rubric)
    assert report.levels["correctness"] == 1 and report.levels["clarity"] == 1
    assert report.route == "rejected", report.findings


@pytest.mark.parametrize(
    ("text", "value", "label"),
    [
        ("Price: $1,200 today", "$1,200", "MONEY"),  # currency sign allowed at the edge
        ("東京都の田中さん", "田中", "PERSON"),  # no spaces in Japanese: no word to cut
        ("Acme, Inc and co", "Acme, Inc", "ORG"),  # punctuation inside, not at the edge
        (RENE, "Rene\u0301", "PERSON"),  # ends on its combining accent: the whole word
    ],
)
def test_clean_edges_are_not_flagged(text: str, value: str, label: str) -> None:
    generated = text_sample(text, spans_of(text, (value, label)))
    report = judge_sample(generated, NER, ValidationContext())
    assert [f for f in report.findings if f.criterion == "precision"] == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Call +34 612 345 678 now.", "+34 612 345 678"),
        ("Call (0113) 496 0123 now.", "(0113) 496 0123"),
        ("Call 030 1234 (ext. 5) now.", "030 1234 (ext. 5)"),
        ("Call +44(0)20 7496 0123, please.", "+44(0)20 7496 0123"),
    ],
)
def test_a_phone_numbers_plus_and_brackets_are_no_edge_defect(text: str, value: str) -> None:
    generated = text_sample(text, spans_of(text, (value, "PHONE")))
    report = judge_sample(generated, NER, ValidationContext())
    assert [f for f in report.findings if f.criterion == "precision"] == []


@pytest.mark.parametrize(
    ("text", "value", "edge"),
    [
        ("Call (0113 496 0123 now.", "(0113 496 0123", 1),  # a bracket the span does not close
        ("Call 0113) 496 now.", "0113)", 1),
        ("Call + 34 612 now.", "+ 34 612", 2),  # a plus before no digit: "+ " at the edge
    ],
)
def test_an_unpaired_bracket_or_a_lone_plus_is_still_an_edge_defect(
    text: str, value: str, edge: int
) -> None:
    generated = text_sample(text, spans_of(text, (value, "PHONE")))
    report = judge_sample(generated, NER, ValidationContext())
    (finding,) = [f for f in report.findings if f.measure == "span_edge_chars"]
    assert f"includes {edge} whitespace/punctuation" in finding.message, finding.message


@pytest.mark.parametrize(
    ("text", "value", "label"),
    [
        ("Big Blue (IBM) said so.", "(IBM)", "ORG"),  # the brackets around a name, not of it
        ("Call (0113) now.", "(0113)", "PHONE"),
    ],
)
def test_a_span_wrapped_in_a_bracket_pair_is_still_an_edge_defect(
    text: str, value: str, label: str
) -> None:
    generated = text_sample(text, spans_of(text, (value, label)))
    report = judge_sample(generated, NER, ValidationContext())
    (finding,) = [f for f in report.findings if f.measure == "span_edge_chars"]
    assert "includes 2 whitespace/punctuation" in finding.message, finding.message


def test_duplicate_text_is_flagged_on_the_later_sample_only() -> None:
    context = ValidationContext.for_taxonomy(LABELS)
    assert judge(text_sample(n=1), context=context).findings == []
    copy = text_sample(CLEAN.upper().replace(" ", "  "), [], n=2)  # case and spacing folded
    report = judge(copy, context=context)
    hits = [f for f in report.findings if f.check == "clarity_duplicate_text"]
    assert len(hits) == 1 and "txt-1" in hits[0].message
    assert report.route == "rejected"  # a copy fails correctness (not new) and clarity
    assert judge(text_sample(n=1), context=context).findings == []  # judged again: no self-match


# Long enough (80 words) that one changed word leaves 87 % of its word 5-grams shared: a copy.
# In a 20-word text one word changes a third of them, and the text counts as new.
REVIEW = (
    "The pasta arrived luke warm and the waiter ignored our table for twenty minutes, "
    "then brought the wrong wine and never apologised for any of it. We had booked weeks "
    "ahead for a birthday, told them so twice on the phone, and still sat next to the kitchen "
    "door with a wobbling table and a draught. The dessert was the only good part of the "
    "evening, and even that came after everyone else in the room had already paid and left."
)
JAPANESE = (
    "注文した商品は翌日に届き、梱包もとても丁寧でした。説明どおりの品質で、家族もみんな喜んで"
    "います。サポートの対応も早くて親切だったので、また次もこのお店を利用したいと思います。"
)
FULL_WIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}  # "A" -> "Ａ"
REAL_ROWS = [
    {"id": "r1", "text": "Lovely terrace, friendly staff and the best tiramisu in town."},
    {"id": "r2", "text": REVIEW},
    {
        "id": "r3",
        "text": "Merci à René et Hélène : un accueil chaleureux, un café délicieux et "
        "une crème brûlée parfaite.",
    },
    {"id": "r4", "text": JAPANESE},
]


def reference() -> TextIndex:
    return text_reference_index(
        enumerate(REAL_ROWS, start=1), text_field="text", source="reviews.jsonl"
    )


# (name, text, real row copied or None)
COPY_CASES = [
    # written in other Unicode forms: decomposed accents, full-width letters
    ("decomposed accents", unicodedata.normalize("NFD", REAL_ROWS[2]["text"]), "line 3 (id r3)"),
    ("full-width letters", REVIEW.translate(FULL_WIDTH), "reviews.jsonl line 2 (id r2)"),
    # a script written without spaces: each character is a word
    ("Japanese, a word changed", JAPANESE.replace("利用", "注文"), "line 4 (id r4)"),
    ("exact copy of a real row", REVIEW, "reviews.jsonl line 2 (id r2)"),
    ("a word changed", REVIEW.replace("wrong wine", "wrong beer"), "reviews.jsonl line 2 (id r2)"),
    ("case and punctuation only", REVIEW.upper().replace(",", ""), "reviews.jsonl line 2 (id r2)"),
    (
        "shares one clause",
        "The waiter ignored our table for twenty minutes, but the food was great "
        "and the owner made up for it with dessert on the house.",
        None,
    ),
    ("unrelated", "Cheap, cheerful and quick: exactly what a lunch break needs.", None),
]


@pytest.mark.parametrize(("name", "text", "source"), COPY_CASES, ids=[c[0] for c in COPY_CASES])
@pytest.mark.parametrize("rubric", [NER, CLASSIFICATION], ids=["ner", "classification"])
@pytest.mark.parametrize("carrier", ["context", "generator"])
def test_copies_of_real_rows_are_rejected_with_the_row_named(
    name: str, text: str, source: str | None, rubric: Rubric, carrier: str
) -> None:
    generated = text_sample(text, [], label="negative")
    context = ValidationContext.for_taxonomy(LABELS)
    if carrier == "context":
        context.text_reference = reference()
    else:  # a generator hands over the rows it drew from with each sample: (name, text) pairs
        generated.extras["text_reference"] = tuple(
            (f"reviews.jsonl line {n} (id {r['id']})", r["text"])
            for n, r in enumerate(REAL_ROWS, start=1)
        )
    report = judge(generated, rubric, context)
    copies = [f for f in report.findings if f.measure == "real_row_jaccard"]
    if source is None:
        assert report.findings == [] and report.route in ("accepted", "review")
        assert report.measurements.get("real_row_jaccard", 0.0) <= 0.85
        return
    assert len(copies) == 1 and source in copies[0].message, report.findings
    assert report.levels["correctness"] == 1 and report.levels["clarity"] == 1
    assert report.route == "rejected"


def test_a_near_copy_of_an_earlier_sample_is_rejected_and_names_it() -> None:
    context = ValidationContext.for_taxonomy(LABELS)
    first = judge(text_sample(REVIEW, [], label="negative", n=1), CLASSIFICATION, context)
    assert first.findings == [] and first.route == "accepted"
    near = REVIEW.replace("twenty", "thirty")
    report = judge(text_sample(near, [], label="negative", n=2), CLASSIFICATION, context)
    found = {f.measure: f.message for f in report.findings}
    assert set(found) == {"sample_jaccard", "duplicate_jaccard"}
    assert "earlier sample txt-1" in found["sample_jaccard"] and report.route == "rejected"
    assert 0.85 < report.measurements["sample_jaccard"] < 1.0
    again = judge(text_sample(REVIEW, [], label="negative", n=1), CLASSIFICATION, context)
    assert again.findings == []  # judged again: compared only with what came before it


def test_word_shingles_and_jaccard() -> None:
    assert word_shingles("One two three") == frozenset(["one two three"])
    assert word_shingles("a b c d e f") == frozenset(["a b c d e", "b c d e f"])
    assert word_shingles(" ... ") == frozenset()
    same = word_shingles("The soup was cold, the bread stale!")
    assert jaccard(same, word_shingles("the SOUP was cold the bread stale")) == 1.0
    assert jaccard(same, word_shingles("Nothing in common at all here")) == 0.0
    # each letter of a script without spaces is a word; its punctuation is dropped
    assert word_shingles("ア・イ・ウ・エ・オ・カ") == frozenset(
        ["ア イ ウ エ オ", "イ ウ エ オ カ"]
    )


def test_text_index_measures_exactly_and_keeps_first_entries() -> None:
    index = TextIndex()
    index.add("a", REVIEW)
    index.add("a", "something else entirely, added under a name already taken")
    near = REVIEW.replace("wrong wine", "wrong beer")
    found = index.nearest(near)
    assert found is not None and found[1] == "a"
    assert found[0] == jaccard(word_shingles(near), word_shingles(REVIEW))
    assert index.nearest("Short and sweet.") is None
    assert len(index) == 1 and "a" in index


def test_a_text_looked_up_then_added_is_hashed_once_with_the_same_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datasketch import MinHash

    texts = [REVIEW, REVIEW.replace("wrong wine", "wrong beer"), "Short and sweet.", REVIEW]
    hashed = 0
    update_batch = MinHash.update_batch

    def counted(self: MinHash, values: list[bytes]) -> None:
        nonlocal hashed
        hashed += 1
        update_batch(self, values)

    def judge_all(index: TextIndex) -> list[tuple[float, str] | None]:
        found = []
        for n, text in enumerate(texts):
            found.append(index.nearest(text))
            index.add(f"t{n}", text)
        return found

    before = TextIndex()
    expected = judge_all(before)
    monkeypatch.setattr(MinHash, "update_batch", counted)
    after = TextIndex()
    assert judge_all(after) == expected
    assert expected[1] is not None and expected[1][1] == "t0"
    assert expected[3] is not None and expected[3] == (1.0, "t0")
    # One MinHash per distinct text, not one per call (7): the lookup's is the one added, a
    # repeat (the last) reuses its first's; the first text is only added (an empty index looks
    # nothing up).
    assert hashed == 3
    assert (after._signatures == before._signatures).all()


def test_classification_label_outside_taxonomy() -> None:
    report = judge(text_sample("Love it, works great!", [], label="sarcastic"), CLASSIFICATION)
    assert report.levels["correctness"] == 1 and report.route == "review"
    assert (
        judge(text_sample("Love it, works great!", [], label="positive"), CLASSIFICATION).findings
        == []
    )


def test_without_taxonomy_labels_are_not_judged() -> None:
    report = judge_sample(
        text_sample(CLEAN, [span(ADA, ADA + 12, label="ALIEN")]), NER, ValidationContext()
    )
    assert report.findings == []
