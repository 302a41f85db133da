"""`show(sample, report)`: one sample drawn with matplotlib, for notebooks and quick looks.

An image sample is drawn with its boxes (labelled with their class), its masks as translucent
fills and, with a report, the objects a finding names outlined in red; a text sample with its
spans highlighted and labelled. The report's score, route, criterion levels and findings are
written under it. Pixels come from a `GeneratedSample`, or from `image_root / sample.uri` for a
`Sample` read back from a run folder or a COCO file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from synthgate.arguments import fraction, optional_path
from synthgate.config import PACKAGE_ROOT
from synthgate.errors import InputError
from synthgate.formats.image_files import open_rgb
from synthgate.masks import decode_mask, rle_problem
from synthgate.samples import GeneratedSample, RubricReport, Sample
from synthgate.yaml_files import load_yaml

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FINDINGS_SHOWN = 8
FONT_SIZE = 10
MONO_ADVANCE = 0.6  # a monospace character is about 0.6 em wide
PALETTE = "tab10"  # a colour per class (or span label), ten before they repeat
MIN_WIDTH = 3.0  # inches: narrower, matplotlib has no room for the findings
MAX_WIDTH = 100.0
SHIPPED_RUBRICS = PACKAGE_ROOT / "configs" / "rubrics"


def _new_figure(width: float, height: float, ratios: list[float]) -> tuple[Figure, Any, Any]:
    """A figure of two stacked axes, not registered with pyplot: a notebook shows it once (as
    the cell's value), and it is freed with its last reference (pyplot keeps every figure it
    made until closed); one that shows itself without pyplot (reports/figure.py). Drawn with
    Agg, so `savefig` and text measurement work anywhere."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        from synthgate.reports.figure import SampleFigure
    except ModuleNotFoundError as missing:  # a base install: matplotlib comes with an extra
        raise ModuleNotFoundError(
            "synthgate.show draws with matplotlib, which is not installed: "
            "pip install 'synthgate[notebook]'",
            name=missing.name,
        ) from missing
    figure = SampleFigure(figsize=(width, height))
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, gridspec_kw={"height_ratios": ratios})
    return figure, top, bottom


def _colour(index: int) -> tuple[float, ...]:
    import matplotlib

    return tuple(matplotlib.colormaps[PALETTE](index % 10))


def _rectangle(*args: Any, **kwargs: Any) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle(*args, **kwargs)


def show(
    sample: GeneratedSample | Sample,
    report: RubricReport | None = None,
    *,
    image_root: Path | str | None = None,
    width: float = 8.0,
) -> Figure:
    """Draw a sample: labels over its image (or spans over its text), and its report's findings.

    Args:
        sample: a `GeneratedSample` (from `generate`) or a `Sample`.
        report: its `RubricReport` (from `validate`); default: the sample's own, if judged.
            A report on samples of another modality (an image's, shown with a text) is
            refused.
        image_root: the folder a `Sample`'s `uri` is relative to, when it carries no pixels.
        width: the figure's width in inches, from 3 to 100.

    Returns:
        The matplotlib `Figure` (a notebook shows it; `fig.savefig(path)` writes it).

    Example:
        >>> samples = generate("configs/quickstart.yaml", limit=1)
        >>> show(samples[0], validate(samples)[0])
    """
    if not isinstance(sample, GeneratedSample | Sample):
        raise InputError(
            field="sample",
            value=type(sample).__name__,
            problem="is not a sample",
            fix="pass one GeneratedSample (from generate) or Sample, e.g. show(samples[0])",
        )
    if report is not None and not isinstance(report, RubricReport):
        raise InputError(
            field="report",
            value=type(report).__name__,
            problem="is not a RubricReport",
            fix="pass the sample's own report, e.g. show(samples[0], reports[0])",
        )
    image_root = optional_path(image_root, "image_root")
    width = fraction(width, "width", low=MIN_WIDTH, high=MAX_WIDTH)  # matplotlib fails deep inside
    generated = sample if isinstance(sample, GeneratedSample) else GeneratedSample(sample=sample)
    report = report if report is not None else generated.sample.report
    if report is not None:
        _refuse_another_modality(generated.sample, report)
    if generated.sample.spec.modality == "image":
        return _show_image(generated, report, image_root, width)
    return _show_text(generated.sample, report, width)


