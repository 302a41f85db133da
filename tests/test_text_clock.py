"""Faker's dates count from the config's reference_date, not from the clock (generators/text/
clock.py): a seed makes the same text on any day, and the pin holds only where it is set."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import faker
import pytest

from synthgate.config import TemplateTextConfig
from synthgate.generators.text.clock import pin_faker_modules, pinned_clock
from synthgate.generators.text.templates import TemplateGenerator
from synthgate.samples import SampleSpec

DATED = """\
task: ner
labels: [DATE]
templates:
  - "Opened on {DATE:date_this_year}, due {DATE:future_date}, logged {:date_time}."
"""


def _texts(tmp_path: Path, reference: dt.date | None) -> list[str]:
    path = tmp_path / "dated.yaml"
    path.write_text(DATED)
    extra = {} if reference is None else {"reference_date": reference}
    config = TemplateTextConfig(templates=path, count=5, **extra)
    generator = TemplateGenerator(config, categories=[])
    specs = [
        SampleSpec(batch_id="b", index=i, modality="text", generator="templates", seed=100 + i)
        for i in range(5)
    ]
    return [g.sample.text or "" for g in generator.generate(specs)]


def test_dates_follow_the_reference_date_and_only_the_seed(tmp_path: Path) -> None:
    first = _texts(tmp_path, dt.date(2001, 6, 30))
    assert first == _texts(tmp_path, dt.date(2001, 6, 30))
    assert all("2001-" in text for text in first)  # date_this_year: a day of 2001
    assert not any(str(dt.date.today().year) in text for text in first)
    later = _texts(tmp_path, dt.date(2011, 6, 30))
    assert all("2011-" in text for text in later) and later != first
    assert _texts(tmp_path, None) == _texts(
        tmp_path, TemplateTextConfig.model_fields["reference_date"].default
    )


def test_the_reference_date_is_recorded_in_provenance(tmp_path: Path) -> None:
    path = tmp_path / "dated.yaml"
    path.write_text(DATED)
    config = TemplateTextConfig(templates=path, count=1, reference_date="1999-12-31")
    spec = SampleSpec(batch_id="b", index=0, modality="text", generator="templates", seed=1)
    [made] = TemplateGenerator(config, categories=[]).generate([spec])
    assert made.sample.provenance.params["reference_date"] == "1999-12-31"


@pytest.mark.parametrize("locale", ["en_US", "sv_SE", "zh_CN"])
def test_outside_the_pin_and_in_other_threads_faker_reads_the_real_clock(locale: str) -> None:
    fake = faker.Faker(locale)
    pin_faker_modules()
    today = dt.date.today()
    assert fake.date_this_year().year == today.year
    seen: list[dt.date] = []
    with pinned_clock(dt.date(1990, 3, 15)):
        assert fake.date_this_month() <= dt.date(1990, 3, 15)
        assert fake.date_this_month() >= dt.date(1990, 3, 1)
        assert fake.future_date() > dt.date(1990, 3, 15)
        born = fake.date_of_birth(minimum_age=1, maximum_age=5)  # ages count from today
        assert dt.date(1984, 3, 15) < born <= dt.date(1989, 3, 15)
        worker = threading.Thread(target=lambda: seen.append(fake.date_this_year()))
        worker.start()
        worker.join()
    assert seen[0].year == today.year
    assert fake.date_this_year().year == today.year


def test_faker_type_checks_still_see_plain_dates() -> None:
    faker.Faker("en_US")
    pin_faker_modules()
    from faker.providers import date_time

    assert isinstance(dt.date(2020, 1, 1), date_time.dtdate)
    assert isinstance(dt.datetime(2020, 1, 1), date_time.datetime)
    assert not isinstance(dt.date(2020, 1, 1), date_time.datetime)
    fake = faker.Faker()
    with pinned_clock(dt.date(2020, 2, 29)):
        assert fake.date_between(dt.date(2020, 1, 1), dt.date(2020, 1, 2)) in (
            dt.date(2020, 1, 1),
            dt.date(2020, 1, 2),
        )
        assert fake.date_time_between("-1d", "now") <= dt.datetime(2020, 2, 29, 12)
