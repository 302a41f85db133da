"""`synthgate balance`: plan -> generate -> validate -> route -> merge -> report, in one folder.

`balance(...)` (here) and `balance_text(...)` (balance_text.py) check the real dataset,
count it, plan the deficit as `SampleSpec`s (workflows/quotas.py), run them through the same
pipeline as `synthgate run` (`runner.run_batch` with the precomputed plan, one run folder per
generator), merge what was accepted into a copy of the real data (workflows/merge.py) and write
the report (reports/). The helpers below are shared with balance_text.py.
Samples waiting for review are kept out of the merge and listed in balance.json. The output
folder is built under a temporary name and renamed when complete: nothing is half-written.

```
<out>/
  merged.coco.json | merged.jsonl    the real data + accepted synthetic samples
  images/                            COCO: hard links (else copies) of the real images (their
                                     paths kept) and of the accepted synthetic ones; every
                                     file_name in merged.coco.json is relative to <out>
  balance.json                       counts before/after, targets, deficits, filled, why not
  runs/<name>/                       the pipeline run folder of each generator
  report.md  report.html  plots/
```
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from synthgate.arguments import callback, optional_path, path_argument, switch
from synthgate.class_names import class_name_warning
from synthgate.config import BatchConfig, CopyPasteImageConfig, parse_config
from synthgate.errors import InputError, counted, quoted
from synthgate.files import dumps, not_a_folder, write_json_atomic
from synthgate.foreign_files import BALANCE_MARKER
from synthgate.formats.coco import refuse_non_finite
from synthgate.formats.coco_checks import (
    check_coco,
    class_name_problems,
    describe_problems,
    refuse_if_no_image_is_there,
)
from synthgate.formats.coco_reader import read_coco_streaming
from synthgate.formats.jsonl import read_jsonl
from synthgate.generators import Generator, build_generator
from synthgate.generators.copy_paste import source_categories
from synthgate.outputs import (
    building_out,
    check_out,
    refuse_out_holding,
    refuse_out_inside_images,
)
from synthgate.pipeline import Progress, batch_id_for, fields_placed, naming_config
from synthgate.runner import run_batch
from synthgate.samples import Modality, SampleSpec
from synthgate.validators.sources import TEXT_SUFFIXES
from synthgate.validators.validate import check_config_rubrics
from synthgate.workflows.merge import (
    MergeResult,
    dataset_folder_images,
    merge_run_coco,
    place_dataset_images,
)
from synthgate.workflows.quotas import (
    AttributeGoal,
    BalanceConfig,
    ClassCount,
    Target,
    attribute_shares,
    balance_target,
    check_classes,
    class_counts,
    class_targets,
    deficits,
    load_balance_config,
    plan_specs,
    split_deficits,
    target_named,
    unplanned_reasons,
)


@dataclass
class BalanceResult:
    """A balance output folder: where it is, and `summary` (balance.json: counts per class
    before and after, targets, deficits, what was filled and why not, runs, samples waiting
    for review); with `dry_run`, `summary` is the plan and nothing was written."""

    out: Path
    summary: dict[str, Any]
    dry_run: bool = False

    def __repr__(self) -> str:  # not the dataclass's: `summary` holds every class
        classes = self.summary.get("classes", {})
        short = sum(1 for entry in classes.values() if "why_not" in entry)
        # a dry run filled nothing: it shows what it plans (below_target: what the plan leaves)
        made = (
            f"dry_run=True, planned={sum(entry.get('planned', 0) for entry in classes.values())}"
            if self.dry_run
            else f"filled={sum(entry.get('filled', 0) for entry in classes.values())}"
        )
        return (
            f"BalanceResult(out={str(self.out)!r}, kind={self.summary.get('kind')!r}, "
            f"target={self.summary.get('target')!r}, classes={len(classes)}, "
            f"{made}, below_target={short})"
        )

    def __fspath__(self) -> str:
        """The output folder, so that a result goes where a path does: `sg.export(balanced, ...)`."""
        return str(self.out)

    @property
    def merged(self) -> Path | None:
        """The merged file: the real data plus the accepted synthetic samples; None for a dry
        run, which writes none (its path would name a file that is not there)."""
        if self.dry_run:
            return None
        return self.out / ("merged.coco.json" if self.summary["kind"] == "coco" else "merged.jsonl")


def generator_sections(
    value: dict[str, Any] | list[dict[str, Any]] | None, default: dict[str, Any]
) -> list[dict[str, Any]]:
    """The generator sections of a balance config (one mapping, or a list to mix them)."""
    if value is None:
        return [dict(default)]
    return [dict(v) for v in (value if isinstance(value, list) else [value])]


class OutGuard(TypedDict):
    """What outputs.py's guards are told of an output: its marker, name and databases."""

    marker: str
    what: str
    databases: str


