"""`synthgate balance --jsonl`: a rare label raised with counterfactual rewrites, real lines kept
byte for byte, name attributes balanced, the bias report before and after."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from balance_fixtures import FEMALE_TERMS_ONLY, balance_reviews, run_cli
from test_report import chromium_path
from test_svg_charts import tooltips

from synthgate.validators.context import jaccard, word_shingles

NEGATIVE = [
    "Sarah says it broke after a week, and she wants her money back.",
    "Emily returned it. Her kettle leaked from day one.",
    "Jessica hated the noise; she gave it away.",
]
POSITIVE = [
    "Michael loves it and uses it every day.",
    "David says his blender works perfectly.",
    "James bought a second one for his son.",
    "Robert thinks it was worth every cent.",
    "Great value, would buy again.",
    "Christopher recommends it to everyone.",
    "Works as promised, thanks to Daniel at the shop.",
    "Matthew was impressed by the build quality.",
]


@pytest.fixture(scope="module")
def text_balance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("text")
    rows = [{"id": f"n{i}", "review": t, "sentiment": "neg"} for i, t in enumerate(NEGATIVE)]
    rows += [
        {"id": f"p{i}", "review": t, "sentiment": "pos", "stars": 4.10}
        for i, t in enumerate(POSITIVE)
    ]
    source = folder / "reviews.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = folder / "out"
    result = balance_reviews(str(source), str(out), "--target", "max")
    assert result.returncode == 0, result.stderr + result.stdout
    return source, out


def test_rare_label_reaches_the_target_and_real_lines_are_kept(
    text_balance: tuple[Path, Path],
) -> None:
    source, out = text_balance
    real = source.read_text()
    merged = (out / "merged.jsonl").read_text()
    assert merged.startswith(real)
    added = [json.loads(line) for line in merged[len(real) :].splitlines()]
    assert len(added) == 5 and all(r["sentiment"] == "neg" for r in added)
    for row in added:
        assert row["synthgate"]["synthetic"] is True
        assert row["synthgate"]["generator"] == "counterfactual"
        assert row["review"] not in NEGATIVE
    summary = json.loads((out / "balance.json").read_text())
    assert summary["classes"]["neg"] == {
        **summary["classes"]["neg"],
        "before": 3,
        "after": 8,
        "target": 8,
    }


def test_names_shift_toward_the_missing_gender(text_balance: tuple[Path, Path]) -> None:
    _, out = text_balance
    gender = json.loads((out / "balance.json").read_text())["bias"]["gender"]
    before, after = gender["before"], gender["after"]
    # Before: every negative review names a woman, every named positive one a man.
    assert before["groups"]["female"]["rates"]["neg"] == 1.0
    assert before["largest_gap"]["gap"] == pytest.approx(1.0)
    assert after["largest_gap"]["gap"] < before["largest_gap"]["gap"]
    assert after["groups"]["male"]["rates"]["neg"] > 0


def test_text_report_renders(text_balance: tuple[Path, Path]) -> None:
    _, out = text_balance
    html = (out / "report.html").read_text()
    assert "plots/attribute_balance.svg" in html and "Attribute balance" in html
    # One bar per group, before and after, each with its value as its tooltip.
    gender = json.loads((out / "balance.json").read_text())["bias"]["gender"]
    tips = set(tooltips(out / "plots" / "attribute_balance.svg"))
    for when in ("before", "after"):
        for group, entry in gender[when]["groups"].items():
            assert f"{group}: {when}: {entry['n']:,}" in tips
    chromium_path()  # the full browser check lives in test_report.py


BAD_ROWS = [
    ("", "no rows"),
    ("\n\n", "no rows"),
    ('{"id": 1, "review": "ok"}\n', "row(s) 1 lack"),
    ('{"id": 1, "review": "ok", "sentiment": "pos"}\nnot json\n', "line 2: not valid JSON"),
    (
        '{"id": 1, "review": "a", "sentiment": "pos"}\n{"id": 1, "review": "b", "sentiment": "neg"}\n',
        "duplicate row ids",
    ),
    ('{"id": [1], "review": "a", "sentiment": "pos"}\n', "row 1: `id` must be a string or"),
    # a made row would carry "1": the class would be counted twice
    ('{"id": 1, "review": "a", "sentiment": 1}\n', "label `sentiment` is 1, not a string"),
    # doccano's one-class list is a class; a list of several is multi-label, which is not
    ('{"id": 1, "review": "a", "sentiment": ["pos", "neg"]}\n', "['pos', 'neg'], a list of 2"),
    # a made row's label, and an export's class list, would split at the tab or be blank
    (
        '{"id": 1, "review": "a", "sentiment": "p\\tos"}\n',
        "row 1: label `sentiment` 'p\\tos' holds",
    ),
    ('{"id": 1, "review": "a", "sentiment": " "}\n', "row 1: label `sentiment` ' ' is blank"),
    (
        '{"id": 1, "review": "a", "sentiment": "p", "w": NaN}\n',
        "line 1: `w` is NaN, which is not JSON",
    ),
]


@pytest.mark.parametrize(("content", "words"), BAD_ROWS)
def test_bad_rows_are_clear_errors(content: str, words: str, tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(content)
    result = balance_reviews(str(source), str(tmp_path / "o"))
    assert result.returncode == 2
    assert words in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_an_out_folder_of_someone_elses_is_refused_before_the_rows_are_read(
    tmp_path: Path,
) -> None:
    """As balance refuses it before it reads the dataset: a text balance read and checked every
    row (and said what was wrong with them) before it looked at where it would write."""
    source = tmp_path / "bad.jsonl"
    source.write_text('{"id": 1, "review": "a", "sentiment": ["pos", "neg"]}\n')
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = balance_reviews(str(source), str(out))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    said = " ".join(result.stderr.split())
    assert f"{out}: folder exists and is not a synthgate balance output" in said, said
    assert "a list of 2" not in said
    assert (out / "notes.txt").read_text() == "mine"


def test_samples_waiting_for_review_are_listed_not_merged(tmp_path: Path) -> None:
    from synthgate.config import PACKAGE_ROOT

    rubric = yaml.safe_load(
        (PACKAGE_ROOT / "configs" / "rubrics" / "classification.yaml").read_text()
    )
    # Every text is "too short" for this rubric: clarity 1, score 4.43, under accept_at 4.5.
    rubric["criteria"]["clarity"]["checks"][0]["thresholds"]["text_chars"] = {
        "gold": 1000,
        "acceptable": 900,
    }
    rubric["routing"]["accept_at"] = 4.5
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(rubric))
    (tmp_path / "balance.yaml").write_text(f"rubric: {tmp_path / 'strict.yaml'}\n")
    rows = [{"id": f"n{i}", "review": t, "sentiment": "neg"} for i, t in enumerate(NEGATIVE[:1])]
    rows += [{"id": f"p{i}", "review": t, "sentiment": "pos"} for i, t in enumerate(POSITIVE[:3])]
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = balance_reviews(
        str(source), str(out), "--target", "max", "--config", str(tmp_path / "balance.yaml")
    )
    assert result.returncode == 0, result.stderr
    assert (out / "merged.jsonl").read_text() == source.read_text()
    summary = json.loads((out / "balance.json").read_text())
    waiting = summary["waiting_for_review"]
    assert len(waiting) == 2 and all(w.startswith("tex-") for w in waiting)
    assert summary["classes"]["neg"]["after"] == 1
    assert "2 in samples review" in summary["classes"]["neg"]["why_not"]
    assert "wait for review and were not merged" in result.stdout
    assert all(w in (out / "report.md").read_text() for w in waiting)


# A real-style labelled set with few names: 40 positive and 12 negative restaurant reviews,
# written for these tests (two negatives name a person; one says "Luke warm").
REVIEWS = Path(__file__).parent / "data" / "restaurant_reviews.jsonl"


def near_copies(rows: list[dict[str, str]], real: list[dict[str, str]]) -> list[str]:
    """Rows sharing >= 90 % of their word 5-grams with a real row, by brute force (no LSH)."""
    shingled = [word_shingles(r["text"]) for r in real]
    return [
        row["text"]
        for row in rows
        if any(jaccard(word_shingles(row["text"]), other) >= 0.9 for other in shingled)
    ]


@pytest.fixture(scope="module")
def restaurant_balance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("restaurant") / "out"
    result = run_cli("balance", "--jsonl", str(REVIEWS), "--out", str(out), "--target", "max")
    assert result.returncode == 0, result.stderr + result.stdout
    return out


def test_few_names_balance_merges_no_copies_and_distinct_rows(restaurant_balance: Path) -> None:
    out = restaurant_balance
    real = [json.loads(line) for line in REVIEWS.read_text().splitlines()]
    merged = [json.loads(line) for line in (out / "merged.jsonl").read_text().splitlines()]
    added = merged[len(real) :]
    assert len(added) == 28 and all(r["label"] == "negative" for r in added)
    assert near_copies(added, real) == []
    assert len({r["text"] for r in added}) >= 0.95 * len(added)
    generators = Counter(r["synthgate"]["generator"] for r in added)
    assert set(generators) == {"counterfactual", "templates"}
    # "Luke warm" is no name: that row is never rewritten, and no other name lands on "warm".
    rewrites = [r for r in added if r["synthgate"]["generator"] == "counterfactual"]
    assert all(" warm" not in r["text"] for r in rewrites)
    for row in added:  # attributes only as the text carries them
        if row["synthgate"]["generator"] == "templates" and "attributes" in row:
            assert row["attributes"].get("gender") in (None, "female", "male")


def test_the_report_says_rewrites_ran_out_and_what_filled_the_rest(
    restaurant_balance: Path,
) -> None:
    summary = json.loads((restaurant_balance / "balance.json").read_text())
    steps = summary["text"]["strategies"]["negative"]
    assert [s["strategy"] for s in steps] == ["counterfactual", "mined_templates"]
    rewrites, mined = steps
    assert rewrites["capacity"] == 5  # Tom and Emma: 2 genders each; the manager's "him": 1
    assert rewrites["planned"] == 5 and mined["planned"] == 28 - rewrites["accepted"]
    assert summary["classes"]["negative"]["after"] == 40 and summary["target"] == "max"
    note = summary["text"]["notes"][0]
    assert "cannot fill the class without repeating themselves" in note
    report = (restaurant_balance / "report.md").read_text()
    assert "How the text classes were filled" in report and note in report
    assert (restaurant_balance / "mined_templates.yaml").is_file()


def test_every_path_the_published_output_names_exists(restaurant_balance: Path) -> None:
    """A balance whose fallback mines templates ran them from the temporary build folder; its
    run's manifest.json and synthgate.db named that folder's mined_templates.yaml, which does not
    exist once the output is published. Paths of files the output holds are relative to it."""
    import sqlite3

    from synthgate.config import INPUT_PATHS

    out = restaurant_balance
    configs = []
    for manifest in out.glob("runs/*/manifest.json"):
        configs.append(json.loads(manifest.read_text())["config"])
        database = manifest.parent / "synthgate.db"
        connection = sqlite3.connect(f"file:{database}?immutable=1", uri=True)
        configs += [json.loads(c) for (c,) in connection.execute("SELECT config FROM batches")]
        connection.close()
    named = [
        config["text"][key]
        for config in configs
        for key in INPUT_PATHS[config["text"]["generator"]]
    ]
    assert "mined_templates.yaml" in named  # the fallback's, beside merged.jsonl
    assert [path for path in named if not (out / path).is_file()] == []


def test_a_relative_out_names_the_mined_templates_as_published(tmp_path: Path) -> None:
    """--out given relative to the working directory, as people type it ('out', '../out'): the
    fallback's templates were read from the temporary folder by an absolute path, and naming
    them relative to that folder as given raised ValueError, a traceback, exit 1."""
    (tmp_path / "work").mkdir()
    for out in ("out", "../up"):
        result = run_cli(
            "balance",
            "--jsonl",
            str(REVIEWS),
            "--out",
            out,
            "--target",
            "max",
            cwd=tmp_path / "work",
        )
        assert result.returncode == 0, result.stderr
        published = (tmp_path / "work" / out).resolve()
        manifests = [json.loads(m.read_text()) for m in published.glob("runs/*/manifest.json")]
        named = [m["config"]["text"].get("templates") for m in manifests]
        assert "mined_templates.yaml" in named
        assert (published / "mined_templates.yaml").is_file()


def test_a_class_no_strategy_can_fill_says_0_planned_as_its_strategies_do(tmp_path: Path) -> None:
    """No names to swap, no template to mine: every strategy plans 0 rows of the short class.
    Its classes entry said "planned": 10 (the deficit) beside a strategy table and notes of 0
    planned, as if ten rows had been tried and all failed."""
    import synthgate as sg

    rows = tmp_path / "reviews.jsonl"
    lines = [
        {
            "text": f"This product is {'great' if i % 3 else 'awful'} number {i}, really.",
            "label": "pos" if i % 3 else "neg",
        }
        for i in range(30)
    ]
    rows.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = sg.balance_text(rows, out=tmp_path / "balanced", target="max")
    neg = result.summary["classes"]["neg"]
    strategies = result.summary["text"]["strategies"]["neg"]
    assert [s["planned"] for s in strategies] == [0, 0], strategies
    assert (neg["deficit"], neg["planned"], neg["filled"]) == (10, 0, 0)
    assert neg["why_not"].startswith("10 short: counterfactual rewrites: 0 accepted of 0 planned")
    written = json.loads((tmp_path / "balanced" / "balance.json").read_text())
    assert written["classes"]["neg"]["planned"] == 0


def test_without_a_fallback_the_class_stops_short_and_says_by_how_much(tmp_path: Path) -> None:
    (tmp_path / "balance.yaml").write_text("text: {generator: counterfactual, fallback: none}\n")
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
        str(tmp_path / "balance.yaml"),
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "balance.json").read_text())
    negative = summary["classes"]["negative"]
    short = 40 - negative["after"]
    assert 12 < negative["after"] <= 17 and short >= 23
    assert negative["why_not"].startswith(f"{short} short: counterfactual rewrites:")
    assert f"negative: stops {short} short of its target 40." in summary["text"]["notes"]
    assert not (out / "mined_templates.yaml").exists()


def test_a_sections_rubric_beside_the_config_runs_its_rewrites_and_their_fallback(
    tmp_path: Path,
) -> None:
    """A rubric path relative to the balance config is read beside it, for the rewrites and
    for the templates that fill what they cannot (the fallback inherits the section's rubric)."""
    from synthgate.config import PACKAGE_ROOT

    rubric = PACKAGE_ROOT / "configs" / "rubrics" / "classification.yaml"
    (tmp_path / "mine.yaml").write_text(rubric.read_text())
    (tmp_path / "balance.yaml").write_text("text: {generator: counterfactual, rubric: mine.yaml}\n")
    out = tmp_path / "out"
    config = str(tmp_path / "balance.yaml")
    result = run_cli(
        "balance", "--jsonl", str(REVIEWS), "--out", str(out), "--target", "max", "--config", config
    )
    assert result.returncode == 0, result.stderr
    runs = sorted((out / "runs").iterdir())
    assert [r.name for r in runs] == ["balance-0-counterfactual", "balance-fallback-0-templates"]
    for run in runs:
        config = json.loads((run / "manifest.json").read_text())["config"]
        assert config["text"]["rubric"] == str(tmp_path / "mine.yaml")


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ("{generator: counterfactual, fallback: mined}", "text.fallback"),
        ("{generator: counterfactual, fallback: model}", "needs `model:`"),
    ],
)
def test_a_bad_fallback_is_a_clear_error(section: str, words: str, tmp_path: Path) -> None:
    (tmp_path / "balance.yaml").write_text(f"text: {section}\n")
    result = run_cli(
        "balance",
        "--jsonl",
        str(REVIEWS),
        "--out",
        str(tmp_path / "o"),
        "--config",
        str(tmp_path / "balance.yaml"),
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert words in " ".join(result.stderr.split())
    assert not (tmp_path / "o").exists()


def test_a_fallback_refused_mid_balance_names_the_section_it_comes_from(tmp_path: Path) -> None:
    """The fallback runs the model of the first counterfactual section, here the second of the
    list: a model folder it cannot load names that section, text[1].model.path."""
    import synthgate
    from synthgate.config import PACKAGE_ROOT
    from synthgate.errors import InputError

    (tmp_path / "no-model").mkdir()
    (tmp_path / "no-model" / "config.json").write_text("{}")
    templates = {"generator": "templates", "templates": "reviews.yaml"}
    (tmp_path / "reviews.yaml").write_text(
        (PACKAGE_ROOT / "configs" / "templates" / "reviews.yaml").read_text()
    )
    model = {"path": str(tmp_path / "no-model")}
    rewrites = {"generator": "counterfactual", "fallback": "model", "model": model}
    config = tmp_path / "balance.yaml"
    config.write_text(yaml.safe_dump({"target": "max", "text": [templates, rewrites]}))
    out = tmp_path / "out"
    with pytest.raises(InputError) as refused:
        synthgate.balance_text(REVIEWS, out=out, config=config)
    said = f"{config}: text[1].model.path: {str(tmp_path / 'no-model')!r} holds no causal"
    assert str(refused.value).startswith(said), str(refused.value)
    assert not out.exists()


@pytest.mark.parametrize(
    ("section", "words"),
    [  # read by the plan (the name bank's locales) before any section was parsed
        ("{generator: counterfactual, locales: null}", "text.locales"),
        ("{generator: counterfactual, locales: 5}", "text.locales"),
    ],
)
def test_a_section_is_checked_before_the_plan_reads_it(
    section: str, words: str, tmp_path: Path
) -> None:
    (tmp_path / "balance.yaml").write_text(f"text: {section}\n")
    result = run_cli(
        "balance", "--jsonl", str(REVIEWS), "--out", str(tmp_path / "o"),
        "--config", str(tmp_path / "balance.yaml"),
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert words in " ".join(result.stderr.split())
    assert not (tmp_path / "o").exists()


def test_a_line_separator_inside_a_text_is_no_line_break(tmp_path: Path) -> None:
    """U+2028 in a JSON string is valid; str.splitlines split the row there (a traceback)."""
    rows = [{"id": f"n{i}", "review": t, "sentiment": "neg"} for i, t in enumerate(NEGATIVE)]
    rows += [{"id": f"p{i}", "review": t, "sentiment": "pos"} for i, t in enumerate(POSITIVE)]
    rows[0]["review"] = "Sarah says it broke\u2028after a week."
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    result = balance_reviews(str(source), str(tmp_path / "o"), "--target", "max")
    assert result.returncode == 0, result.stderr
    merged = (tmp_path / "o" / "merged.jsonl").read_text(encoding="utf-8").split("\n")
    assert json.loads(merged[0])["review"] == "Sarah says it broke\u2028after a week."


def test_doccano_class_lists_in_a_crlf_file_are_balanced_in_their_form(tmp_path: Path) -> None:
    """doccano exports a class as a list of one ("sentiment": ["neg"]), which validate reads as
    the class; balance refused it. And a file written on Windows (CRLF) came out with LF
    synthetic lines after its CRLF real ones."""
    from synthgate.workflows.balance_text import balance_text

    rows = [{"id": f"n{i}", "review": t, "sentiment": ["neg"]} for i, t in enumerate(NEGATIVE)]
    rows += [{"id": f"p{i}", "review": t, "sentiment": ["pos"]} for i, t in enumerate(POSITIVE)]
    source = tmp_path / "reviews.jsonl"
    source.write_bytes(b"".join(json.dumps(row).encode() + b"\r\n" for row in rows))
    result = balance_text(
        source, out=tmp_path / "out", text_field="review", label_field="sentiment", target="max"
    )
    merged = (tmp_path / "out" / "merged.jsonl").read_bytes()
    assert merged.startswith(source.read_bytes())
    assert merged.count(b"\n") == merged.count(b"\r\n") == 16
    added = [json.loads(line) for line in merged[len(source.read_bytes()) :].splitlines()]
    assert [row["sentiment"] for row in added] == [["neg"]] * 5
    assert result.summary["classes"]["neg"]["after"] == 8
    assert set(result.summary["bias"]["gender"]["after"]["groups"]["male"]["rates"]) == {
        "neg",
        "pos",
    }


def test_rows_that_flip_one_way_are_each_rewritten_once(tmp_path: Path) -> None:
    """Each rewrite drew its row with replacement: of six rows with only female terms (each
    flips to one male text), the same row came up twice while others were left, and the copy
    check rejected the second: 3 of the 6 rewrites planned were accepted."""
    from synthgate.workflows.balance_text import balance_text

    women = ["Sarah", "Emily", "Jessica", "Linda", "Karen", "Laura", "Megan", "Rachel"]
    men = ["Michael", "David", "James", "Robert", "Daniel", "Kevin", "Brian", "Steven"]
    rows = [(f"{n} loves the kettle and uses it every day.", "pos") for n in women + men]
    rows += [(text, "neg") for text in FEMALE_TERMS_ONLY]
    source = tmp_path / "reviews.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": i, "text": t, "label": lab}) + "\n" for i, (t, lab) in enumerate(rows)
        )
    )
    config = {"text": {"generator": "counterfactual", "fallback": "none"}}
    result = balance_text(source, out=tmp_path / "out", target="max", config=config)
    rewrites = result.summary["text"]["strategies"]["neg"][0]
    assert rewrites["strategy"] == "counterfactual"
    assert rewrites["planned"] == rewrites["accepted"] == 6 and rewrites["rejected"] == 0
    merged = (tmp_path / "out" / "merged.jsonl").read_text().splitlines()[len(rows) :]
    assert len({json.loads(line)["text"] for line in merged}) == 6


