"""report.md and report.html for a balance output folder, with the figures of plots.py.

`write_report(folder, summary, run_dirs=[...])` reads what the runs made (statuses, rubric
reports, example images) from their run folders, draws the figures into `folder/plots/` and
writes the same content twice: Markdown for repositories and HTML for a browser. Every number
comes from `summary` (balance.json) or the run folders; nothing is recomputed differently here.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

from synthgate.errors import counted
from synthgate.formats.jsonl import read_jsonl
from synthgate.reports import plots

MAX_EXAMPLES = 4  # per status in the example grid


def _run_samples(run_dirs: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(image entries with their boxes, text rows) of every run, with the run folder."""
    images, rows = [], []
    for run_dir in run_dirs:
        coco_path = run_dir / "coco.json"
        if coco_path.is_file():
            coco = json.loads(coco_path.read_text(encoding="utf-8"))
            names = {c["id"]: c["name"] for c in coco["categories"]}
            boxes: dict[int, list[tuple[list[float], str]]] = {}
            real: dict[int, Counter[str]] = {}  # the background's own objects (copy_paste)
            for annotation in coco["annotations"]:
                pasted = (annotation.get("synthgate") or {}).get("pasted", True)
                label = names[annotation["category_id"]] + ("" if pasted else " (real)")
                boxes.setdefault(annotation["image_id"], []).append((annotation["bbox"], label))
                if not pasted and not annotation.get("iscrowd", 0):
                    name = names[annotation["category_id"]]
                    real.setdefault(annotation["image_id"], Counter())[name] += 1
            for image in coco["images"]:
                block = image["synthgate"]
                images.append(
                    {
                        "path": run_dir / image["file_name"],
                        "size": (image.get("width"), image.get("height")),
                        "boxes": boxes.get(image["id"], []),
                        "status": block["status"],
                        "report": block.get("report"),
                        "caption": f"{block.get('category')} ({block.get('generator')})",
                        "real": real.get(image["id"], Counter()),
                    }
                )
        text_path = run_dir / "text.jsonl"
        if text_path.is_file():
            rows += read_jsonl(text_path)
    return images, rows


