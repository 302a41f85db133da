"""Image checks, table-driven: each defect trips its check at the level detection.yaml gives,
and the clean sample trips nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from synthgate.generators.labels import PlacedObject, labels_from_masks
from synthgate.masks import encode_mask
from synthgate.samples import GeneratedSample, Provenance, RubricReport, Sample, SampleSpec
from synthgate.validators.checks import quality
from synthgate.validators.checks.base import CHECKS, CheckInput
from synthgate.validators.checks.quality import edge_laplacian_variance, sharpness
from synthgate.validators.context import (
    ValidationContext,
    fingerprint,
    gray_8bit,
    image_files,
    reference_index,
)
from synthgate.validators.measure import judge_sample
from synthgate.validators.rubric import load_rubric

H, W = 64, 96
RUBRIC = load_rubric("detection")
TAXONOMY = ["circle", "square"]


def rect(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def scene(seed: int = 0, placed: list[tuple[str, np.ndarray]] | None = None) -> GeneratedSample:
    """A sharp noise image with two labelled rectangles (or the objects given), exact labels."""
    placed = placed or [("circle", rect(10, 30, 10, 40)), ("square", rect(30, 50, 50, 80))]
    labelled = labels_from_masks(
        [PlacedObject(c, m, {}) for c, m in placed], shape=(H, W), min_visible_fraction=0.25
    )
    rng = np.random.default_rng(seed)
    spec = SampleSpec(batch_id="b", index=seed, modality="image", generator="procedural", seed=seed)
    sample = Sample(
        id=f"img-{seed}",
        spec=spec,
        width=W,
        height=H,
        objects=labelled.objects,
        provenance=Provenance(generator="procedural", generator_version="1", seed=seed),
    )
    pixels = rng.integers(20, 236, size=(H, W, 3), dtype=np.uint8)
    return GeneratedSample(
        sample=sample, pixels=pixels, foreground=labelled.foreground, ignore=labelled.ignore
    )


def judge(generated: GeneratedSample, context: ValidationContext | None = None) -> RubricReport:
    return judge_sample(generated, RUBRIC, context or ValidationContext.for_taxonomy(TAXONOMY))


def yaml_level(check: str, measure: str, value: float) -> int:
    threshold = RUBRIC.threshold_of(check, measure)
    assert threshold is not None
    return threshold.level(value, CHECKS[check].measures[measure].worse)


def loosen(k: int) -> Callable[[GeneratedSample], None]:
    def apply(g: GeneratedSample) -> None:
        x, y, w, h = g.sample.objects[0].bbox
        g.sample.objects[0].bbox = [x - k, y - k, w + 2 * k, h + 2 * k]

    return apply


def set_box(box: list[float]) -> Callable[[GeneratedSample], None]:
    def apply(g: GeneratedSample) -> None:
        g.sample.objects[0].bbox = box

    return apply


def drop_label(g: GeneratedSample) -> None:
    g.sample.objects.pop(1)


def rename(g: GeneratedSample) -> None:
    g.sample.objects[0].category = "unicorn"


def black(g: GeneratedSample) -> None:
    assert g.pixels is not None
    g.pixels[...] = 0


def grey(g: GeneratedSample) -> None:
    assert g.pixels is not None
    g.pixels[...] = 128


def nan_image(g: GeneratedSample) -> None:
    g.pixels = np.full((H, W, 3), np.nan, dtype=np.float32)


def wrong_size(g: GeneratedSample) -> None:
    g.pixels = np.zeros((H + 1, W, 3), dtype=np.uint8) + 100


def blurred(g: GeneratedSample) -> None:
    ramp = np.linspace(40, 200, W, dtype=np.float32)[None, :].repeat(H, axis=0)
    g.pixels = np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8)


def burnt(g: GeneratedSample) -> None:
    assert g.pixels is not None
    g.pixels[: H * 9 // 10] = 255


def duplicate(g: GeneratedSample) -> None:
    g.sample.objects.append(g.sample.objects[0].model_copy(deep=True))


def empty_mask(g: GeneratedSample) -> None:
    g.sample.objects[0].mask = encode_mask(np.zeros((H, W), dtype=bool))


def shifted_mask(g: GeneratedSample) -> None:
    g.sample.objects[0].mask = encode_mask(rect(10, 30, 13, 43))  # 3 px past its box


def wrong_mask_size(g: GeneratedSample) -> None:
    g.sample.objects[0].mask = encode_mask(np.ones((H // 2, W), dtype=bool))


def tiny(g: GeneratedSample) -> None:
    mask = rect(5, 8, 60, 63)
    g.sample.objects[0].bbox, g.sample.objects[0].mask = [60.0, 5.0, 3.0, 3.0], encode_mask(mask)
    g.sample.objects[0].area = 9.0
    assert g.foreground is not None
    g.foreground = g.foreground.copy()
    g.foreground[10:30, 10:40] = False
    g.foreground |= mask


def occluded(g: GeneratedSample) -> None:
    g.sample.objects[0].visible_fraction = 0.3


def layout_box_left_empty(g: GeneratedSample) -> None:
    g.sample.provenance.params["missing"] = [{"category": "square", "box": [50, 30, 30, 20]}]


def layout_box_strayed(g: GeneratedSample) -> None:
    g.sample.objects[0].attributes.update(requested_box=[0, 0, 60, 60], box_iou=0.3)


def crowd(g: GeneratedSample) -> None:
    g.sample.objects[0].attributes["iscrowd"] = True


# (name, defect, criterion, check, measure, measured value, expected level from the YAML)
CHECK_CASES = [
    ("box 7 px loose", loosen(7), "precision", "precision_box_tightness", "box_tightness_px", 7),
    ("box 3 px loose", loosen(3), "precision", "precision_box_tightness", "box_tightness_px", 3),
    ("box past the border", set_box([-4, 10, 44, 20]), "correctness", "correctness_bbox_valid", "bbox_outside_px", 4),
    ("box with no width", set_box([10, 10, 0, 20]), "correctness", "correctness_bbox_valid", "bbox_invalid", 1),
    ("box malformed", set_box([10, 10]), "correctness", "correctness_bbox_valid", "bbox_invalid", 1),
    ("unlabelled object", drop_label, "completeness", "completeness_unlabelled_foreground", "unlabelled_px", 600),
    ("class outside taxonomy", rename, "correctness", "correctness_category_in_taxonomy", "category_unknown", 1),
    ("black image", black, "correctness", "correctness_image_valid", "image_blank", 1),
    ("constant image", grey, "correctness", "correctness_image_valid", "image_blank", 1),
    ("NaN image", nan_image, "correctness", "correctness_image_valid", "image_blank", 1),
    ("image of another size", wrong_size, "correctness", "correctness_image_valid", "image_unreadable", 1),
    ("blurred image", blurred, "clarity", "clarity_image_quality", "laplacian_variance", 0),
    ("burnt image", burnt, "clarity", "clarity_image_quality", "clipped_percent", 90),
    ("same object twice", duplicate, "correctness", "correctness_duplicate_boxes", "duplicate_iou", 1.0),
    ("empty mask", empty_mask, "precision", "precision_mask_consistency", "mask_empty", 1),
    ("mask past its box", shifted_mask, "precision", "precision_mask_consistency", "mask_outside_box_px", 3),
    ("mask of another size", wrong_mask_size, "precision", "precision_mask_consistency", "mask_unreadable", 1),
    ("3 px object", tiny, "clarity", "clarity_min_size", "min_side_px", 3),
    ("30 % visible", occluded, "clarity", "clarity_visible_fraction", "visible_fraction", 0.3),
    ("crowd region", crowd, "clarity", "clarity_crowd_regions", "crowd_region", 1),
    ("requested box left empty", layout_box_left_empty, "completeness", "completeness_layout_honoured", "requested_boxes_empty", 1),
    ("object strays from its requested box", layout_box_strayed, "precision", "precision_layout_box_iou", "requested_box_iou", 0.3),
]  # fmt: skip


def test_clean_sample_is_gold_everywhere() -> None:
    honoured = scene()
    honoured.sample.provenance.params["missing"] = []  # a layout sample with every box filled
    honoured.sample.objects[0].attributes.update(box_iou=0.9)
    for generated in (scene(), honoured):
        report = judge(generated)
        assert report.findings == [], report.findings
    report = judge(scene())
    assert report.findings == []
    assert report.levels == dict.fromkeys(RUBRIC.criteria, 5)
    assert report.score == 5.0 and report.route == "accepted"


@pytest.mark.parametrize(
    ("name", "defect", "criterion", "check", "measure", "value"),
    CHECK_CASES,
    ids=[case[0] for case in CHECK_CASES],
)
def test_defect_trips_its_check_at_the_yaml_level(
    name: str,
    defect: Callable[[GeneratedSample], None],
    criterion: str,
    check: str,
    measure: str,
    value: float,
) -> None:
    generated = scene()
    defect(generated)
    report = judge(generated)
    expected = yaml_level(check, measure, value)
    assert expected < 5, f"{name}: the YAML must not call this gold"
    hits = [f for f in report.findings if f.check == check and f.measure == measure]
    assert hits, f"{name}: no {check}.{measure} finding in {report.findings}"
    assert min(f.level for f in hits) == expected
    assert report.levels[criterion] <= expected


def test_box_7px_loose_is_level_1_and_3px_is_level_3() -> None:
    assert yaml_level("precision_box_tightness", "box_tightness_px", 7) == 1
    assert yaml_level("precision_box_tightness", "box_tightness_px", 3) == 3
    generated = scene()
    loosen(7)(generated)
    finding = next(f for f in judge(generated).findings if f.check == "precision_box_tightness")
    assert finding.object_index == 0 and "7 px loose" in finding.message


def test_one_unlabelled_object_makes_completeness_1_and_routes_to_review() -> None:
    generated = scene()
    drop_label(generated)
    report = judge(generated)
    assert report.levels["completeness"] == 1
    assert report.route == "review"


@pytest.mark.parametrize("defect", [black, grey, nan_image], ids=["black", "grey", "nan"])
def test_blank_image_is_rejected(defect: Callable[[GeneratedSample], None]) -> None:
    generated = scene()
    defect(generated)
    assert judge(generated).route == "rejected"


def test_occluded_object_in_ignore_region_is_not_unlabelled() -> None:
    # The back object is 90 % covered: too occluded to label, its visible pixels go to ignore.
    generated = scene(placed=[("circle", rect(10, 30, 10, 40)), ("square", rect(10, 30, 13, 40))])
    assert len(generated.sample.objects) == 1
    assert not any(f.criterion == "completeness" for f in judge(generated).findings)


def test_distinct_objects_of_one_class_are_not_duplicates() -> None:
    generated = scene(placed=[("circle", rect(10, 30, 10, 40)), ("circle", rect(20, 40, 25, 55))])
    report = judge(generated)
    assert not [f for f in report.findings if f.check == "correctness_duplicate_boxes"]
    assert report.measurements["duplicate_iou"] < 0.5


def test_crowd_regions_are_not_duplicates_of_their_members() -> None:
    generated = scene(placed=[("circle", rect(10, 40, 10, 60)), ("circle", rect(12, 30, 12, 40))])
    generated.sample.objects[0].attributes["iscrowd"] = True
    checks = {f.check for f in judge(generated).findings}
    assert "correctness_duplicate_boxes" not in checks and "clarity_crowd_regions" in checks


def test_a_crowd_region_labelled_twice_is_a_duplicate() -> None:
    """Crowd regions were left out of the duplicate check: the same region twice (a file merged
    with itself, an export run twice) was found by nothing."""
    generated = scene(placed=[("circle", rect(10, 40, 10, 60)), ("circle", rect(12, 30, 12, 40))])
    generated.sample.objects[0].attributes["iscrowd"] = True
    generated.sample.objects.append(generated.sample.objects[0].model_copy(deep=True))
    hits = [f for f in judge(generated).findings if f.check == "correctness_duplicate_boxes"]
    assert [(f.object_index, f.level) for f in hits] == [(2, 1)]
    assert "mask IoU 1.00 with object 0" in hits[0].message


def test_the_crowd_finding_says_how_to_get_instances() -> None:
    """CVAT's COCO export marks every mask as a crowd region: the finding named no way out."""
    generated = scene()
    crowd(generated)
    (finding,) = [f for f in judge(generated).findings if f.check == "clarity_crowd_regions"]
    assert "COCOeval ignores crowd regions" in finding.message
    assert "--segmentation-mode polygons" in finding.message


