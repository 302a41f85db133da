"""The template file format: slots, values and `load_template_file`.

Offers `load_template_file(path) -> TemplateFile` (a validated file: task, labels, lexicons,
parsed templates; validators and balancing reuse it to learn the task and the labels),
`parse_template` (a template string -> literal text and `Slot`s) and the rules every filled
value follows so that a span never starts or ends with whitespace, punctuation or a symbol:
`clean_whitespace`, `has_clean_edges`, `trim_edges`, plus `as_text` (a Faker result -> text).
The schema and the slot syntax are documented in generators/text/templates.py.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from synthgate.class_names import category_name_problem
from synthgate.errors import InputError
from synthgate.samples import kept_first_edge, kept_last_edge
from synthgate.yaml_files import load_yaml, quote_hint

Task = Literal["ner", "classification"]
TASKS: tuple[Task, ...] = ("ner", "classification")
LABEL_PATTERN = r"[A-Za-z][A-Za-z0-9_-]*"
NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]*"
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SLOT = re.compile(rf"^\s*(?P<label>{LABEL_PATTERN})?\s*:\s*(?P<at>@)?(?P<name>{NAME_PATTERN})\s*$")
SLOT_HELP = "write {LABEL:provider}, {LABEL:@lexicon}, {:provider} or {:@lexicon}"


@dataclass(frozen=True)
class Slot:
    """One `{...}` of a template: where its value comes from and the span label it records."""

    label: str | None  # None: fill text, record no span
    source: Literal["faker", "lexicon"]
    name: str  # Faker provider method or lexicon name
    raw: str  # the slot as written, for error messages

    def unlabelled(self) -> str:
        """The same slot without its span label: `{:name}` or `{:@lexicon}`."""
        return "{:" + ("@" if self.source == "lexicon" else "") + self.name + "}"


Piece = str | Slot


class SlotSyntaxError(ValueError):
    """A template string that does not parse; the message says which slot and how to fix it."""


def parse_template(text: str) -> tuple[Piece, ...]:
    """Split a template into literal text and slots, in order."""
    pieces: list[Piece] = []
    literal: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[position : match.start()])
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif token == "{":
            raise SlotSyntaxError(
                f"unclosed '{{' at character {match.start()}; close the slot or write '{{{{' "
                "for a literal brace"
            )
        elif token == "}":
            raise SlotSyntaxError(
                f"'}}' without a slot at character {match.start()}; "
                "write '}}' for a literal brace"
            )
        else:
            if "".join(literal):
                pieces.append("".join(literal))
            literal = []
            pieces.append(_parse_slot(token))
    literal.append(text[position:])
    if "".join(literal):
        pieces.append("".join(literal))
    return tuple(pieces)


def _parse_slot(raw: str) -> Slot:
    match = _SLOT.match(raw[1:-1])
    if match is None:
        raise SlotSyntaxError(f"malformed slot {raw!r}; {SLOT_HELP}")
    source: Literal["faker", "lexicon"] = "lexicon" if match.group("at") else "faker"
    return Slot(label=match.group("label"), source=source, name=match.group("name"), raw=raw)


def clean_whitespace(value: str) -> str:
    """Newlines become ", " (addresses), runs of whitespace one space, the ends stripped."""
    lines = (line.strip() for line in value.splitlines())
    return " ".join(", ".join(line for line in lines if line).split())


# Signs a value may start or end with: a price is "$29.14" or "29,14 €", and without its sign
# it is another value. The ner rubric allows the same at span edges (its allowed_edge_chars).
EDGE_SIGNS = "$€£¥%"


def _is_edge_char(char: str) -> bool:
    # Z*: separators, C*: controls and invisible format characters; M* (combining marks) stays,
    # because Devanagari and other scripts end words with them.
    if char in EDGE_SIGNS:
        return False
    return char.isspace() or unicodedata.category(char)[0] in "PSZC"


def has_clean_edges(value: str) -> bool:
    """True for a non-empty value whose ends are no whitespace, punctuation or symbol (but
    `EDGE_SIGNS`)."""
    return bool(value) and not _is_edge_char(value[0]) and not _is_edge_char(value[-1])


def trim_edges(value: str) -> str:
    """Cut whitespace, punctuation and symbols but `EDGE_SIGNS` off both ends ('$29.14'
    stays, 'e.V.' -> 'e.V'), but for what a phone number is written with: a leading '+' before
    a digit ('+34 612' stays) and a bracket whose partner the value keeps ('(0)30 1234' stays;
    '(0113' -> '0113'). Cut, '+34 612' was another number and '(0)30' became '0)30'."""
    start, end = 0, len(value)
    while start < end and _is_edge_char(value[start]) and not kept_first_edge(value, start, end):
        start += 1
    while end > start and _is_edge_char(value[end - 1]) and not kept_last_edge(value, start, end):
        end -= 1
    return value[start:end]


def as_text(result: object) -> str | None:
    """A Faker provider's result as text; None for results that are not text-like (bytes, lists)."""
    if isinstance(result, str):
        return result
    if isinstance(result, bool):
        return None
    if isinstance(result, (int, float, Decimal)):
        return str(result)
    if isinstance(result, (dt.date, dt.time)):  # datetime is a date
        return result.isoformat(sep=" ") if isinstance(result, dt.datetime) else result.isoformat()
    return None


