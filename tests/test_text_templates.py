"""The `templates` text generator: span contract, determinism, gender, template-file errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from faker import Faker
from faker.exceptions import UnsupportedFeature
from faker.providers import misc
from pydantic import ValidationError

from synthgate.config import PACKAGE_ROOT, TemplateTextConfig
from synthgate.errors import InputError
from synthgate.generators import build_generator
from synthgate.generators.text.slots import (
    Slot,
    SlotSyntaxError,
    clean_whitespace,
    parse_template,
    trim_edges,
)
from synthgate.generators.text.templates import TemplateGenerator, load_template_file
from synthgate.samples import GeneratedSample, Sample, SampleSpec, sample_id, sample_seed
from synthgate.validators.context import ValidationContext
from synthgate.validators.measure import judge_sample
from synthgate.validators.rubric import load_rubric

SHIPPED = PACKAGE_ROOT / "configs" / "templates"
LOCALES = ["en_US", "de_DE", "ja_JP", "fr_FR", "es_ES", "hi_IN"]
SHIPPED_FILES = ["support_tickets.yaml", "reviews.yaml"]


@pytest.fixture(scope="module")
def shipped() -> dict[str, TemplateGenerator]:
    """One generator per shipped file, built once: construction checks every locale."""
    return {
        name: TemplateGenerator(
            TemplateTextConfig(templates=SHIPPED / name, count=1, locales=LOCALES), categories=[]
        )
        for name in SHIPPED_FILES
    }


def make_specs(
    generator: TemplateGenerator,
    count: int,
    *,
    locale: str | None = "en_US",
    gender: str | None = None,
    batch_seed: int = 7,
) -> list[SampleSpec]:
    categories = generator.quota_categories()
    specs = []
    for index in range(count):
        attributes = {}
        if locale is not None:
            attributes["locale"] = locale
        if gender is not None:
            attributes["gender"] = gender
        specs.append(
            SampleSpec(
                batch_id=f"batch-{batch_seed}",
                index=index,
                modality="text",
                generator="templates",
                category=categories[index % len(categories)],
                attributes=attributes,
                seed=sample_seed(batch_seed, "text", index),
            )
        )
    return specs


def generate(generator: TemplateGenerator, specs: list[SampleSpec]) -> list[Sample]:
    return [generated.sample for generated in generator.generate(specs)]


def write_generator(tmp_path: Path, text: str, *, locales: list[str] | None = None):
    path = tmp_path / "tickets.yaml"
    path.write_text(text, encoding="utf-8")
    config = TemplateTextConfig(templates=path, count=1, locales=locales or ["en_US"])
    return TemplateGenerator(config, categories=[])


# --- the shipped files ------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", SHIPPED_FILES)
@pytest.mark.parametrize("locale", LOCALES)
def test_shipped_samples_keep_the_span_contract(shipped, file_name, locale):
    generator = shipped[file_name]
    declared = set(generator.template_file.labels)
    specs = make_specs(generator, 60, locale=locale, gender="female")
    for spec, sample in zip(specs, generate(generator, specs), strict=True):
        assert sample.id == sample_id(spec.batch_id, "text", spec.index)
        template = generator.template_file.templates_for(sample.doc_label)[
            sample.provenance.params["template_index"]
        ]
        # The locale is an attribute only where a Faker slot filled the text in it.
        faker_slots = any(slot.source == "faker" for slot in template.slots())
        assert sample.attributes.get("locale") == (locale if faker_slots else None)
        assert sample.provenance.params["template_file"] == file_name
        assert sample.provenance.params["locale"] == locale
        assert sample.provenance.seed == spec.seed
        assert sample.provenance.versions == {}  # recorded in the run's manifest.json
        previous_end = 0
        for span in sample.spans:
            assert sample.text[span.start : span.end] == span.value, sample.text
            assert span.value, sample.text
            # no edge but a price's sign, a country code's '+' or a bracket of a pair it holds
            assert trim_edges(span.value) == span.value, span
            assert "\n" not in span.value and "  " not in span.value, span
            assert span.label in declared
            assert span.start >= previous_end, f"overlapping spans in {sample.text!r}"
            previous_end = span.end
        if generator.template_file.task == "classification":
            assert sample.doc_label == spec.category
            assert sample.spans == []
        else:
            assert sample.doc_label is None
            assert sample.spans, sample.text


def test_shipped_files_meet_the_template_minimums():
    tickets = load_template_file(SHIPPED / "support_tickets.yaml")
    assert tickets.task == "ner"
    assert tickets.labels == ("PERSON", "ORG", "EMAIL", "PHONE", "CITY", "DATE", "PRODUCT")
    assert len(tickets.templates) >= 25
    used = {slot.label for t in tickets.templates for slot in t.slots()} - {None}
    assert used == set(tickets.labels)
    assert any(
        s.label == "PRODUCT" and s.source == "lexicon" for t in tickets.templates for s in t.slots()
    )

    reviews = load_template_file(SHIPPED / "reviews.yaml")
    assert reviews.task == "classification"
    assert reviews.labels == ("positive", "negative", "neutral")
    for label in reviews.labels:
        assert len(reviews.templates_for(label)) >= 15, label


def test_quota_categories_follow_the_task(shipped):
    assert shipped["support_tickets.yaml"].quota_categories() == [None]
    assert shipped["reviews.yaml"].quota_categories() == ["positive", "negative", "neutral"]


def test_generator_builds_through_the_registry():
    config = TemplateTextConfig(templates=SHIPPED / "reviews.yaml", count=3)
    generator = build_generator(config, categories=["circle", "square"])  # image classes: ignored
    assert isinstance(generator, TemplateGenerator)
    assert (generator.name, generator.version, generator.modality) == ("templates", "1", "text")


# --- determinism --------------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", SHIPPED_FILES)
def test_same_spec_same_sample_in_any_batch(shipped, file_name):
    generator = shipped[file_name]
    specs = make_specs(generator, 30, locale="de_DE", gender="male")
    in_batch = generate(generator, specs)
    reversed_batch = generate(generator, specs[::-1])[::-1]
    alone = [generate(generator, [spec])[0] for spec in specs]
    fresh = TemplateGenerator(generator.config, categories=[])  # another worker
    assert in_batch == reversed_batch == alone == generate(fresh, specs)


@pytest.mark.parametrize("file_name", SHIPPED_FILES)
def test_different_seeds_give_different_texts(shipped, file_name):
    generator = shipped[file_name]
    texts_a = [s.text for s in generate(generator, make_specs(generator, 30, batch_seed=1))]
    texts_b = [s.text for s in generate(generator, make_specs(generator, 30, batch_seed=2))]
    assert sum(a != b for a, b in zip(texts_a, texts_b, strict=True)) >= 20
    assert len(set(texts_a)) >= 20


def test_locale_falls_back_to_the_index_when_the_spec_has_none(shipped):
    generator = shipped["support_tickets.yaml"]
    samples = generate(generator, make_specs(generator, 12, locale=None))
    assert [s.attributes["locale"] for s in samples] == [LOCALES[i % 6] for i in range(12)]


# --- gender -------------------------------------------------------------------------------------


def first_names(locale: str, gender: str) -> set[str]:
    provider = next(p for p in Faker(locale).get_providers() if hasattr(p, "first_names_female"))
    return set(getattr(provider, f"first_names_{gender}"))


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("gender", ["female", "male"])
def test_gender_is_honoured_and_recorded(tmp_path, locale, gender):
    generator = write_generator(
        tmp_path,
        "task: ner\nlabels: [PERSON]\ntemplates: ['Hello {PERSON:first_name}, welcome']\n",
        locales=[locale],
    )
    samples = generate(generator, make_specs(generator, 25, locale=locale, gender=gender))
    names = first_names(locale, gender)
    for sample in samples:
        assert sample.attributes == {"locale": locale, "gender": gender}
        assert sample.spans[0].value in names


@pytest.mark.parametrize(
    ("template", "gender", "recorded"),
    [
        ("'Hi {PERSON:name}'", "female", "female"),
        ("'Hi {:first_name}, {PERSON:email}'", "male", "male"),  # unlabelled names count too
        ("'Hi {PERSON:name}'", None, None),  # no gender asked: none claimed
        ("'Mail {PERSON:email}'", "female", None),  # no name provider used
        ("'From {PERSON:@staff}'", "female", None),  # lexicons are not gendered
    ],
)
def test_gender_recorded_only_when_a_name_provider_used_it(tmp_path, template, gender, recorded):
    generator = write_generator(
        tmp_path,
        f"task: ner\nlabels: [PERSON]\nlexicons: {{staff: [Kim]}}\ntemplates: [{template}]\n",
    )
    sample = generate(generator, make_specs(generator, 1, gender=gender))[0]
    assert sample.attributes.get("gender") == recorded


@pytest.mark.parametrize(
    ("locale", "recorded"),
    [
        # last_name_female is last_name there: 'Ask for Smith' says no gender
        ("en_US", None),
        ("de_DE", None),
        ("ru_RU", "female"),  # Иванова: the locale's surnames are gendered
    ],
)
def test_a_surname_records_a_gender_only_where_the_locale_genders_surnames(
    tmp_path, locale, recorded
):
    generator = write_generator(
        tmp_path,
        "task: ner\nlabels: [PERSON]\ntemplates: ['Ask for {PERSON:last_name} today']\n",
        locales=[locale],
    )
    for sample in generate(generator, make_specs(generator, 5, locale=locale, gender="female")):
        assert sample.attributes.get("gender") == recorded, sample.text


def test_unknown_gender_is_an_input_error(shipped):
    generator = shipped["support_tickets.yaml"]
    with pytest.raises(InputError, match="gender"):
        generator.generate(make_specs(generator, 1, gender="robot"))


def test_category_outside_the_labels_is_an_input_error(shipped):
    generator = shipped["reviews.yaml"]
    spec = make_specs(generator, 1)[0].model_copy(update={"category": "sarcastic"})
    with pytest.raises(InputError, match=r"reviews\.yaml.*sarcastic"):
        generator.generate([spec])


# --- filling: cleaning, braces ------------------------------------------------------------------


def test_multiline_values_become_one_line_and_edges_are_trimmed(tmp_path):
    generator = write_generator(
        tmp_path,
        "task: ner\nlabels: [ADDRESS, PHONE]\n"
        "templates: ['Ship to {ADDRESS:address} or call {PHONE:phone_number} now']\n",
        locales=["es_ES"],  # es_ES phone numbers always start with '+34'
    )
    for sample in generate(generator, make_specs(generator, 20, locale="es_ES")):
        address, phone = sample.spans
        assert "\n" not in sample.text
        assert "\n" not in address.value
        assert phone.value.startswith("+34"), phone.value  # the country code whole, not '34'
        assert sample.text[phone.start : phone.end] == phone.value


def test_a_phone_number_keeps_its_plus_and_the_ner_rubric_takes_it(tmp_path):
    generator = write_generator(
        tmp_path,
        "task: ner\nlabels: [PHONE]\ntemplates: ['Call {PHONE:phone_number} now']\n",
        locales=["es_ES"],
    )
    ner = load_rubric("ner")
    for sample in generate(generator, make_specs(generator, 10, locale="es_ES")):
        (phone,) = sample.spans
        assert phone.value.startswith("+34"), sample.text
        assert sample.text[phone.start : phone.end] == phone.value
        report = judge_sample(GeneratedSample(sample=sample), ner, ValidationContext())
        assert report.findings == [] and report.route != "review", report.findings


@pytest.mark.parametrize(("locale", "sign"), [("en_US", "$"), ("de_DE", "€")])
def test_a_price_keeps_its_currency_sign(tmp_path, locale, sign):
    # pricetag gives '$8,776.31' (en_US) and '8.776,31\xa0€' (de_DE); trimmed, 'Total due:
    # 8.776,31' lost what it is, though the ner rubric allows $€£¥% at a span's edges
    generator = write_generator(
        tmp_path,
        "task: ner\nlabels: [MONEY]\ntemplates: ['Total due: {MONEY:pricetag} today']\n",
        locales=[locale],
    )
    for sample in generate(generator, make_specs(generator, 10, locale=locale)):
        (money,) = sample.spans
        assert sign in money.value, sample.text
        assert sample.text[money.start : money.end] == money.value
        assert not money.value[0].isspace() and not money.value[-1].isspace()


def test_literal_braces_and_offsets(tmp_path):
    generator = write_generator(
        tmp_path,
        "task: ner\nlabels: [CITY]\ntemplates: ['{{ref}} {CITY:city}{{x}}']\n",
    )
    sample = generate(generator, make_specs(generator, 1))[0]
    (span,) = sample.spans
    assert sample.text.startswith("{ref} ") and sample.text.endswith("{x}")
    assert span.start == len("{ref} ") and sample.text[span.start : span.end] == span.value


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("plain", ("plain",)),
        ("{P:name}", (Slot("P", "faker", "name", "{P:name}"),)),
        ("a {:@issue} b", ("a ", Slot(None, "lexicon", "issue", "{:@issue}"), " b")),
        ("{{x}} {ORG: company }", ("{x} ", Slot("ORG", "faker", "company", "{ORG: company }"))),
    ],
)
def test_parse_template(template, expected):
    assert parse_template(template) == expected


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("12 Main St\nSpringfield, IL", "12 Main St, Springfield, IL"),
        ("  a \t b\u3000c  ", "a b c"),
        ("line\n\n  next ", "line, next"),
    ],
)
def test_clean_whitespace(raw, clean):
    assert clean_whitespace(raw) == clean


@pytest.mark.parametrize(
    ("raw", "trimmed"),
    [
        ("e.V.", "e.V"),
        ("मोहना", "मोहना"),
        ("(0113", "0113"),  # a bracket the value does not close is no part of it
        ("0113)", "0113"),
        ("+ 34", "34"),  # a plus before no digit is no country code
        ("-0113-", "0113"),
    ],
)
def test_trim_edges(raw, trimmed):
    assert trim_edges(raw) == trimmed


@pytest.mark.parametrize(
    ("raw", "trimmed"),
    [
        ("+34 612 345", "+34 612 345"),
        ("(0)30 1234", "(0)30 1234"),
        ("(0113) 496 0123.", "(0113) 496 0123"),
        ("+44(0)20 7496 0123", "+44(0)20 7496 0123"),
        (" (030) 1234 (ext. 5)", "(030) 1234 (ext. 5)"),
        ("((0)30 1234", "(0)30 1234"),
    ],
)
def test_trim_edges_keeps_what_a_phone_number_is_written_with(raw, trimmed):
    assert trim_edges(raw) == trimmed


@pytest.mark.parametrize(("raw", "trimmed"), [("(IBM)", "IBM"), ("((0113)).", "0113")])
def test_trim_edges_cuts_a_bracket_pair_wrapping_the_whole_value(raw, trimmed):
    assert trim_edges(raw) == trimmed


# --- bad template files ---------------------------------------------------------------------------

NER_HEAD = "task: ner\nlabels: [PERSON, PRODUCT]\nlexicons: {product: [Widget]}\n"
BAD_FILES = [
    # (case id, file text, locales, fragments the message must hold)
    ("unknown provider", NER_HEAD + "templates: ['Hi {PERSON:full_name}']",
     ["en_US"], ["templates[0]", "full_name", "Faker provider"]),
    ("provider of one locale only", NER_HEAD + "templates: ['{PERSON:kana_name}']",
     ["ja_JP", "en_US"], ["templates[0]", "kana_name", "en_US"]),
    ("provider needs arguments", NER_HEAD + "templates: ['x', '{:enum} {PERSON:name}']",
     ["en_US"], ["templates[1]", "enum", "arguments"]),
    ("provider gives no text", NER_HEAD + "templates: ['{PERSON:binary}']",
     ["en_US"], ["templates[0]", "binary", "not text"]),
    ("undeclared label", NER_HEAD + "templates: ['a', 'b {PERSO:name}']",
     ["en_US"], ["templates[1]", "PERSO", "labels"]),
    ("unknown lexicon", NER_HEAD + "templates: ['{PRODUCT:@prodcut}']",
     ["en_US"], ["templates[0]", "prodcut", "lexicons"]),
    ("slot without provider", NER_HEAD + "templates: ['{PERSON}']",
     ["en_US"], ["templates[0]", "malformed slot", "{PERSON}"]),
    ("slot with empty provider", NER_HEAD + "templates: ['{PERSON:}']",
     ["en_US"], ["templates[0]", "malformed slot"]),
    ("unclosed slot", NER_HEAD + "templates: ['Hi {PERSON:name']",
     ["en_US"], ["templates[0]", "unclosed"]),
    ("stray closing brace", NER_HEAD + "templates: ['Hi name}']",
     ["en_US"], ["templates[0]", "without a slot"]),
    ("space in provider", NER_HEAD + "templates: ['{PERSON:first name}']",
     ["en_US"], ["templates[0]", "malformed slot"]),
    ("not a mapping", "- task: ner\n", ["en_US"], ["YAML mapping"]),
    ("empty file", "", ["en_US"], ["YAML mapping"]),
    ("YAML syntax error", "task: ner\nlabels: [PERSON\n", ["en_US"], ["YAML syntax error"]),
    ("ner templates as a mapping", NER_HEAD + "templates: {PERSON: ['{PERSON:name}']}",
     ["en_US"], ["templates", "valid list"]),
    ("classification templates as a list",
     "task: classification\nlabels: [pos]\ntemplates: ['good']", ["en_US"],
     ["templates", "valid dictionary"]),
    ("unknown top-level key", NER_HEAD + "template: ['{PERSON:name}']\ntemplates: ['x']",
     ["en_US"], ["unknown key 'template'"]),
    ("missing task", "labels: [PERSON]\ntemplates: ['x']", ["en_US"], ["task is required"]),
    ("unknown task", "task: qa\nlabels: [PERSON]\ntemplates: ['x']", ["en_US"], ["unknown task 'qa'"]),
    ("missing templates", NER_HEAD, ["en_US"], ["templates is required"]),
    ("repeated label", "task: ner\nlabels: [A, A]\ntemplates: ['x']", ["en_US"], ["repeat"]),
    ("lexicon value with punctuation", NER_HEAD.replace("Widget", "'Yahoo!'")
     + "templates: ['{PRODUCT:@product}']", ["en_US"], ["lexicons.product[0]", "Yahoo!"]),
    ("classification label without templates",
     "task: classification\nlabels: [pos, neg]\ntemplates: {pos: ['good']}", ["en_US"],
     ["'neg'", "add templates"]),
    ("classification key not a label",
     "task: classification\nlabels: [pos]\ntemplates: {pos: ['a'], neutral: ['b']}", ["en_US"],
     ["templates.neutral", "not in labels"]),
    ("NUL in a template", NER_HEAD + "templates: [\"Hi\\0 {PERSON:name}\"]",
     ["en_US"], ["templates[0]", "NUL byte"]),
    ("NUL in a lexicon value", NER_HEAD.replace("Widget", '"Wid\\0get"')
     + "templates: ['{PRODUCT:@product}']", ["en_US"], ["lexicons.product[0]", "NUL byte"]),
    ("NER label starting with a digit", "task: ner\nlabels: ['1']\ntemplates: ['x']",
     ["en_US"], ["labels[0]", "should match pattern"]),  # slots could not name it: {1:name}
    ("classification label YAML reads as a number",
     "task: classification\nlabels: [0]\ntemplates: {0: ['bad']}", ["en_US"],
     ["labels[0]", "YAML read it as a number: write it in quotes ('0')"]),
    ("blank classification label",
     "task: classification\nlabels: [' ']\ntemplates: {' ': ['good']}", ["en_US"],
     ["labels[0]", "is blank"]),
    ("classification label with a tab",
     "task: classification\nlabels: [\"a\\tb\"]\ntemplates: {\"a\\tb\": ['good']}", ["en_US"],
     ["labels[0]", "control character"]),
    ("blank ner template", NER_HEAD + "templates: ['{PERSON:name}', '   ']",
     ["en_US"], ["templates[1]", "blank"]),
    ("blank classification template",
     "task: classification\nlabels: [pos]\ntemplates: {pos: ['good', \"\\t\"]}", ["en_US"],
     ["templates.pos[1]", "blank"]),
    ("classification with a span label",
     "task: classification\nlabels: [pos]\ntemplates: {pos: ['good {PERSON:name}']}", ["en_US"],
     ["templates.pos[0]", "record no spans", "{:name}"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "locales", "fragments"),
    [case[1:] for case in BAD_FILES],
    ids=[case[0] for case in BAD_FILES],
)
def test_bad_template_files_are_input_errors(tmp_path, text, locales, fragments):
    with pytest.raises(InputError) as caught:
        write_generator(tmp_path, text, locales=locales)
    message = str(caught.value)
    assert "tickets.yaml" in message
    for fragment in fragments:
        assert fragment in message, message


def test_a_yes_no_label_is_told_to_quote_the_word_it_wrote(tmp_path):
    text = "task: classification\nlabels: [yes, no]\ntemplates: {'yes': ['ok'], 'no': ['bad']}\n"
    with pytest.raises(InputError) as caught:
        write_generator(tmp_path, text)
    message = str(caught.value)
    assert "labels[0]" in message and "labels[1]" in message
    # it said "write it in quotes ('true')": a spam filter's labels became true and false
    assert "'yes'" in message and "'no'" in message, message
    assert "('true')" not in message and "('false')" not in message


def test_pydantic_places_are_written_as_the_file_s_own_messages_write_them(tmp_path):
    # a key `yes` read as True was 'templates.1.[key]', a place the file does not have; list
    # items were 'lexicons.qty.0' beside the generator's own 'lexicons.qty[0]'
    text = (
        "task: classification\nlabels: ['yes', 'no']\nlexicons: {qty: [1]}\n"
        "templates: {yes: ['ok {:@qty}'], 'no': ['bad']}\n"
    )
    with pytest.raises(InputError) as caught:
        write_generator(tmp_path, text)
    message = str(caught.value)
    assert "tickets.yaml: templates (a key): " in message, message
    assert "tickets.yaml: lexicons.qty[0]: " in message, message
    assert ".[key]" not in message and "qty.0" not in message


def test_classification_labels_are_class_names_not_slot_labels(tmp_path):
    """Document labels appear in no slot: a real dataset's "0", "1" or "4 stars" are labels
    (balance mines templates under them); NER span labels keep the slot pattern."""
    text = "task: classification\nlabels: ['0', '4 stars']\ntemplates: {'0': ['bad'], '4 stars': ['good']}"
    generator = write_generator(tmp_path, text)
    assert generator.template_file.labels == ("0", "4 stars")


def test_a_provider_faker_cannot_run_here_is_an_input_error(tmp_path, monkeypatch):
    """Faker's xml provider needs xmltodict, which it does not install: its trial call raises
    UnsupportedFeature, named as the slot's problem rather than a traceback."""

    def xml(self: object) -> str:
        raise UnsupportedFeature("`xml` requires the `xmltodict` Python library.", "xml")

    monkeypatch.setattr(misc.Provider, "xml", xml)
    with pytest.raises(InputError) as caught:
        write_generator(tmp_path, NER_HEAD + "templates: ['{:xml} {PERSON:name}']")
    message = str(caught.value)
    for fragment in ("tickets.yaml", "templates[0]", "'xml'", "xmltodict", "pick another"):
        assert fragment in message, message