def test_near_duplicate_within_the_batch_is_flagged_once() -> None:
    context = ValidationContext.for_taxonomy(TAXONOMY)
    first, other, copy = scene(1), scene(2), scene(1)
    copy.sample.id = "img-copy"
    assert not [f for f in judge(first, context).findings if f.check == "clarity_near_duplicate"]
    assert not [f for f in judge(other, context).findings if f.check == "clarity_near_duplicate"]
    hits = [f for f in judge(copy, context).findings if f.check == "clarity_near_duplicate"]
    assert len(hits) == 1 and hits[0].level == 1 and "img-1" in hits[0].message
    # Judging the same sample again (a redelivered task) is not a duplicate of itself.
    assert not [f for f in judge(first, context).findings if f.check == "clarity_near_duplicate"]


def test_copy_of_a_reference_image_fails_correctness(tmp_path: Path) -> None:
    generated = scene(5)
    assert generated.pixels is not None
    Image.fromarray(generated.pixels).save(tmp_path / "real-0001.png")
    Image.fromarray(scene(6).pixels).save(tmp_path / "real-0002.png")  # type: ignore[arg-type]
    context = ValidationContext.for_taxonomy(
        TAXONOMY, reference=reference_index(image_files(tmp_path))
    )
    report = judge(generated, context)
    hits = [f for f in report.findings if f.check == "correctness_reference_copy"]
    assert hits and hits[0].level == 1 and "real-0001.png" in hits[0].message
    assert report.levels["correctness"] == 1
    assert not [f for f in judge(scene(7), context).findings if f.check == hits[0].check]