# The balance output's marker and databases: a folder holding reviewed runs is never replaced.
BALANCE_OUT: OutGuard = {
    "marker": BALANCE_MARKER,
    "what": "balance output",
    "databases": "runs/*/synthgate.db",
}


def _count_table(before: dict[str, ClassCount], after: dict[str, ClassCount]) -> dict[str, Any]:
    return {
        name: {
            "before": before[name].instances,
            "after": after.get(name, ClassCount(0, 0)).instances,
        }
        for name in before
    }


def sections_source(config: object, config_path: Path | None, data: Path) -> Path:
    """What the generator sections' errors name, and the folder their relative paths are read
    from (a file's): the config file; `<config>` for a config given as a mapping (its paths
    are read from the working directory), not the data file, where the key is not; the data
    file when there is no config (its sections are the defaults)."""
    if config_path is not None:
        return config_path
    return Path("<config>") if isinstance(config, Mapping) else data


def section_config(
    section: dict[str, Any],
    *,
    count: int,
    modality: Modality,
    balance: BalanceConfig,
    source: Path,
    categories: list[str],
    name: str,
) -> BatchConfig:
    """The batch config of one generator section asked for `count` samples: the balance config's
    seed and rubric (unless the section names its own), paths relative to the config file."""
    body = section_body(section, count=count, balance=balance)
    data = {"name": name, "seed": balance.seed, "categories": categories, modality: body}
    return parse_config(data, source=source, config_dir=source.parent if source.is_file() else None)


def section_body(section: dict[str, Any], *, count: int, balance: BalanceConfig) -> dict[str, Any]:
    """A generator section as its batch config holds it: asked for `count` samples, with the
    balance config's rubric unless it names its own."""
    body: dict[str, Any] = {**section, "count": count}
    if balance.rubric is not None:
        body.setdefault("rubric", balance.rubric)
    return body


def check_sections(
    sections: list[dict[str, Any]],
    *,
    modality: Modality,
    default: str,
    balance: BalanceConfig,
    source: Path,
    categories: list[str],
    written: list[dict[str, Any]] | None = None,
) -> None:
    """Parse every generator section as its run will, before any value of one is used (the
    plan reads some: copy_paste's min_source_area, instances_per_image, text locales), and load
    the rubrics they name, so a bad value is an InputError naming the field, not a crash:
    `image[1].min_visible_fraction` in a list of sections. A section refused as a whole is
    quoted as `written` (the sections before the caller filled in keys of its own; default:
    `sections`), not with the count and rubric checked with it, which the config never wrote."""
    for turn, section in enumerate(sections):
        checked = {**section, "generator": section.get("generator", default)}
        with _section_placed(source, modality, section_place(balance, modality, turn)):
            try:
                config = section_config(
                    checked,
                    count=1,
                    modality=modality,
                    balance=balance,
                    source=source,
                    categories=categories or ["unnamed"],
                    name=f"{balance.name}-{turn}",
                )
            except InputError as error:
                body = quoted(section_body(checked, count=1, balance=balance))
                given = quoted((written or sections)[turn])
                raise InputError(str(error).replace(f"(got {body})", f"(got {given})")) from None
            # the rubric too, before anything is made: a name that is no rubric was refused
            # without the config named, after the first section's run, or not at all when
            # nothing was made
            check_config_rubrics(config, source=source)


def section_place(balance: BalanceConfig, modality: str, turn: int) -> str:
    """Where generator section `turn` is in the balance config, as its errors name it:
    `image[1]` in a list of sections, else the modality (one section, or the default)."""
    return f"{modality}[{turn}]" if isinstance(getattr(balance, modality), list) else modality