def _no_nul(text: str) -> str:
    """Rows go to the database, and PostgreSQL keeps no NUL in text: refused where it is written."""
    if "\x00" in text:
        raise ValueError("contains a NUL byte; remove it")
    return text


NonEmptyStr = Annotated[str, Field(min_length=1), AfterValidator(_no_nul)]
Values = Annotated[list[NonEmptyStr], Field(min_length=1)]


class _SchemaBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: Annotated[list[str], Field(min_length=1)]
    lexicons: dict[Annotated[str, Field(pattern=f"^{NAME_PATTERN}$")], Values] = Field(
        default_factory=dict
    )
    # random: a sample draws its template from its seed; cycle: sample i takes template i mod n
    # of its class, so consecutive samples use every template once before any repeats.
    order: Literal["random", "cycle"] = "random"

    @field_validator("labels")
    @classmethod
    def _unique(cls, labels: list[str]) -> list[str]:
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise ValueError(f"labels repeat {repeated}; list each label once")
        return labels


class _NerSchema(_SchemaBase):
    task: Literal["ner"]
    # span labels are written inside slots: {LABEL:provider}
    labels: Annotated[
        list[Annotated[str, Field(pattern=f"^{LABEL_PATTERN}$")]], Field(min_length=1)
    ]
    templates: Values


def _class_name(label: str) -> str:
    problem = category_name_problem(label)
    if problem is not None:
        raise ValueError(problem)
    return label


class _ClassificationSchema(_SchemaBase):
    task: Literal["classification"]
    # document labels name classes (a real dataset's: "0", "1", "4 stars") and appear in no slot
    labels: Annotated[
        list[Annotated[str, AfterValidator(_class_name)]],
        Field(min_length=1),
    ]
    templates: Annotated[dict[str, Values], Field(min_length=1)]


_SCHEMA: TypeAdapter[_NerSchema | _ClassificationSchema] = TypeAdapter(
    Annotated[_NerSchema | _ClassificationSchema, Field(discriminator="task")]
)


@dataclass(frozen=True)
class Template:
    """One parsed template string."""

    index: int  # position in its list (per document label for classification)
    label: str | None  # the document label (classification) or None (ner)
    text: str
    pieces: tuple[Piece, ...]

    @property
    def where(self) -> str:
        """Its place in the file, for messages: templates[3] or templates.positive[3]."""
        return (
            f"templates[{self.index}]"
            if self.label is None
            else f"templates.{self.label}[{self.index}]"
        )

    def slots(self) -> list[Slot]:
        return [piece for piece in self.pieces if isinstance(piece, Slot)]


@dataclass(frozen=True)
class TemplateFile:
    """A validated template file: the task, its labels, lexicons and parsed templates."""

    path: Path
    task: Task
    labels: tuple[str, ...]
    lexicons: dict[str, tuple[str, ...]]
    templates: tuple[Template, ...]
    order: Literal["random", "cycle"] = "random"  # how samples pick their template

    def templates_for(self, label: str | None) -> list[Template]:
        return [t for t in self.templates if t.label == label]


def load_template_file(path: Path | str) -> TemplateFile:
    """Read and validate a template file, or raise `InputError` naming the file and the fix."""
    path = Path(path)
    data = _read_yaml(path)
    try:
        schema = _SCHEMA.validate_python(data)
    except ValidationError as error:
        raise InputError(_format_validation_error(path, error)) from None
    lexicons = {
        name: _clean_lexicon(path, name, values) for name, values in schema.lexicons.items()
    }
    if isinstance(schema, _NerSchema):
        templates = [_parse(path, i, None, text) for i, text in enumerate(schema.templates)]
    else:
        templates = []
        for label, texts in schema.templates.items():
            if label not in schema.labels:
                raise InputError(
                    f"{path}: templates.{label}: {label!r} is not in labels {schema.labels}; "
                    "add it to labels or fix the key"
                )
            templates += [_parse(path, i, label, text) for i, text in enumerate(texts)]
        missing = [label for label in schema.labels if label not in schema.templates]
        if missing:
            raise InputError(
                f"{path}: templates has none for labels {missing}; add templates for them "
                "or remove them from labels"
            )
    for template in templates:
        _check_slots(path, schema.task, schema.labels, lexicons, template)
    return TemplateFile(
        path, schema.task, tuple(schema.labels), lexicons, tuple(templates), schema.order
    )