def test_reference_images_of_every_mode_hash_as_their_rgb_pixels(tmp_path: Path) -> None:
    """A reference file is decoded once (an RGB file is not copied to be converted), and hashes
    as its RGB pixels do; a file that is no image is skipped."""
    pixels = scene(5).pixels
    assert pixels is not None
    image = Image.fromarray(pixels)
    image.save(tmp_path / "rgb.jpg", quality=90)
    image.convert("L").save(tmp_path / "grey.png")
    image.convert("P").save(tmp_path / "palette.png")
    image.convert("RGBA").save(tmp_path / "alpha.png")
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    files = image_files(tmp_path)
    index = reference_index(iter(files))  # any iterable of paths
    assert len(index) == 4 and "broken.jpg" not in index
    for path in files:
        if path.name != "broken.jpg":
            with Image.open(path) as opened:
                rgb = np.asarray(opened.convert("RGB"))
            value, colour = fingerprint(rgb)
            assert index.nearest(value, colour, colour_tolerance=0) == (0, path.name)


def test_missing_inputs_yield_no_findings() -> None:
    """A real COCO file without images: no pixels, no foreground, no taxonomy."""
    generated = scene()
    generated.pixels = generated.foreground = generated.ignore = None
    generated.sample.objects[0].category = "anything"
    report = judge_sample(generated, RUBRIC, ValidationContext())
    assert report.findings == [] and report.route == "accepted"
    assert "laplacian_variance" not in report.measurements