@contextmanager
def _section_placed(source: Path, modality: str, place: str) -> Iterator[None]:
    """A refusal of a generator section, which its config (a batch config of that one section)
    names as `image.field` or `image`, raised again naming the section's `place` in the balance
    config (`image[1].field`, `image[1]: ...`, `unknown key 'image[1].objets'`) on every line
    that names one, as the section's fields it names in the rest of the line (`fields_placed`)."""
    try:
        yield
    except InputError as error:
        lines = str(error).split("\n")
        placed = [fields_placed(line, modality, place) for line in lines]
        # a line about a field starts with its key, one about the section with the section's;
        # one about an unknown key quotes it
        for said, after in (("", "."), ("", ": "), ("unknown key '", ".")):
            written = f"{source}: {said}{modality}{after}"
            placed = [
                f"{source}: {said}{place}{after}{line.removeprefix(written)}"
                if line.startswith(written)
                else line
                for line in placed
            ]
        if placed == lines:
            raise
        raise InputError("\n".join(placed)) from None


def section_seed(seed: int, turn: int) -> int:
    """The batch seed of generator section `turn` of a balance seeded `seed`: `seed` itself for
    the first (a balance of one section is seeded as before), one drawn from both for the rest."""
    if turn == 0:
        return seed
    return int(np.random.SeedSequence([seed, turn]).generate_state(1)[0])


@dataclass
class SectionPlan:
    """What one generator section of a balance makes: its specs, before the run's batch id."""

    turn: int
    section: dict[str, Any]
    generator: str
    balance: BalanceConfig  # the balance config, seeded for this section
    specs: list[SampleSpec]


def plan_sections(
    *,
    modality: Modality,
    sections: list[dict[str, Any]],
    parts: list[dict[str, int]],
    balance: BalanceConfig,
    shares: dict[str, dict[str, float]],
    existing: dict[str, dict[str, Counter[str]]],
    attribute_goal: AttributeGoal = "shares",
    limits: list[dict[str, dict[str, dict[str, int]]] | None] | None = None,
) -> list[SectionPlan]:
    """The samples each generator section makes, `parts[i]` the deficits section i fills
    (attribute values planned toward `attribute_goal`, `limits[i]` what section i can make of
    each value per class: see `plan_specs`). A section with nothing to make is left out."""
    planned = []
    existing = {label: {a: Counter(c) for a, c in axes.items()} for label, axes in existing.items()}
    for turn, (section, part) in enumerate(zip(sections, parts, strict=True)):
        # Each section its own seed: on the balance's seed alone, two sections of one generator
        # made the same sample for a class at the same index, and merged it twice.
        seeded = balance.model_copy(update={"seed": section_seed(balance.seed, turn)})
        generator_name = str(
            section.get("generator", "copy_paste" if modality == "image" else "counterfactual")
        )
        # Copy-paste pastes up to instances_per_image instances of a sample's class; the other
        # image generators draw one object of it (the rest of their objects are of any class).
        per_sample = 1
        if generator_name == "copy_paste":
            per_sample = int((section.get("instances_per_image") or [1, 3])[1])
        draft = plan_specs(
            part,
            batch_id="draft",
            seed=seeded.seed,
            modality=modality,
            generator=generator_name,
            instances_per_sample=per_sample,
            shares=shares,
            existing=existing,
            attribute_goal=attribute_goal,
            limits=None if limits is None else limits[turn],
        )
        if not draft:
            continue
        if attribute_goal == "label_parity":  # the next section's plan counts this one's rows
            for spec in draft:
                for axis, value in spec.attributes.items():
                    existing.setdefault(str(spec.category), {}).setdefault(axis, Counter())[
                        value
                    ] += 1
        planned.append(SectionPlan(turn, section, generator_name, seeded, draft))
    return planned


