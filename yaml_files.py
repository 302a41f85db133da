"""Reading the YAML files users write (batch configs, rubrics, templates, balance targets),
with errors that name the file, the line and the fix.

- `load_yaml(path, what=...)`: a YAML file, with the line and column of a syntax error, parsed
  with bounds: at most MAX_NESTING levels deep (files.py), at most MAX_YAML_NODES nodes once
  aliases are expanded (a "billion laughs" file is refused at once), no alias that refers to
  itself, no key twice in one mapping, no base-60 number, no integer of more than
  MAX_INT_DIGITS digits.
- `parse_yaml(text, source=...)`: the same for text in hand.
- `written_as_number(value)`: a pydantic `mode="before"` validator refusing the booleans and
  quoted numbers YAML hands over where a number goes.
- `quote_hint(error)`: for a pydantic error on a value YAML read as a number or a boolean where
  text was wanted, how to quote it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from synthgate.errors import InputError
from synthgate.files import DEEP_FIX, MAX_NESTING, readable_file

try:
    from yaml.cyaml import CParser
except ImportError:  # a PyYAML built without libyaml
    CParser = None

# Nodes of a YAML document with every alias expanded: far above any real config or template
# file, far below what makes validation or an error message take more than a moment.
MAX_YAML_NODES = 100_000
MAX_INT_DIGITS = 100  # an integer in a YAML file (a seed has at most 19)
LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"  # libyaml's own bound, 1,000 levels
# A number PyYAML (YAML 1.1) reads as text, unquoted: an exponent without a dot or its sign
# (1e-3, 1.5e3). Pydantic reads it as the number it is, as it did before quoted numbers were
# refused (1e999 is then refused as not finite).
YAML11_TEXT_NUMBER = re.compile(r"[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+\Z")


def written_as_number(value: Any) -> Any:
    """`value` (a number, or a list of them), refused where a boolean or a string stands for a
    number (a pydantic validator `mode="before"`): YAML reads yes, no, on, off, true and false
    as booleans, and pydantic would take them as 1 and 0 (`count: yes`, one image); a quoted
    number (`count: '3'`) is text, which pydantic would read as 3."""
    items = value if isinstance(value, list | tuple) else [value]
    if any(isinstance(item, bool) for item in items):
        raise ValueError(
            "YAML read a boolean (yes, no, on, off, true, false) where a number goes; "
            "write the number"
        )
    if any(isinstance(item, str) and not YAML11_TEXT_NUMBER.match(item) for item in items):
        raise ValueError("is text where a number goes; write the number without quotes")
    return value


class _Refused(Exception):
    """A YAML document the loader refuses (over one of its bounds, or a key given twice); the
    message says why."""

    def __init__(self, problem: str, mark: Any, fix: str = "write the values out plainly") -> None:
        super().__init__(problem)
        self.problem = problem
        self.mark = mark
        self.fix = fix


if CParser is not None:

    class _ComposingParser(Composer, CParser):
        """libyaml scans and parses (a 5 KB rubric: 4 ms, against 20 ms with PyYAML's Python
        scanner); the nodes are composed in Python, where BoundedLoader checks its bounds.

        libyaml reads a few documents PyYAML's scanner refuses: a tab after a colon or at the end
        of a line (YAML 1.2 separation whitespace) loads. Its syntax errors do not name the
        character they stopped at; `load_yaml` adds it."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)

else:

    class _ComposingParser(Reader, Scanner, Parser, Composer):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)


class BoundedLoader(_ComposingParser, SafeConstructor, Resolver):
    """A YAML loader with PyYAML's safe constructor and resolver, and bounds on nesting and on
    the document's expanded size.

    The composer builds the node graph before anything is constructed, so the bounds are
    checked there: each node's size counts its children with aliases expanded, an alias to a
    node still being built (a recursive structure) is refused.
    """

    def __init__(self, stream: str) -> None:
        _ComposingParser.__init__(self, stream)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._depth = 0
        self._sizes: dict[int, int] = {}  # id(node) -> nodes it stands for, aliases expanded

    def construct_yaml_int(self, node: Any) -> int:
        if ":" in str(node.value):
            raise _sexagesimal(node, f"the number {super().construct_yaml_int(node)}")
        # Python refuses to read integers of more than 4300 digits with a bare ValueError; no
        # config needs more than a seed's 19
        if sum(c.isdigit() for c in str(node.value)) > MAX_INT_DIGITS:
            raise _Refused(
                f"an integer of more than {MAX_INT_DIGITS} digits",
                node.start_mark,
                "no setting takes a number that large",
            )
        return int(super().construct_yaml_int(node))

    def construct_yaml_float(self, node: Any) -> float:
        if ":" in str(node.value):
            raise _sexagesimal(node, f"the number {super().construct_yaml_float(node)}")
        return float(super().construct_yaml_float(node))

    def construct_yaml_timestamp(self, node: Any) -> Any:
        # YAML reads 2026-13-01 as a date and PyYAML's datetime call raises a bare ValueError
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as error:
            raise _Refused(
                f"{node.value} reads as a date, which does not exist ({error})",
                node.start_mark,
                "write a real date (YYYY-MM-DD), or quote the value if it is text",
            ) from None

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:
                raise _Refused(f"alias *{event.anchor} refers to itself", event.start_mark)
            return node
        self._depth += 1
        if self._depth > MAX_NESTING:
            mark = self.peek_event().start_mark
            raise _Refused(f"nested deeper than {MAX_NESTING} levels", mark, DEEP_FIX)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        children: list[Any] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
            _no_key_twice(node)
        size = 1 + sum(self._sizes.get(id(child), 1) for child in children)
        if size > MAX_YAML_NODES:
            raise _Refused(
                f"more than {MAX_YAML_NODES} values once its aliases are expanded", node.start_mark
            )
        self._sizes[id(node)] = size
        return node


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_yaml_int)
BoundedLoader.add_constructor("tag:yaml.org,2002:float", BoundedLoader.construct_yaml_float)
BoundedLoader.add_constructor("tag:yaml.org,2002:timestamp", BoundedLoader.construct_yaml_timestamp)


