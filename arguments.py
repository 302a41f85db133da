"""The library's arguments, checked where a public function takes them.

A notebook passes what it has: a path as str or `pathlib.Path` (or a result whose folder it
names: run, balance, merge and export results are path-like), a seed as a NumPy integer, one
class name where a list goes. Each helper returns the value in the form the library works with,
or raises `InputError` naming the parameter, what it got and what to pass instead, so that a
wrong type never surfaces as a TypeError from deep inside.

    path_argument(out, "out")                 # Path
    whole_number(seed, "seed", maximum=...)   # int (NumPy integers too; never bool or float)
    names_argument(categories, "categories")  # list[str] or None
    callback(progress, "progress")            # a callable or None
    switch(force, "force")                    # bool (a NumPy bool too; never "False")
"""

from __future__ import annotations

import numbers
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from synthgate.errors import InputError


def _shown(value: Any) -> str:
    """A value as a message quotes it: short, with its type when that is the problem."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


# A type name read letter by letter: a capital run (UUID, HTTPStatus, OSError) or NumPy's
# nd- (ndarray, "en-dee array"): its article goes by how its first letter is said (an H, a U).
_SPELT = re.compile(r"[A-Z]{2}|nd")
_LETTERS_SAID_WITH_A_VOWEL = "aefhilmnorsx"
# A word that starts with a vowel letter said as a consonant: uint8, ulonglong and ufunc (you-),
# union, unicode, user, European, one.
_VOWEL_SAID_AS_CONSONANT = re.compile(r"u(?:ni|i|f|long|s[aeiou])|eu|one", re.IGNORECASE)


def type_named(value: Any) -> str:
    """The type of `value` as a message names it, with the article it is said with: "an int",
    "a str", "an ndarray", "a uint8" (going by its first letter alone wrote "a ndarray" and
    "an uint8", a notebook's commonest wrong values)."""
    name = type(value).__name__
    if _SPELT.match(name):
        vowel_sound = name[0].lower() in _LETTERS_SAID_WITH_A_VOWEL
    else:
        vowel_sound = name[:1].lower() in "aeiou" and not _VOWEL_SAID_AS_CONSONANT.match(name)
    return f"{'an' if vowel_sound else 'a'} {name}"


def path_argument(value: Any, field: str) -> Path:
    """`value` as a Path: a str, a `pathlib.Path` or any path-like object (`os.fspath`); a
    leading `~` is the home folder, as a shell reads it."""
    if isinstance(value, Path):
        return home_expanded(value)
    if isinstance(value, str | os.PathLike):
        text = os.fspath(value)
        if isinstance(text, str) and not text.strip():  # Path("") is ".": the working folder
            raise InputError(
                field=field,
                value=repr(text),
                problem="is empty",
                fix="pass a file or folder path",
            )
        return home_expanded(Path(text))
    raise InputError(
        field=field,
        value=_shown(value),
        problem=f"is {type_named(value)}, not a path",
        fix="pass a file or folder path (a str or a pathlib.Path)",
    )


def home_expanded(path: Path) -> Path:
    """`path` with a leading `~` (or `~user`) made the home folder, as a shell makes it. Taken
    as it is, `~/runs/x` was a folder named "~" in the working folder: a run written where
    nobody looks for it, an input file "not found" that is there."""
    if not path.parts or not path.parts[0].startswith("~"):
        return path
    try:
        return path.expanduser()
    except RuntimeError:  # no home folder known (or no such user): the name as given
        return path


def optional_path(value: Any, field: str) -> Path | None:
    """`path_argument`, with None passed through (the parameter's default)."""
    return None if value is None else path_argument(value, field)


def number_typed(value: Any, field: str, *, whole: bool, fix: str) -> Any:
    """`value` unchanged if it is a Python or NumPy number (`whole`: an integer), else an
    InputError naming its type and `fix`; never a bool, which compares as a number. The check
    `whole_number` and `fraction` start with, for callers whose ranges say their own words."""
    kind, named = (numbers.Integral, "a whole number") if whole else (numbers.Real, "a number")
    if isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(
            field=field,
            value=_shown(value),
            problem=f"is {type_named(value)}, not {named}",
            fix=fix,
        )
    return value


def whole_number(value: Any, field: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    """`value` as an int in [minimum, maximum]: a Python or NumPy integer; not a bool, a float
    or a numeric string (each would be read differently by different callers)."""
    number = int(number_typed(value, field, whole=True, fix=f"pass an int of at least {minimum}"))
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"from {minimum} to {maximum}" if maximum is not None else f"at least {minimum}"
        raise InputError(field=field, value=number, problem=f"must be {bounds}")
    return number


def fraction(value: Any, field: str, *, low: float = 0.0, high: float = 1.0) -> float:
    """`value` as a float in [low, high]: a Python or NumPy number; not a bool or a string."""
    fix = f"pass a number from {low:g} to {high:g}"
    number = float(number_typed(value, field, whole=False, fix=fix))
    if not low <= number <= high:  # NaN fails both
        raise InputError(field=field, value=number, problem=f"must be from {low:g} to {high:g}")
    return number


def switch(value: Any, field: str) -> bool:
    """`value` as a bool: True or False (a NumPy bool too), not a string or a number, which
    read as true whatever they say: `add_categories="False"` appended the classes."""
    numpy = sys.modules.get("numpy")  # a NumPy bool exists only once NumPy is loaded
    if isinstance(value, bool) or (numpy is not None and isinstance(value, numpy.bool_)):
        return bool(value)
    raise InputError(
        field=field,
        value=_shown(value),
        problem=f"is {type_named(value)}, not True or False",
        fix=f"pass {field}=True or {field}=False",
    )


def callback(value: Any, field: str) -> Any:
    """`value`, a function to call (or None): `progress=True` hoping for a progress bar, or a
    tqdm bar itself, was a TypeError from inside once the first chunk was made."""
    if value is None or callable(value):
        return value
    raise InputError(
        field=field,
        value=_shown(value),
        problem=f"is {type_named(value)}, not a function",
        fix=f"pass a function, called with the counts as help() of the function says for "
        f"{field} (the command line draws its own bars), or leave it out",
    )


def names_argument(value: Any, field: str) -> list[str] | None:
    """`value` as a list of names (None passes): any iterable of str, but not one str, which
    would be read as its letters."""
    if value is None:
        return None
    if isinstance(value, str):
        raise InputError(
            field=field,
            value=_shown(value),
            problem="is one string; a list of names goes here",
            fix=f"pass {field}=[{value!r}]",
        )
    if not isinstance(value, Iterable) or isinstance(value, bytes | dict):
        raise InputError(
            field=field,
            value=_shown(value),
            problem=f"is {type_named(value)}, not a list of names",
            fix=f"pass a list of str, e.g. {field}=['a', 'b']",
        )
    names = list(value)
    for name in names:
        if not isinstance(name, str):
            raise InputError(
                field=field,
                value=_shown(name),
                problem=f"holds {type_named(name)}; every name must be a str",
            )
    return names


def environment_value(variable: str) -> str | None:
    """The value of environment variable `variable` (upper case) as pydantic-settings reads
    synthgate's settings, whatever the case of the name it was set under; None when unset. An
    error about a setting names the variable where its value came from there."""
    return next((v for k, v in os.environ.items() if k.upper() == variable), None)