@pytest.mark.parametrize(
    ("template", "locale", "reference_date", "fragments"),
    [
        # Faker's date providers count from 1970: before it their range is empty
        ("Founded in {DATE:year}.", "en_US", "1969-12-31", ["'year'", "1969-12-31", "ValueError"]),
        ("Due {DATE:future_date}.", "en_US", "9999-12-31", ["'future_date'", "9999-12-31"]),
        ("Paid to {ORG:bank}.", "de_DE", "2026-06-30", ["'bank'", "de_DE", "NotImplementedError"]),
    ],
)
def test_a_provider_that_fails_for_the_locale_or_day_is_an_input_error(
    tmp_path, template, locale, reference_date, fragments
):
    """The trial call runs on the config's reference_date, so a provider that fails there (or
    for the locale) is named when the generator is built, before any sample is made."""
    path = tmp_path / "tickets.yaml"
    path.write_text(f"task: ner\nlabels: [DATE, ORG]\ntemplates: ['{template}']\n")
    config = TemplateTextConfig(
        templates=path, count=1, locales=[locale], reference_date=reference_date
    )
    with pytest.raises(InputError) as caught:
        TemplateGenerator(config, categories=[])
    message = str(caught.value)
    for fragment in ("tickets.yaml", "templates[0]", "pick another", *fragments):
        assert fragment in message, message


