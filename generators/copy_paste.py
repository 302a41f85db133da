"""The `copy_paste` image generator: real instances pasted into other real images (Simple Copy-Paste).

`CopyPasteGenerator(config, categories=[...], dataset=None).generate(specs)` makes one image per
`SampleSpec`: it picks a real background image, cuts `instances_per_image` instances of
`spec.category` out of *other* real images by their masks (polygons or RLE; crowd regions are
never used, and images holding crowd regions are never backgrounds, as their pixels cannot be
labelled), resizes each by a factor from `scale_range` (large-scale jitter), flips it at random,
and pastes it with a hard mask, so the pasted pixels are exactly its label. The background's
own objects keep their labels, cut down to what the pasted instances leave visible: their masks
and boxes are recomputed, and an object (real or pasted) left with less than
`min_visible_fraction` of its pixels is written as a crowd region over its visible pixels
(`iscrowd`: 1), which COCOeval and trainers ignore, as the judge ignores them (`ignore`): left
unlabelled, a detector would learn them as background. Jitter applies to the pasted instances
only; the background keeps its size, so its untouched labels stay exact. Images synthgate made (a
dataset balanced before) are neither sources nor backgrounds while real ones can be. A balance
hands the whole plan to `assign_sources` first, which picks each sample's background so that
the backgrounds' own objects push no class past its target where it can be avoided.

It needs no model, which makes it the default generator for balancing an image dataset.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np
from PIL import Image

from synthgate.config import CopyPasteImageConfig
from synthgate.errors import InputError
from synthgate.formats.coco_checks import check_coco
from synthgate.formats.coco_reader import read_coco_streaming
from synthgate.formats.image_files import open_rgb
from synthgate.generators.labels import PlacedObject, crowd_label, labels_from_masks
from synthgate.masks import (
    annotation_mask,
    blank_mask,
    encode_mask,
    has_segmentation,
    tight_bbox,
)
from synthgate.samples import (
    GeneratedSample,
    ObjectLabel,
    Provenance,
    Sample,
    SampleSpec,
    sample_id,
)

PLACEMENT_TRIES = 8  # candidate places per size
SHRINK_TRIES = 3  # sizes tried when every place covers an instance pasted before
# Decoded real images kept per generator: the whole dataset when it fits (a balance of COCO
# val's 5k images does), else the most recently used within this many bytes.
IMAGE_CACHE_BYTES = 1 << 30
# Instances are pasted again and again (a rare class has few), backgrounds come back: their
# masks and cut-outs are kept too, within this many bytes.
CUT_CACHE_BYTES = 256 << 20


def _least_overlap(
    rng: np.random.Generator, taken: np.ndarray, patch: np.ndarray
) -> tuple[int, int, int]:
    """(pixels covered, left, top) of the candidate place covering least of `taken`."""
    height, width = taken.shape
    best: tuple[int, int, int] | None = None
    for _ in range(PLACEMENT_TRIES):
        left = int(rng.integers(0, width - patch.shape[1] + 1))
        top = int(rng.integers(0, height - patch.shape[0] + 1))
        overlap = int(
            (taken[top : top + patch.shape[0], left : left + patch.shape[1]] & patch).sum()
        )
        if best is None or overlap < best[0]:
            best = (overlap, left, top)
        if overlap == 0:
            break
    assert best is not None
    return best


def is_source(annotation: dict[str, Any], *, min_source_area: int) -> bool:
    """Whether an annotation can be cut out: not a crowd, with a mask big enough to see."""
    _, _, w, h = annotation["bbox"]
    area = annotation.get("area")  # COCO files may leave it out or null: the box's then
    return (
        not annotation.get("iscrowd", 0)
        and has_segmentation(annotation)
        and float(w * h if area is None else area) >= min_source_area
        and min(w, h) >= 2
    )


def is_synthetic(image: dict[str, Any]) -> bool:
    """Whether a COCO image is a synthetic one synthgate made (its `synthgate` block says so, as
    in a merge or balance output, or a run's coco.json)."""
    block = image.get("synthgate")
    return isinstance(block, dict) and block.get("synthetic") is True


def source_categories(dataset: dict[str, Any], *, min_source_area: int) -> set[str]:
    """The classes copy-paste can raise: those with at least one instance to cut out."""
    names = {c["id"]: c["name"] for c in dataset["categories"]}
    return {
        names[a["category_id"]]
        for a in dataset["annotations"]
        if is_source(a, min_source_area=min_source_area)
    }


class _Cache:
    """Values by key; past `budget` bytes the least recently used go (the newest always stays)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._values: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0

    def get(self, key: Any) -> Any:
        found = self._values.get(key)
        if found is None:
            return None
        self._values.move_to_end(key)
        return found[0]

    def put(self, key: Any, value: Any, size: int) -> None:
        self._values[key] = (value, size)
        self._bytes += size
        while self._bytes > self.budget and len(self._values) > 1:
            self._bytes -= self._values.popitem(last=False)[1][1]


@dataclass(frozen=True)
class _Cut:
    """A source instance cut out of its image: its tight box, pixels and mask (as images)."""

    box: tuple[int, int, int, int]
    pixels: Image.Image
    mask: Image.Image


class _Positions:
    """Which places of an order are still open (a Fenwick tree): the r-th open one in O(log n)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.open = [True] * size
        self._tree = [0] * (size + 1)
        for i in range(1, size + 1):  # every place open: each node counts its span
            self._tree[i] += 1
            parent = i + (i & -i)
            if parent <= size:
                self._tree[parent] += self._tree[i]
        self.count = size

    def add(self, place: int, change: int) -> None:
        self.count += change
        i = place + 1
        while i <= self.size:
            self._tree[i] += change
            i += i & -i

    def close(self, place: int) -> None:
        if self.open[place]:
            self.open[place] = False
            self.add(place, -1)

    def find(self, rank: int) -> int:
        """The place of the open one with `rank` open ones before it."""
        place, step = 0, 1 << self.size.bit_length()
        while step:
            if place + step <= self.size and self._tree[place + step] <= rank:
                place += step
                rank -= self._tree[place]
            step >>= 1
        return place


class CopyPasteGenerator:
    """Pastes real instances of the quota class into real backgrounds; labels by construction.

    `dataset` (a COCO mapping already checked, e.g. by the balance command) is injected; when it
    is left out the generator reads and strictly checks `config.coco` itself.
    """

    name: ClassVar[str] = "copy_paste"
    version: ClassVar[str] = "1"
    modality: ClassVar[str] = "image"
    chunk_size: ClassVar[int] = 4

    def __init__(
        self,
        config: CopyPasteImageConfig,
        *,
        categories: list[str],
        dataset: dict[str, Any] | None = None,
        cache_bytes: int = IMAGE_CACHE_BYTES,
    ) -> None:
        self.config = config
        if dataset is None:
            data = read_coco_streaming(config.coco)
            dataset = check_coco(
                data, source=config.coco, images_dir=config.images, can_skip=False
            ).data
        self.images = {image["id"]: image for image in dataset["images"]}
        self.category_names = {c["id"]: c["name"] for c in dataset["categories"]}
        self.annotations_of: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for annotation in dataset["annotations"]:
            self.annotations_of[annotation["image_id"]].append(annotation)
        self.sources: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for annotation in dataset["annotations"]:
            if is_source(annotation, min_source_area=config.min_source_area):
                self.sources[self.category_names[annotation["category_id"]]].append(annotation)
        backgrounds = [
            image_id
            for image_id in self.images
            if not any(a.get("iscrowd", 0) for a in self.annotations_of[image_id])
            and all(map(has_segmentation, self.annotations_of[image_id]))
        ]
        # A dataset balanced before holds synthetic images (marked by the merge): instances are
        # cut from, and pasted into, its real images, or a second balance pastes copies of
        # pasted copies (resampled twice, their provenance naming a copy) onto earlier pastes.
        # Synthetic images serve only a class, or a dataset, that has no real one.
        synthetic = {image_id for image_id, image in self.images.items() if is_synthetic(image)}
        for name, pool in self.sources.items():
            real = [a for a in pool if a["image_id"] not in synthetic]
            self.sources[name] = real or pool
        self.backgrounds = [i for i in backgrounds if i not in synthetic] or backgrounds
        if not self.backgrounds:
            raise InputError(
                f"{config.coco}: every image holds a crowd region or an annotation without a "
                "segmentation, so none can be a copy-paste background; add plain images"
            )
        wanted = categories or sorted(self.sources)
        self.categories = [name for name in wanted if self.sources.get(name)]
        self.unavailable = [name for name in wanted if not self.sources.get(name)]
        # A sample holds its background's own objects too, of any class of the dataset: each
        # is a label of the task (the judge's taxonomy), not a class it does not know.
        self.label_names = list(dict.fromkeys([*wanted, *self.category_names.values()]))
        if not self.categories:  # nothing to paste: every sample's quota would be empty
            have = ", ".join(sorted(self.sources)[:12]) or "none"
            raise InputError(
                f"{config.coco}: no instance to cut of any class asked for "
                f"({', '.join(wanted) or 'none'}): each needs a non-crowd annotation with a mask "
                f"of at least {config.min_source_area} px; classes that have one: {have}"
            )
        # Background choice reads these instead of filtering and sorting every background per
        # sample: where each background stands, in image order and in order of fewest objects
        # (a stable sort: ties keep image order).
        self._background_at = {image_id: i for i, image_id in enumerate(self.backgrounds)}
        self._fewest_first = sorted(self.backgrounds, key=lambda i: len(self.annotations_of[i]))
        self._fewest_at = {image_id: i for i, image_id in enumerate(self._fewest_first)}
        self._classes_of: dict[Any, Counter[str]] = {}  # filled by assign_sources
        self._images = _Cache(cache_bytes)
        self._cuts = _Cache(CUT_CACHE_BYTES)
        self.decoded = 0  # images read from disk so far (the cache's misses)

    def quota_categories(self) -> list[str | None]:
        return list(self.categories)

    def generate(self, specs: list[SampleSpec]) -> list[GeneratedSample]:
        return [self._generate_one(spec) for spec in specs]

    def _pixels(self, image_id: Any) -> np.ndarray:
        """The RGB pixels of a real image, checked against the size its entry states."""
        entry = self.images[image_id]
        path = Path(self.config.images) / entry["file_name"]
        pixels = self._images.get(str(path))
        if pixels is None:
            pixels = self._read(path, image_id, (entry["width"], entry["height"]))
            self._images.put(str(path), pixels, pixels.nbytes)
        if pixels.shape[:2] != (entry["height"], entry["width"]):
            raise InputError(
                f"{path}: image {image_id!r} is {pixels.shape[1]}x{pixels.shape[0]} but the COCO "
                f"file says {entry['width']}x{entry['height']}; fix width/height"
            )
        return pixels

    def _read(self, path: Path, image_id: Any, size: tuple[int, int]) -> np.ndarray:
        """The image in the frame its labels of `size` were drawn in, as RGB, as validate reads
        it (formats/image_files.py)."""
        image, error = open_rgb(path, size=size)
        if error is not None:
            raise InputError(f"{path}: cannot read image {image_id!r} ({error})")
        self.decoded += 1
        return np.asarray(image)

    def _mask(self, annotation: dict[str, Any]) -> np.ndarray:
        """An annotation's mask over its image (read-only: cached)."""
        key = ("mask", annotation["id"])
        mask = self._cuts.get(key)
        if mask is None:
            entry = self.images[annotation["image_id"]]
            mask = annotation_mask(annotation, entry["height"], entry["width"])
            mask.setflags(write=False)
            self._cuts.put(key, mask, mask.nbytes)
        return mask

    def _cut(self, annotation: dict[str, Any]) -> _Cut:
        """A source instance cut out by its mask, to its tight box (cached)."""
        key = ("cut", annotation["id"])
        cut = self._cuts.get(key)
        if cut is not None:
            return cast(_Cut, cut)
        source = self.images[annotation["image_id"]]
        mask = self._mask(annotation)
        x, y, w, h = (int(v) for v in tight_bbox(mask))
        if w == 0 or h == 0:  # a polygon too thin to cover a pixel: paste its box instead
            bx, by, bw, bh = annotation["bbox"]  # a box may reach out of its image: clamped
            x = min(max(int(bx), 0), source["width"] - 1)
            y = min(max(int(by), 0), source["height"] - 1)
            w, h = max(1, round(bw)), max(1, round(bh))
            mask = mask.copy()
            mask[y : y + h, x : x + w] = True
            w, h = mask[y : y + h, x : x + w].shape[1], mask[y : y + h, x : x + w].shape[0]
        crop = self._pixels(annotation["image_id"])[y : y + h, x : x + w]
        cut = _Cut((x, y, w, h), Image.fromarray(crop), Image.fromarray(mask[y : y + h, x : x + w]))
        self._cuts.put(key, cut, 4 * w * h)
        return cut

    def _background(self, rng: np.random.Generator, used: set[Any]) -> Any:
        """A background image: not one the instances come from (unless every one is), drawn at
        random, or from the quarter with the fewest objects (`fewest_objects`).

        The same draw as picking from the list of candidates itself: the r-th candidate is the
        r-th entry of the precomputed order once the used images before it are skipped.
        """
        fewest = self.config.background == "fewest_objects"
        order, at = (
            (self._fewest_first, self._fewest_at)
            if fewest
            else (self.backgrounds, self._background_at)
        )
        skipped = sorted(at[i] for i in used if i in at)
        if len(skipped) == len(order):  # every background holds a picked instance
            skipped = []
        count = len(order) - len(skipped)
        if fewest:
            count = max(1, count // 4)
        position = int(rng.integers(count))
        for place in skipped:
            if place > position:
                break
            position += 1
        return order[position]

    def assign_sources(self, specs: list[SampleSpec]) -> list[SampleSpec]:
        """A whole plan's specs (balance's: `instances` of a class each), each with the background
        it pastes on (params `background`) and how many instances it pastes, so that no class
        ends past its target because of the backgrounds' own objects.

        The plan adds exactly each class's deficit, so a background's objects are more than the
        target asks for: of a class the plan does not raise (at or over its target), always; of
        one it raises, unless that class's later samples paste fewer instances (down to one
        each). So the draw is made among the backgrounds whose objects still fit: per class, what
        its plan adds less what its samples so far pasted and their backgrounds brought, less
        one for each sample of it still to come; a sample's own class's objects on its
        background take the place of pasted instances. The draw is the one `_background` makes,
        over the backgrounds that fit, in O(log n) (backgrounds drop out, never come back, as
        room only shrinks). Where none fits (every one holds an object of a class at its
        target), of `PLACEMENT_TRIES` drawn as `_background` draws, the one whose objects go
        least past the targets, an object weighing more the further past its class already is:
        what cannot be avoided is spread over classes and backgrounds. Deterministic from each
        spec's seed. Drawn per sample, a few sparse backgrounds came back again and again, each
        bringing its own objects: a class of target 3 ended at 15, one bear copied 13 times.
        """
        planned: Counter[str] = Counter()
        remaining: Counter[str] = Counter()
        for spec in specs:
            if self._assignable(spec):
                planned[str(spec.category)] += int(spec.params["instances"])
                remaining[str(spec.category)] += 1
        if not planned:
            return specs
        if not self._classes_of:  # each background's objects per class (a plan needs them)
            self._classes_of = {
                image_id: Counter(
                    self.category_names[a["category_id"]] for a in self.annotations_of[image_id]
                )
                for image_id in self.backgrounds
            }
        fewest = self.config.background == "fewest_objects"
        order, at = (
            (self._fewest_first, self._fewest_at)
            if fewest
            else (self.backgrounds, self._background_at)
        )
        committed: Counter[str] = Counter()
        fits = _Positions(len(order))
        # per class: (its objects, place) of the backgrounds holding it, the most first
        holding: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for place, image_id in enumerate(order):
            for name, objects in self._classes_of[image_id].items():
                holding[name].append((objects, place))
        for places in holding.values():
            places.sort(key=lambda entry: -entry[0])
        dropped: Counter[str] = Counter()

        def room(name: str) -> int:
            return planned[name] - committed[name] - remaining[name]

        def shrink(name: str) -> None:  # backgrounds with more of `name` than fits: out
            places = holding.get(name, [])
            while dropped[name] < len(places) and places[dropped[name]][0] > room(name):
                fits.close(places[dropped[name]][1])
                dropped[name] += 1

        def past_targets(image_id: Any) -> int:
            """How far a background's objects push classes past their targets, each object
            weighing more the further past its class already is (so that excess is spread)."""
            cost = 0
            for name, objects in self._classes_of[image_id].items():
                left = room(name)
                cost += max(0, objects - max(left, 0)) * (1 + max(0, -left))
            return cost

        for name in holding:
            shrink(name)
        assigned = []
        for spec in specs:
            if not self._assignable(spec):
                assigned.append(spec)
                continue
            category = str(spec.category)
            rng = np.random.default_rng(spec.seed)
            asked = int(spec.params["instances"])
            pool = self.sources[category]
            picks = [pool[int(rng.integers(len(pool)))] for _ in range(asked)]
            used = sorted({at[a["image_id"]] for a in picks if a["image_id"] in at})
            held = [place for place in used if fits.open[place]]
            for place in held:  # an instance's own image is no background: out for this draw
                fits.add(place, -1)
            count = fits.count
            chosen = None
            if count:
                position = int(rng.integers(max(1, count // 4) if fewest else count))
                chosen = order[fits.find(position)]
            for place in held:
                fits.add(place, 1)
            if chosen is None:  # nothing fits: of a few drawn, the one least past the targets
                span = max(1, len(order) // 4) if fewest else len(order)
                sources = {a["image_id"] for a in picks}
                best: tuple[int, Any] | None = None
                for _ in range(PLACEMENT_TRIES):
                    candidate = order[int(rng.integers(span))]
                    if candidate in sources:
                        continue
                    cost = past_targets(candidate)
                    if best is None or cost < best[0]:
                        best = (cost, candidate)
                chosen = best[1] if best is not None else self._background(rng, sources)
            background_id = chosen
            own = self._classes_of[chosen][category]
            needed = planned[category] - committed[category] - own
            pastes = max(1, min(asked - own, needed - (remaining[category] - 1)))
            params = {**spec.params, "instances": pastes, "background": chosen}
            committed[category] += pastes
            remaining[category] -= 1
            committed.update(self._classes_of[background_id])
            for name in {category, *self._classes_of[background_id]}:
                shrink(name)
            assigned.append(spec.model_copy(update={"params": params}))
        return assigned

    def _assignable(self, spec: SampleSpec) -> bool:
        """Whether a spec is one of a plan `assign_sources` chooses the background of."""
        return (
            spec.category is not None
            and bool(self.sources.get(spec.category))
            and type(spec.params.get("instances")) is int
            and int(spec.params["instances"]) >= 1
        )

    def _generate_one(self, spec: SampleSpec) -> GeneratedSample:
        config = self.config
        rng = np.random.default_rng(spec.seed)
        category = spec.category or self.categories[int(rng.integers(len(self.categories)))]
        pool = self.sources.get(category)
        if not pool:
            raise InputError(
                f"copy_paste: no instance of {category!r} with a mask of at least "
                f"{config.min_source_area} px in {config.coco}; lower image.min_source_area "
                "or use a generator that needs no real instance (diffusion)"
            )
        low, high = config.instances_per_image
        # a plan's count is given: no draw for it, so these picks are the first of those the plan
        # drew (`assign_sources`), whose images it kept the background off
        given = spec.params.get("instances")
        count = int(given) if given is not None else int(rng.integers(low, high + 1))
        picks = [pool[int(rng.integers(len(pool)))] for _ in range(count)]
        own = {a["image_id"] for a in picks}  # an instance's own image is no background
        background_id = spec.params.get("background")  # drawn for the whole plan
        if (
            not isinstance(background_id, int | str)
            or background_id not in self._background_at
            or background_id in own
        ):
            background_id = self._background(rng, own)
        background = self.images[background_id]
        height, width = background["height"], background["width"]
        canvas = self._pixels(background_id).copy()

        placed: list[PlacedObject] = []
        pasted_params = []
        taken = blank_mask(height, width)  # what the instances pasted so far cover
        for annotation in picks:
            obj, params = self._paste(rng, canvas, annotation, category, taken)
            taken |= obj.full_mask
            placed.append(obj)
            pasted_params.append(params)
        pasted = labels_from_masks(
            placed,
            shape=(height, width),
            min_visible_fraction=config.min_visible_fraction,
            hidden_as_crowd=True,
        )
        kept, visible, ignore, dropped = self._background_labels(background_id, pasted.foreground)
        foreground = pasted.foreground | visible
        ignore |= pasted.ignore

        key = sample_id(spec.batch_id, "image", spec.index)
        sample = Sample(
            id=key,
            spec=spec,
            uri=f"images/{key}.png",
            width=width,
            height=height,
            objects=[*kept, *pasted.objects],
            attributes=dict(spec.attributes),
            provenance=Provenance(
                generator=self.name,
                generator_version=self.version,
                seed=spec.seed,
                params={
                    "coco": Path(config.coco).name,
                    "background_image_id": background_id,
                    "background_file": background["file_name"],
                    "pasted": pasted_params,
                    "scale_range": list(config.scale_range),
                    "min_visible_fraction": config.min_visible_fraction,
                    "background_mode": config.background,
                    "background_labels_dropped": dropped,
                },
            ),
        )
        return GeneratedSample(
            sample=sample,
            pixels=canvas,
            foreground=foreground,
            ignore=ignore,
            extras={"hidden": pasted.hidden + len(dropped), "placed": count},
        )

    def _paste(
        self,
        rng: np.random.Generator,
        canvas: np.ndarray,
        annotation: dict[str, Any],
        category: str,
        taken: np.ndarray,
    ) -> tuple[PlacedObject, dict[str, Any]]:
        """Cut one instance by its mask, jitter its scale, paste it at a random place (in place);
        `taken`: the pixels the instances pasted before it cover."""
        cut = self._cut(annotation)
        _x, _y, w, h = cut.box
        height, width = canvas.shape[:2]
        scale = float(rng.uniform(*self.config.scale_range))
        scale = max(scale, self.config.min_pasted_size / min(w, h))  # big enough to recognise
        scale = min(scale, width / w, height / h)  # never larger than the background
        flip = bool(rng.random() < self.config.flip_probability)
        # Where the instance would cover others pasted before it (a large instance pasted
        # several times), it is shrunk and placed again, so a sample's own instances rarely
        # hide each other.
        for _ in range(SHRINK_TRIES):
            new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
            patch = cut.pixels.resize((new_w, new_h), Image.Resampling.BILINEAR)
            patch_mask = cut.mask.resize((new_w, new_h), Image.Resampling.NEAREST)
            patch_pixels, patch_alpha = np.asarray(patch), np.asarray(patch_mask).astype(bool)
            if flip:
                patch_pixels, patch_alpha = patch_pixels[:, ::-1], patch_alpha[:, ::-1]
            if not patch_alpha.any():  # nearest-neighbour shrink can miss a thin mask
                patch_alpha = np.ones_like(patch_alpha)
            overlap, left, top = _least_overlap(rng, taken, patch_alpha)
            if overlap == 0 or min(new_w, new_h) * 0.6 < self.config.min_pasted_size:
                break
            scale *= 0.6
        region = canvas[top : top + new_h, left : left + new_w]
        region[patch_alpha] = patch_pixels[patch_alpha]
        full_mask = blank_mask(height, width)
        full_mask[top : top + new_h, left : left + new_w] = patch_alpha
        params = {
            "source_annotation_id": annotation["id"],
            "source_image_id": annotation["image_id"],
            "scale": round(scale, 4),
            "flip": flip,
            "position": [left, top],
        }
        attributes = {"source_annotation_id": annotation["id"], "pasted": True}
        return PlacedObject(category=category, full_mask=full_mask, attributes=attributes), params

    def _background_labels(
        self, image_id: Any, pasted: np.ndarray
    ) -> tuple[list[ObjectLabel], np.ndarray, np.ndarray, list[Any]]:
        """The background's own labels, cut down to what the pasted instances leave visible
        (crowd regions for those left too hidden, their ids in the last value), the pixels they
        cover, and the pixels to ignore (the crowd regions').

        Real objects overlap one another in their annotations (a person on a chair); only the
        pasted pixels occlude them here, so their masks are never cut by each other.
        """
        entry = self.images[image_id]
        height, width = entry["height"], entry["width"]
        kept: list[ObjectLabel] = []
        labelled = blank_mask(height, width)
        ignore = blank_mask(height, width)
        dropped: list[Any] = []
        for annotation in self.annotations_of[image_id]:
            category = self.category_names[annotation["category_id"]]
            full = self._mask(annotation)
            full_area = int(full.sum())
            attributes = {"source_annotation_id": annotation["id"], "pasted": False}
            if full_area == 0:  # rasterises to nothing: keep the real box as it was
                kept.append(
                    ObjectLabel(
                        category=category,
                        bbox=[float(v) for v in annotation["bbox"]],
                        area=float(annotation.get("area", 0.0)),
                        attributes=attributes,
                    )
                )
                continue
            visible = full & ~pasted
            area = int(visible.sum())
            fraction = area / full_area
            if area == 0 or fraction < self.config.min_visible_fraction:
                dropped.append(annotation["id"])
                if area:
                    ignore |= visible
                    labelled |= visible
                    kept.append(crowd_label(category, visible, fraction, attributes))
                continue
            labelled |= visible
            kept.append(
                ObjectLabel(
                    category=category,
                    bbox=tight_bbox(visible),
                    mask=encode_mask(visible),
                    area=float(area),
                    visible_fraction=round(fraction, 6),
                    attributes=attributes,
                )
            )
        return kept, labelled, ignore, dropped
