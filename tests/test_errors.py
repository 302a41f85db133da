"""`InputError` texts that name other parameters: the library shows the parameter, the CLI its flag."""

from __future__ import annotations

import shlex

import pytest

from synthgate.commands import flag_of
from synthgate.errors import InputError, call_of


def test_options_read_as_parameters_in_the_library_and_as_flags_in_the_cli() -> None:
    error = InputError(
        "x.json: new classes {'hexagon'}; pass {add_categories=True} to append them, or "
        "{copy_images=False} with {images}",
        options=("add_categories=True", "copy_images=False", "images"),
    )
    assert str(error) == (
        "x.json: new classes {'hexagon'}; pass add_categories=True to append them, or "
        "copy_images=False with images"
    )
    assert error.describe(as_flag=flag_of) == (
        "x.json: new classes {'hexagon'}; pass --add-categories to append them, or "
        "--no-copy-images with --images"
    )


def test_a_field_error_shows_its_options_in_the_problem_and_the_fix_not_in_its_value() -> None:
    error = InputError(
        field="layout",
        value="{format=coco}",  # a value is shown as given, whatever it holds
        problem="applies to {format=coco} only",
        fix="or lower {min_verdicts}",
        options=("format=coco", "min_verdicts"),
    )
    assert str(error) == "layout={format=coco}: applies to format=coco only; or lower min_verdicts"
    assert error.describe(flag_of("layout"), as_flag=flag_of) == (
        "--layout {format=coco}: applies to --format coco only; or lower --min-verdicts"
    )


@pytest.mark.parametrize(
    ("option", "flag"),
    [
        ("label_field", "--label-field"),
        ("force=True", "--force"),
        ("annotators=False", "--no-annotators"),
        ("modality=text", "--modality text"),
        ("annotator_emails", "--annotator-email"),  # the one flag not named as its parameter
    ],
)
def test_flag_of_writes_an_option_as_the_flag_that_passes_it(option: str, flag: str) -> None:
    assert flag_of(option) == flag


def test_a_call_reads_as_the_call_in_the_library_and_as_its_command_in_the_cli() -> None:
    merge = call_of("merge", real="YOUR.jsonl", synthetic="runs/Bob's run", out="merged/")
    error = InputError(f"merge its rows instead: {{{merge}}}", options=(merge,))
    assert str(error) == (
        "merge its rows instead: sg.merge(real='YOUR.jsonl', synthetic=\"runs/Bob's run\", "
        "out='merged/')"
    )
    assert error.describe(as_flag=flag_of) == (
        "merge its rows instead: synthgate merge --real YOUR.jsonl --synthetic 'runs/Bob'\"'\"'s "
        "run' --out merged/"
    )


@pytest.mark.parametrize("folder", ["runs/Bob's run", "runs/my run", 'runs/the "best" run'])
def test_the_command_of_a_call_runs_in_a_shell_as_written(folder: str) -> None:
    """The CLI advises the command to paste into a shell: a value it would split or stop at is
    quoted, as the review commands quote an annotator's name (shlex.quote)."""
    merge = call_of("merge", real="YOUR.jsonl", synthetic=folder, out="merged/")
    command = ["synthgate", "merge", "--real", "YOUR.jsonl", "--synthetic", folder]
    assert shlex.split(flag_of(merge)) == [*command, "--out", "merged/"]


def test_an_option_missing_from_the_text_is_a_bug() -> None:
    with pytest.raises(TypeError, match=r"not in the text as \{force=True\}"):
        InputError("pass --force", options=("force=True",))
