"""pipeline.judged_chunks: judged on the caller's thread unless the generator's work runs
outside Python (`overlaps_judging`); either way the same judged samples, in index order."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from synthgate.config import parse_config
from synthgate.generators import REGISTRY, build_generator, generator_class
from synthgate.pipeline import batch_id_for, build_judges, judged_chunks, plan
from synthgate.samples import GeneratedSample, RubricReport, SampleSpec

CONFIG = {
    "name": "chunks",
    "seed": 5,
    "categories": ["circle", "square", "star"],
    "image": {"generator": "procedural", "count": 13, "size": [64, 64]},
}


class Recorded:
    """A generator and a judge that note the thread each call ran on."""

    def __init__(self, overlaps: bool) -> None:
        self.config = parse_config(CONFIG, source=Path("test"))
        self.generator: Any = build_generator(self.config.image, categories=self.config.categories)
        self.generator.overlaps_judging = overlaps
        self.judge = build_judges(self.config, {"image": self.generator})["image"]
        self.threads: dict[str, set[str]] = {"generate": set(), "judge": set()}

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        self.threads["generate"].add(threading.current_thread().name)
        return self.generator.generate(specs)

    def __call__(self, generated: GeneratedSample) -> RubricReport:
        self.threads["judge"].add(threading.current_thread().name)
        return self.judge(generated)

    def quota_categories(self) -> list[str | None]:
        return self.generator.quota_categories()

    @property
    def overlaps_judging(self) -> bool:
        return bool(self.generator.overlaps_judging)

    def run(self) -> list[tuple[int, str, str, Any]]:
        specs = plan(
            self.config,
            "image",
            batch_id=batch_id_for(self.config),
            quota_categories=self.quota_categories(),
        )
        judged = []
        for chunk in judged_chunks(specs, self, self, size=4):  # type: ignore[arg-type]
            for one in chunk:
                sample = one.sample
                assert sample.report is not None
                judged.append((sample.spec.index, sample.id, sample.status, sample.report.score))
        return judged


@pytest.mark.parametrize("overlaps", [False, True])
def test_the_same_judged_samples_in_index_order_either_way(overlaps: bool) -> None:
    recorded = Recorded(overlaps)
    judged = recorded.run()
    assert [index for index, *_ in judged] == list(range(13))
    assert judged == Recorded(not overlaps).run()


def test_a_python_generator_is_judged_on_the_callers_thread() -> None:
    recorded = Recorded(overlaps=False)
    recorded.run()
    here = threading.current_thread().name
    assert recorded.threads == {"generate": {here}, "judge": {here}}


def test_a_generator_working_outside_python_is_judged_alongside_on_a_second_thread() -> None:
    recorded = Recorded(overlaps=True)
    recorded.run()
    here = threading.current_thread().name
    assert recorded.threads["generate"] == {here}
    (judging,) = recorded.threads["judge"]
    assert judging != here and judging.startswith("judge")


def test_the_torch_generators_ask_for_overlap_and_the_others_do_not() -> None:
    overlapping = {
        name for name in REGISTRY if getattr(generator_class(name), "overlaps_judging", False)
    }
    assert overlapping == {
        "text_model",
        "diffusion_object_paste",
        "diffusion_layout",
        "diffusion_inpaint",
    }