def run_sections(
    *,
    modality: Modality,
    sections: list[dict[str, Any]],
    parts: list[dict[str, int]],
    balance: BalanceConfig,
    source: Path,
    categories: list[str],
    runs_dir: Path,
    build: Callable[[Any], Generator],
    shares: dict[str, dict[str, float]],
    existing: dict[str, dict[str, Counter[str]]],
    progress: Progress | None,
    reference_progress: Callable[[int, int], None] | None = None,
    attribute_goal: AttributeGoal = "shares",
    limits: list[dict[str, dict[str, dict[str, int]]] | None] | None = None,
    planned: list[SectionPlan] | None = None,
    place: str | None = None,
) -> list[tuple[Path, BatchConfig]]:
    """One pipeline run per generator section, `parts[i]` the deficits section i fills
    (attribute values planned toward `attribute_goal`, `limits[i]` what section i can make of
    each value per class: see `plan_specs`), or the sections' plans `planned` already made
    (`plan_sections` of the same arguments). `place`: the config's section that a section's
    errors name, where `sections` are not the config's own (a text balance's fallback, made
    from one); else each is named by its place in the config (`section_place`)."""
    if planned is None:
        planned = plan_sections(
            modality=modality,
            sections=sections,
            parts=parts,
            balance=balance,
            shares=shares,
            existing=existing,
            attribute_goal=attribute_goal,
            limits=limits,
        )
    done = []
    for plan in planned:
        config = section_config(
            {**plan.section, "generator": plan.generator},
            count=len(plan.specs),
            modality=modality,
            balance=plan.balance,
            source=source,
            categories=categories,
            name=f"{balance.name}-{plan.turn}-{plan.generator}",
        )
        name = config.name
        batch_id = batch_id_for(config)
        specs = [s.model_copy(update={"batch_id": batch_id}) for s in plan.specs]
        # A field of the section refused once its generator is built or runs (a model folder,
        # a background image) names the balance config and the section, as `run` names its own.
        named = place or section_place(balance, modality, plan.turn)
        with naming_config(source, modality, section=named):
            generator = build(getattr(config, modality))
            assign_sources = getattr(generator, "assign_sources", None)
            if assign_sources is not None:  # what each spec draws from, over the whole plan
                specs = assign_sources(specs)
            run_dir = runs_dir / name
            run_batch(
                config,
                run_dir,
                progress=progress,
                reference_progress=reference_progress,
                plans={modality: specs},
                generators={modality: generator},
            )
        done.append((run_dir, config))
    return done


def _image_parts(
    sections: list[dict[str, Any]],
    lacking: dict[str, int],
    data: dict[str, Any],
    why_not: dict[str, str],
) -> list[dict[str, int]]:
    """Each image section's share of the deficits.

    Copy-paste can only raise classes it has an instance to cut out of (a mask of at least its
    section's `min_source_area`): a class's deficit is shared between the sections that can
    raise it, or, when none can, dropped with the reason recorded in `why_not` (and `lacking`
    set to 0 for it). A section given a class it could not cut stopped the balance midway.
    """
    default_area = CopyPasteImageConfig.model_fields["min_source_area"].default
    areas = {
        i: int(section.get("min_source_area", default_area))
        for i, section in enumerate(sections)
        if section.get("generator", "copy_paste") == "copy_paste"
    }
    pasteable = {a: source_categories(data, min_source_area=a) for a in sorted(set(areas.values()))}
    parts: list[dict[str, int]] = [dict.fromkeys(lacking, 0) for _ in sections]
    for name, lack in lacking.items():
        able = [i for i in range(len(sections)) if i not in areas or name in pasteable[areas[i]]]
        if not able:
            if lack:
                why_not[name] = (
                    f"copy_paste: no non-crowd instance with a mask of at least "
                    f"{min(areas.values())} px to cut out; add a diffusion generator to the "
                    "balance config to raise it"
                )
                lacking[name] = 0
            continue
        for index, share in zip(able, split_deficits({name: lack}, len(able)), strict=True):
            parts[index][name] = share[name]
    return parts


# A PNG of a photo is about 0.6 of its raw RGB bytes (copy-paste images of COCO val2017 measured
# at 0.598); it is never much more than them.
PNG_SHARE_OF_RGB = 0.6
# The plan a user is warned of before it runs: more than ten synthetic images to each real one
# (the balanced dataset is then almost all synthetic, and the run takes far longer than the
# dataset's size suggests), or more disk than a laptop spares without thinking.
LARGE_PLAN_RATIO = 10
LARGE_PLAN_BYTES = 20 * 10**9


def _image_bytes(
    section: dict[str, Any], data: dict[str, Any], *, balance: BalanceConfig, source: Path
) -> int:
    """The raw RGB bytes of one image of a generator section: copy-paste keeps its background's
    size (the mean of the dataset's images), the other generators their config's `size`."""
    if section.get("generator", "copy_paste") == "copy_paste":
        images = data["images"]
        pixels = sum(int(i["width"]) * int(i["height"]) for i in images) / max(1, len(images))
        return round(3 * pixels)
    config = section_config(
        section,
        count=1,
        modality="image",
        balance=balance,
        source=source,
        categories=["unnamed"],
        name="size",
    )
    width, height = getattr(config.image, "size", (512, 512))
    return 3 * int(width) * int(height)