def test_a_class_that_flips_one_way_is_planned_as_it_can_be_made(tmp_path: Path) -> None:
    """A class whose rows hold only female terms can only be flipped to male, but its plan asked
    for female rows too: they were made male, and the classes planned after it counted on rows
    that never came. Planned as it can be made, the gap narrows further (0.376 -> 0.198 here,
    where it went to 0.239)."""
    import sqlite3

    from synthgate.workflows.balance_text import balance_text

    women = ["Sarah", "Emily", "Jessica", "Linda", "Karen", "Laura"]
    women += ["Megan", "Rachel", "Julie", "Anna", "Lisa", "Nancy"]
    men = ["Michael", "David", "James", "Robert"]
    rows = [(f"{n} loves the kettle and uses it every day.", "pos") for n in women + men]
    rows += [(text, "neg") for text in FEMALE_TERMS_ONLY]
    rows += [(f"{n} thinks the toaster is just fine.", "neu") for n in ["Sarah", *men[:3]]]
    source = tmp_path / "reviews.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": i, "text": t, "label": lab}) + "\n" for i, (t, lab) in enumerate(rows)
        )
    )
    config = {"text": {"generator": "counterfactual", "fallback": "none"}}
    result = balance_text(source, out=tmp_path / "out", target="max", config=config)
    (database,) = (tmp_path / "out" / "runs").glob("*/synthgate.db")
    connection = sqlite3.connect(f"file:{database}?immutable=1", uri=True)
    made = [json.loads(data) for (data,) in connection.execute("SELECT data FROM samples")]
    connection.close()
    assert {s["spec"]["category"] for s in made} == {"neg", "neu"}
    assert all(s["attributes"]["gender"] == s["spec"]["attributes"]["gender"] for s in made)
    gap = result.summary["bias"]["gender"]
    assert gap["before"]["largest_gap"]["gap"] == pytest.approx(0.376, abs=1e-3)
    assert gap["after"]["largest_gap"]["gap"] < 0.22


