"""The one exception type for input a user can fix.

`InputError` says what is wrong (`problem`), where (`field`, the library parameter or config
key, with the `value` given) and how to fix it (`fix`); or, for a file's contents, one message
that names the file, the line or entry and the fix. The library never speaks of exit codes or
command-line flags: the CLI shows `field` as its flag (`out` -> `--out`) and exits 2, the API
answers 4xx. A text that tells the user to pass another parameter names it as an `{option}`
placeholder listed in `options` (a name, or a name with the value to pass): the library and the
API read the parameter, the CLI its flag.

    raise InputError(field="out", value=out, problem="is a symlink", fix="give a real folder")
    str(error)                    # "out=runs/x: is a symlink; give a real folder"
    error.describe("--out")       # "--out runs/x: is a symlink; give a real folder"

    raise InputError("... pass {force=True} to replace it", options=("force=True",))
    str(error)                    # "... pass force=True to replace it"
    error.describe(as_flag=flag)  # "... pass --force to replace it" (flag("force=True"))

Advice to call another function is such an option too, written by `call_of`: the library and
the API show the call (`sg.merge(real='YOUR.jsonl', out='merged/')`), the CLI the command that
makes it (`synthgate merge --real YOUR.jsonl --out merged/`).

`validation_message(error, source=...)` writes a pydantic ValidationError (a config, a rubric, a
balance config, a decision that is not valid) as such a message, one line a problem.
"""

from __future__ import annotations

import itertools
import reprlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic is loaded by the models that raise one, not by this module
    from pydantic import ValidationError

_UNSET: Any = object()


class InputError(Exception):
    """Bad input: the message says where and how to fix it."""

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        value: Any = _UNSET,
        problem: str | None = None,
        fix: str | None = None,
        options: tuple[str, ...] = (),
    ) -> None:
        if message is None and (field is None or problem is None):
            raise TypeError("InputError needs a message, or a field and a problem")
        texts = [text for text in (message, problem, fix) if text is not None]
        for option in options:
            if not any("{" + option + "}" in text for text in texts):
                raise TypeError(f"InputError: option {option!r} is not in the text as {{{option}}}")
        self.field = field
        self.value = None if value is _UNSET else value
        self.has_value = value is not _UNSET
        self.problem = problem
        self.fix = fix
        self.message = message
        self.options = options
        super().__init__(self.describe())

    def describe(
        self, shown_as: str | None = None, *, as_flag: Callable[[str], str] | None = None
    ) -> str:
        """The message with the field shown as `shown_as` (a CLI flag), or as `field=value`,
        and each of `options` shown by `as_flag` (a CLI flag), or as the parameter."""
        if self.message is not None or self.field is None:
            return self._shown(str(self.message), as_flag)
        if shown_as is not None:
            where = f"{shown_as} {self.value}" if self.has_value else shown_as
        else:
            where = f"{self.field}={self.value}" if self.has_value else self.field
        fix = f"; {self._shown(self.fix, as_flag)}" if self.fix else ""
        return f"{where}: {self._shown(str(self.problem), as_flag)}{fix}"

    def _shown(self, text: str, as_flag: Callable[[str], str] | None) -> str:
        """`text` with its `{option}` placeholders filled (the value given is never touched)."""
        for option in self.options:
            text = text.replace("{" + option + "}", as_flag(option) if as_flag else option)
        return text


def call_of(function: str, **arguments: str) -> str:
    """An `options` entry that advises calling the library's `function` with `arguments`, as a
    notebook would write it (`sg.merge(real='YOUR.jsonl', out='merged/')`); the CLI shows the
    command of the same name with each argument as its flag (commands.flag_of)."""
    written = ", ".join(f"{name}={value!r}" for name, value in arguments.items())
    return f"sg.{function}({written})"