def report_modality(report: RubricReport) -> str | None:
    """The modality of the samples `report` judged, where it says: its findings name objects (an
    image's) or spans (a text's); else its rubric is a shipped one, named in the report (every
    report comes from a rubric of its sample's modality: validate refuses another). None for a
    rubric of the user's own whose findings name neither."""
    if any(finding.object_index is not None for finding in report.findings):
        return "image"
    if any(finding.span_index is not None for finding in report.findings):
        return "text"
    shipped = {path.stem: path for path in SHIPPED_RUBRICS.glob("*.yaml")}
    if report.rubric not in shipped:
        return None
    modality = load_yaml(shipped[report.rubric], what="rubric").get("modality")
    return modality if modality in ("image", "text") else None


def _refuse_another_modality(sample: Sample, report: RubricReport) -> None:
    """A report on samples of another modality than `sample`'s (a notebook's show(texts[0],
    reports[0]) with the images' reports): drawn, its findings and score read as the sample's."""
    judged = report_modality(report)
    if judged is None or judged == sample.spec.modality:
        return
    raise InputError(
        field="report",
        problem=f"is a report on {judged} samples (rubric {report.rubric}), and sample "
        f"{sample.id} is a {sample.spec.modality} sample",
        fix="pass the sample's own report: validate(samples) returns one a sample, in their "
        "order, so show(samples[i], reports[i])",
    )


def _pixels(generated: GeneratedSample, image_root: Path | str | None) -> np.ndarray:
    if generated.pixels is not None:
        return generated.pixels
    sample = generated.sample
    if image_root is None or not sample.uri:
        raise InputError(
            field="image_root",
            problem=f"sample {sample.id} carries no pixels",
            fix="pass image_root, the folder its uri is relative to (a run folder)",
        )
    path = Path(image_root) / sample.uri
    size = (sample.width, sample.height) if sample.width and sample.height else None
    image, why = open_rgb(path, size=size)  # as validate reads it; the pixel limit applies
    if image is None:
        raise InputError(f"{path}: cannot read the image of sample {sample.id} ({why})")
    return np.asarray(image)


def _show_image(
    generated: GeneratedSample,
    report: RubricReport | None,
    image_root: Path | str | None,
    width: float,
) -> Figure:
    sample = generated.sample
    pixels = _pixels(generated, image_root)
    height, image_width = pixels.shape[:2]
    figure, image_axes, text_axes = _new_figure(
        width, width * height / image_width + 2.0, [height / image_width * 4, 1]
    )
    _refuse_unreadable_masks(sample, (image_width, height))
    image_axes.imshow(pixels)
    flagged = {
        f.object_index for f in (report.findings if report else []) if f.object_index is not None
    }
    classes = sorted({obj.category for obj in sample.objects})
    overlay = np.zeros((height, image_width, 4), dtype=np.float32)
    for index, obj in enumerate(sample.objects):
        colour = _colour(classes.index(obj.category))
        if obj.mask is not None:
            overlay[decode_mask(obj.mask)] = (*colour[:3], 0.35)
        if len(obj.bbox) == 4:
            x, y, w, h = obj.bbox
            edge = "red" if index in flagged else colour
            image_axes.add_patch(
                _rectangle(
                    (x, y),
                    w,
                    h,
                    fill=False,
                    edgecolor=edge,
                    linewidth=2.5 if index in flagged else 1.5,
                )
            )
            image_axes.text(x, y, f"{index}: {obj.category}", color="white", fontsize=8,
                            va="bottom", bbox={"facecolor": colour, "alpha": 0.8, "pad": 1, "lw": 0})  # fmt: skip
    image_axes.imshow(overlay)
    image_axes.set_title(f"{sample.id}  ({sample.spec.generator})", fontsize=9)
    image_axes.axis("off")
    _write_report(text_axes, report)
    figure.tight_layout()
    return figure