def test_each_sections_rows_are_analysed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite section runs with the generator it was planned with: its rows' names are
    analysed once, not again when the section runs (what it makes is the same: a twin under the
    run's config)."""
    from synthgate.generators.text import counterfactual
    from synthgate.workflows.balance_text import balance_text

    built = []
    original = counterfactual.CounterfactualGenerator.__init__

    def counted(self: object, config: object, **kwargs: object) -> None:
        built.append(config)
        original(self, config, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(counterfactual.CounterfactualGenerator, "__init__", counted)
    result = balance_text(REVIEWS, out=tmp_path / "out", target="max")
    rewrites = result.summary["text"]["strategies"]["negative"][0]
    assert rewrites["strategy"] == "counterfactual" and rewrites["accepted"] > 0
    assert len(built) == 1


def test_digit_labels_are_balanced_by_mined_templates(tmp_path: Path) -> None:
    """Labels written as strings, as the refusal of integer labels advises ("0", "1"), are
    balanced: mined templates name their classes by them (slot labels must start with a
    letter, document labels need not)."""
    source = tmp_path / "digits.jsonl"
    rows = [
        {"id": i, "text": f"Terrible item {i}, it broke in a day.", "label": "0"}
        if i % 6 == 0
        else {"id": i, "text": f"Item {i} arrived late and scratched.", "label": "0"}
        if i % 3 == 0
        else {"id": i, "text": f"Product {i} was great and I liked it a lot.", "label": "1"}
        for i in range(30)
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    out = tmp_path / "out"
    result = run_cli("balance", "--jsonl", str(source), "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "balance.json").read_text())
    assert summary["classes"]["0"]["after"] > summary["classes"]["0"]["before"] == 10
    made = [json.loads(line) for line in (out / "merged.jsonl").read_text().splitlines()[30:]]
    assert made and {row["label"] for row in made} == {"0"}


def test_the_gender_gap_narrows_when_the_class_at_its_target_is_skewed(tmp_path: Path) -> None:
    """A balance team saw the bias report's gender gap grow (0.19 -> 0.26): new rows of the
    raised class were split half and half while the class at its target stayed two women to one
    man, so the raised class's rate per gender overtook the other. Here it grew 0.127 -> 0.170;
    planned for the rates it narrows, and the report says how and with which rows."""
    women = ["Sarah", "Emily", "Jessica", "Linda", "Karen", "Laura", "Megan", "Rachel", "Julie"]
    men = ["Michael", "David", "James", "Robert", "Daniel", "Kevin", "Brian", "Steven", "Paul"]
    liked = ["{} loves the kettle and uses it every day.", "{} says the blender works well."]
    liked += ["{} thinks the toaster was worth every cent.", "{} recommends the fan to everyone."]
    rows = [(t.format(n), "positive") for t in liked for n in [*women, "Anna"]]  # 40 women
    rows += [(t.format(n), "positive") for t in liked[:2] for n in [*men, "Thomas"]]  # 20 men
    rows += [(f"{n} returned the kettle because it leaked.", "negative") for n in women + men]
    source = tmp_path / "tickets.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": i, "text": t, "label": lab}) + "\n" for i, (t, lab) in enumerate(rows)
        )
    )
    out = tmp_path / "out"
    result = run_cli("balance", "--jsonl", str(source), "--out", str(out), "--target", "50")
    assert result.returncode == 0, result.stderr + result.stdout
    summary = json.loads((out / "balance.json").read_text())
    assert summary["classes"]["negative"]["after"] >= 48  # a rewrite repeating one is rejected
    gender = summary["bias"]["gender"]
    before, after = gender["before"]["largest_gap"]["gap"], gender["after"]["largest_gap"]["gap"]
    assert before == pytest.approx(9 / 29 - 9 / 49)
    assert after < 0.05 < before
    assert gender["note"].startswith(
        f"gender: the largest gap in a label's rate between groups narrowed, {before:.3f} -> "
    )
    assert gender["note"] in (out / "report.md").read_text()

    # Values the config weighs itself are planned by those weights, as it asks, not for the rates.
    config = tmp_path / "weighed.yaml"
    config.write_text("target: 50\nattributes: {gender: {female: 0.25, male: 0.75}}\n")
    weighed = tmp_path / "weighed"
    result = run_cli(
        "balance", "--jsonl", str(source), "--out", str(weighed), "--config", str(config)
    )
    assert result.returncode == 0, result.stderr + result.stdout
    groups = json.loads((weighed / "balance.json").read_text())["bias"]["gender"]
    added = {
        value: info["n"] - groups["before"]["groups"][value]["n"]
        for value, info in groups["after"]["groups"].items()
    }
    assert added["male"] >= 2 * added["female"] > 0, added  # for the rates: mostly female


