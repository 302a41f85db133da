"""The copy_paste generator: exact labels, occlusion of background objects, crowds never used."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from balance_fixtures import CROWD_IMAGE, make_tiny_coco

from synthgate.config import CopyPasteImageConfig
from synthgate.errors import InputError
from synthgate.formats.coco import sample_to_coco_annotations
from synthgate.generators import build_generator
from synthgate.generators.copy_paste import CopyPasteGenerator
from synthgate.generators.labels import PlacedObject, labels_from_masks
from synthgate.masks import annotation_mask, decode_mask, tight_bbox
from synthgate.samples import Provenance, Sample, SampleSpec


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_tiny_coco(tmp_path_factory.mktemp("cp"))


def _generator(dataset: tuple[Path, Path], **options: object) -> CopyPasteGenerator:
    coco, images = dataset
    config = CopyPasteImageConfig(count=1, coco=coco, images=images, **options)
    generator = build_generator(config, categories=["square", "disc", "tri", "blob"])
    assert isinstance(generator, CopyPasteGenerator)
    return generator


def _spec(index: int, category: str, **params: object) -> SampleSpec:
    return SampleSpec(
        batch_id="cp",
        index=index,
        modality="image",
        generator="copy_paste",
        category=category,
        params=params,
        seed=1000 + index,
    )


def test_pasted_instances_are_labelled_exactly(dataset: tuple[Path, Path]) -> None:
    generator = _generator(dataset)
    for index in range(12):
        made = generator.generate([_spec(index, "tri", instances=2)])[0]
        sample = made.sample
        pasted = [o for o in sample.objects if o.attributes["pasted"]]
        assert 1 <= len(pasted) <= 2 and all(o.category == "tri" for o in pasted)
        params = sample.provenance.params
        assert params["background_image_id"] != 102  # tri's only image is never its background
        for obj in sample.objects:
            mask = decode_mask(obj.mask)
            assert obj.bbox == tight_bbox(mask)
            assert obj.area == mask.sum()
            assert made.foreground[mask].all()
        assert not (made.ignore & made.foreground).any() or params["background_labels_dropped"]


def test_masks_are_column_major(dataset: tuple[Path, Path]) -> None:
    """The order pycocotools encodes in (masks.MASK_ORDER): encoding transposes no mask."""
    made = _generator(dataset).generate([_spec(index, "tri", instances=2) for index in range(4)])
    for generated in made:
        assert generated.foreground is not None and generated.ignore is not None
        assert generated.foreground.flags.f_contiguous and generated.ignore.flags.f_contiguous


def test_same_spec_same_sample(dataset: tuple[Path, Path]) -> None:
    first = _generator(dataset).generate([_spec(3, "disc")])[0]
    again = _generator(dataset).generate([_spec(3, "disc")])[0]
    assert np.array_equal(first.pixels, again.pixels)
    assert first.sample == again.sample


def test_crowd_regions_are_never_sources_or_backgrounds(dataset: tuple[Path, Path]) -> None:
    generator = _generator(dataset)
    crowd_ids = {a["id"] for a in json.loads(dataset[0].read_text())["annotations"] if a["iscrowd"]}
    assert CROWD_IMAGE not in generator.backgrounds
    assert not crowd_ids & {a["id"] for a in generator.sources["square"]}
    for index in range(10):
        sample = generator.generate([_spec(index, "square", instances=3)])[0].sample
        used = {p["source_annotation_id"] for p in sample.provenance.params["pasted"]}
        assert not used & crowd_ids


def test_occluded_background_objects_are_cut_or_become_crowd_regions(
    dataset: tuple[Path, Path],
) -> None:
    generator = _generator(dataset, min_visible_fraction=0.5)
    image_id = 101  # squares at (4,4) size 14 and (36,36) size 16, a disc at (40,6)
    pasted = np.zeros((64, 64), dtype=bool)
    pasted[0:12, 0:30] = True  # covers most of the first square, none of the others
    pasted[36:44, 36:60] = True  # covers a third of the second square
    kept, visible, ignore, dropped = generator._background_labels(image_id, pasted)
    annotations = generator.annotations_of[image_id]
    assert dropped == [annotations[0]["id"]]
    # The first square, mostly covered: a crowd region of exactly its visible pixels, which
    # the judge ignores as COCOeval will (not unlabelled pixels of a real object).
    first = annotation_mask(annotations[0], 64, 64)
    crowd = next(o for o in kept if o.attributes["source_annotation_id"] == annotations[0]["id"])
    assert crowd.attributes["iscrowd"] is True and crowd.category == "square"
    assert (decode_mask(crowd.mask) == (first & ~pasted)).all()
    assert crowd.bbox == tight_bbox(first & ~pasted)
    assert crowd.area == (first & ~pasted).sum() > 0
    assert crowd.visible_fraction < 0.5
    assert (ignore == (first & ~pasted)).all()
    # The second, left mostly visible: an ordinary annotation, as before.
    second = next(o for o in kept if o.attributes["source_annotation_id"] == annotations[1]["id"])
    assert "iscrowd" not in second.attributes
    expected = annotation_mask(annotations[1], 64, 64) & ~pasted
    assert (decode_mask(second.mask) == expected).all()
    assert second.bbox == tight_bbox(expected) and second.bbox[1] == 44.0
    assert 0.5 <= second.visible_fraction < 1
    assert not (visible & pasted).any()
    assert len(kept) == len(annotations)
    written = sample_to_coco_annotations(
        Sample(
            id="s",
            spec=_spec(0, "square"),
            uri="s.png",
            width=64,
            height=64,
            objects=kept,
            provenance=Provenance(generator="copy_paste", generator_version="1", seed=0),
        ),
        1,
        {"square": 1, "disc": 2, "tri": 3, "blob": 4},
        1,
    )
    assert [a["iscrowd"] for a in written] == [1] + [0] * (len(kept) - 1)
    assert written[0]["area"] == crowd.area and written[0]["bbox"] == crowd.bbox


def test_a_pasted_instance_left_mostly_hidden_is_a_crowd_region() -> None:
    under = np.zeros((20, 20), dtype=bool, order="F")
    under[2:12, 2:12] = True  # 100 px, 91 of them covered by the next one
    over = np.zeros((20, 20), dtype=bool, order="F")
    over[3:20, 3:20] = True
    placed = [
        PlacedObject("tri", under, {"pasted": True}),
        PlacedObject("tri", over, {"pasted": True}),
    ]
    scene = labels_from_masks(
        placed, shape=(20, 20), min_visible_fraction=0.25, hidden_as_crowd=True
    )
    crowd, shown = scene.objects
    assert crowd.attributes == {"pasted": True, "iscrowd": True}
    assert (decode_mask(crowd.mask) == (under & ~over)).all() and crowd.area == 19
    assert (scene.ignore == (under & ~over)).all() and scene.hidden == 1
    assert "iscrowd" not in shown.attributes and shown.area == 17 * 17
    # Other generators (procedural) keep leaving such objects out of their labels.
    assert len(labels_from_masks(placed, shape=(20, 20), min_visible_fraction=0.25).objects) == 1


def test_a_class_with_nothing_to_cut_is_a_clear_error(dataset: tuple[Path, Path]) -> None:
    generator = _generator(dataset)
    assert "blob" not in generator.quota_categories()
    with pytest.raises(InputError, match="no instance of 'blob'"):
        generator.generate([_spec(0, "blob")])


def test_image_size_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    coco, images = make_tiny_coco(tmp_path)
    data = json.loads(coco.read_text())
    data["images"][0]["width"] = 80
    coco.write_text(json.dumps(data))
    # caught when the COCO file is checked, before anything is made
    with pytest.raises(InputError, match="is 64x64, the entry says 80x64"):
        CopyPasteGenerator(
            CopyPasteImageConfig(count=1, coco=coco, images=images, background="random"),
            categories=[],
        )


def test_no_class_asked_for_has_an_instance_is_a_clear_error(dataset: tuple[Path, Path]) -> None:
    coco, images = dataset
    with pytest.raises(InputError, match=r"no instance to cut of any class asked for \(unicorn\)"):
        CopyPasteGenerator(
            CopyPasteImageConfig(count=1, coco=coco, images=images), categories=["unicorn"]
        )


def _listed_background(
    generator: CopyPasteGenerator, rng: np.random.Generator, used: set[int]
) -> int:
    """The background choice made from the candidate list itself (filtered, sorted, cut)."""
    candidates = [i for i in generator.backgrounds if i not in used] or generator.backgrounds
    if generator.config.background == "fewest_objects":
        candidates = sorted(candidates, key=lambda i: len(generator.annotations_of[i]))
        candidates = candidates[: max(1, len(candidates) // 4)]
    return candidates[int(rng.integers(len(candidates)))]


def _many_images(count: int, seed: int) -> dict[str, Any]:
    """A COCO mapping of `count` images holding 0-5 squares each (many ties in counts)."""
    rng = np.random.default_rng(seed)
    square = [2.0, 2.0, 20.0, 2.0, 20.0, 20.0, 2.0, 20.0]
    images, annotations = [], []
    for image_id in range(1, count + 1):
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 32, "height": 32})
        for _ in range(int(rng.integers(0, 6))):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "segmentation": [square],
                    "bbox": [2.0, 2.0, 18.0, 18.0],
                    "area": 324.0,
                    "iscrowd": int(rng.random() < 0.05),
                }
            )
    categories = [{"id": 1, "name": "square", "supercategory": "shape"}]
    return {"images": images, "annotations": annotations, "categories": categories}


@pytest.mark.parametrize("mode", ["fewest_objects", "random"])
@pytest.mark.parametrize("count", [1, 3, 57])
def test_background_choice_equals_the_listed_draw(
    dataset: tuple[Path, Path], mode: str, count: int
) -> None:
    coco, images = dataset
    config = CopyPasteImageConfig(count=1, coco=coco, images=images, background=mode)
    data = _many_images(count, seed=count)
    generator = CopyPasteGenerator(config, categories=[], dataset=data)
    ids = [image["id"] for image in data["images"]]
    draws = np.random.default_rng(7)
    for seed in range(400):
        size = int(draws.integers(0, min(len(ids), 6) + 1))
        used = {int(i) for i in draws.choice(ids, size=size, replace=False)}
        if draws.random() < 0.1:
            used = set(ids)  # every background holds a picked instance
        chosen = generator._background(np.random.default_rng(seed), used)
        assert chosen == _listed_background(generator, np.random.default_rng(seed), used)


def test_images_are_decoded_once_when_the_dataset_fits(dataset: tuple[Path, Path]) -> None:
    coco, images = dataset
    config = CopyPasteImageConfig(count=1, coco=coco, images=images, background="random")
    categories = ["square", "disc", "tri", "blob"]
    specs = [_spec(index, "square", instances=3) for index in range(30)]
    roomy = CopyPasteGenerator(config, categories=categories)
    made = roomy.generate(specs)
    assert roomy.decoded <= 6  # each of the six images once
    tight = CopyPasteGenerator(config, categories=categories, cache_bytes=64 * 64 * 3)  # one image
    again = tight.generate(specs)
    assert tight.decoded > 2 * roomy.decoded
    for first, second in zip(made, again, strict=True):
        assert first.sample == second.sample and np.array_equal(first.pixels, second.pixels)


def test_a_polygon_too_thin_to_rasterise_is_pasted_as_its_box_every_time(
    dataset: tuple[Path, Path],
) -> None:
    """Its cut-out is its box, made once and reused; the cached mask itself stays empty."""
    coco, images = dataset
    data = json.loads(coco.read_text())
    line = {
        "id": 999,
        "image_id": 101,
        "category_id": 3,
        "segmentation": [[10.0, 50.0, 40.0, 50.0, 25.0, 50.0]],  # three points on one line
        "bbox": [10.0, 49.0, 30.0, 3.0],
        "area": 90.0,
        "iscrowd": 0,
    }
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] != 3] + [line]
    config = CopyPasteImageConfig(count=1, coco=coco, images=images, min_pasted_size=2)
    generator = CopyPasteGenerator(config, categories=["tri"], dataset=data)
    made = [generator.generate([_spec(index, "tri", instances=1)])[0] for index in (0, 0, 1)]
    assert made[0].sample == made[1].sample and np.array_equal(made[0].pixels, made[1].pixels)
    for generated in made:
        [pasted] = [o for o in generated.sample.objects if o.attributes["pasted"]]
        _x, _y, w, h = pasted.bbox
        assert pasted.area == w * h  # the whole box
    assert not generator._mask(line).any()


@pytest.mark.parametrize(
    "change",
    [
        {"bbox": [-1000.0, 49.0, 30.0, 3.0]},  # a box reaching out of its image (to the left)
        {"bbox": [10.0, -500.0, 30.0, 3.0]},
        {"area": None},  # COCO lets a file leave the area null: the box's stands in
    ],
    ids=["box-left-of-image", "box-above-image", "area-null"],
)
def test_an_odd_source_annotation_is_cut_without_a_crash(
    dataset: tuple[Path, Path], change: dict[str, Any]
) -> None:
    """Found by fuzzing: a too-thin polygon whose box lay left of or above its image gave a
    0-wide cut (ZeroDivisionError); a null area a TypeError."""
    coco, images = dataset
    data = json.loads(coco.read_text())
    line = {
        "id": 999, "image_id": 101, "category_id": 3, "iscrowd": 0, "area": 90.0,
        "segmentation": [[10.1, 10.1, 10.2, 10.1, 10.1, 10.2]],  # covers no pixel
        "bbox": [10.0, 49.0, 30.0, 3.0], **change,
    }  # fmt: skip
    data["annotations"] = [a for a in data["annotations"] if a["category_id"] != 3] + [line]
    config = CopyPasteImageConfig(count=1, coco=coco, images=images, min_pasted_size=2)
    generator = CopyPasteGenerator(config, categories=["tri"], dataset=data)
    [made] = generator.generate([_spec(0, "tri", instances=1)])
    [pasted] = [o for o in made.sample.objects if o.attributes["pasted"]]
    assert pasted.area > 0


def test_a_run_of_some_classes_judges_the_backgrounds_own_objects_as_labels(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    """An image generation user's finding: a copy_paste run of `categories: [square]` kept the
    backgrounds' own discs and triangles (labels of the dataset), and its judge, whose taxonomy
    was `categories` alone, failed them 'not in taxonomy': 29 of 30 samples went to review."""
    import synthgate as sg

    coco, images = dataset
    config = {
        "name": "cp",
        "seed": 2,
        "categories": ["square"],
        "image": {"generator": "copy_paste", "count": 6, "coco": str(coco), "images": str(images)},
    }
    run = sg.run(config, out=tmp_path / "run")
    samples = list(run.samples())
    held = {o.category for s in samples for o in s.objects}
    assert held - {"square"}  # the backgrounds' own objects are there
    findings = [f.check for s in samples for f in (s.report.findings if s.report else [])]
    assert "correctness_category_in_taxonomy" not in findings
    with pytest.raises(sg.InputError, match=r"no instance of 'blob' to cut in .*remove it"):
        sg.run({**config, "categories": ["square", "blob"]}, out=tmp_path / "blob")
    assert not (tmp_path / "blob").exists()


def test_generate_refuses_a_class_with_nothing_to_cut_as_run_does(
    dataset: tuple[Path, Path],
) -> None:
    """A notebook user's finding: `sg.run` refused `categories: [square, blob]` (no blob to
    cut), but `sg.generate` on the same config made squares only, the blob quota silently
    dropped."""
    import synthgate as sg

    coco, images = dataset
    config = {
        "name": "cp",
        "seed": 2,
        "categories": ["square", "blob"],
        "image": {"generator": "copy_paste", "count": 2, "coco": str(coco), "images": str(images)},
    }
    with pytest.raises(sg.InputError, match=r"no instance of 'blob' to cut in .*remove it"):
        sg.generate(config)


def _used_images(made: list[Any]) -> set[int]:
    """The background and source images the samples were made from."""
    used = set()
    for generated in made:
        params = generated.sample.provenance.params
        used.add(params["background_image_id"])
        used |= {p["source_image_id"] for p in params["pasted"]}
    return used


def test_a_balanced_dataset_is_balanced_again_from_its_real_images(tmp_path: Path) -> None:
    """Balancing a balance output again: its synthetic images are neither cut from nor pasted
    into, so no sample pastes a copy of a pasted copy onto an earlier sample."""
    import synthgate

    coco, images = make_tiny_coco(tmp_path / "real")
    first = synthgate.balance(coco, images=images, out=tmp_path / "first", target=4)
    merged = json.loads(first.merged.read_text())
    synthetic = {i["id"] for i in merged["images"] if (i.get("synthgate") or {}).get("synthetic")}
    assert synthetic
    second = synthgate.balance(first.merged, images=first.out, out=tmp_path / "second", target=30)
    (run,) = second.summary["runs"]
    made = json.loads((second.out / run / "coco.json").read_text())
    used = {
        image["synthgate"]["provenance"]["params"]["background_image_id"]
        for image in made["images"]
    } | {
        pasted["source_image_id"]
        for image in made["images"]
        for pasted in image["synthgate"]["provenance"]["params"]["pasted"]
    }
    assert len(made["images"]) >= 20 and used and not used & synthetic


def test_synthetic_images_serve_only_where_no_real_one_can(tmp_path: Path) -> None:
    coco, images = make_tiny_coco(tmp_path)
    data = json.loads(coco.read_text())
    marked = {102, 103, 104, 105}  # 102 holds the only tri; 101 is the only real background left
    for image in data["images"]:
        if image["id"] in marked:
            image["synthgate"] = {"synthetic": True, "sample_id": f"ima-{image['id']}"}
    coco.write_text(json.dumps(data))
    generator = _generator((coco, images), background="random")
    made = generator.generate([_spec(index, "disc", instances=2) for index in range(12)])
    assert _used_images(made) == {101}  # the disc of 101 pasted into 101: no other real one
    made = generator.generate([_spec(index, "tri") for index in range(12, 16)])
    assert _used_images(made) == {101, 102}  # tri has no real instance: its synthetic one serves
    for image in data["images"]:
        image["synthgate"] = {"synthetic": True}  # a run's coco.json: every image synthetic
    coco.write_text(json.dumps(data))
    generator = _generator((coco, images), background="random")
    made = generator.generate([_spec(index, "square", instances=2) for index in range(12)])
    assert len(_used_images(made)) > 2


def _plan_dataset(rare_images: int, common_images: int, rare_classes: int) -> dict[str, Any]:
    """Images 1..rare_images hold one object of a class no plan raises (`rare0`, `rare1`, ...,
    in turn), the next `common_images` two of `common`; one more image, holding a crowd (so
    never a background), gives `common` instances to cut."""
    square = [2.0, 2.0, 20.0, 2.0, 20.0, 20.0, 2.0, 20.0]
    images, annotations = [], []

    def add(image_id: int, category_id: int, crowd: int = 0) -> None:
        annotations.append(
            {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": category_id,
                "segmentation": [square],
                "bbox": [2.0, 2.0, 18.0, 18.0],
                "area": 324.0,
                "iscrowd": crowd,
            }
        )

    for image_id in range(1, rare_images + common_images + 2):
        images.append({"id": image_id, "file_name": f"{image_id}.jpg", "width": 32, "height": 32})
        if image_id <= rare_images:
            add(image_id, 2 + (image_id - 1) % rare_classes)
        elif image_id <= rare_images + common_images:
            add(image_id, 1)
            add(image_id, 1)
        else:
            add(image_id, 1)
            add(image_id, 1, crowd=1)
    categories = [{"id": 1, "name": "common", "supercategory": "shape"}] + [
        {"id": 2 + k, "name": f"rare{k}", "supercategory": "shape"} for k in range(rare_classes)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def _plan(count: int, instances: int, seed: int = 0) -> list[SampleSpec]:
    return [
        SampleSpec(
            batch_id="plan",
            index=index,
            modality="image",
            generator="copy_paste",
            category="common",
            params={"instances": instances},
            seed=seed * 1000 + index,
        )
        for index in range(count)
    ]


def _added(generator: CopyPasteGenerator, specs: list[SampleSpec]) -> dict[str, int]:
    """What a plan adds per class: its pasted instances and its backgrounds' own objects."""
    added: dict[str, int] = {}
    for spec in specs:
        added["common"] = added.get("common", 0) + spec.params["instances"]
        background = spec.params["background"]
        for annotation in generator.annotations_of[background]:
            name = generator.category_names[annotation["category_id"]]
            added[name] = added.get(name, 0) + 1
    return added


