"""The `templates` text generator: template strings with typed slots filled per locale.

`TemplateGenerator` fills one template per `SampleSpec` with Faker values (in the spec's locale)
and lexicon values, and records a `Span` for every labelled slot exactly where its value went, so
the labels are right by construction. `load_template_file` (from slots.py) validates a file.

Template file schema (YAML; unknown keys are errors):

    task: ner                  # ner | classification
    labels: [PERSON, ORG]      # ner: the span labels slots may record;
                               # classification: the document labels
    lexicons:                  # optional: name -> list of values, for `@name` slots
      product: [CloudSync Pro, Aurora X2 Router]
    templates:                 # ner: a list of strings
      - "Hi, I'm {PERSON:name} from {ORG:company}; my {PRODUCT:@product} {:@issue}."
    # classification: a mapping document label -> list of strings (every label needs one)
    # templates:
    #   positive: ["Love my {:@product}, thanks {:first_name}!"]
    order: random              # optional: random (a seeded draw per sample) | cycle (sample i
                               # takes template i mod n of its class)

Slots: `{LABEL:provider}` fills from the Faker provider method `provider` (called without
arguments, in the sample's locale) and records a span LABEL, which must be in `labels`;
`{LABEL:@lexicon}` draws from `lexicons[lexicon]`; `{:provider}` and `{:@lexicon}` fill text and
record no span (the only slots a classification file may use). `{{` / `}}` are literal braces.
Filled values are cleaned: newlines -> ", ", whitespace collapsed, and no value starts or ends
with whitespace, punctuation or a symbol other than a currency sign or % ($€£¥%, which the ner
rubric allows at span edges: "$29.14" keeps its sign) (Faker values are redrawn up to 10 times,
then trimmed, keeping what a phone number is written with, which the ner rubric allows too: a
leading + before a digit and a bracket of a pair the value holds, "+34 612 345 678" and
"(0)30 1234"; lexicon values must already be clean). With a spec gender (female | male), name providers use
their gendered variant (`name` -> `name_female`) and the sample records the gender where the
variant has one in the locale (en_US surnames have none: `last_name` records no gender); it records
the locale only when a Faker slot was filled (lexicon values carry none). Date providers count
from the config's `reference_date`, not from today (clock.py): a seed makes the same text on
any day.

A file's `order: cycle` has sample i take template i mod n of its class instead of a seeded
draw (mined templates are each used once). A `reference` component (the (name, text) real rows
balancing draws from, generators/text/rows.py) goes with every sample to the rubric's copy check
(`extras["text_reference"]`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, ClassVar

import faker
import numpy as np
from faker.providers import person

from synthgate.config import TemplateTextConfig
from synthgate.errors import InputError
from synthgate.generators.text.clock import pin_faker_modules, pinned_clock
from synthgate.generators.text.slots import (
    Slot,
    Template,
    TemplateFile,
    as_text,
    clean_whitespace,
    has_clean_edges,
    load_template_file,
    trim_edges,
)
from synthgate.samples import GeneratedSample, Provenance, Sample, SampleSpec, Span, sample_id

__all__ = ["TemplateFile", "TemplateGenerator", "load_template_file"]

GENDERS = ("female", "male")
MAX_DRAWS = 10  # draws of a Faker value before its unclean edges are trimmed off
# Faker's person provider: a gendered variant (last_name_female) that a locale does not override
# draws from this data's gendered list (last_names_female), or without one from the plain
# provider: en_US surnames have no gender, so last_name_female is last_name.
FALLBACK_DATA = {
    "first_name": "first_names",
    "last_name": "last_names",
    "name": "formats",
    "prefix": "prefixes",
    "suffix": "suffixes",
}


class TemplateGenerator:
    """Fills one template per spec; labels (spans or the document label) by construction.

    `categories` (the batch's classes, which name image classes in mixed configs) is not used:
    the labels come from the template file. Faker objects are built once per locale, and every
    provider a template names is checked for every configured locale when the generator is built.
    """

    name: ClassVar[str] = "templates"
    version: ClassVar[str] = "1"
    modality: ClassVar[str] = "text"

    def __init__(
        self,
        config: TemplateTextConfig,
        *,
        categories: list[str],
        reference: tuple[tuple[str, str], ...] | None = None,
    ) -> None:
        self.config = config
        self.template_file = load_template_file(config.templates)
        self._fakers: dict[str, faker.Faker] = {}
        # (locale, provider, gender) -> (bound provider method, whether it is a gendered variant)
        self._providers: dict[tuple[str, str, str | None], tuple[Callable[[], Any], bool]] = {}
        with pinned_clock(config.reference_date):  # each provider's trial call sees that day
            for locale in config.locales:
                self._faker_for(locale)
        self.reference = reference

    def quota_categories(self) -> list[str | None]:
        if self.template_file.task == "classification":
            return list(self.template_file.labels)
        return [None]

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        extras = {"text_reference": self.reference} if self.reference is not None else {}
        return [GeneratedSample(sample=self._make(spec), extras=dict(extras)) for spec in specs]

    def _make(self, spec: SampleSpec) -> Sample:
        locales = self.config.locales
        locale = spec.attributes.get("locale") or locales[spec.index % len(locales)]
        gender = spec.attributes.get("gender")
        if gender is not None and gender not in GENDERS:
            raise InputError(
                f"sample {spec.index}: attributes.gender {gender!r} is not one the templates "
                f"generator can honour; use one of {list(GENDERS)}"
            )
        fake = self._faker_for(locale)
        fake.seed_instance(spec.seed)
        rng = np.random.default_rng(spec.seed)
        template = self._choose_template(spec, rng)
        with pinned_clock(self.config.reference_date):  # dates count from it, not from today
            return self._fill(spec, template, locale, gender, rng)

    def _fill(
        self,
        spec: SampleSpec,
        template: Template,
        locale: str,
        gender: str | None,
        rng: np.random.Generator,
    ) -> Sample:

        parts: list[str] = []
        spans: list[Span] = []
        offset = 0
        gender_used = faker_used = False
        for piece in template.pieces:
            if isinstance(piece, str):
                value = piece
            elif piece.source == "lexicon":
                values = self.template_file.lexicons[piece.name]
                value = values[int(rng.integers(len(values)))]
            else:
                value, gendered = self._draw(piece, template, locale, gender)
                gender_used = gender_used or gendered
                faker_used = True
            if isinstance(piece, Slot) and piece.label is not None:
                spans.append(
                    Span(start=offset, end=offset + len(value), label=piece.label, value=value)
                )
            parts.append(value)
            offset += len(value)

        # Only what the text carries: a locale where Faker filled a slot, a gender where a
        # gendered provider did.
        attributes = {"locale": locale} if faker_used else {}
        if gender_used and gender is not None:
            attributes["gender"] = gender
        task = self.template_file.task
        provenance = Provenance(
            generator=self.name,
            generator_version=self.version,
            seed=spec.seed,
            params={
                "template_file": self.template_file.path.name,
                "template_index": template.index,
                "task": task,
                "locale": locale,
                "reference_date": self.config.reference_date.isoformat(),
            },
        )
        return Sample(
            id=sample_id(spec.batch_id, "text", spec.index),
            spec=spec,
            text="".join(parts),
            spans=spans,
            doc_label=template.label if task == "classification" else None,
            attributes=attributes,
            provenance=provenance,
        )

    def _choose_template(self, spec: SampleSpec, rng: np.random.Generator) -> Template:
        file = self.template_file
        label = None
        if file.task == "classification":
            if spec.category is None:  # no quota asked for: any label
                label = file.labels[int(rng.integers(len(file.labels)))]
            elif spec.category in file.labels:
                label = spec.category
            else:
                raise InputError(
                    f"{file.path}: sample {spec.index} asks for category {spec.category!r}, "
                    f"which is not in the file's labels {list(file.labels)}"
                )
        choices = file.templates_for(label)
        if file.order == "cycle":
            return choices[spec.index % len(choices)]
        return choices[int(rng.integers(len(choices)))]

    def _draw(
        self, slot: Slot, template: Template, locale: str, gender: str | None
    ) -> tuple[str, bool]:
        """A clean value from a Faker provider: redrawn while its ends are unclean, then trimmed."""
        method, gendered = self._providers[(locale, slot.name, gender)]
        value = ""
        for _ in range(MAX_DRAWS):
            try:
                drawn = method()
            except Exception as error:  # Faker's own, on a draw the trial call did not meet
                raise InputError(
                    f"{self.template_file.path}: {template.where}: slot {slot.raw}: "
                    + self._cannot_run(method, locale, error)
                ) from None
            value = clean_whitespace(as_text(drawn) or "")
            if has_clean_edges(value):
                return value, gendered
        value = trim_edges(value)
        if not value:
            raise InputError(
                f"{self.template_file.path}: {template.where}: Faker provider {slot.name!r} "
                f"({locale}) gave no text after {MAX_DRAWS} draws; use another provider"
            )
        return value, gendered

    def _cannot_run(self, method: Callable[[], Any], locale: str, error: Exception) -> str:
        return (
            f"Faker provider {method.__name__!r} fails for locale {locale} on reference_date "
            f"{self.config.reference_date} ({type(error).__name__}: {error}); pick another "
            "provider, locale or reference_date"
        )

    def _faker_for(self, locale: str) -> faker.Faker:
        """The locale's Faker, built once; every provider the templates name is checked on it."""
        if locale in self._fakers:
            return self._fakers[locale]
        try:
            fake = faker.Faker(locale)
            pin_faker_modules()  # the providers this locale loaded, too
        except AttributeError:
            raise InputError(
                f"text.locales: unknown Faker locale {locale!r}; use one such as en_US, de_DE, "
                "ja_JP, fr_FR, es_ES or hi_IN (faker.config.AVAILABLE_LOCALES lists them all)"
            ) from None
        # Exactly what Faker exposes as formatters: public callables of its providers.
        available = {
            name
            for provider in fake.get_providers()
            for name in dir(provider)
            if not name.startswith("_") and callable(getattr(provider, name))
        }
        for template in self.template_file.templates:
            for slot in template.slots():
                if slot.source == "faker":
                    self._add_provider(fake, locale, available, slot, template)
        self._fakers[locale] = fake
        return fake

    def _add_provider(
        self, fake: faker.Faker, locale: str, available: set[str], slot: Slot, template: Template
    ) -> None:
        path = self.template_file.path
        if slot.name not in available:
            close = difflib.get_close_matches(slot.name, available, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise InputError(
                f"{path}: {template.where}: slot {slot.raw}: unknown Faker provider "
                f"{slot.name!r} for locale {locale}; {hint}use a Faker provider method (name, "
                "company, city, …) or '@name' for a lexicon"
            )
        for gender in (None, *GENDERS):
            if (locale, slot.name, gender) in self._providers:
                continue
            variant = f"{slot.name}_{gender}"
            gendered = gender is not None and variant in available
            method = getattr(fake, variant if gendered else slot.name)
            gendered = gendered and _draws_a_gender(method, slot.name, str(gender))
            # One trial call (seeded, never the global random) catches providers that need
            # arguments or give no text, now rather than in the middle of a batch.
            fake.seed_instance(0)
            try:
                result = method()
            except TypeError as error:
                raise InputError(
                    f"{path}: {template.where}: slot {slot.raw}: Faker provider "
                    f"{method.__name__!r} cannot be called without arguments ({error}); "
                    "slots call providers without arguments, so pick another one"
                ) from None
            except Exception as error:
                # xml without xmltodict, bank in de_DE (NotImplementedError), pytimezone without
                # tzdata, a date provider before 1970 or near year 9999, ...
                cannot = self._cannot_run(method, locale, error)
                raise InputError(f"{path}: {template.where}: slot {slot.raw}: {cannot}") from None
            if as_text(result) is None:
                raise InputError(
                    f"{path}: {template.where}: slot {slot.raw}: Faker provider "
                    f"{method.__name__!r} gives {type(result).__name__}, not text; pick another one"
                )
            self._providers[(locale, slot.name, gender)] = (method, gendered)


def _draws_a_gender(method: Callable[[], Any], name: str, gender: str) -> bool:
    """Whether a provider's gendered variant gives values of that gender, not the plain
    provider's (Faker's fallback where the locale has no gendered list, FALLBACK_DATA)."""
    data = FALLBACK_DATA.get(name)
    base = getattr(person.Provider, f"{name}_{gender}", None)
    if data is None or getattr(method, "__func__", None) is not base:
        return True  # the locale's own variant
    return hasattr(getattr(method, "__self__", None), f"{data}_{gender}")