def test_a_text_section_without_a_generator_runs_the_default_counterfactual(
    tmp_path: Path,
) -> None:
    """A text section that left out `generator` (counterfactual, the default) was parsed as a
    templates section holding what balance adds to it: "text.templates is required", "unknown
    key 'text.source'", 'text.text_field', 'text.label_field': keys the user never wrote."""
    from synthgate.workflows.balance_text import balance_text

    rows = [(f"Anna said she loves blender {i}.", "pos") for i in range(6)]
    rows += [(f"John said he hates kettle {i}.", "neg") for i in range(2)]
    source = tmp_path / "reviews.jsonl"
    source.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows))
    merged = []
    for name, section in [("named", {"generator": "counterfactual"}), ("default", {})]:
        out = tmp_path / name
        balance_text(
            source, out=out, target="max", config={"text": {**section, "fallback": "none"}}
        )
        merged.append((out / "merged.jsonl").read_bytes())
    assert merged[0] == merged[1] and len(merged[0].splitlines()) > len(rows)


def test_a_text_class_planned_count_stays_within_its_deficit_when_rows_are_rejected(
    tmp_path: Path,
) -> None:
    """1504066 summed every strategy's planned rows into the classes table's `planned`. The
    fallback plans what the rewrites left unfilled, their rejected rows included, so a class
    whose 5 rewrites were all rejected read 'planned': 33 against a deficit of 28 (12 before,
    target 40): 45 planned toward a target of 40, where the image balance's `planned` is the part of the deficit some section takes, never more."""
    import yaml

    import synthgate as sg
    from synthgate.config import PACKAGE_ROOT

    rubric = yaml.safe_load(
        (PACKAGE_ROOT / "configs" / "rubrics" / "classification.yaml").read_text()
    )
    # every text "too short" and every score under reject_below: each new row is rejected
    rubric["criteria"]["clarity"]["checks"][0]["thresholds"]["text_chars"] = {
        "gold": 1000,
        "acceptable": 900,
    }
    rubric["routing"]["accept_at"] = 4.9
    rubric["routing"]["reject_below"] = 4.8
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump(rubric))
    reviews = Path(__file__).parent / "data" / "restaurant_reviews.jsonl"
    result = sg.balance_text(
        reviews,
        out=tmp_path / "balanced",
        target="max",
        config={"rubric": str(tmp_path / "strict.yaml")},
    )
    negative = result.summary["classes"]["negative"]
    steps = result.summary["text"]["strategies"]["negative"]
    assert [s["rejected"] for s in steps] == [s["planned"] for s in steps]  # all rejected
    assert negative["planned"] <= negative["deficit"] == 28, negative