def _sexagesimal(node: Any, read_as: str) -> _Refused:
    """YAML 1.1 (PyYAML) reads 190:20:30 as base 60 (for times): nobody writes a count or a
    size that way, and YAML 1.2 reads it as text, so it is refused."""
    return _Refused(
        f"{node.value} reads as {read_as} (YAML 1.1's base 60)",
        node.start_mark,
        "write the number itself, or quote the value if it is text",
    )


def _no_key_twice(node: yaml.MappingNode) -> None:
    """YAML keys are unique: PyYAML would keep the last of two `seed:` lines silently."""
    seen: set[tuple[str, str]] = set()
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
            continue
        if (key.tag, key.value) in seen:
            raise _Refused(
                f"key {key.value!r} is given twice in one mapping",
                key.start_mark,
                "keep one of them (YAML keeps no second value: the last one would win)",
            )
        seen.add((key.tag, key.value))


def parse_yaml(text: str, *, source: Path | str) -> Any:
    """YAML text through `BoundedLoader`; a syntax error or a bound is an `InputError`."""
    try:
        loader = BoundedLoader(text)
    except UnicodeEncodeError as error:  # libyaml reads UTF-8: a str read from a file has none
        raise InputError(
            f"{source}: YAML holds a lone surrogate at position {error.start}, which no UTF-8 "
            "text can; write the character it stands for"
        ) from None
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        if error.problem != LIBYAML_TOO_DEEP:
            raise
        # libyaml's scanner looks ahead past the composer's bound in a flow collection: the
        # mark is where it stopped, inside the collection that nests too deep
        bound = _Refused(f"nested deeper than {MAX_NESTING} levels", error.problem_mark, DEEP_FIX)
        raise InputError(_bound_message(source, bound)) from None
    except _Refused as error:
        raise InputError(_bound_message(source, error)) from None
    finally:
        loader.dispose()


def _bound_message(source: Path | str, error: _Refused) -> str:
    where = f" at line {error.mark.line + 1}, column {error.mark.column + 1}" if error.mark else ""
    return f"{source}: YAML{where}: {error.problem}; {error.fix}"


def load_yaml(path: Path | str, *, what: str = "YAML file") -> Any:
    """Parse a YAML file; a missing file, a syntax error or a document over the parser's bounds
    (nesting, expanded aliases) is an `InputError` naming it."""
    path = readable_file(Path(path), what)
    try:
        text = path.read_text(encoding="utf-8")
        return parse_yaml(text, source=path)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        problem += _found(text, mark) if problem.endswith("cannot start any token") else ""
        raise InputError(f"{path}: YAML syntax error{where}: {problem}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read the {what} ({error.strerror})") from None


def _found(text: str, mark: Any) -> str:
    """What stopped the scanner at `mark`, for a message (libyaml's does not say)."""
    lines = text.splitlines()
    if mark is None or mark.line >= len(lines) or mark.column >= len(lines[mark.line]):
        return ""
    found = lines[mark.line][mark.column]
    return " (a tab: YAML indents with spaces)" if found == "\t" else f" (found {found!r})"


def quote_hint(error: Mapping[str, Any]) -> str:
    """For a pydantic error that wanted text where YAML read a number or a boolean (a category
    `0`, a label `yes`): how to write it as text; else ''."""
    value = error.get("input")
    if error.get("type") != "string_type" or not isinstance(value, bool | int | float):
        return ""
    if isinstance(value, bool):
        # the word written is gone: yes, on and true all read as True ('true' would rename a
        # label `yes`)
        words = ("yes", "on", "true") if value else ("no", "off", "false")
        return (
            f"; YAML reads {', '.join(words[:2])} and {words[2]} as a boolean: write the word "
            f"in quotes ('{words[0]}', '{words[1]}' or '{words[2]}')"
        )
    return f"; YAML read it as a number: write it in quotes ('{json.dumps(value)}')"
