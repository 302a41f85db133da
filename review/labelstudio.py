"""Label Studio interop at the edge: tasks with predictions out, decisions back in.

Pure conversions: `labeling_config` (the XML), `sample_regions` (COCO xywh pixels -> percent
RectangleLabels / PolygonLabels, character offsets -> Labels), `decision_result` (a Decision as an
annotation result) and `result_decision` (back). Region ids name the object or span they came
from (`o3`, `s0`), so a region the annotator left alone keeps its mask and its exact numbers.
`export_tasks` / `import_annotations` connect these to a ReviewQueue (see review/interop.py).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Any, Literal

import numpy as np

from synthgate.errors import InputError, quoted
from synthgate.formats.xml_text import UNFIT_FOR_XML, unfit_for_xml
from synthgate.masks import decode_mask, segmentation_to_rle
from synthgate.review.queue import Decision
from synthgate.samples import ObjectLabel, Sample, Span

Shapes = Literal["rectangles", "polygons"]
VERDICTS = ("accept", "reject", "fix")
LEVELS = ("5", "3", "1")
TOLERANCE = 1e-6  # percent coordinates survive float round trips to this


def labeling_config(
    modality: str, labels: list[str], criteria: list[str], *, shapes: Shapes = "rectangles"
) -> str:
    """The labeling config XML for review tasks of one modality."""
    bad = unfit_for_xml([*labels, *criteria])
    if bad:
        raise InputError(
            f"classes {bad[:5]}: {UNFIT_FOR_XML}, as Label Studio's labeling config is XML; "
            "rename these classes where the samples got them (the run's config or COCO file)"
        )
    view = ET.Element("View")
    target = "image" if modality == "image" else "text"
    if modality == "image":
        ET.SubElement(view, "Image", name="image", value="$image", zoom="true")
        controls = [("RectangleLabels", "label")]
        if shapes == "polygons":
            controls.append(("PolygonLabels", "polygon"))
        for tag, name in controls:
            control = ET.SubElement(view, tag, name=name, toName="image")
            for label in labels:
                ET.SubElement(control, "Label", value=label)
    else:
        control = ET.SubElement(view, "Labels", name="label", toName="text")
        for label in labels:
            ET.SubElement(control, "Label", value=label)
        ET.SubElement(view, "Text", name="text", value="$text")
    ET.SubElement(view, "Header", value="Verdict (fix: correct the regions above)")
    verdict = ET.SubElement(
        view, "Choices", name="verdict", toName=target, choice="single", required="true"
    )
    for value in VERDICTS:
        ET.SubElement(verdict, "Choice", value=value)
    for criterion in criteria:
        ET.SubElement(view, "Header", value=f"{criterion} (5 gold, 3 acceptable, 1 re-annotate)")
        levels = ET.SubElement(
            view, "Choices", name=criterion, toName=target, choice="single", showInline="true"
        )
        for value in LEVELS:
            ET.SubElement(levels, "Choice", value=value)
    ET.SubElement(view, "TextArea", name="comment", toName=target, maxSubmissions="1")
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def _rectangle(obj: ObjectLabel, region_id: str, width: int, height: int) -> dict[str, Any]:
    x, y, w, h = obj.bbox
    return {
        "id": region_id,
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "x": 100.0 * x / width,
            "y": 100.0 * y / height,
            "width": 100.0 * w / width,
            "height": 100.0 * h / height,
            "rotation": 0,
            "rectanglelabels": [obj.category],
        },
    }


def pixel_outline(mask: np.ndarray) -> np.ndarray | None:
    """The outline of a mask's largest part along its pixels' outer edges, as (x, y) corners:
    the polygon pycocotools rasterises back to exactly that part, holes filled (a contour
    through the edge pixels' centres, as cv2.findContours gives, loses half a pixel all round:
    113 px became 96). None if the mask is empty.

    Traced on the mask doubled in size, where an edge pixel's column u lies on the left edge of
    its pixel (even u, at x = u / 2) or on the right edge (odd u, at x = (u + 1) / 2); rows
    alike."""
    import cv2

    doubled = np.repeat(np.repeat(mask.astype(np.uint8), 2, axis=0), 2, axis=1)
    contours, _ = cv2.findContours(doubled, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    points: np.ndarray = max(contours, key=cv2.contourArea).reshape(-1, 2)
    return (points + points % 2) / 2


def _polygon(obj: ObjectLabel, region_id: str, width: int, height: int) -> dict[str, Any] | None:
    """The outline of the mask's largest part (`pixel_outline`), in percent; None if the mask
    is empty."""
    outline = pixel_outline(decode_mask(obj.mask))  # type: ignore[arg-type]
    if outline is None:
        return None
    return {
        "id": region_id,
        "from_name": "polygon",
        "to_name": "image",
        "type": "polygonlabels",
        "original_width": width,
        "original_height": height,
        "image_rotation": 0,
        "value": {
            "points": [
                [100.0 * float(px) / width, 100.0 * float(py) / height] for px, py in outline
            ],
            "closed": True,
            "polygonlabels": [obj.category],
        },
    }


def _span(span: Span, region_id: str, text: str) -> dict[str, Any]:
    return {
        "id": region_id,
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "value": {
            "start": span.start,
            "end": span.end,
            "text": text[span.start : span.end],
            "labels": [span.label],
        },
    }


def sample_regions(
    sample: Sample,
    *,
    objects: list[ObjectLabel] | None = None,
    spans: list[Span] | None = None,
    shapes: Shapes = "rectangles",
) -> list[dict[str, Any]]:
    """Regions of a sample's labels (ids `o<i>` / `s<i>`), or of corrected labels passed in
    (ids `fo<i>` / `fs<i>`: they do not stand for an original label)."""
    prefix = "f" if objects is not None or spans is not None else ""
    if sample.spec.modality == "image":
        if not sample.width or not sample.height:
            raise InputError(f"sample {sample.id}: width and height are needed for Label Studio")
        regions = []
        for index, obj in enumerate(sample.objects if objects is None else objects):
            region_id, region = f"{prefix}o{index}", None
            if shapes == "polygons" and obj.mask is not None:
                region = _polygon(obj, region_id, sample.width, sample.height)
            regions.append(region or _rectangle(obj, region_id, sample.width, sample.height))
        return regions
    text = sample.text or ""
    return [
        _span(span, f"{prefix}s{index}", text)
        for index, span in enumerate(sample.spans if spans is None else spans)
    ]


def decision_result(
    decision: Decision, shown: Sample, *, shapes: Shapes = "rectangles"
) -> list[dict[str, Any]]:
    """A decision as a Label Studio annotation result: regions, verdict, levels, comment."""
    target = "image" if shown.spec.modality == "image" else "text"
    result = sample_regions(shown, objects=decision.objects, spans=decision.spans, shapes=shapes)
    result.append(_choice("verdict", target, decision.verdict))
    for criterion, level in decision.levels.items():
        result.append(_choice(criterion, target, str(level)))
    if decision.comment:
        result.append(
            {
                "id": "comment",
                "from_name": "comment",
                "to_name": target,
                "type": "textarea",
                "value": {"text": [decision.comment]},
            }
        )
    return result


def _choice(name: str, target: str, value: str) -> dict[str, Any]:
    return {
        "id": name,
        "from_name": name,
        "to_name": target,
        "type": "choices",
        "value": {"choices": [value]},
    }


def result_decision(result: list[dict[str, Any]], shown: Sample, *, where: str) -> Decision:
    """An annotation result read back as a Decision; `where` names the task for errors."""
    try:
        return _result_decision(result, shown, where)
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        # a hand-edited or foreign export: say where, not a traceback (OverflowError: a
        # coordinate given as an integer too large for any float)
        raise InputError(
            f"{where}: malformed annotation result ({type(error).__name__}: {error})"
        ) from None


def _result_decision(result: list[dict[str, Any]], shown: Sample, where: str) -> Decision:
    if not isinstance(result, list):
        raise InputError(f"{where}: result must be a list of regions (got {quoted(result)})")
    verdict, levels, comment, regions = None, {}, "", []
    for index, region in enumerate(result):
        _check_region(region, f"{where}: result[{index}]")
        kind, value = region.get("type"), region.get("value") or {}
        name = region.get("from_name")
        if kind == "choices" and name == "verdict":
            verdict = _single(value.get("choices"), where, "verdict")
        elif kind == "choices":
            level = _single(value.get("choices"), where, str(name))
            if level not in LEVELS:
                raise InputError(f"{where}: level {level!r} for {name!r}; use one of 5, 3, 1")
            levels[name] = int(level)
        elif kind == "textarea":
            comment = "\n".join(value.get("text") or [])
        elif kind in ("rectanglelabels", "polygonlabels", "labels"):
            regions.append(region)
    if verdict is None:
        raise InputError(f"{where}: no verdict chosen (one of {', '.join(VERDICTS)})")
    if verdict not in VERDICTS:
        raise InputError(
            f"{where}: verdict {quoted(verdict)} is not one of {', '.join(VERDICTS)} (the "
            "choices of the labeling config synthgate exported); choose one of them"
        )
    fields: dict[str, Any] = {"verdict": verdict, "levels": levels, "comment": comment}
    if verdict == "fix":
        if shown.spec.modality == "image":
            fields["objects"] = [_object_of(r, shown, where) for r in regions]
        else:
            fields["spans"] = [_span_of(r, shown, where) for r in regions]
    try:
        return Decision.model_validate(fields)
    except ValueError as error:
        raise InputError(f"{where}: not a valid decision ({error})") from None


def _check_region(region: Any, where: str) -> None:
    """A result entry is an object; its `type` and `from_name` are strings and its `value` an
    object, where given (a relation between regions has neither from_name nor value). Checked
    for every entry, read or not: `canonical` compares them all with a recorded decision."""
    if not isinstance(region, dict):
        raise InputError(f"{where} must be an object (got {quoted(region)})")
    for key in ("type", "from_name"):
        if region.get(key) is not None and not isinstance(region[key], str):
            raise InputError(f"{where}.{key} must be a string (got {quoted(region[key])})")
    value = region.get("value")
    if value is not None and not isinstance(value, dict):
        raise InputError(f"{where}.value must be an object (got {quoted(value)})")


def _single(values: Any, where: str, name: str) -> str:
    if not isinstance(values, list) or len(values) != 1:
        raise InputError(f"{where}: choose exactly one value for {name!r} (got {values!r})")
    return str(values[0])


def _object_of(region: dict[str, Any], shown: Sample, where: str) -> ObjectLabel:
    """A region as an object; one left as exported keeps the original object whole."""
    width, height = shown.width or 0, shown.height or 0
    original = _original(region, shown.objects, "o")
    value = region["value"]
    labels = value.get("rectanglelabels") or value.get("polygonlabels") or []
    category = _single(labels, where, "region label")
    if region["type"] == "polygonlabels":
        if original is not None and _same(region, _polygon(original, region["id"], width, height)):
            return original
        return _object_from_polygon(value["points"], category, width, height)
    bbox = [
        value["x"] * width / 100.0,
        value["y"] * height / 100.0,
        value["width"] * width / 100.0,
        value["height"] * height / 100.0,
    ]
    if original is not None and _same(region, _rectangle(original, region["id"], width, height)):
        return original.model_copy(update={"category": category})
    # a moved box no longer matches the old mask, so the mask is not carried over
    return ObjectLabel(category=category, bbox=bbox, area=bbox[2] * bbox[3])


def _object_from_polygon(
    points: list[list[float]], category: str, width: int, height: int
) -> ObjectLabel:
    from pycocotools import mask as mask_utils

    if len(points) < 3:
        raise ValueError(f"a polygon needs at least 3 points (got {len(points)})")
    flat = [c for x, y in points for c in (x * width / 100.0, y * height / 100.0)]
    rle = segmentation_to_rle([flat], height, width)
    return ObjectLabel(
        category=category,
        bbox=[float(v) for v in mask_utils.toBbox(rle)],
        mask=rle,
        area=float(mask_utils.area(rle)),
    )


def _span_of(region: dict[str, Any], shown: Sample, where: str) -> Span:
    value = region["value"]
    label = _single(value.get("labels"), where, "span label")
    start, end = _offset(value, "start", where), _offset(value, "end", where)
    original = _original(region, shown.spans, "s")
    if original is not None and (original.start, original.end) == (start, end):
        return original.model_copy(update={"label": label})
    return Span(start=start, end=end, label=label, value=(shown.text or "")[start:end])


def _offset(value: dict[str, Any], key: str, where: str) -> int:
    """A span's character offset: a whole number (Label Studio writes ints; 4.0 reads as 4)."""
    offset = value[key]
    if isinstance(offset, float) and offset.is_integer():
        offset = int(offset)
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise InputError(
            f"{where}: span value.{key} must be a character offset, a whole number "
            f"(got {quoted(offset)})"
        )
    return offset


