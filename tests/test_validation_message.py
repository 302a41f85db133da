"""errors.validation_message: the one way a pydantic ValidationError becomes an InputError's
lines (a batch config, a rubric, a balance config; a decision's are the same), with each of the
special cases those four wrote on their own: keys of a file or fields of an argument, an
argument's name before the place, a tagged union's tag out of the place and its unknown value
named, our validators' words without pydantic's "Value error, ", a whole section left out, the
YAML quoting hint, and a screenful of problems at most."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthgate.errors import MAX_PROBLEMS_SHOWN, validation_message
from synthgate.yaml_files import quote_hint


class Shapes(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: Literal["shapes"] = "shapes"
    count: int = 1
    size_range: list[int] = Field(default_factory=lambda: [1, 2])

    @field_validator("size_range")
    @classmethod
    def _ordered(cls, value: list[int]) -> list[int]:
        if value[0] > value[1]:
            raise ValueError("[min, max] must have min <= max")
        return value

    @model_validator(mode="before")
    @classmethod
    def _not_too_many(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("count") == 1000:
            raise ValueError("count 1000 is too many for one image; make at most 100")
        return data


class Words(BaseModel):
    model_config = ConfigDict(extra="forbid")

    generator: Literal["words"] = "words"
    labels: list[str] = Field(default_factory=list)


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    image: Annotated[Shapes | Words, Field(discriminator="generator")] | None = None
    flag: Literal["on", "off"] = "on"


def _error(data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        Batch.model_validate(data)
    return caught.value


def _without_tag(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    return (loc[0], *loc[2:]) if len(loc) > 1 and loc[1] in ("shapes", "words") else loc


def _yaml(value: Any) -> str:
    return "null" if value is None else repr(value)


CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("a file's unknown key", {"name": "b", "colour": 1}, {"source": "a.yaml"},
     "a.yaml: unknown key 'colour'; remove it or check its spelling"),
    ("an argument's unknown field", {"name": "b", "colour": 1}, {"field": "batch"},
     "batch.colour: unknown field; remove it or check its spelling"),
    ("a file's missing key", {}, {"source": "a.yaml"}, "a.yaml: name is required"),
    ("an argument's missing field", {}, {"field": "batch"}, "batch.name is required"),
    ("a type error quotes the value", {"name": "b", "flag": 3}, {"source": "a.yaml"},
     "a.yaml: flag: Input should be 'on' or 'off' (got 3)"),
    ("a value is quoted short", {"name": "b", "flag": "x" * 200}, {"source": "a.yaml"},
     f"a.yaml: flag: Input should be 'on' or 'off' (got '{'x' * 37}...{'x' * 38}')"),
    ("a value as the file spells it", {"name": "b", "flag": None}, {"source": "a.yaml", "shown": _yaml},
     "a.yaml: flag: Input should be 'on' or 'off' (got null)"),
    ("our validator's words", {"name": "b", "image": {"generator": "shapes", "size_range": [3, 1]}}, {"source": "a.yaml"},
     "a.yaml: image.shapes.size_range: [min, max] must have min <= max (got [3, 1])"),
    ("the union's tag out of the place", {"name": "b", "image": {"generator": "shapes", "size_range": [3, 1]}},
     {"source": "a.yaml", "location": _without_tag},
     "a.yaml: image.size_range: [min, max] must have min <= max (got [3, 1])"),
    ("an unknown tag named", {"name": "b", "image": {"generator": "blobs"}},
     {"source": "a.yaml", "union_tag": "generator"},
     "a.yaml: image.generator: unknown generator 'blobs'; choose one of 'shapes', 'words'"),
    ("a section with its value", {"name": "b", "image": {"generator": "shapes", "count": 1000}}, {"source": "a.yaml"},
     "a.yaml: image.shapes: count 1000 is too many for one image; make at most 100 (got {'count': 1000, 'generator': 'shapes'})"),
    ("a section without it", {"name": "b", "image": {"generator": "shapes", "count": 1000}},
     {"source": "a.yaml", "quote_sections": False},
     "a.yaml: image.shapes: count 1000 is too many for one image; make at most 100"),
    ("the YAML hint", {"name": "b", "image": {"generator": "words", "labels": [0]}},
     {"source": "a.yaml", "location": _without_tag, "hint": quote_hint},
     "a.yaml: image.labels.0: Input should be a valid string (got 0); YAML read it as a number: write it in quotes ('0')"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "options", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_problem_is_one_line_naming_its_place_and_the_fix(
    data: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    assert validation_message(_error(data), **options) == message


def test_a_screenful_of_problems_the_rest_counted() -> None:
    many = {"name": "b", **{f"key{i:02}": i for i in range(MAX_PROBLEMS_SHOWN + 1)}}
    lines = validation_message(_error(many), source="a.yaml").splitlines()
    assert len(lines) == MAX_PROBLEMS_SHOWN + 1
    assert lines[0] == "a.yaml: unknown key 'key00'; remove it or check its spelling"
    assert lines[-1] == "a.yaml: ... and 1 more problem"
    more = {"name": "b", **{f"key{i:02}": i for i in range(MAX_PROBLEMS_SHOWN + 3)}}
    assert validation_message(_error(more), source="a.yaml").endswith("... and 3 more problems")


ODD_PLACES = [
    ("a key with a line break", {"name": "b", "bad\nkey: 1\nname": 1}, {"source": "a.yaml"},
     "a.yaml: unknown key 'bad\\nkey: 1\\nname'; remove it or check its spelling"),
    ("a field with a line break", {"name": "b", "bad\rkey": 1}, {"field": "batch"},
     "batch.bad\\rkey: unknown field; remove it or check its spelling"),
    ("a long key cut short", {"name": "b", "k" * 5000: 1}, {"source": "a.yaml"},
     f"a.yaml: unknown key '{'k' * 37}...{'k' * 38}'; remove it or check its spelling"),
    ("a long unknown tag cut short", {"name": "b", "image": {"generator": "b" * 5000}},
     {"source": "a.yaml", "union_tag": "generator"},
     f"a.yaml: image.generator: unknown generator '{'b' * 37}...{'b' * 38}'; choose one of 'shapes', 'words'"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("data", "options", "message"), [c[1:] for c in ODD_PLACES], ids=[c[0] for c in ODD_PLACES]
)
def test_a_place_or_tag_of_any_text_is_written_on_its_line_and_cut_short(
    data: dict[str, Any], options: dict[str, Any], message: str
) -> None:
    """A key of a user's file (or a request body) may hold a line break, which started a line
    of its own that read as a problem of its own, or thousands of characters, all written
    out: it is escaped and cut short as a value is."""
    assert validation_message(_error(data), **options) == message