def test_rows_without_a_label_are_counted_and_said_to_lack_the_label(tmp_path: Path) -> None:
    """A NER JSONL (a `synthgate run` text.jsonl: spans, `label: null`) given to `balance
    --jsonl` was refused as "row(s) 1, 2, ..., 20 lack a text `text` or a label `label`": all
    30 rows lacked the label, and every one had its text."""
    import synthgate
    from synthgate.errors import InputError

    source = tmp_path / "ner.jsonl"
    rows = [
        {"id": str(n), "text": f"Call Ann at {n}.", "spans": [[5, 8, "PERSON"]], "label": None}
        for n in range(30)
    ]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(InputError) as refused:
        synthgate.balance_text(source, out=tmp_path / "o")
    said = str(refused.value)
    assert "row(s) 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 … and 20 more lack a label `label`" in said, said
    assert "lack a text" not in said and "spans" in said
    assert not (tmp_path / "o").exists()


def test_rows_with_an_empty_span_list_are_not_said_to_hold_span_labels(tmp_path: Path) -> None:
    """A classification text.jsonl as `synthgate run` writes it (`"spans": []` on every row)
    given with a --label-field it does not hold was refused with "(they hold spans: balance
    raises the classes of a classification JSONL, ... not span labels)": its rows hold no span,
    and the fix is the label field alone."""
    import synthgate
    from synthgate.errors import InputError

    source = tmp_path / "text.jsonl"
    rows = [{"id": str(n), "text": f"Soup {n}.", "spans": [], "label": "pos"} for n in range(3)]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(InputError) as refused:
        synthgate.balance_text(source, out=tmp_path / "o", label_field="sentiment")
    said = str(refused.value)
    assert "row(s) 1, 2, 3 lack a label `sentiment`" in said, said
    assert "they hold spans" not in said, said