def _original(region: dict[str, Any], labels: list[Any], prefix: str) -> Any:
    """The label an exported region id (`prefix` + its index) names, or None."""
    region_id = str(region.get("id", ""))
    index = region_id[len(prefix) :] if region_id.startswith(prefix) else ""
    # only an index as we write it: ASCII digits without a leading zero ("o01", "o１", "o²" are
    # not ours), no longer than an index of these labels can be
    if (
        index.isascii()
        and index.isdigit()
        and (index == "0" or not index.startswith("0"))
        and len(index) <= len(str(len(labels)))
        and int(index) < len(labels)
    ):
        return labels[int(index)]
    return None


def _same(region: dict[str, Any], exported: dict[str, Any] | None) -> bool:
    """The region's geometry equals what was exported (labels may differ)."""
    if exported is None:
        return False
    got, want = region["value"], exported["value"]
    if "points" in want:
        return len(got.get("points", [])) == len(want["points"]) and all(
            _close(a, b)
            for p, q in zip(got["points"], want["points"], strict=True)
            for a, b in zip(p, q, strict=True)
        )
    return all(_close(got.get(k, math.nan), want[k]) for k in ("x", "y", "width", "height"))


def _close(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= TOLERANCE


def canonical(result: list[dict[str, Any]]) -> list[tuple]:
    """A result reduced to what a decision means, floats rounded: to compare two results.

    Any result `result_decision` reads: an entry may lack from_name (a relation does) and hold
    values of any kind, so each part is compared as its repr (None and strings do not sort)."""
    out = []
    for region in result:
        value = region.get("value") or {}
        items = []
        for key, v in sorted(value.items()):
            if isinstance(v, float):
                v = round(v, 6)
            elif key == "points" and isinstance(v, list):
                v = [[_rounded(c) for c in p] if isinstance(p, list) else p for p in v]
            items.append((key, repr(v)))
        out.append((repr(region.get("from_name")), repr(region.get("type")), tuple(items)))
    return sorted(out)


def _rounded(coordinate: Any) -> Any:
    """A polygon coordinate rounded to 6 places as a float (Label Studio may write 10 for
    10.0); anything else, an integer too large for a float too, as it is."""
    if isinstance(coordinate, bool) or not isinstance(coordinate, int | float):
        return coordinate
    try:
        return round(float(coordinate), 6)
    except OverflowError:
        return coordinate