def shown_target(strategy: Target) -> str | int | dict[str, Any]:
    """The target as balance.json and `summary` give it: a number stays a number (`target=3`
    read back as '3'), a mapping of class: target stays one, a strategy name or a targets file
    is its text."""
    if isinstance(strategy, dict):
        return {str(name): value for name, value in strategy.items()}
    return strategy if isinstance(strategy, int) else str(strategy)


def balance_plan(
    *,
    strategy: Any,
    before: dict[str, ClassCount],
    targets: dict[str, int],
    lacking: dict[str, int],
    why_not: dict[str, str],
    data: dict[str, Any],
    planned: list[SectionPlan],
    image_bytes: list[int],
) -> dict[str, Any]:
    """What a balance will make, before it makes it: per class the instances before, the
    target, the deficit and the instances planned (`why_not` where fewer are planned than the
    deficit); the synthetic images planned, the real ones, and the planned images' estimated
    size on disk (PNGs: `PNG_SHARE_OF_RGB` of their raw RGB bytes, at most those)."""
    classes = {}
    for name, count in before.items():
        entry: dict[str, Any] = {
            "before": count.instances,
            "target": targets.get(name, 0),
            "deficit": max(0, targets.get(name, 0) - count.instances),
            "planned": lacking.get(name, 0),
        }
        if name in why_not:
            entry["why_not"] = why_not[name]
        classes[name] = entry
    raw = sum(len(plan.specs) * size for plan, size in zip(planned, image_bytes, strict=True))
    return {
        "kind": "coco",
        "target": shown_target(strategy),
        "classes": classes,
        "planned_images": sum(len(plan.specs) for plan in planned),
        "dataset_images": len(data["images"]),
        "estimated_bytes": round(PNG_SHARE_OF_RGB * raw),
        "raw_bytes": raw,
    }


def large_plan_warning(plan: dict[str, Any]) -> str | None:
    """A one-line warning when a plan makes far more images than its dataset holds (more than
    `LARGE_PLAN_RATIO` to each real image) or needs more than `LARGE_PLAN_BYTES`; else None."""
    made, real = plan["planned_images"], plan["dataset_images"]
    size = plan["estimated_bytes"]
    if made <= LARGE_PLAN_RATIO * max(1, real) and size <= LARGE_PLAN_BYTES:
        return None
    return (
        f"this balance plans {made} synthetic images for a dataset of {real} "
        f"(about {size / 10**9:.1f} GB of PNGs); see the plan first (--dry-run), or cap it "
        "with a smaller --target or max_new_per_class in a --config"
    )