def test_rewrites_of_rows_with_entities_are_merged_with_them(tmp_path: Path) -> None:
    """A text team's tickets hold a class and spaCy-style `entities`: the rewrites balance
    merged carried no `entities`, so the names and places in them were unlabelled."""
    import synthgate as sg

    tickets = [
        ("John Smith in Paris cannot log in.", [[0, 10, "PER"], [14, 19, "LOC"]], "login"),
        ("Maria Lopez from Berlin wants a refund.", [[0, 11, "PER"], [17, 23, "LOC"]], "billing"),
        ("Anna at Acme was charged twice.", [[0, 4, "PER"], [8, 12, "ORG"]], "billing"),
        ("Julia Weber at Globex needs an invoice.", [[0, 11, "PER"], [15, 21, "ORG"]], "billing"),
    ]
    source = tmp_path / "tickets.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"t{i}", "text": t, "entities": e, "label": label}) + "\n"
            for i, (t, e, label) in enumerate(tickets)
        ),
        encoding="utf-8",
    )
    result = sg.balance_text(source, out=tmp_path / "out", target="max")
    assert result.summary["added"]["rows"] >= 2
    merged = [json.loads(line) for line in (tmp_path / "out" / "merged.jsonl").open()]
    rewrites = [row for row in merged if "synthgate" in row]
    assert rewrites
    for row in rewrites:
        covered = [(row["text"][s:e], label) for s, e, label in row["entities"]]
        assert [label for _, label in covered] == ["PER", "LOC"], row
        assert covered[0][0].endswith(" Smith") and covered[1][0] == "Paris", row