@pytest.mark.parametrize("seed", range(4))
def test_a_plan_avoids_backgrounds_of_classes_at_their_target(
    dataset: tuple[Path, Path], seed: int
) -> None:
    """Sparse backgrounds (one object each, the fewest) hold a class no plan raises: drawn per
    sample they were the quarter every sample pasted on. The plan pastes on backgrounds of the
    class it raises instead, their objects in place of pasted ones: it adds exactly 30."""
    coco, images = dataset
    config = CopyPasteImageConfig(count=1, coco=coco, images=images)
    generator = CopyPasteGenerator(config, categories=[], dataset=_plan_dataset(12, 20, 1))
    plan = _plan(10, 3, seed)
    assigned = generator.assign_sources(plan)
    assert [s.index for s in assigned] == [s.index for s in plan]
    assert all(s.params["background"] > 12 for s in assigned)  # no background of rare0
    assert all(s.params["instances"] == 1 for s in assigned)  # two of `common` on each
    assert _added(generator, assigned) == {"common": 30}
    assert generator.assign_sources(plan) == assigned  # the same plan, the same choice


@pytest.mark.parametrize("seed", range(4))
def test_a_plan_spreads_what_no_background_can_avoid(dataset: tuple[Path, Path], seed: int) -> None:
    """Every background holds a class at its target: the few drawn for a sample, the one
    whose classes are least past their targets, so that no class takes every copy."""
    coco, images = dataset
    config = CopyPasteImageConfig(count=1, coco=coco, images=images, background="random")
    generator = CopyPasteGenerator(config, categories=[], dataset=_plan_dataset(8, 0, 4))
    assigned = generator.assign_sources(_plan(8, 1, seed))
    # drawn per sample (`_background`), one class took 3 of the 8 and another 1
    assert _added(generator, assigned) == {
        "common": 8,
        "rare0": 2,
        "rare1": 2,
        "rare2": 2,
        "rare3": 2,
    }


def test_generate_pastes_on_the_background_and_count_the_plan_assigned(
    dataset: tuple[Path, Path],
) -> None:
    generator = _generator(dataset)
    for background in (103, 104):
        spec = _spec(5, "tri", instances=3).model_copy(
            update={"params": {"instances": 1, "background": background}}
        )
        sample = generator.generate([spec])[0].sample
        assert sample.provenance.params["background_image_id"] == background
        assert len(sample.provenance.params["pasted"]) == 1


def test_a_plans_samples_paste_the_instances_it_chose_and_never_on_their_own_image(
    dataset: tuple[Path, Path],
) -> None:
    """The plan draws each sample's instances and keeps the background off their images; the
    sample drew one number more before its instances (a count the plan had given), pasted
    others, and put a disc back onto the very photo it was cut from (48 of 200 here)."""
    generator = _generator(dataset)
    plan = [_spec(i, "disc", instances=1) for i in range(60)]
    assigned = generator.assign_sources(plan)
    for spec, made in zip(assigned, generator.generate(assigned), strict=True):
        params = made.sample.provenance.params
        sources = {p["source_image_id"] for p in params["pasted"]}
        assert params["background_image_id"] == spec.params["background"]
        assert params["background_image_id"] not in sources