def _refuse_unreadable_masks(sample: Sample, image_size: tuple[int, int]) -> None:
    """InputError naming the first object whose mask is no RLE of its image (a hand-edited
    sample): pycocotools said only 'Invalid RLE mask representation', or a KeyError, or read
    past the end of counts cut short and drew garbage. `image_size`: (width, height)."""
    for index, obj in enumerate(sample.objects):
        if obj.mask is None:
            continue
        if isinstance(obj.mask, dict):
            problem = rle_problem(obj.mask, image_size)
        else:
            problem = f"a mask is a COCO RLE dict, not {type(obj.mask).__name__}"
        if problem is not None:
            raise InputError(
                field="sample",
                value=sample.id,
                problem=f"object {index} ({obj.category!r}) has a mask show cannot draw: {problem}",
                fix="set its mask to None (its box is drawn alone) or to the compressed RLE of a "
                "mask of the image's size, as synthgate.masks.encode_mask(mask) makes it",
            )


def _show_text(sample: Sample, report: RubricReport | None, width: float) -> Figure:
    text = " ".join((sample.text or "").split("\n"))
    estimate = max(20, int(width / (FONT_SIZE * MONO_ADVANCE / 72)) - 2)
    rows = len(_wrap(text, estimate)) + 1
    figure, text_axes, report_axes = _new_figure(width, rows * 0.3 + 2.0, [rows * 0.3, 1.6])
    text_axes.axis("off")
    _write_report(report_axes, report)
    text_axes.set_title(f"{sample.id}  label: {sample.doc_label}", fontsize=9)
    figure.tight_layout()
    # One data unit per character cell (a monospace character's width, measured), and each
    # character drawn in its cell: highlights sit on their letters at any resolution.
    figure.canvas.draw()
    probe = text_axes.text(0, 0, "M" * 40, family="monospace", fontsize=FONT_SIZE)
    char = probe.get_window_extent().width / 40
    probe.remove()
    span_px = text_axes.get_window_extent().width
    columns = max(10, int(span_px / char) - 1)
    lines = _wrap(text, columns)
    text_axes.set_xlim(0, span_px / char)
    text_axes.set_ylim(-len(lines) * 1.6, 0.8)
    labels = sorted({span.label for span in sample.spans})
    for row, (start, line) in enumerate(lines):
        y = -row * 1.6
        for column, character in enumerate(line):  # one cell each: no drift from hinting
            if not character.isspace():
                text_axes.text(column + 0.5, y, character, family="monospace",
                               fontsize=FONT_SIZE, ha="center", va="center")  # fmt: skip
        for span in sample.spans:
            left, right = max(span.start, start), min(span.end, start + len(line))
            if left >= right:
                continue
            colour = _colour(labels.index(span.label))
            text_axes.add_patch(
                _rectangle((left - start, y - 0.55), right - left, 1.1, color=colour, alpha=0.35)
            )
            if left == span.start:
                text_axes.text(left - start, y + 0.6, span.label, fontsize=6, color=colour)
    return figure


def _wrap(text: str, columns: int) -> list[tuple[int, str]]:
    """Lines of at most `columns` characters, broken at spaces, with their start offsets (so
    span offsets map to positions on the lines)."""
    lines, start = [], 0
    while start < len(text):
        end = min(start + columns, len(text))
        if end < len(text):
            cut = text.rfind(" ", start, end + 1)
            end = cut if cut > start else end
        lines.append((start, text[start:end]))
        start = end + 1 if end < len(text) and text[end] == " " else end
    return lines or [(0, "")]


def _write_report(axes: Any, report: RubricReport | None) -> None:
    axes.axis("off")
    if report is None:
        axes.text(
            0, 1, "not judged (pass a report, e.g. from synthgate.validate)", va="top", fontsize=9
        )
        return
    levels = "  ".join(f"{criterion} {level}" for criterion, level in report.levels.items())
    lines = [
        f"score {report.score:g}  route {report.route}{'  (audit)' if report.audit else ''}  |  {levels}"
    ]
    for finding in report.findings[:FINDINGS_SHOWN]:
        where = f" [object {finding.object_index}]" if finding.object_index is not None else ""
        where += f" [span {finding.span_index}]" if finding.span_index is not None else ""
        lines.append(
            f"{finding.criterion} {finding.level}: {finding.check}{where}: {finding.message}"
        )
    if len(report.findings) > FINDINGS_SHOWN:
        lines.append(f"… and {len(report.findings) - FINDINGS_SHOWN} more findings")
    axes.text(0, 1, "\n".join(lines), va="top", fontsize=8, family="monospace", wrap=True)
