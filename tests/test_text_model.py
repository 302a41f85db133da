"""The `text_model` generator on a tiny random model loaded offline: seeded rows of the spec's
class after real rows of it, clear errors for a missing model, and balancing's model fallback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from balance_fixtures import run_cli
from tiny_text_model import tiny_text_model

from synthgate.config import LanguageModelTextConfig, parse_config
from synthgate.errors import InputError
from synthgate.generators import build_generator
from synthgate.samples import SampleSpec

REVIEWS = Path(__file__).parent / "data" / "restaurant_reviews.jsonl"


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_text_model(tmp_path_factory.mktemp("tiny-lm"))


def config_for(model: Path | str, **settings: object) -> LanguageModelTextConfig:
    return LanguageModelTextConfig(
        count=1, source=REVIEWS, model={"path": str(model), "max_new_tokens": 12, **settings}
    )


def specs(n: int, label: str = "negative") -> list[SampleSpec]:
    return [
        SampleSpec(
            batch_id="lm",
            index=i,
            modality="text",
            generator="text_model",
            category=label,
            seed=1000 + i,
        )
        for i in range(n)
    ]


def test_rows_are_seeded_labelled_and_carry_their_prompt(model_folder: Path) -> None:
    generator = build_generator(config_for(model_folder), categories=[])
    made = generator.generate(specs(3))
    again = build_generator(config_for(model_folder), categories=[]).generate(specs(3))
    assert [g.sample.text for g in made] == [g.sample.text for g in again]
    for generated in made:
        sample = generated.sample
        assert sample.doc_label == "negative" and "\n" not in sample.text
        assert sample.provenance.prompt.endswith("A negative text:")
        assert "A positive text" not in sample.provenance.prompt  # examples of its class only
        assert sample.provenance.model["id"] == str(model_folder)
        reference = generated.extras["text_reference"]
        assert reference[0][0] == "restaurant_reviews.jsonl row 1 (id p01)"
    # Every row draws from its own seed: a row is the same alone or in a batch.
    assert generator.generate(specs(3)[2:])[0].sample.text == made[2].sample.text


def test_a_missing_model_is_a_clear_error_never_a_download(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="never downloaded"):
        build_generator(config_for(tmp_path / "nowhere"), categories=[])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no causal language model"):
        build_generator(config_for(tmp_path / "empty"), categories=[])


def test_a_config_names_the_generator(model_folder: Path) -> None:
    config = parse_config(
        {
            "name": "lm",
            "text": {
                "generator": "text_model",
                "count": 2,
                "source": str(REVIEWS),
                "model": {"path": str(model_folder)},
            },
        },
        source=Path("<test>"),
    )
    assert isinstance(config.text, LanguageModelTextConfig)


def test_balance_falls_back_on_the_configured_model(model_folder: Path, tmp_path: Path) -> None:
    balance = tmp_path / "balance.yaml"
    balance.write_text(
        "text: {generator: counterfactual, model: {path: "
        + json.dumps(str(model_folder))
        + ", max_new_tokens: 8, prompt_rows: 2}}\n"
    )
    out = tmp_path / "out"
    result = run_cli(
        "balance",
        "--jsonl",
        str(REVIEWS),
        "--out",
        str(out),
        "--target",
        "max",
        "--config",
        str(balance),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "balance.json").read_text())
    steps = summary["text"]["strategies"]["negative"]
    assert [s["strategy"] for s in steps] == ["counterfactual", "model"]
    assert steps[1]["planned"] == 28 - steps[0]["accepted"]
    made = sum(steps[1].get(k, 0) for k in ("accepted", "review", "rejected"))
    assert made == steps[1]["planned"]  # every planned row was made and judged
    assert any(run.endswith("text_model") for run in summary["runs"])
    assert "the local text-generation model" in (out / "report.md").read_text()


def test_a_source_of_doccano_class_lists_is_read_by_its_classes(
    model_folder: Path, tmp_path: Path
) -> None:
    """doccano writes a class as a list of one ("label": ["negative"]): its rows were filed
    under "['negative']", so a spec of class negative found no row of it."""
    source = tmp_path / "doccano.jsonl"
    rows = [json.loads(line) for line in REVIEWS.read_text().splitlines() if line.strip()]
    source.write_text("".join(json.dumps({**r, "label": [r["label"]]}) + "\n" for r in rows))
    config = config_for(model_folder).model_copy(update={"source": source})
    made = build_generator(config, categories=[]).generate(specs(1))
    assert made[0].sample.doc_label == "negative"
    assert made[0].sample.provenance.prompt.endswith("A negative text:")


def test_a_run_judges_rows_against_the_classes_of_the_source(
    model_folder: Path, tmp_path: Path
) -> None:
    """`sg.run` (and `sg.generate`) of a text_model config failed with "AttributeError:
    'LanguageModelTextConfig' object has no attribute 'locales'" (planning its attributes); and
    without `categories` in the config every row the model wrote was "document label
    'negative' not in taxonomy", and went to review for it."""
    import synthgate as sg

    config = {
        "name": "lm",
        "seed": 1,
        "text": {
            "generator": "text_model",
            "count": 2,
            "source": str(REVIEWS),
            "model": {"path": str(model_folder), "max_new_tokens": 12},
        },
    }
    assert sorted(g.sample.doc_label for g in sg.generate(config)) == ["negative", "positive"]
    result = sg.run(config, out=tmp_path / "run")
    checks = {f.check for s in result.samples() for f in s.report.findings}  # type: ignore[union-attr]
    assert "correctness_label_in_taxonomy" not in checks


def test_a_relative_model_path_is_found_next_to_the_config(
    model_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project folder holding its config and its language model runs from anywhere, as one
    holding a diffusion model does: text_model's model and counterfactual's fallback model. A
    name found nowhere still gets the generator's refusal, naming the path as written."""
    import synthgate as sg

    project = tmp_path / "project"
    shutil.copytree(model_folder, project / "models" / "lm")
    model = {"path": "models/lm", "max_new_tokens": 12}
    config = {
        "name": "lm",
        "text": {"generator": "text_model", "count": 2, "source": str(REVIEWS), "model": model},
    }
    (project / "batch.yaml").write_text(yaml.safe_dump(config))
    fallback = {**config, "text": {"generator": "counterfactual", "count": 2}}
    fallback["text"].update(source=str(REVIEWS), fallback="model", model=model)
    (project / "fallback.yaml").write_text(yaml.safe_dump(fallback))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    made = sg.generate(project / "batch.yaml")
    assert sorted(g.sample.doc_label for g in made) == ["negative", "positive"]
    local = str(project / "models" / "lm")
    assert made[0].sample.provenance.model["id"] == local
    assert sg.load_config(project / "fallback.yaml").text.model.path == local  # type: ignore[union-attr]
    shutil.rmtree(project / "models")
    # a name found nowhere is refused as before (models/lm reads as a Hub id), as written
    with pytest.raises(InputError, match=r"text\.model\.path: 'models/lm' holds no causal"):
        sg.generate(project / "batch.yaml")
