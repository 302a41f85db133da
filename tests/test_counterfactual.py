"""Counterfactual text: name and gendered-term swaps, attribute inference, the bias report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthgate.config import CounterfactualTextConfig
from synthgate.generators import build_generator
from synthgate.generators.text.counterfactual import (
    NameBank,
    bias_report,
    infer_attributes,
    rewrite,
)
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