def balance(
    coco: Path | str,
    *,
    images: Path | str | None = None,
    out: Path | str,
    target: str | int | Path | Mapping[str, int] | None = None,
    config: Path | str | Mapping[str, Any] | None = None,
    skip_invalid: bool = False,
    progress: Progress | None = None,
    check_progress: Callable[[int, int], None] | None = None,
    reference_progress: Callable[[int, int], None] | None = None,
    read_progress: Callable[[int, int], None] | None = None,
    write_progress: Callable[[int, int], None] | None = None,
    dry_run: bool = False,
    on_plan: Callable[[dict[str, Any]], None] | None = None,
) -> BalanceResult:
    """Raise a real COCO dataset's rare classes with synthetic images, judged by the rubric.

    Plans the deficits, generates them (copy-paste from the dataset's own instances by
    default), judges and routes every sample, and merges the accepted ones into a copy of the
    real file: a self-contained folder whose images/ holds the real and synthetic images (the
    real entries keep every value but `file_name`, which is now under images/). Samples
    waiting for review are not merged.

    Args:
        coco: the real COCO instances file.
        images: the folder its file_names are relative to (default: the COCO file's folder).
        out: the output folder (new, or an earlier balance output; never one whose runs hold
            human review decisions).
        target: max | median | an integer | a YAML of class: target | repeat_factor | a
            mapping of class: target, as such a YAML holds (`{"dog": 50, "cat": 40}`; a class
            it leaves out keeps its count) (default: the balance config's, median).
        config: a balance config YAML, or the config as a dict (generators, attributes,
            augmentation, rubric).
        skip_invalid: leave bad real entries out (listed in the summary) instead of stopping.
        progress: called with (modality, samples just finished, total).
        check_progress: called with (entries checked, entries in all) while every real image
            file (there, readable, of its entry's size), then every annotation, is checked
            before any work starts.
        reference_progress: called with (files hashed, files in all) while the folders of real
            images the rubric names (`reference_images`) are hashed, before each run.
        read_progress: called with (bytes read, bytes in all) from the start to the end of the
            real COCO file as it is read and parsed.
        write_progress: called with (entries written, entries in all) as merged.coco.json is
            written (its images, annotations and categories).
        dry_run: check everything and plan, then stop: nothing is written (no output folder,
            no database). The result's `.summary` is the plan (`balance_plan`).
        on_plan: called with the plan (`balance_plan`) once it is made, before anything is
            generated; `large_plan_warning(plan)` says when it is far larger than the dataset.

    The real images are hard links in the output's images/ (copies only where a link cannot
    be made): editing one there in place edits the real dataset. Copy the folder (`cp -r`
    makes new files) before editing its images.

    Returns:
        A `BalanceResult`: `.out`, `.merged` (merged.coco.json) and `.summary`. With
        `dry_run`, `.summary` is the plan, `.out` is not written and `.merged` is None. Its
        `warnings`, where there are any, name classes tools would read otherwise (' skis ').

    Example:
        >>> result = balance("annotations.json", images="images/", out="balanced/")
        >>> result.summary["classes"]["toaster"]
    """
    coco_path = path_argument(coco, "coco")
    images_dir = optional_path(images, "images") or coco_path.parent
    dry_run, skip_invalid = switch(dry_run, "dry_run"), switch(skip_invalid, "skip_invalid")
    progress = callback(progress, "progress")
    check_progress = callback(check_progress, "check_progress")
    reference_progress = callback(reference_progress, "reference_progress")
    read_progress = callback(read_progress, "read_progress")
    write_progress = callback(write_progress, "write_progress")
    if coco_path.suffix.lower() in TEXT_SUFFIXES:  # else "not valid JSON (line 2 ...)"
        raise InputError(
            field="coco",
            value=coco_path,
            problem="is a text JSONL file",
            fix="pass a COCO JSON file, or use balance_text for texts",
        )
    out = path_argument(out, "out")
    balance = load_balance_config(config)  # refuses a config of the wrong type first
    config_path = (
        None if config is None or isinstance(config, Mapping) else path_argument(config, "config")
    )
    sections_from = sections_source(config, config_path, coco_path)
    strategy = balance_target(target, balance, source=config_path)
    if images is not None and not images_dir.is_dir():  # the default: the file's own folder
        raise InputError(
            field="images",
            value=images_dir,
            problem=f"{not_a_folder(images_dir)}; pass the folder of the images",
        )
    target_file = strategy if isinstance(strategy, Path) else None
    refuse_out_holding(out, coco_path, images_dir, config_path, target_file, balance.augment)
    if images is not None:  # a folder given as the images' (merge and export refuse the same)
        refuse_out_inside_images(out, images_dir)
    check_out(out, **BALANCE_OUT)  # before the dataset is read and checked (minutes when large)
    non_finite: list[str] = []
    real = read_coco_streaming(coco_path, non_finite=non_finite, progress=read_progress)
    # Before the image files are checked (seconds for a large dataset): no check leaves out a
    # category, so a name no class can have stops the balance whatever the files hold.
    unnamed = class_name_problems(real)
    if unnamed:
        raise InputError(
            f"{coco_path}: {counted(len(unnamed), 'category', 'categories')} cannot "
            f"name a class of the balanced dataset; nothing was written:\n"
            f"{describe_problems(unnamed)}\nrename "
            "them in the COCO file: balance labels new samples, and exports, under these names"
        )
    # the wrong folder (a defaulted one: annotations.json beside images/) is said once, not
    # as every image missing
    refuse_if_no_image_is_there(real["images"], images_dir, labels_only=False)
    checked = check_coco(
        real,
        source=coco_path,
        images_dir=images_dir,
        skip_invalid=skip_invalid or balance.skip_invalid,
        progress=check_progress,
    )
    data = checked.data
    if not data["images"]:  # none, or --skip-invalid left out every one: export refuses it too
        raise InputError(
            f"{coco_path}: no images to balance "
            f"({counted(len(checked.skipped), 'entry', 'entries')} left out as invalid); "
            "fix the entries (without --skip-invalid each is named), or balance another file"
            if checked.skipped
            else f"{coco_path}: no images to balance: the file holds none; balance a COCO file "
            "of the dataset's images and their annotations"
        )
    refuse_non_finite(data, coco_path, non_finite)  # its entries go into merged.coco.json
    before = class_counts(data)
    named = class_name_warning(before, source=coco_path)
    warnings = {"warnings": [named]} if named is not None else {}  # plain names: as before
    check_classes(balance.classes, before, source=config_path or "<config>")
    targets = class_targets(
        before,
        strategy,
        image_count=len(data["images"]),
        repeat_threshold=balance.repeat_threshold,
        named=target_named(target, config_path),
    )
    lacking = deficits(
        before, targets, classes=balance.classes, max_new_per_class=balance.max_new_per_class
    )
    sections = generator_sections(balance.image, {"generator": "copy_paste"})
    for turn, section in enumerate(sections):
        if section.get("generator", "copy_paste") == "copy_paste":
            # The generator is handed the balanced dataset: a file or folder of the section's own
            # was ignored for the instances, yet its images were read for their pixels.
            for key in ("coco", "images"):
                if key in section:
                    where = f"image[{turn}]" if isinstance(balance.image, list) else "image"
                    raise InputError(
                        f"{config_path or '<config>'}: {where}.{key}: copy_paste in a balance "
                        "cuts its instances from the dataset it balances (--coco, --images); "
                        "leave it out"
                    )
            section["coco"] = str(coco_path.resolve())
            section["images"] = str(images_dir.resolve())
    check_sections(
        sections,
        modality="image",
        default="copy_paste",
        balance=balance,
        source=sections_from,
        categories=list(before),
    )

    def build(config: Any) -> Generator:
        components = {"dataset": data} if config.generator == "copy_paste" else {}
        generator = build_generator(config, categories=list(before), **components)
        if balance.augment is not None:
            from synthgate.workflows.augment import AugmentedGenerator

            generator = AugmentedGenerator(generator, balance.augment)
        return generator

    why_not: dict[str, str] = {}
    parts = _image_parts(sections, lacking, data, why_not)
    shares = attribute_shares(balance.attributes)
    planned = plan_sections(
        modality="image",
        sections=sections,
        parts=parts,
        balance=balance,
        shares=shares,
        existing={},
    )
    plan = balance_plan(
        strategy=strategy,
        before=before,
        targets=targets,
        lacking=lacking,
        why_not=why_not,
        data=data,
        planned=planned,
        image_bytes=[
            _image_bytes(part.section, data, balance=balance, source=sections_from)
            for part in planned
        ],
    )
    plan |= warnings
    if on_plan is not None:
        on_plan(plan)
    if dry_run:
        return BalanceResult(out=out, summary=plan, dry_run=True)
    with building_out(
        out, doing=f"writing the balanced dataset to {out}", checked=True, **BALANCE_OUT
    ) as temporary:
        runs = run_sections(
            modality="image",
            sections=sections,
            parts=parts,
            balance=balance,
            source=sections_from,
            categories=list(before),
            runs_dir=temporary / "runs",
            build=build,
            shares=shares,
            existing={},
            progress=progress,
            reference_progress=reference_progress,
            planned=planned,
        )
        # A self-contained folder: real and accepted synthetic images linked into images/,
        # every file_name relative to the output folder (workflows/merge.py).
        merged, files = dataset_folder_images(data, images_dir)
        result = MergeResult()
        for run_dir, _config in runs:
            merged = merge_run_coco(merged, run_dir, files, result=result)
        place_dataset_images(temporary, files)
        write_json_atomic(temporary / "merged.coco.json", merged, progress=write_progress)
        after = class_counts(merged)
        summary = summarise(
            kind="coco",
            source=coco_path,
            strategy=strategy,
            before=before,
            after=after,
            targets=targets,
            lacking=lacking,
            why_not=why_not,
            result=result,
            runs=runs,
            temporary=temporary,
            skipped=[p.describe() for p in checked.skipped],
            unplanned=unplanned_reasons(
                list(before), classes=balance.classes, max_new_per_class=balance.max_new_per_class
            ),
            extra=warnings,
        )
        finish_output(temporary, summary, runs)
    return BalanceResult(out=out, summary=summary)