def test_missing_file_and_unknown_locale_are_input_errors(tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.yaml"):
        load_template_file(tmp_path / "nowhere.yaml")
    # the config refuses it (test_config.py); a config built past its checks still fails here
    with pytest.raises(ValidationError, match="'xx_XX' is not a Faker locale"):
        write_generator(tmp_path, NER_HEAD + "templates: ['{PERSON:name}']", locales=["xx_XX"])
    path = tmp_path / "tickets.yaml"
    unchecked = TemplateTextConfig.model_construct(templates=path, count=1, locales=["xx_XX"])
    with pytest.raises(InputError, match="xx_XX"):
        TemplateGenerator(unchecked, categories=[])


def test_slot_syntax_error_is_a_value_error():
    with pytest.raises(SlotSyntaxError, match="malformed"):
        parse_template("{A:b:c}")


# --- speed ----------------------------------------------------------------------------------------


def test_two_hundred_samples_in_three_locales_are_fast(shipped):
    generator = shipped["support_tickets.yaml"]
    specs = [
        spec.model_copy(update={"attributes": {"locale": LOCALES[i % 3]}})
        for i, spec in enumerate(make_specs(generator, 200))
    ]
    start = time.perf_counter()
    generator.generate(specs)
    assert time.perf_counter() - start < 1.0  # ~0.06 s measured; generous for a shared CPU