def _read_yaml(path: Path) -> dict[str, Any]:
    data = load_yaml(path, what="template file")
    if not isinstance(data, dict):
        raise InputError(
            f"{path}: a template file must be a YAML mapping with task, labels and templates "
            f"(got {type(data).__name__})"
        )
    return data


def _format_validation_error(path: Path, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        # A location starts with the union tag (the task), which is not a key of the file.
        loc = item["loc"][1:] if item["loc"] and item["loc"][0] in TASKS else item["loc"]
        where = _place(loc)
        if item["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown key '{where}'; remove it or check its spelling")
        elif item["type"] == "union_tag_not_found":
            lines.append(f"{path}: task is required; write `task: ner` or `task: classification`")
        elif item["type"] == "union_tag_invalid":
            got = item.get("ctx", {}).get("tag")
            lines.append(f"{path}: task: unknown task {got!r}; choose ner or classification")
        elif item["type"] == "missing":
            lines.append(f"{path}: {where} is required")
        elif where == "templates" and item["type"] in ("list_type", "dict_type"):
            lines.append(
                f"{path}: templates: {item['msg']}; ner templates are a list of strings, "
                "classification templates a mapping document label -> list of strings"
            )
        else:
            problem = item["ctx"]["error"] if item["type"] == "value_error" else item["msg"]
            lines.append(
                f"{path}: {where}: {problem} (got {item.get('input')!r}){quote_hint(item)}"
            )
    return "\n".join(lines)


def _place(loc: tuple[int | str, ...]) -> str:
    """pydantic's location as the file's own messages write it: `lexicons.product[0]`,
    `templates.pos[1]`; a mapping's key that is no text (`yes` read as True) is
    `templates (a key)`, as pydantic's `templates.1.[key]` names no place of the file."""
    if loc[-1:] == ("[key]",):
        return _place(loc[:-2]) + " (a key)"
    where = ""
    for part in loc:
        where += f"[{part}]" if isinstance(part, int) else ("." if where else "") + str(part)
    return where


def _clean_lexicon(path: Path, name: str, values: list[str]) -> tuple[str, ...]:
    cleaned = []
    for i, value in enumerate(values):
        value = clean_whitespace(value)
        if not has_clean_edges(value):
            raise InputError(
                f"{path}: lexicons.{name}[{i}]: {value!r} starts or ends with whitespace, "
                "punctuation or a symbol; values can become spans, so move such characters into "
                "the template text"
            )
        cleaned.append(value)
    return tuple(cleaned)


def _parse(path: Path, index: int, label: str | None, text: str) -> Template:
    where = f"templates[{index}]" if label is None else f"templates.{label}[{index}]"
    if not text.strip():  # every sample it fills is a blank text the rubric rejects
        raise InputError(
            f"{path}: {where}: the template is blank (only whitespace); write its text or remove it"
        )
    try:
        return Template(index=index, label=label, text=text, pieces=parse_template(text))
    except SlotSyntaxError as error:
        raise InputError(f"{path}: {where}: {error}") from None


def _check_slots(
    path: Path, task: Task, labels: list[str], lexicons: dict[str, Any], template: Template
) -> None:
    for slot in template.slots():
        if slot.label is not None and task == "classification":
            raise InputError(
                f"{path}: {template.where}: slot {slot.raw} records span label {slot.label!r}, "
                f"but classification templates record no spans; write {slot.unlabelled()}"
            )
        if slot.label is not None and slot.label not in labels:
            raise InputError(
                f"{path}: {template.where}: slot {slot.raw} uses label {slot.label!r}, which is "
                f"not in labels {labels}; add it to labels or fix the slot"
            )
        if slot.source == "lexicon" and slot.name not in lexicons:
            raise InputError(
                f"{path}: {template.where}: slot {slot.raw} names lexicon {slot.name!r}, which "
                f"is not in lexicons {sorted(lexicons)}; add it under `lexicons:`"
            )