def _made_for_quota(
    run_dirs: list[Path], generators: dict[str, set[str]] | None = None
) -> dict[str, Counter[str]]:
    """Per class: instances (or rows) made for its quota, by the status of their sample; and in
    `generators`, per class, the generators of the image samples made for it. An image's
    instances of a class count wherever they are: copy_paste's plan counts the objects of a class
    on the backgrounds of other classes' samples among its instances."""
    made: dict[str, Counter[str]] = {}
    for run_dir in run_dirs:
        coco_path = run_dir / "coco.json"
        if coco_path.is_file():
            coco = json.loads(coco_path.read_text(encoding="utf-8"))
            names = {c["id"]: c["name"] for c in coco["categories"]}
            images = {i["id"]: i["synthgate"] for i in coco["images"]}
            if generators is not None:
                for block in images.values():
                    generators.setdefault(str(block["category"]), set()).add(block["generator"])
            for annotation in coco["annotations"]:
                block = images[annotation["image_id"]]
                name = names[annotation["category_id"]]
                # pasted or on a background, of any sample; a crowd region is no instance
                if not annotation.get("iscrowd"):
                    made.setdefault(name, Counter())[block["status"]] += 1
        text_path = run_dir / "text.jsonl"
        if text_path.is_file():
            for row in read_jsonl(text_path):
                made.setdefault(str(row["label"]), Counter())[row["status"]] += 1
    return made