def printable(text: str) -> str:
    """`text` with any lone surrogate (an unpaired \\ud800-\\udfff escape read from a JSON file or
    request, which no UTF-8 output can hold) written as that escape: safe to print or send."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def string_in(value: Any, holds: Callable[[str], bool], where: str = "") -> tuple[str, str] | None:
    """(where, string) of the first string in `value` (dicts, lists, tuples; keys too) that
    `holds`, `where` written like `objects[0].category`; None when there is none. Every request
    body and decision is walked, and nearly all hold nothing: the places are written only once
    something is found."""
    if not _holds_anywhere(value, holds):
        return None
    return _first_place(value, holds, where)


def _holds_anywhere(value: Any, holds: Callable[[str], bool]) -> bool:
    if isinstance(value, str):
        return holds(value)
    if isinstance(value, dict):
        return any(
            _holds_anywhere(key, holds) or _holds_anywhere(item, holds)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return any(_holds_anywhere(item, holds) for item in value)
    return False


def _first_place(value: Any, holds: Callable[[str], bool], where: str) -> tuple[str, str] | None:
    """`string_in`, writing the place of every string on the way."""
    if isinstance(value, str):
        return (where or "a string", value) if holds(value) else None
    if isinstance(value, dict):
        pairs: Any = value.items()
    elif isinstance(value, list | tuple):
        pairs = enumerate(value)
    else:
        return None
    for key, item in pairs:
        step = f"{where}.{key}".lstrip(".") if isinstance(key, str) else f"{where}[{key}]"
        key_of = f"a key of {where}" if where else "a key"
        found = _first_place(key, holds, key_of) or _first_place(item, holds, step)
        if found is not None:
            return found
    return None


def _unencodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def lone_surrogate_in(value: Any, where: str = "") -> tuple[str, str] | None:
    """`string_in` for a string holding a lone surrogate."""
    return string_in(value, _unencodable, where)


def lone_surrogate(error: UnicodeEncodeError) -> str | None:
    """What a user reads for `error` when it is a lone surrogate that reached an output (a
    database, a file, a response) past the checks of its input; None for any other error."""
    if error.reason != "surrogates not allowed" or not isinstance(error.object, str):
        return None
    near = printable(error.object[max(error.start - 30, 0) : error.end + 30])
    return (
        f"the input holds a lone surrogate (an unpaired \\ud800-\\udfff escape, which is no "
        f'character) near "{near}": fix or drop the escape'
    )


class _AsWritten(reprlib.Repr):
    """reprlib's short repr with a mapping's keys in its own order: reprlib sorts them, and a
    span the row writes {'start': -1, 'end': 4, 'label': 'PER'} read {'end': 4, ...}."""

    def repr_dict(self, x: dict[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{" + self.fillvalue + "}"
        pieces = [
            f"{self.repr1(key, level - 1)}: {self.repr1(value, level - 1)}"
            for key, value in itertools.islice(x.items(), self.maxdict)
        ]
        if len(x) > self.maxdict:
            pieces.append(self.fillvalue)
        return "{" + ", ".join(pieces) + "}"


# A value quoted in an error message: short, whatever its size (reprlib never walks it all).
_SHORT, _SHORT_AS_WRITTEN = reprlib.Repr(), _AsWritten()
for _short in (_SHORT, _SHORT_AS_WRITTEN):
    _short.maxstring = _short.maxother = 80
    _short.maxlist = _short.maxtuple = _short.maxdict = 6
    _short.maxlevel = 3


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun in the number it takes, for every layer's messages: "1 image",
    "2 images" ("1 class", "2 classes" with `plural="classes"`; "1 image has", "2 images have"
    with `noun="image has", plural="images have"`)."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def quoted(value: Any, *, as_written: bool = False) -> str:
    """`value` as an error message quotes it (a user's file may hold anything): its repr, cut
    short whatever its size. `as_written`: a mapping's keys in its own order, not sorted (a
    span of a row, as the user finds it in the file)."""
    return (_SHORT_AS_WRITTEN if as_written else _SHORT).repr(value)


# Problems one message lists: a file with hundreds of wrong keys gets a screenful, not hundreds.
MAX_PROBLEMS_SHOWN = 20


def validation_message(
    error: ValidationError,
    *,
    source: Path | str | None = None,
    field: str | None = None,
    location: Callable[[tuple[int | str, ...]], tuple[int | str, ...]] | None = None,
    union_tag: str | None = None,
    shown: Callable[[Any], str] = quoted,
    hint: Callable[[Mapping[str, Any]], str] | None = None,
    quote_sections: bool = True,
) -> str:
    """pydantic's `error` as an InputError's message: a line a problem (MAX_PROBLEMS_SHOWN of
    them, the rest counted), each naming the place, what is wrong there and the value given.

    - `source`: the file the data was read from, which starts every line; its places are keys
      ("a.yaml: unknown key 'image.objets'; ..."). Without one (a library argument, a request
      body) they are fields ("decision.surprise: unknown field; ...").
    - `field`: the argument the data came as, which starts every place ("decision.verdict").
    - `location`: rewrites pydantic's place (its keys and indexes), e.g. to drop the tag pydantic
      puts after a tagged union's key, which is no key of the file.
    - `union_tag`: the key that picks a tagged union's member ("generator"): a value no member
      has is "image.generator: unknown generator 'x'; choose one of ...".
    - `shown`: how a value given is written (`quoted`; a YAML file's as YAML spells it).
    - `hint`: what to add to a problem's line (the YAML quoting hint of yaml_files.quote_hint).
    - `quote_sections`: False leaves out a mapping or list that one of our validators refused
      (a whole section, which its own message describes).
    A validator's own message (a ValueError it raised) is shown without pydantic's "Value
    error, " before it."""
    problems = error.errors()
    start = f"{source}: " if source is not None else ""
    lines = []
    for item in problems[:MAX_PROBLEMS_SHOWN]:
        loc = tuple(item["loc"]) if location is None else location(tuple(item["loc"]))
        where = ".".join(_place(part) for part in (loc if field is None else (field, *loc)))
        at = f"{where}: " if where else ""
        value = item.get("input")
        if item["type"] == "extra_forbidden":
            if source is not None:
                lines.append(f"{start}unknown key '{where}'; remove it or check its spelling")
            else:
                lines.append(f"{at}unknown field; remove it or check its spelling")
        elif item["type"] == "union_tag_invalid" and union_tag is not None:
            ctx = item.get("ctx", {})
            tag = f"{where}.{union_tag}" if where else union_tag
            lines.append(
                f"{start}{tag}: unknown {union_tag} {quoted(ctx.get('tag'))}; "
                f"choose one of {ctx.get('expected_tags')}"
            )
        elif item["type"] == "missing":
            lines.append(f"{start}{where} is required")
        else:
            value_error = item["type"] == "value_error"
            problem = item["ctx"]["error"] if value_error else item["msg"]
            section = value_error and isinstance(value, dict | list)
            got = "" if section and not quote_sections else f" (got {shown(value)})"
            extra = hint(item) if hint is not None else ""
            lines.append(f"{start}{at}{problem}{got}{extra}")
    if len(problems) > MAX_PROBLEMS_SHOWN:
        more = counted(len(problems) - MAX_PROBLEMS_SHOWN, "more problem")
        lines.append(f"{start}... and {more}")
    return "\n".join(lines)


def list_indexes(*lists: str) -> Callable[[tuple[int | str, ...]], tuple[int | str, ...]]:
    """A `location` for `validation_message`: an index into one of the fields named `lists`
    written as synthgate's own messages write it, `objects[3]` (pydantic's place says
    objects.3); a number after any other key is a key (`thresholds.5`: a measure named 5)."""

    def location(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
        written: list[int | str] = []
        for part in loc:
            before = written[-1] if written else None
            if isinstance(part, int) and isinstance(before, str) and before in lists:
                written[-1] = f"{before}[{part}]"
            else:
                written.append(part)
        return tuple(written)

    return location


def _place(part: int | str) -> str:
    """A key or index of a problem's place: a key of a user's file (or of a request) may hold a
    line break or thousands of characters, written escaped and cut short as a value is."""
    text = str(part)
    if text.isprintable() and len(text) <= _SHORT.maxstring:
        return text
    return quoted(text)[1:-1]  # without its quotes: the place is quoted, or none is
