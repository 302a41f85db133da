"""`json_list_items` (files.py) reads a JSON list one item at a time and gives exactly what
`json.loads` gives: the same items, the same error at the same place, for any text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthgate.files import NotAJsonList, json_list_items

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()  # NaN and Infinity too: json reads and writes them
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
LAYOUTS = st.sampled_from(
    [
        {},
        {"indent": 1},
        {"indent": "\t"},
        {"separators": (",", ":")},
        {"separators": (" , ", " : ")},
        {"ensure_ascii": False},
    ]
)

# what Python's str.isspace and re's \s take for space, and JSON does not
NOT_JSON_SPACE = ["\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u2028", "\u3000"]


def outcome_of_loads(text: str) -> tuple[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        return "error", (type(error), str(error))
    return ("items", value) if isinstance(value, list) else ("not a list", type(value).__name__)


def outcome_of_items(text: str) -> tuple[str, Any]:
    items: list[Any] = []
    try:
        items.extend(json_list_items(text))
    except NotAJsonList as error:
        return "not a list", error.kind
    except (ValueError, RecursionError) as error:
        return "error", (type(error), str(error))
    return "items", items


def same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    # json.dumps, not ==: NaN is not equal to itself
    return a[0] == b[0] and (a[0] == "error" or json.dumps(a[1]) == json.dumps(b[1]))


@settings(max_examples=300, deadline=None)
@given(
    value=st.lists(JSON_VALUES, max_size=6) | JSON_VALUES,
    layout=LAYOUTS,
    around=st.tuples(
        st.sampled_from(["", " ", "\n", "\r\n\t ", *NOT_JSON_SPACE]),
        st.sampled_from(["", " \n", *NOT_JSON_SPACE]),
    ),
)
def test_a_sound_text_gives_what_json_loads_gives(value, layout, around) -> None:
    text = around[0] + json.dumps(value, **layout) + around[1]
    assert same(outcome_of_items(text), outcome_of_loads(text))


@settings(max_examples=500, deadline=None)
@given(
    value=st.lists(JSON_VALUES, min_size=1, max_size=6),
    layout=LAYOUTS,
    cut=st.integers(min_value=0),
    insert=st.sampled_from(
        ["", ",", "]", "[", "}", '"', "x", " ", "\ufeff", "1", ":", "\\", *NOT_JSON_SPACE]
    ),
    drop=st.integers(min_value=0, max_value=2),
)
def test_a_broken_text_fails_as_json_loads_fails(value, layout, cut, insert, drop) -> None:
    text = json.dumps(value, **layout)
    at = cut % (len(text) + 1)
    text = text[:at] + insert + text[at + drop :]
    assert same(outcome_of_items(text), outcome_of_loads(text))


def test_items_before_a_fault_come_out_before_its_error() -> None:
    text = '[{"a": 1}, [2, 3], "four", tru]'
    got: list[Any] = []
    with pytest.raises(json.JSONDecodeError) as raised:
        got.extend(json_list_items(text))
    assert got == [{"a": 1}, [2, 3], "four"]
    assert (raised.value.lineno, raised.value.colno) == (1, text.index("tru") + 1)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[" * 100_000 + "]" * 100_000, RecursionError),  # as deep as json refuses
        ("[1, " + "9" * 5000 + "]", ValueError),  # more digits than Python reads
        ("\ufeff[]", json.JSONDecodeError),  # a byte-order mark
        ("[1] [2]", json.JSONDecodeError),  # data after the list
        ("", json.JSONDecodeError),
        ("[1]\xa0", json.JSONDecodeError),  # space to Python, not to JSON
        ("\xa0[]", json.JSONDecodeError),
        ("[\x0b1]", json.JSONDecodeError),
        ("[1,\u2028 2]", json.JSONDecodeError),
    ],
)
def test_what_json_loads_refuses_is_refused_alike(text: str, error: type) -> None:
    with pytest.raises(error) as raised:
        list(json_list_items(text))
    with pytest.raises(error) as expected:
        json.loads(text)
    assert str(raised.value) == str(expected.value)


def test_json_that_is_no_list_is_named() -> None:
    with pytest.raises(NotAJsonList) as raised:
        list(json_list_items(' {"id": 1} '))
    assert raised.value.kind == "dict"