def test_a_class_nothing_can_raise_says_why_and_names_the_fix(tmp_path: Path) -> None:
    """A shipping class of one ticket with no name or gendered term in it: its note said the
    rewrites, which can make 0 rows, "cannot fill the class without repeating themselves", and
    neither the note nor balance.json's why_not (printed as the class's 'below target' line)
    said what would raise it, where an image class no generator can raise names the fix."""
    import synthgate as sg

    lines = [
        {"text": f"{name} was charged twice for {name} Co.", "label": "billing"}
        for name in ("Anna", "John", "Maria", "Peter")
    ]
    lines.append(
        {"text": "The parcel has been stuck in transit for ten days.", "label": "shipping"}
    )
    rows = tmp_path / "tickets.jsonl"
    rows.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = sg.balance_text(rows, out=tmp_path / "balanced", target="max")
    shipping = result.summary["classes"]["shipping"]
    assert shipping["after"] == 1
    assert "model: {path: ...}" in shipping["why_not"]
    notes = [n for n in result.summary["text"]["notes"] if n.startswith("shipping:")]
    assert "no row of the class has a first name or a gendered term to swap" in notes[0], notes
    assert not any("repeating themselves" in note for note in notes), notes


@pytest.mark.parametrize(("woman", "man"), [("F", "M"), ("f", "m"), ("woman", "man")])
def test_a_gap_note_of_genders_spelt_otherwise_says_it_cannot_compare_them(
    woman: str, man: str, tmp_path: Path
) -> None:
    """A team's rows labelled `F`/`M` beside the rewrites' `female`/`male` are four groups: the
    note's largest gap was between a group of real rows and one of rewrites ('female vs M'),
    spellings of the same gender. It says it cannot compare them, and how to write them."""
    import synthgate as sg

    women = ["Sarah", "Emily", "Jessica", "Linda", "Karen", "Laura"]
    men = ["Michael", "David", "James", "Robert", "Daniel", "Kevin"]
    rows = [(f"{n} loves the kettle and uses it every day.", "positive", woman) for n in women]
    rows += [(f"{n} says the blender works well.", "positive", man) for n in men]
    rows += [(f"{n} returned the kettle because it leaked.", "negative", woman) for n in women[:2]]
    source = tmp_path / "tickets.jsonl"
    source.write_text(
        "".join(
            json.dumps({"text": t, "label": label, "attributes": {"gender": g}}) + "\n"
            for t, label, g in rows
        )
    )
    result = sg.balance_text(source, out=tmp_path / "out", target="max")
    note = result.summary["bias"]["gender"]["note"]
    assert note == (
        f"gender: the rows write female as {woman!r} and male as {man!r}, the rows added as "
        "'female' and 'male': the gap between groups cannot be compared; write the rows' "
        "attributes.gender as 'female' or 'male'. Rows added with a gender: 2 female, 2 male; "
        "without one: 0."
    )
    assert note in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.parametrize(
    ("added", "clause", "carried"),
    [
        ({"female": 2}, ", the rows added as 'female'", "2 female"),
        ({}, "", "none"),
    ],
    ids=["female-only", "none"],
)
def test_a_gap_note_of_genders_spelt_otherwise_names_the_genders_added(
    added: dict[str, int], clause: str, carried: str
) -> None:
    """Of real rows spelt F/M, the note named the rows added as 'female' and 'male' whatever
    was added: it names the genders rows were added with, and none when none were."""
    from synthgate.workflows.balance_text import _gap_note

    real = {"F": {"n": 8}, "M": {"n": 6}}
    gap = {"gap": 0.25, "label": "negative", "groups": ["F", "M"]}
    before = {"groups": real, "largest_gap": gap, "without": 0}
    grown = real | {value: {"n": n} for value, n in added.items()}
    after = {"groups": grown, "largest_gap": gap, "without": 0}
    assert _gap_note("gender", before, after, values=["female", "male"]) == (
        f"gender: the rows write female as 'F' and male as 'M'{clause}: the gap between groups "
        "cannot be compared; write the rows' attributes.gender as 'female' or 'male'. Rows "
        f"added with a gender: {carried}; without one: 0."
    )
