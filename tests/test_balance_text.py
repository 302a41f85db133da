"""`synthgate balance --jsonl`: a rare label raised with counterfactual rewrites, real lines kept
byte for byte, name attributes balanced, the bias report before and after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from balance_fixtures import balance_reviews
from test_report import chromium_path

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
    assert "plots/attribute_balance.png" in html and "Attribute balance" in html
    assert (out / "plots" / "attribute_balance.png").stat().st_size > 1000
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
]


@pytest.mark.parametrize(("content", "words"), BAD_ROWS)
def test_bad_rows_are_clear_errors(content: str, words: str, tmp_path: Path) -> None:
    source = tmp_path / "bad.jsonl"
    source.write_text(content)
    result = balance_reviews(str(source), str(tmp_path / "o"))
    assert result.returncode == 2
    assert words in " ".join(result.stderr.split()) and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


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
