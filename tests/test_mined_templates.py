"""Templates mined from a class's rows: sentences of two rows joined, names and numbers as slots,
never a real row; the templates generator runs them, each once with `order: cycle`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from synthgate.config import TemplateTextConfig
from synthgate.generators.text.mined import mine_templates, sentences, slotted
from synthgate.generators.text.names import NameBank
from synthgate.generators.text.templates import TemplateGenerator, load_template_file
from synthgate.samples import SampleSpec

ROWS = [
    {"text": "Luke warm soup. Nobody came to check on us.", "label": "neg"},
    {"text": "We waited 50 minutes. The base was soggy!", "label": "neg"},
    {"text": "Emma at the desk lost our booking.", "label": "neg"},
    {"text": "Tiny portions {sic}. I went home hungry.", "label": "neg"},
    {"text": "Lovely place. Great pasta.", "label": "pos"},
]


@pytest.fixture(scope="module")
def bank() -> NameBank:
    return NameBank.build(["en_US"])


@pytest.mark.parametrize(
    ("sentence", "template"),
    [
        ("Luke warm soup.", "Luke warm soup."),  # no name: a capital at a sentence start
        ("Emma at the desk lost our booking.", "{:first_name} at the desk lost our booking."),
        (
            "We waited 50 minutes for 2 pizzas.",
            "We waited {:@number} minutes for {:@number} pizzas.",
        ),
        ("A {literal} brace", "A {{literal}} brace"),
    ],
)
def test_sentences_become_slotted_templates(bank: NameBank, sentence: str, template: str) -> None:
    assert slotted(sentence, bank) == template


def test_sentences_split_on_end_marks() -> None:
    assert sentences("One. Two!  Three?") == ["One.", "Two!", "Three?"]
    assert sentences("no end mark") == ["no end mark"]
    assert sentences('He said "Go." Then left (fine!) Next') == [
        'He said "Go."',
        "Then left (fine!)",
        "Next",
    ]


def test_sentences_end_after_prices_dates_and_domains() -> None:
    """A dotted word that is no row of initials ends a sentence at its stop."""
    for text in [
        "The total was 12.99. I was charged twice.",
        "It arrived on 12.03.2024. Nobody called me.",
        "Visit example.com. It has the form.",
    ]:
        assert len(sentences(text)) == 2, text


@pytest.mark.parametrize(
    "text",
    [
        "Dr. Smith paid 3.50 dollars at 5 p.m. today.",  # split into 'Dr.', 'Smith paid 3.', ...
        "We ordered soup, e.g. the lentil one, and J. R. Tolkien's favourite pie.",
        "I was... not sure about it.",
        "The U.S. Army band played.",
    ],
)
def test_sentences_do_not_end_at_abbreviations_numbers_or_initials(text: str) -> None:
    """A full stop inside a sentence made mined templates of its pieces ('Dr.' joined with
    'm.'): such a stop is no end."""
    assert sentences(text) == [text]


def test_mined_templates_join_two_rows_and_are_never_a_real_row(
    bank: NameBank, tmp_path: Path
) -> None:
    mined = mine_templates(
        ROWS, {"neg": 100}, text_field="text", label_field="label", bank=bank, seed=0
    )
    templates = mined.data["templates"]["neg"]
    # 4 openings x 3 later sentences of other rows (the one-sentence row has none of its own).
    assert mined.capacity == {"neg": 4 * 3 - 3} and len(templates) == 9
    real = {r["text"] for r in ROWS}
    assert not real & set(templates)
    assert "Tiny portions {{sic}}. I went home hungry." not in templates  # one row's own pair
    assert "{:first_name} at the desk lost our booking. Nobody came to check on us." in templates
    assert mined.data["lexicons"] == {"number": ["50"]}
    assert (
        mine_templates(
            ROWS, {"neg": 3}, text_field="text", label_field="label", bank=bank, seed=0
        ).data["templates"]["neg"]
        == templates[:3]
    )

    path = tmp_path / "mined.yaml"
    path.write_text(yaml.safe_dump({**mined.data, "order": "cycle"}))
    generator = TemplateGenerator(TemplateTextConfig(templates=path, count=9), categories=[])
    assert load_template_file(path).order == "cycle"
    specs = [
        SampleSpec(
            batch_id="m", index=i, modality="text", generator="templates", category="neg", seed=i
        )
        for i in range(9)
    ]
    made = [g.sample for g in generator.generate(specs)]
    used = [s.provenance.params["template_index"] for s in made]
    assert used == list(range(9))  # cycle: every template once
    assert len({s.text for s in made}) == 9 and all(s.doc_label == "neg" for s in made)


def test_no_template_holds_a_whole_real_row_word_for_word(bank: NameBank) -> None:
    """Rows of one sentence pair with each other, but one without a name or a number to vary
    would be copied whole: two such rows joined end to end were templates (accepted at 5, the
    copy check's Jaccard under its cut), copies of both."""
    rows = [
        {"text": "The screen cracked after one week in the case.", "label": "neg"},
        {"text": "Support kept me on hold and then hung up.", "label": "neg"},
        {"text": "Emma at the desk lost our booking.", "label": "neg"},
        {"text": "We waited 50 minutes at the door.", "label": "neg"},
    ]
    mined = mine_templates(
        rows, {"neg": 10}, text_field="text", label_field="label", bank=bank, seed=0
    )
    # only the two rows with a slot pair: a name and a number vary, so neither is copied
    assert sorted(mined.data["templates"]["neg"]) == [
        "We waited {:@number} minutes at the door. {:first_name} at the desk lost our booking.",
        "{:first_name} at the desk lost our booking. We waited {:@number} minutes at the door.",
    ]
    assert mined.capacity["neg"] == 2


def test_no_template_repeats_a_sentence_or_mixes_a_name_with_a_gendered_term(
    bank: NameBank,
) -> None:
    """A balance team's finding: 'Linda said nobody answered his emails for a week. Andrea said
    nobody answered his emails for a week.' The same sentence twice is no text, and a name slot
    filled by the sample's gender does not agree with a pronoun the row wrote."""
    rows = [
        {"text": "Linda said nobody answered her emails for a week.", "label": "neg"},
        {"text": "Andrea said nobody answered his emails for a week. Awful.", "label": "neg"},
        {"text": "Mark said nobody answered his emails for a week.", "label": "neg"},
        {"text": "It broke after 2 days. Nobody replied.", "label": "neg"},
        {"text": "It broke after 9 days. Refund refused.", "label": "neg"},
        # rows of one sentence pair with each other
        {"text": "Item 3 works great.", "label": "pos"},
        {"text": "Item 7 works great.", "label": "pos"},
        {"text": "Lovely colour, it came in 2 days.", "label": "pos"},
    ]
    mined = mine_templates(
        rows, {"neg": 100, "pos": 100}, text_field="text", label_field="label", bank=bank, seed=0
    ).data["templates"]
    assert "It broke after {:@number} days. Refund refused." in mined["neg"]
    assert sorted(mined["pos"]) == [
        "Item {:@number} works great. Lovely colour, it came in {:@number} days.",
        "Lovely colour, it came in {:@number} days. Item {:@number} works great.",
    ]
    for template in mined["neg"] + mined["pos"]:
        first, second = sentences(template)
        assert first != second, template
        assert not ("{:first_name}" in template and re.search(r"\b(his|her)\b", template))


def test_a_sentence_with_gendered_terms_of_both_genders_takes_no_name_slot(
    bank: NameBank,
) -> None:
    """'She told him' has a gendered term of each kind: no gender by majority, but still terms
    a name filled by the sample's gender may contradict (the filter asked for a majority)."""
    rows = [
        {"text": "Linda called support on Monday. She told him the order was late.", "label": "n"},
        {"text": "Robert called support on Friday. The parcel never came.", "label": "n"},
    ]
    templates = (
        mine_templates(rows, {"n": 100}, text_field="text", label_field="label", bank=bank, seed=0)
        .data["templates"]
        .get("n", [])
    )
    assert not any("{:first_name}" in t and "She told him" in t for t in templates), templates