def _examples(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    accepted = [i for i in images if i["status"] == "accepted"][:MAX_EXAMPLES]
    others = [i for i in images if i["status"] != "accepted"][:MAX_EXAMPLES]
    return accepted + others


def _over_by_backgrounds(
    summary: dict[str, Any], background: Counter[str]
) -> dict[str, tuple[int, int]]:
    """Per class that ends over its target and gained real objects of the backgrounds the new
    instances were pasted on: (how far over, how many of those objects it gained). A class
    over its target before the balance is not among them: the backgrounds did not put it
    there (`_over_before`)."""
    return {
        name: (entry["after"] - entry["target"], background[name])
        for name, entry in summary["classes"].items()
        if entry["after"] > entry["target"] >= entry["before"]
        and background[name] > 0
        and entry["filled"] > 0
    }


def _over_before(summary: dict[str, Any], background: Counter[str]) -> dict[str, int]:
    """Per class over its target before the balance that gained real objects of backgrounds:
    how many it gained."""
    return {
        name: background[name]
        for name, entry in summary["classes"].items()
        if entry["before"] > entry["target"] and background[name] > 0 and entry["filled"] > 0
    }


def _class_rows(summary: dict[str, Any], background: Counter[str]) -> list[list[str]]:
    rows = []
    over = _over_by_backgrounds(summary, background)
    over_before = _over_before(summary, background)
    for name, entry in summary["classes"].items():
        if entry["deficit"] == 0 and entry["filled"] == 0:
            continue
        reached = "yes" if entry["after"] >= entry["target"] else f"no: {entry.get('why_not', '')}"
        if name in over:
            past, brought = over[name]
            reached = f"yes, {past} over: {brought} real objects of backgrounds"
        elif name in over_before:
            brought = over_before[name]
            reached = f"yes, over before the balance; {brought} real objects of backgrounds"
        rows.append(
            [
                name,
                str(entry["before"]),
                str(entry["target"]),
                str(entry["deficit"]),
                str(entry["filled"]),
                str(entry["after"]),
                reached,
            ]
        )
    return rows


def _sections(
    summary: dict[str, Any],
    figures: dict[str, str],
    images: list[dict[str, Any]],
    text_rows: list[dict[str, Any]],
) -> list[tuple[str, Any]]:
    """The report as (kind, content) blocks: ('h', title), ('p', text), ('table', (head, rows)), ('img', (path, alt))."""
    added = summary["added"]
    blocks: list[tuple[str, Any]] = [
        ("h", "Balance report"),
        ("p", f"Source: {summary['source']} — target strategy: {summary['target']}."),
        (
            "p",
            f"Merged {counted(added['images'], 'synthetic image')} with "
            f"{counted(added['annotations'], 'annotation')} and "
            f"{counted(added['rows'], 'text row')}. "
            f"Waiting for review (not merged): {len(summary['waiting_for_review'])}. "
            "Left out by status: "
            + (", ".join(f"{k} {len(v)}" for k, v in summary["left_out"].items()) or "none")
            + ".",
        ),
    ]
    skipped = summary["skipped_input"]
    if skipped:
        blocks.append(
            (
                "p",
                f"{counted(len(skipped), 'input entry was', 'input entries were')} "
                "skipped (--skip-invalid):",
            )
        )
        blocks.append(("list", summary["skipped_input"]))
    blocks += [
        ("h2", "Classes before and after"),
        ("img", (figures["histogram"], "class histogram before/after, log scale")),
    ]
    blocks += [
        ("h2", "Deficits and how much was filled"),
        ("img", (figures["deficit"], "deficit and filled per class")),
    ]
    background: Counter[str] = Counter()
    for image in images:
        if image["status"] == "accepted":  # what was merged
            background.update(image["real"])
    rows = _class_rows(summary, background)
    blocks.append(
        ("table", (["class", "before", "target", "deficit", "filled", "after", "reached"], rows))
        if rows
        else ("p", "No class was below its target.")
    )
    over = _over_by_backgrounds(summary, background)
    if over:
        blocks.append(
            (
                "p",
                f"{counted(len(over), 'class ends over its', 'classes end over their')} target "
                "because of the real objects of the backgrounds the new instances were pasted "
                "on (copy-paste keeps every label of its background, and reuses backgrounds "
                "where none holds only classes below their target):",
            )
        )
        blocks.append(
            (
                "list",
                [
                    f"{name}: {past} over its target of {summary['classes'][name]['target']}; "
                    f"its backgrounds brought {brought}"
                    for name, (past, brought) in over.items()
                ],
            )
        )
    blocks += [
        ("h2", "Rubric outcomes"),
        ("img", (figures["rubric"], "rubric levels by criterion and routes")),
    ]
    if "examples" in figures:
        statuses = Counter(i["status"] for i in images)
        if not statuses or set(statuses) == {"accepted"}:
            blocks.append(
                (
                    "p",
                    "No synthetic image was rejected or sent to review; the grid shows accepted ones only.",
                )
            )
        blocks += [
            ("h2", "Examples (green: accepted, red: rejected or in review)"),
            ("img", (figures["examples"], "example synthetic images with boxes")),
        ]
    if "attributes" in figures:
        blocks += [
            ("h2", "Attribute balance"),
            ("img", (figures["attributes"], "attribute groups before/after")),
        ]
        gaps = []
        for axis, pair in summary.get("bias", {}).items():
            for when in ("before", "after"):
                gap = pair[when]["largest_gap"]
                gaps.append(
                    [axis, when, str(gap["label"]), " vs ".join(gap["groups"]), f"{gap['gap']:.3f}"]
                )
        blocks.append(("table", (["attribute", "when", "label", "groups", "largest gap"], gaps)))
        notes = [pair["note"] for pair in summary.get("bias", {}).values() if pair.get("note")]
        if notes:  # balance_text: how the gap moved, and what the added rows carry
            blocks.append(("list", notes))
    if summary.get("text", {}).get("notes"):  # balance_text: what each strategy could fill
        blocks += [("h2", "How the text classes were filled"), ("list", summary["text"]["notes"])]
    if text_rows:
        examples = [[r["status"], str(r["label"]), r["text"][:160]] for r in text_rows[:6]]
        blocks += [
            ("h2", "Example synthetic rows"),
            ("table", (["status", "label", "text"], examples)),
        ]
    if summary["waiting_for_review"]:
        blocks += [("h2", "Waiting for review"), ("list", summary["waiting_for_review"])]
    return blocks


def _text(value: Any) -> str:
    """Text for Markdown, where raw HTML is rendered: a class name such as `<img src=x
    onerror=...>` (the real dataset's, passed through as it is) is shown, not run, as
    report.html shows it. No tag opens without a `<`: it alone is written as `&lt;`, which
    renders as the character (`->` and `&` stay readable in the file)."""
    return str(value).replace("<", "&lt;")


def _markdown(blocks: list[tuple[str, Any]]) -> str:
    out = []
    for kind, content in blocks:
        if kind == "h":
            out.append(f"# {_text(content)}\n")
        elif kind == "h2":
            out.append(f"## {_text(content)}\n")
        elif kind == "p":
            out.append(f"{_text(content)}\n")
        elif kind == "list":
            out.append("\n".join(f"- {_text(item)}" for item in content) + "\n")
        elif kind == "img":
            out.append(f"![{_text(content[1])}]({content[0]})\n")
        elif kind == "table":
            head, rows = content
            cells = [head, ["---"] * len(head), *rows]
            out.append(
                "\n".join(
                    "| " + " | ".join(_text(c).replace("|", "\\|") for c in row) + " |"
                    for row in cells
                )
                + "\n"
            )
    return "\n".join(out)


def _html(blocks: list[tuple[str, Any]]) -> str:
    body = []
    for kind, content in blocks:
        if kind == "h":
            body.append(f"<h1>{html.escape(content)}</h1>")
        elif kind == "h2":
            body.append(f"<h2>{html.escape(content)}</h2>")
        elif kind == "p":
            body.append(f"<p>{html.escape(content)}</p>")
        elif kind == "list":
            body.append(
                "<ul>" + "".join(f"<li>{html.escape(str(i))}</li>" for i in content) + "</ul>"
            )
        elif kind == "img":
            body.append(f'<img src="{html.escape(content[0])}" alt="{html.escape(content[1])}">')
        elif kind == "table":
            head, rows = content
            header = "".join(f"<th>{html.escape(h)}</th>" for h in head)
            lines = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in rows
            )
            body.append(f"<table><thead><tr>{header}</tr></thead><tbody>{lines}</tbody></table>")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse;font-size:.85rem}"
        "td,th{border:1px solid #ccc;padding:.2rem .5rem;text-align:left}"
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>synthgate balance report</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def write_report(folder: Path, summary: dict[str, Any], *, run_dirs: list[Path]) -> dict[str, Path]:
    """Draw the figures and write report.md and report.html into `folder`; returns the paths."""
    images, text_rows = _run_samples(run_dirs)
    plot_dir = folder / "plots"
    figures = {
        "histogram": plots.class_histogram(summary["classes"], plot_dir / "class_histogram.svg"),
        "deficit": plots.deficit_filled(summary["classes"], plot_dir / "deficit_filled.svg"),
        "rubric": plots.rubric_outcomes(
            [i["report"] for i in images] + [r.get("report") for r in text_rows],
            [i["status"] for i in images] + [r["status"] for r in text_rows],
            plot_dir / "rubric_outcomes.svg",
        ),
    }
    if summary["kind"] == "coco":
        figures["examples"] = plots.example_grid(_examples(images), plot_dir / "examples.png")
    if summary.get("bias"):
        figures["attributes"] = plots.attribute_balance(
            summary["bias"], plot_dir / "attribute_balance.svg"
        )
    relative = {key: path.relative_to(folder).as_posix() for key, path in figures.items()}
    blocks = _sections(summary, relative, images, text_rows)
    paths = {"md": folder / "report.md", "html": folder / "report.html"}
    paths["md"].write_text(_markdown(blocks), encoding="utf-8")
    paths["html"].write_text(_html(blocks), encoding="utf-8")
    return {**paths, **figures}
