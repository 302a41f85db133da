"""Counterfactual text: name and gendered-term swaps, attribute inference, the bias report."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from balance_fixtures import FEMALE_TERMS_ONLY
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgate.config import CounterfactualTextConfig
from synthgate.errors import InputError
from synthgate.generators import build_generator
from synthgate.generators.text.counterfactual import (
    CounterfactualGenerator,
    NameBank,
    bias_report,
    infer_attributes,
    rewrite,
)
from synthgate.generators.text.names import MARKS, starts_sentence
from synthgate.samples import SampleSpec


@pytest.fixture(scope="module")
def bank() -> NameBank:
    return NameBank.build(["en_US", "de_DE"])


REWRITE_CASES = [
    # (text, target gender, words that must appear, words that must not)
    ("He said his son loves it.", "female", ["She", "her", "daughter"], ["He ", "his", "son"]),
    (
        "She gave her dad her old kettle. I thanked her.",
        "male",
        ["He gave his mom his old kettle", "thanked him."],
        ["She", "her"],
    ),
    ("Mr Jones asked HIM twice.", "female", ["Ms Jones", "HER"], ["Mr", "HIM"]),
    ("The kettle is fine.", "male", ["The kettle is fine."], []),
]


@pytest.mark.parametrize(("text", "gender", "present", "absent"), REWRITE_CASES)
def test_gendered_terms_swap_with_case_kept(
    bank: NameBank, text: str, gender: str, present: list[str], absent: list[str]
) -> None:
    result = rewrite(text, gender=gender, locale="en_US", bank=bank, rng=np.random.default_rng(0))
    for word in present:
        assert word in result.text, result.text
    for word in absent:
        assert word not in result.text, result.text


def test_her_becomes_his_or_him_by_what_follows(bank: NameBank) -> None:
    result = rewrite(
        "I gave her book to her.",
        gender="male",
        locale="en_US",
        bank=bank,
        rng=np.random.default_rng(0),
    )
    assert result.text == "I gave his book to him."


def test_names_swap_consistently_to_the_target_locale_and_gender(bank: NameBank) -> None:
    text = "Emily called. Emily said the blender from Michael broke."
    result = rewrite(text, gender="male", locale="de_DE", bank=bank, rng=np.random.default_rng(4))
    new_names = dict(result.swaps)
    assert set(new_names) == {"Emily", "Michael"}
    assert new_names["Emily"] != new_names["Michael"]
    assert result.text.count(new_names["Emily"]) == 2
    for name in new_names.values():
        assert name in bank.names["de_DE"]["male"]
    again = rewrite(text, gender="male", locale="de_DE", bank=bank, rng=np.random.default_rng(4))
    assert again == result


def test_common_words_are_not_names(bank: NameBank) -> None:
    assert bank.find("In April, Will bought Hope.") == []
    assert infer_attributes("In April we met.", bank) == {}


def test_mark_inside_a_sentence_is_a_name_and_is_swapped(bank: NameBank) -> None:
    """ "Mark" was never read as a name (it was listed with April, Will and Hope), so a row
    naming him had no gender and its rewrite kept him beside a flipped pronoun."""
    text = "I asked Mark about the refund and he sent it."
    assert infer_attributes(text, bank) == {"gender": "male", "locale": "en_US"}
    result = rewrite(text, gender="female", locale="en_US", bank=bank, rng=np.random.default_rng(0))
    assert "Mark" not in result.text and " she sent it." in result.text, result.text
    assert result.swaps[0][0] == "Mark" and result.swaps[0][1] in bank.names["en_US"]["female"]


def test_a_decomposed_accent_stays_with_its_name(bank: NameBank) -> None:
    """Text with decomposed accents (NFD: macOS, text copied from PDFs): "Jose" + U+0301 was
    found as the name "Jose", so the rewrite left the accent on the new name ("Harold\u0301")."""
    text = "Jose\u0301 said the kettle broke, and Rene\u0301e agreed."
    assert [name for _, _, name in bank.find(text)] == ["José", "Renée"]
    result = rewrite(text, gender="male", locale="en_US", bank=bank, rng=np.random.default_rng(0))
    assert "\u0301" not in result.text, result.text
    renee = text.index("Rene")
    assert [old for old, _ in result.swaps] == [text[:5], text[renee : renee + 6]]


def test_names_of_scripts_with_vowel_signs_are_whole_words() -> None:
    """Devanagari vowel signs are combining marks: a Hindi name split into pieces, none a name."""
    hindi = NameBank.build(["hi_IN"])
    marked = (n for n in hindi.names["hi_IN"]["male"] if any(c in MARKS for c in n[1:]))
    name = next(marked)  # a name with a vowel sign inside
    text = f"{name} ने कहा कि केतली टूट गई"
    assert hindi.find(text) == [(0, len(name), name)]
    assert infer_attributes(text, hindi) == {"gender": "male", "locale": "hi_IN"}


def test_infer_attributes(bank: NameBank) -> None:
    assert infer_attributes("Thanks to Jennifer, all good.", bank) == {
        "gender": "female",
        "locale": "en_US",
    }
    assert infer_attributes("My husband and his friend liked it.", bank) == {"gender": "male"}


def test_bias_report_rates_and_largest_gap() -> None:
    rows = (
        [{"g": "female", "y": "neg"}] * 3
        + [{"g": "female", "y": "pos"}]
        + [{"g": "male", "y": "neg"}]
        + [{"g": "male", "y": "pos"}] * 3
        + [{"y": "pos"}]  # no attribute: left out
    )
    report = bias_report(
        rows,
        label_of=lambda r: r["y"],
        axis="gender",
        attributes_of=lambda r: {"gender": r["g"]} if "g" in r else {},
    )
    assert report["groups"]["female"] == {"n": 4, "rates": {"neg": 0.75, "pos": 0.25}}
    assert report["groups"]["male"]["n"] == 4
    assert report["largest_gap"] == {"label": "neg", "groups": ["female", "male"], "gap": 0.5}


def test_generator_keeps_labels_and_honours_spec_attributes(tmp_path: Path, bank: NameBank) -> None:
    rows = [
        {"id": "a", "text": "Sarah loved it, and her husband too.", "label": "pos"},
        {"id": "b", "text": "Terrible. Thomas returned it.", "label": "neg"},
        {"id": "c", "text": "Broke in a week.", "label": "neg"},
    ]
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = CounterfactualTextConfig(count=4, source=source, locales=["en_US", "de_DE"])
    generator = build_generator(config, categories=[], bank=bank)
    specs = [
        SampleSpec(
            batch_id="cf",
            index=i,
            modality="text",
            generator="counterfactual",
            category=label,
            attributes={"gender": gender, "locale": "de_DE"},
            seed=i,
        )
        for i, (label, gender) in enumerate(
            [("pos", "male"), ("neg", "female"), ("neg", "female"), ("pos", "female")]
        )
    ]
    made = [g.sample for g in generator.generate(specs)]
    assert [s.doc_label for s in made] == ["pos", "neg", "neg", "pos"]
    assert made[0].text.endswith("loved it, and his wife too.")
    assert all(
        s.attributes == {"gender": spec.attributes["gender"], "locale": "de_DE"}
        for s, spec in zip(made, specs, strict=True)
    )
    assert "Thomas" not in made[1].text  # rows with something to swap are preferred
    assert made[1].provenance.params["source_id"] == "b"
    assert [g.sample.text for g in generator.generate(specs)] == [s.text for s in made]


# (text, names the gazetteer must find there): a capital alone makes no name.
NAME_CASES = [
    ("Luke warm soup and cold fries.", []),  # sentence start, followed by an adjective
    ("The soup was luke warm.", []),
    ("Sarah says it broke after a week.", ["Sarah"]),  # sentence start, a person's verb
    ("Great. Emily returned it.", ["Emily"]),
    ("Thanks to Jennifer, all good.", ["Jennifer"]),  # capitalised inside a sentence
    ("Anna's kettle leaked. We met Luke there.", ["Anna", "Luke"]),  # possessive; mid-sentence
    ("Dr Luke Smith came.", ["Luke"]),  # after a title
    ("Luke Smith fixed it.", ["Luke"]),  # a surname follows
    # a surname that is also a first name is the surname: only the first name is swapped
    ("Michael Scott called about the order.", ["Michael"]),
    ("I spoke to Michael Scott and Anna Taylor.", ["Michael", "Anna"]),
    ("In April, Will bought Hope.", []),  # names that are common words
    ("Rose coloured glasses, Mark my words.", []),  # a clause opens with the verb
    # names that are common words only in lower case: the capital inside a sentence names them
    ("I asked Mark about the refund and he sent it.", ["Mark"]),
    ("Thanks, Mark. We met Frank and Jack there.", ["Mark", "Frank", "Jack"]),
    ("Mark Twain wrote it.", ["Mark"]),  # a surname follows
    ("Mark the box before you ship it.", []),  # at a sentence start, the verb
    ("Mark is faint, ask Jack.", ["Jack"]),  # a noun at the start takes "is" too
    ("Mark my words. I told Mark.", ["Mark"]),
    ("Mark, the order never arrived.", ["Mark"]),  # spoken to: a comma, then the rest
    ("Frank, your refund is late.", ["Frank"]),
]


@pytest.mark.parametrize(
    "text",
    [
        "Sarah cannot log in after resetting her password.",
        "John can't reset his password.",
        "John can’t reset his password.",  # a typographic apostrophe, as phones type it
        "Maria doesn't get the code.",
        "David won't be charged again, he says.",
        "Anna couldn't open the invoice.",
        "Peter isn't able to pay.",
    ],
)
def test_a_name_before_a_negated_verb_opening_a_ticket_is_a_name(bank: NameBank, text: str) -> None:
    """Support tickets open with a person who cannot do something: "Sarah cannot log in" gave
    no name (the word after a name at a sentence start was read as a person's verb only when
    positive: "can", "does"), so a class of such tickets had nothing to rewrite and its rows no
    gender, and balance --jsonl could not raise it or tell its groups apart."""
    name = text.split()[0]
    assert [found for _, _, found in bank.find(text)] == [name]


@pytest.mark.parametrize(("text", "names"), NAME_CASES)
def test_names_are_read_with_their_context(bank: NameBank, text: str, names: list[str]) -> None:
    found = bank.find(text)
    assert [name for _, _, name in found] == names
    assert all(text[start:end] == name for start, end, name in found)


# what starts_sentence answers, as the search it replaced wrote it
SENTENCE_END = re.compile(r"(^|[.!?…。！？]\s*|\n\s*)[\"'“‘(\[]*$")


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet="ab .!?…。\n\t \u3000\"'“‘([)", max_size=12), st.data())
def test_starts_sentence_answers_as_the_search_of_the_whole_prefix(text: str, data) -> None:
    position = data.draw(st.integers(0, len(text)))
    assert starts_sentence(text, position) == bool(SENTENCE_END.search(text[:position]))


def spec(index: int, label: str, **attributes: str) -> SampleSpec:
    return SampleSpec(
        batch_id="cf",
        index=index,
        modality="text",
        generator="counterfactual",
        category=label,
        attributes=attributes,
        seed=index,
    )


def generator_for(tmp_path: Path, bank: NameBank, rows: list[dict[str, str]]) -> Any:
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = CounterfactualTextConfig(count=1, source=source, locales=["en_US", "de_DE"])
    return build_generator(config, categories=[], bank=bank)


def test_rewrites_always_swap_and_record_only_what_the_text_carries(
    tmp_path: Path, bank: NameBank
) -> None:
    rows = [
        {"id": "a", "text": "She loved it and so did her sister.", "label": "pos"},
        {"id": "b", "text": "Luke warm soup. Never again.", "label": "neg"},
        {"id": "c", "text": "Cold fries, rude staff.", "label": "neg"},
        {"id": "d", "text": "Thomas said the soup was cold.", "label": "neg"},
    ]
    generator = generator_for(tmp_path, bank, rows)
    assert generator.capacity("pos") == 1  # gendered terms only: one flip
    assert generator.capacity("neg") == 4  # one row with a name: 2 genders x 2 locales
    made = generator.generate([spec(0, "pos", gender="female", locale="de_DE")])
    sample = made[0].sample
    # Asked for female, but the row is female already: it is flipped, never copied.
    assert sample.text == "He loved it and so did his brother."
    assert sample.attributes == {"gender": "male"}  # no name placed: no locale
    negatives = [g.sample for g in generator.generate([spec(i, "neg") for i in range(1, 9)])]
    assert {s.provenance.params["source_id"] for s in negatives} == {"d"}
    assert all(
        "Thomas" not in s.text and s.attributes.keys() == {"gender", "locale"} for s in negatives
    )
    reference = made[0].extras["text_reference"]
    assert reference[1] == ("rows.jsonl row 2 (id b)", rows[1]["text"])


def test_a_class_with_nothing_to_swap_is_refused(tmp_path: Path, bank: NameBank) -> None:
    rows = [
        {"id": "a", "text": "Luke warm soup.", "label": "neg"},
        {"id": "b", "text": "Great food.", "label": "pos"},
    ]
    generator = generator_for(tmp_path, bank, rows)
    with pytest.raises(InputError, match="no row has a first name or a gendered term"):
        generator.quota_categories()
    with pytest.raises(InputError, match="'neg' has a first name or a gendered term"):
        generator.generate([spec(0, "neg")])


def test_a_twin_under_another_config_makes_what_a_new_generator_makes(
    tmp_path: Path, bank: NameBank
) -> None:
    rows = [
        {"id": "a", "text": "Thomas said the soup was cold.", "label": "neg"},
        {"id": "b", "text": "She loved it and so did her sister.", "label": "pos"},
    ]
    planned = generator_for(tmp_path, bank, rows)
    running = planned.config.model_copy(update={"count": 6, "locales": ["fr_FR"]})
    twin = planned.under(running)
    fresh = build_generator(running, categories=[], bank=bank)
    specs = [spec(i, "neg") for i in range(6)]
    assert [g.sample for g in twin.generate(specs)] == [g.sample for g in fresh.generate(specs)]
    assert twin.capacity("neg") == fresh.capacity("neg") == 2  # one locale now
    assert planned.config.locales == ["en_US", "de_DE"]  # the planned one is left as it was
    other = running.model_copy(update={"text_field": "review"})
    with pytest.raises(ValueError, match="reads other rows"):
        planned.under(other)
    # without a bank given, its own holds the names of its locales only
    own_bank = CounterfactualGenerator(planned.config, categories=[])
    with pytest.raises(ValueError, match="find other names"):
        own_bank.under(running)
    assert own_bank.under(planned.config.model_copy(update={"count": 9})).config.count == 9


def test_a_plan_draws_each_row_once_before_any_twice(tmp_path: Path, bank: NameBank) -> None:
    """Each spec drew its row with replacement: of 6 rows with only female terms, rewritten to
    male 6 times, the same row came up twice while others were left, and a row with terms only
    flips to the same text each time, so the copy check rejected half of them."""
    rows = [
        {"id": f"f{k}", "text": text, "label": "neg"} for k, text in enumerate(FEMALE_TERMS_ONLY)
    ]
    rows.append({"id": "t", "text": "Thomas said the soup was cold.", "label": "neg"})
    generator = generator_for(tmp_path, bank, rows)
    genders = ["male", "female"] * 4 + ["male"] * 6
    plan = generator.assign_sources(
        [spec(i, "neg", gender=gender) for i, gender in enumerate(genders)]
    )
    drawn = [s.params["row"] for s in plan]
    # female: only the named row can turn female; male: the rows of terms, drawn fewer times,
    # each once (in a shuffled order), then again
    assert {drawn[i] for i in range(1, 8, 2)} == {6}
    male = [row for row, gender in zip(drawn, genders, strict=True) if gender == "male"]
    assert sorted(male[:6]) == list(range(6)) != male[:6]
    assert len(male[6:]) == len(set(male[6:])) == 4 and 6 not in male[6:]
    assert generator.assign_sources(plan) == plan  # the same plan, the same draws
    made = [g.sample for g in generator.generate(plan)]
    assert [s.provenance.params["source_row"] for s in made] == [row + 1 for row in drawn]
    texts = [s.text for s, gender in zip(made, genders, strict=True) if gender == "male"]
    assert len(set(texts[:6])) == 6
    # a chunk makes what the whole plan makes there
    assert [g.sample for g in generator.generate(plan[5:9])] == made[5:9]


def test_a_class_of_gendered_terms_only_makes_the_other_gender(
    tmp_path: Path, bank: NameBank
) -> None:
    rows = [
        {"id": "a", "text": "She wants her money back.", "label": "neg"},
        {"id": "b", "text": "She gave it to her mother.", "label": "neg"},
        {"id": "c", "text": "He loved it.", "label": "neg"},
        {"id": "d", "text": "Thomas said the soup was cold.", "label": "pos"},
    ]
    generator = generator_for(tmp_path, bank, rows)
    assert generator.gender_limits() == {"neg": {"gender": {"female": 1, "male": 2}}}


def test_a_source_of_doccano_class_lists_is_read_by_its_classes(
    tmp_path: Path, bank: NameBank
) -> None:
    """doccano writes a class as a list of one ("label": ["neg"]): the generator named its
    classes "['neg']", which no spec asks for and no merge back into the file matches."""
    rows = [{"id": "a", "text": "Thomas said the soup was cold.", "label": ["neg"]}]
    generator = generator_for(tmp_path, bank, rows)
    assert generator.quota_categories() == ["neg"]
    assert generator.generate([spec(0, "neg")])[0].sample.doc_label == "neg"


def test_a_run_judges_rewrites_against_the_classes_of_their_rows(tmp_path: Path) -> None:
    """A counterfactual config has no `categories` (its classes are its rows'): `sg.run` judged
    every rewrite against an empty taxonomy, "document label 'neg' not in taxonomy", and sent
    all of them to review, where `sg.validate` accepted the same samples."""
    import synthgate as sg

    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        '{"text": "She said the kettle broke after two days. Anna wants a refund.", "label": "neg"}\n'
        '{"text": "He loves this kettle, says John.", "label": "pos"}\n'
    )
    config = {
        "name": "cf",
        "seed": 1,
        "text": {"generator": "counterfactual", "count": 4, "source": str(rows)},
    }
    result = sg.run(config, out=tmp_path / "run")
    findings = [f.check for s in result.samples() for f in s.report.findings]  # type: ignore[union-attr]
    assert "correctness_label_in_taxonomy" not in findings
    assert result.counts["text"].get("accepted") == 4
    assert [r.route for r in sg.validate(sg.generate(config))] == ["accepted"] * 4


def test_a_rewrite_keeps_its_rows_spans_on_the_text_they_covered(
    tmp_path: Path, bank: NameBank
) -> None:
    """A row of a classification file that holds NER spans too ('John Smith' PER, 'Paris' LOC)
    was rewritten without them: balance merged 'Tabitha Smith in Paris cannot log in.' with no
    `spans`, an entity left unlabelled beside real rows that label theirs. A span moves with the
    swaps before it and stretches over a name swapped inside it."""
    text = "John Smith in Paris says his login fails."
    rows = [{"id": "a", "text": text, "label": "login", "spans": [[0, 10, "PER"], [14, 19, "LOC"]]}]
    generator = generator_for(tmp_path, bank, rows)
    for made in generator.generate([spec(i, "login", gender="female") for i in range(4)]):
        sample = made.sample
        assert "John" not in sample.text and "her login" in sample.text
        covered = [(sample.text[s.start : s.end], s.label) for s in sample.spans]
        name = sample.text.split(" Smith")[0]
        assert covered == [(f"{name} Smith", "PER"), ("Paris", "LOC")]


def test_a_row_whose_entities_are_no_spans_is_rewritten_without_them(
    tmp_path: Path, bank: NameBank
) -> None:
    """A classification file may keep keywords under `entities` (["Sarah"]): rows the
    counterfactual generator rewrote, and balance merged, before rewrites kept their rows'
    spans. They are rewritten as then, with no spans."""
    rows = [
        {"text": "Sarah says her login fails.", "label": "login", "entities": ["Sarah"]},
        {"text": "John says his card was charged twice.", "label": "billing"},
    ]
    generator = generator_for(tmp_path, bank, rows)
    made = generator.generate([spec(i, "login", gender="male") for i in range(2)])
    assert [m.sample.spans for m in made] == [[], []]
    assert all("Sarah" not in m.sample.text for m in made)