# The image generators that paste instances into an image; the others draw objects over theirs.
PASTING_GENERATORS = frozenset({"copy_paste", "diffusion_object_paste"})


def _occluders(generators: set[str]) -> str:
    """What hid the instances a class lost, as its samples' generators made them: pasted
    instances (copy-paste), objects drawn over them (procedural and the like), or both."""
    if generators <= PASTING_GENERATORS:
        return "other pasted instances"
    if generators.isdisjoint(PASTING_GENERATORS):
        return "other objects drawn over them"
    return "other pasted or drawn objects"


def _shortfall(
    wanted: int, planned: int, made: Counter[str], unplanned: str, generators: set[str]
) -> str:
    """Why a class stayed below its target, from what was planned (`unplanned`: why not all
    it lacked), made (by `generators`) and accepted."""
    reasons = []
    if planned < wanted:
        reasons.append(f"{wanted - planned} not planned ({unplanned})")
    lost = planned - sum(made.values())
    if lost > 0:
        reasons.append(f"{lost} lost to occlusion by {_occluders(generators)}")
    for status in ("review", "rejected", "failed"):
        if made[status]:
            reasons.append(f"{made[status]} in samples {status}")
    return "; ".join(reasons) or "unknown"


def summarise(
    *,
    kind: str,
    source: Path,
    strategy: Any,
    before: dict[str, ClassCount],
    after: dict[str, ClassCount],
    targets: dict[str, int],
    lacking: dict[str, int],
    why_not: dict[str, str],
    result: MergeResult,
    runs: list[tuple[Path, BatchConfig]],
    temporary: Path,
    skipped: list[str],
    extra: dict[str, Any] | None = None,
    unplanned: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """balance.json: per class the counts, target, deficit, what was planned and filled, and
    why it stayed short (`why_not`, else from what was planned, with `unplanned[class]` saying
    why not all it lacked, made and accepted)."""
    counts = _count_table(before, after)
    generators: dict[str, set[str]] = {}
    made = _made_for_quota([r for r, _ in runs], generators)
    classes = {}
    for name, row in counts.items():
        wanted = max(0, targets.get(name, 0) - row["before"])
        filled = row["after"] - row["before"]
        entry = {
            **row,
            "target": targets.get(name, 0),
            "deficit": wanted,
            "planned": lacking.get(name, 0),
            "filled": filled,
        }
        if wanted and row["after"] < targets.get(name, 0):
            entry["why_not"] = why_not.get(name) or _shortfall(
                wanted,
                lacking.get(name, 0),
                made.get(name, Counter()),
                (unplanned or {}).get(name, "classes / max_new_per_class"),
                generators.get(name, set()),
            )
        classes[name] = entry
    return {
        "kind": kind,
        "source": str(source),
        "target": shown_target(strategy),
        "classes": classes,
        "added": {
            "images": result.added_images,
            "annotations": result.added_annotations,
            "rows": result.added_rows,
        },
        "left_out": result.left_out,
        "waiting_for_review": result.left_out.get("review", []),
        "runs": [str(r.relative_to(temporary)) for r, _ in runs],
        "skipped_input": skipped,
        **(extra or {}),
    }


def finish_output(
    temporary: Path, summary: dict[str, Any], runs: list[tuple[Path, BatchConfig]]
) -> None:
    from synthgate.reports import write_report

    (temporary / BALANCE_MARKER).write_text(dumps(summary) + "\n", encoding="utf-8")
    write_report(temporary, summary, run_dirs=[r for r, _ in runs])
