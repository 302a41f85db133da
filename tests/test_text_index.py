"""`TextIndex` (validators/context.py) gives exactly the answers of the index it replaced, which
ranked every row (`RowIndex` below, kept as it was), on batches of many repeats, near repeats
and ties: looked up then added as the batch check does, judged again (`before=`), and as a
reference file's index; and `validate --json` of a text file with repeats is byte for byte what
it was."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from synthgate.validators import context as context_module
from synthgate.validators.checks import text as text_checks
from synthgate.validators.context import (
    SCHEME,
    TextIndex,
    jaccard,
    text_reference_index,
    word_shingles,
)
from synthgate.validators.validate import validate_file


class RowIndex:
    """The index before texts with the same shingles shared an entry: one LSH key and one
    MinHash row per row, every candidate row ranked. (Copied from validators/context.py as it
    was, the reference the new index must agree with.)"""

    def __init__(
        self, *, num_perm: int = 128, candidate_jaccard: float = 0.5, verified: int = 8
    ) -> None:
        self.num_perm = num_perm
        self.candidate_jaccard = candidate_jaccard
        self.verified = verified
        self._names: list[str] = []
        self._texts: list[str] = []
        self._positions: dict[str, int] = {}
        self._signatures: np.ndarray = np.zeros((64, num_perm), dtype=np.uint64)
        self._lsh: Any = None
        self._permutations: Any = None
        self._last: tuple[str, frozenset[str], Any] = ("", frozenset(), None)

    def __len__(self) -> int:
        return len(self._names)

    def _shingles(self, text: str) -> frozenset[str]:
        if text != self._last[0]:
            self._last = (text, word_shingles(text), None)
        return self._last[1]

    def _minhash(self, text: str) -> Any:
        from datasketch import MinHash, MinHashLSH

        shingles = self._shingles(text)
        if self._last[2] is not None:
            return self._last[2]
        if self._lsh is None:
            self._lsh = MinHashLSH(threshold=self.candidate_jaccard, num_perm=self.num_perm)
            self._permutations = MinHash(num_perm=self.num_perm, seed=1, scheme=SCHEME).permutations
        minhash = MinHash(
            num_perm=self.num_perm, seed=1, permutations=self._permutations, scheme=SCHEME
        )
        minhash.update_batch([s.encode("utf-8") for s in sorted(shingles)])
        self._last = (text, shingles, minhash)
        return minhash

    def add(self, name: str, text: str) -> None:
        if name in self._positions:
            return
        position = len(self._names)
        self._positions[name] = position
        self._names.append(name)
        self._texts.append(text)
        if position == len(self._signatures):
            self._signatures = np.concatenate([self._signatures, np.zeros_like(self._signatures)])
        if self._shingles(text):
            minhash = self._minhash(text)
            self._signatures[position] = minhash.hashvalues
            self._lsh.insert(position, minhash)

    def nearest(self, text: str, *, before: str | None = None) -> tuple[float, str] | None:
        shingles = self._shingles(text)
        if not shingles or self._lsh is None:
            return None
        end = self._positions.get(before, len(self._names)) if before else len(self._names)
        minhash = self._minhash(text)
        candidates = np.array(sorted(p for p in self._lsh.query(minhash) if p < end), dtype=int)
        if not candidates.size:
            return None
        estimates = (self._signatures[candidates] == minhash.hashvalues).mean(axis=1)
        ranked = candidates[np.argsort(-estimates, kind="stable")[: self.verified]]
        best: tuple[float, int] | None = None
        for position in ranked:
            similarity = jaccard(shingles, word_shingles(self._texts[position]))
            if similarity < self.candidate_jaccard:
                continue
            if best is None or (similarity, -position) > (best[0], -best[1]):
                best = (similarity, int(position))
        return None if best is None else (best[0], self._names[best[1]])


def batch(rng: random.Random, count: int) -> list[str]:
    """Texts as a batch from a few templates makes them: exact repeats, repeats in other case
    and punctuation (the same shingles, another text), a slot word or two changed (ties: two
    texts changed in one slot each are as close to their template), short and empty texts."""
    words = [f"w{i}" for i in range(40)]
    templates = [rng.choices(words, k=rng.randint(6, 14)) for _ in range(6)]
    made: list[str] = []
    for _ in range(count):
        roll = rng.random()
        if made and roll < 0.35:
            made.append(rng.choice(made))
        elif made and roll < 0.45:
            made.append(rng.choice(made).upper().replace(" ", ", ", 1) + "!")
        elif roll < 0.5:
            made.append(rng.choice(["", " ... ", "w1 w2", "w1 w2 w3 w4 w5"]))
        else:
            text = list(rng.choice(templates))
            for _ in range(rng.randint(0, 2)):
                text[rng.randrange(len(text))] = rng.choice(words[:8])
            made.append(" ".join(text))
    return made


# (num_perm, verified): the defaults, and few hashes and few verified rows, so that estimates
# tie, rows of different texts share a MinHash and the best rows crowd the verified out.
SETTINGS = [(128, 8), (16, 2), (8, 1), (32, 3)]


@pytest.mark.parametrize(("num_perm", "verified"), SETTINGS)
@pytest.mark.parametrize("seed", range(6))
def test_batch_answers_are_those_of_ranking_every_row(
    seed: int, num_perm: int, verified: int
) -> None:
    judge_batch(random.Random(seed), {"num_perm": num_perm, "verified": verified})


@pytest.mark.parametrize("keys", ["mixed", "one per band"])
@pytest.mark.parametrize("seed", range(3))
def test_band_keys_merged_often_or_all_alike_give_the_same_answers(
    seed: int, keys: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_module, "BAND_TAIL_ENTRIES", 7)  # sorted arrays, not the dict
    if keys == "one per band":  # every text a candidate: the test of the band's values does all
        monkeypatch.setattr(
            context_module._BandKeys,
            "keys_of",
            lambda self, minhash: np.arange(self.bands, dtype=np.uint64),
        )
    judge_batch(random.Random(seed), {"num_perm": 16, "verified": 2})
    judge_batch(random.Random(seed), {})


def judge_batch(rng: random.Random, settings: dict[str, int]) -> None:
    """Each text of a batch looked up then added, now and then an earlier one judged again,
    by both indexes: the same answers."""
    texts = batch(rng, 400)
    new, old = TextIndex(**settings), RowIndex(**settings)
    found = 0
    for n, text in enumerate(texts):
        if n and rng.random() < 0.2:  # an earlier sample judged again: only what came before it
            again = rng.randrange(n)
            name, earlier = f"s{again}", texts[again]
            assert new.nearest(earlier, before=name) == old.nearest(earlier, before=name), name
        expected = old.nearest(text, before=f"s{n}")
        assert new.nearest(text, before=f"s{n}") == expected, (n, text)
        found += expected is not None
        new.add(f"s{n}", text)
        old.add(f"s{n}", text)
    assert len(new) == len(old) == len(texts)
    assert found > len(texts) // 2  # the batch is mostly copies: answers were compared


@pytest.mark.parametrize(("num_perm", "verified"), SETTINGS)
def test_reference_answers_are_those_of_ranking_every_row(num_perm: int, verified: int) -> None:
    rng = random.Random(num_perm)
    texts = batch(rng, 500)  # the real rows, then texts of the same templates to look up
    rows = [(n, {"id": f"r{n}", "text": text}) for n, text in enumerate(texts[:300], 1)]
    settings = {"num_perm": num_perm, "verified": verified}
    new, old = TextIndex(**settings), RowIndex(**settings)
    if (num_perm, verified) == (128, 8):  # what `validate --reference` builds
        new = text_reference_index(rows, text_field="text", source="real.jsonl")
    for n, row in rows:
        new.add(f"real.jsonl line {n} (id {row['id']})", row["text"])
        old.add(f"real.jsonl line {n} (id {row['id']})", row["text"])
    queries = texts[300:] + [row["text"] for _, row in rows[:50]]
    answers = [new.nearest(text) for text in queries]
    assert answers == [old.nearest(text) for text in queries]
    assert sum(a is not None for a in answers) > 100


def test_text_reference_index_names_rows_by_line_and_id() -> None:
    rows = [(3, {"id": "r3", "text": "one two three four five six"}), (4, {"text": 7})]
    index = text_reference_index(rows, text_field="text", source="real.jsonl")
    assert index.nearest("One two three four five six!") == (1.0, "real.jsonl line 3 (id r3)")
    assert len(index) == 1


def text_rows(count: int) -> list[dict[str, Any]]:
    """A classification batch from a few templates: repeats and near repeats."""
    rng = random.Random(7)
    return [
        {"id": f"t{n}", "text": text or "blank", "label": rng.choice(["positive", "negative"])}
        for n, text in enumerate(batch(rng, count))
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


# sha256 of `validate --json` of `text_rows(500)` with `text_rows(40)` as the reference, written
# by synthgate before texts with the same shingles shared an entry of the index.
PINNED_JSON_SHA256 = "4f5b6f98bbfb5cac781c96bfac661c4cf1f0d3f85bb9b093c98609650e52fcf9"


def test_validate_json_of_a_text_file_with_repeats_is_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = write_jsonl(tmp_path / "batch.jsonl", text_rows(500))
    real = write_jsonl(tmp_path / "real.jsonl", text_rows(40))

    def document() -> str:
        return validate_file(rows, reference=real).to_json()

    now = document()
    assert hashlib.sha256(now.encode()).hexdigest() == PINNED_JSON_SHA256
    monkeypatch.setattr(context_module, "TextIndex", RowIndex)
    monkeypatch.setattr(text_checks, "TextIndex", RowIndex)
    assert document() == now
    assert '"sample_jaccard"' in now and "real real.jsonl line" in now