def test_unreadable_image_is_a_finding_not_a_crash() -> None:
    generated = scene()
    generated.pixels = None
    generated.extras["image_error"] = "x.jpg not found under /images"
    report = judge(generated)
    assert report.levels["correctness"] == 1
    assert any("not found" in f.message for f in report.findings)


def test_sharpness_counts_colour_only_edges_at_half_size() -> None:
    """A crisp shape that differs from its background in hue only: its luminance is flat, so a
    grey-only measure reads it as blurred; the sharpest colour channel does not. A soft version
    of the same scene (blurred 4 px: the contrast is extreme) is not gold."""
    pixels = np.zeros((H, W, 3), dtype=np.uint8)
    pixels[...] = (0, 150, 0)  # green
    pixels[16:48, 24:72] = (255, 0, 104)  # the green's luminance, another hue
    luminance = pixels.astype(float) @ [0.299, 0.587, 0.114]
    assert np.ptp(luminance) < 2  # a grey image would be flat
    sharp = sharpness(pixels, edge_level=8, min_edge_px=16)
    soft = cv2.GaussianBlur(pixels, (0, 0), 4)
    blurred = sharpness(soft, edge_level=8, min_edge_px=16)
    assert yaml_level("clarity_image_quality", "laplacian_variance", sharp) == 5
    assert yaml_level("clarity_image_quality", "laplacian_variance", blurred) < 5
    # Read at half size (pixel areas averaged), channel by channel.
    half = cv2.resize(pixels, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    assert sharp == max(
        edge_laplacian_variance(half[..., c], edge_level=8, min_edge_px=16) for c in range(3)
    )


@settings(max_examples=300, deadline=None)
@given(
    shape=st.tuples(st.integers(3, 40), st.integers(3, 40)),
    seed=st.integers(0, 2**32 - 1),
    smooth=st.booleans(),
    edge_level=st.sampled_from([0, 1, 8, 8.5, 40, 300, 511]),
    min_edge_px=st.integers(0, 50),
)
def test_the_8_bit_laplacian_variance_is_the_formula_to_the_last_bit(
    shape: tuple[int, int], seed: int, smooth: bool, edge_level: float, min_edge_px: int
) -> None:
    """The OpenCV path for 8-bit channels (the one images take) against the general path, which
    spells the definition out in numpy (given the same values as floats): the same float, bit
    for bit, with many edges, few (the whole-image fallback) and none."""
    rng = np.random.default_rng(seed)
    channel = rng.integers(0, 256, shape, dtype=np.uint8)
    if smooth:  # few edges, or none
        channel = np.full(shape, rng.integers(0, 256), dtype=np.uint8)
        channel[: shape[0] // 2] += rng.integers(0, 3, (shape[0] // 2, shape[1]), dtype=np.uint8)
    as_floats = channel.astype(np.float32)
    expected = edge_laplacian_variance(as_floats, edge_level=edge_level, min_edge_px=min_edge_px)
    for given_channel in (channel, np.stack([channel] * 3, axis=-1)[..., 1]):  # and a strided one
        got = edge_laplacian_variance(given_channel, edge_level=edge_level, min_edge_px=min_edge_px)
        assert got == expected


def test_checks_without_their_inputs_are_not_called() -> None:
    """A label-only sample: the pixel and foreground checks declare they do not apply."""
    generated = scene()
    generated.pixels = generated.foreground = generated.ignore = None
    item = CheckInput.of(generated, ValidationContext())
    skipped = {
        name
        for name, check in CHECKS.items()
        if check.applies is not None and not check.applies(item)
    }
    assert {
        "clarity_image_quality",
        "correctness_image_valid",
        "correctness_reference_copy",
        "completeness_unlabelled_foreground",
    } <= skipped
    for name in skipped:  # called anyway, they would measure nothing
        assert list(CHECKS[name].fn(item, CHECKS[name].defaults)) == []
    generated.extras["image_error"] = "x.png not found"
    applies = CHECKS["correctness_image_valid"].applies
    assert applies is not None and applies(CheckInput.of(generated, ValidationContext()))


def test_one_pillow_image_per_sample_serves_fingerprint_and_luminance(monkeypatch) -> None:
    """The pixel checks make the sample's Pillow image once (it was made twice), and judge as
    with an image of their own each."""
    made = []

    def counted(pixels: np.ndarray) -> Image.Image:
        made.append(pixels.shape)
        return quality_rgb_image(pixels)

    quality_rgb_image = quality.rgb_image
    monkeypatch.setattr(quality, "rgb_image", counted)
    generated, context = scene(), ValidationContext.for_taxonomy(TAXONOMY)
    report = judge(generated, context)
    assert made == [generated.pixels.shape]
    assert len(context.batch_hashes) == 1  # the fingerprint was taken
    assert report.measurements["clipped_percent"] == 0  # the luminance was measured
    pixels = generated.pixels
    own, shared = fingerprint(pixels), fingerprint(pixels, quality_rgb_image(pixels))
    assert own[0] == shared[0] and np.array_equal(own[1], shared[1])
    assert np.array_equal(gray_8bit(pixels), gray_8bit(pixels, quality_rgb_image(pixels)))


@pytest.mark.parametrize(
    ("pasted", "said"),
    [(False, "a background object pastes left"), (True, "a pasted instance that later pastes")],
)
def test_copy_pastes_own_crowd_regions_say_why_not_relabel(pasted: bool, said: str) -> None:
    """copy_paste writes an object its pastes left too hidden as a crowd region: the finding
    told the user to relabel it in CVAT or datumaro, which made no such region."""
    generated = scene()
    crowd(generated)
    generated.sample.objects[0].attributes["pasted"] = pasted
    (finding,) = [f for f in judge(generated).findings if f.check == "clarity_crowd_regions"]
    assert said in finding.message and "visible, too little to be an instance" in finding.message
    assert "CVAT" not in finding.message


# (visible fraction of a crowd region copy_paste wrote, how its finding says it): a share
# rounded to 0 % or 100 % read as none or all of it visible, and neither is what made it one.
CROWD_SHARE_CASES = [
    (0.003, "left <1% visible"),
    (0.0049, "left <1% visible"),
    (0.006, "left 1% visible"),
    (0.2, "left 20% visible"),
    (0.994, "left 99% visible"),
    (0.996, "left >99% visible"),
]


@pytest.mark.parametrize(("fraction", "said"), CROWD_SHARE_CASES)
def test_a_crowd_regions_visible_share_never_reads_as_none_or_all(
    fraction: float, said: str
) -> None:
    generated = scene()
    crowd(generated)
    generated.sample.objects[0].attributes["pasted"] = True
    generated.sample.objects[0].visible_fraction = fraction
    (finding,) = [f for f in judge(generated).findings if f.check == "clarity_crowd_regions"]
    assert said in finding.message, finding.message


# (visible fraction of an occluded object, how clarity_visible_fraction's finding says it): as
# the crowd regions' share, never "0%" for an object that shows some pixels
VISIBLE_SHARE_CASES = [
    (0.003, "<1% of the object is visible"),
    (0.006, "1% of the object is visible"),
    (0.3, "30% of the object is visible"),
]


@pytest.mark.parametrize(("fraction", "said"), VISIBLE_SHARE_CASES)
def test_an_occluded_objects_visible_share_never_reads_as_none(fraction: float, said: str) -> None:
    generated = scene()
    generated.sample.objects[0].visible_fraction = fraction
    found = [f for f in judge(generated).findings if f.check == "clarity_visible_fraction"]
    assert [f.message.split(" (")[0] for f in found] == [said], found
