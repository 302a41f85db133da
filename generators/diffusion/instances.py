"""The X-Paste instance pool: single objects generated, segmented, filtered and kept per category.

An instance is named by `InstanceKey(category, prompt, slot)`: slot k of a prompt's pool is always
made from the same seeds (attempt 0, 1, … until one passes the filters), so what a sample pastes
depends only on which slots it drew, never on what ran before it or in its batch. `InstancePool`
generates missing instances in pipeline batches, keeps them in memory and, when `pool_dir` is
set, on disk (RGBA PNG, alpha = mask, plus a JSON of how it was made), shared across runs of
the same model settings.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from synthgate.config import DiffusionObjectPasteConfig
from synthgate.errors import InputError
from synthgate.files import write_atomic
from synthgate.generators.diffusion.clip import ClipScorer
from synthgate.generators.diffusion.common import fill_template
from synthgate.generators.diffusion.models import LoadedModel, run_pipeline
from synthgate.generators.diffusion.segment import Segmenter, apply_segmenter, largest_component


@dataclass(frozen=True)
class InstanceKey:
    category: str
    prompt: str
    slot: int


@dataclass
class Instance:
    """One accepted object: its pixels and mask, cropped to the mask's box, and how it was made."""

    rgb: np.ndarray  # hxwx3 uint8
    mask: np.ndarray  # hxw bool
    facts: dict[str, Any] = field(default_factory=dict)  # seed, attempt, mask_fraction, clip


@dataclass
class Rejected:
    """An instance slot whose every attempt failed a filter."""

    facts: dict[str, Any] = field(default_factory=dict)  # the reason of each attempt


def _make_pool_folder(folder: Path, pool_dir: Path | None) -> None:
    """Make the pool's folder before any instance is generated: one the run cannot write failed
    after the first pipeline batch, with a traceback."""
    if pool_dir is not None and pool_dir.exists() and not pool_dir.is_dir():
        raise InputError(
            f"image.pool_dir: {pool_dir} is not a folder; set image.pool_dir to a folder to keep "
            "instances in (it is made if missing), or leave it out to keep them in memory"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"image.pool_dir: cannot make the folder {folder}: {error.strerror or error}; set "
            "image.pool_dir to a folder this user may write, or leave it out to keep instances "
            "in memory"
        ) from None


def _damaged(file: Path, problem: object) -> InputError:
    return InputError(
        f"image.pool_dir: {file} is damaged ({problem}); delete it, and the instance is made "
        "again from the same seeds"
    )


def instance_seed(pool_seed: int, key: InstanceKey, attempt: int) -> int:
    words = np.frombuffer(hashlib.sha256(key.prompt.encode()).digest()[:16], dtype=np.uint32)
    state = np.random.SeedSequence([pool_seed, key.slot, attempt, *words.tolist()])
    return int(state.generate_state(1)[0])


class InstancePool:
    """Instances by key: from memory, from `pool_dir`, or generated now."""

    def __init__(
        self,
        config: DiffusionObjectPasteConfig,
        *,
        model: LoadedModel,
        segmenter: Segmenter,
        clip: ClipScorer | None,
    ) -> None:
        self.config = config
        self.model = model
        self.segmenter = segmenter
        self.clip = clip
        self.size = config.instance_size or config.size
        self.memory: dict[InstanceKey, Instance | Rejected] = {}
        self.folder = None if config.pool_dir is None else config.pool_dir / self.fingerprint()
        if self.folder is not None:
            _make_pool_folder(self.folder, config.pool_dir)

    def fingerprint(self) -> str:
        """Everything that changes what a slot holds; a change starts a separate pool on disk."""
        info = self.model.info
        made_by = {
            "model": [info["revision"], info["pipeline"], info["dtype"], info["scheduler"]],
            "device": info["device"].split(":")[0],
            "steps": self.config.model.steps,
            "guidance": self.config.model.guidance,
            "negative_prompt": self.config.negative_prompt,
            "size": list(self.size),
            "segmenter": self.config.segmenter,
            "mask_area_range": list(self.config.mask_area_range),
            "clip": None if self.config.clip is None else self.config.clip.model_dump(),
            "pool_seed": self.config.pool_seed,
            "max_attempts": self.config.max_attempts,
        }
        return hashlib.sha256(json.dumps(made_by, sort_keys=True).encode()).hexdigest()[:16]

    def get(self, keys: list[InstanceKey]) -> dict[InstanceKey, Instance | Rejected]:
        wanted = list(dict.fromkeys(keys))
        missing = [key for key in wanted if key not in self.memory and not self._read(key)]
        attempts: dict[InstanceKey, list[dict[str, Any]]] = {key: [] for key in missing}
        for attempt in range(self.config.max_attempts):
            if not missing:
                break
            missing = self._make(missing, attempt, attempts)
        for key in missing:
            self._keep(key, Rejected({"attempts": attempts[key]}))
        return {key: self.memory[key] for key in wanted}

    def _make(
        self,
        keys: list[InstanceKey],
        attempt: int,
        attempts: dict[InstanceKey, list[dict[str, Any]]],
    ) -> list[InstanceKey]:
        """Generate one attempt of each key, in pipeline batches; return the keys that failed."""
        failed = []
        batch = self.config.model.batch_size
        for start in range(0, len(keys), batch):
            chunk = keys[start : start + batch]
            seeds = [instance_seed(self.config.pool_seed, key, attempt) for key in chunk]
            images = run_pipeline(
                self.model,
                self.config.model,
                seeds=seeds,
                size=self.size,
                negative_prompt=self.config.negative_prompt,
                prompt=[key.prompt for key in chunk],
            )
            clip_scores = self._clip_scores(chunk, images)
            for key, seed, image, score in zip(chunk, seeds, images, clip_scores, strict=True):
                outcome = self._judge(image, seed=seed, attempt=attempt, clip_score=score)
                if isinstance(outcome, Instance):
                    self._keep(key, outcome)
                else:
                    attempts[key].append(outcome)
                    failed.append(key)
        return failed

    def _clip_scores(self, keys: list[InstanceKey], images: list[np.ndarray]) -> list[float | None]:
        if self.clip is None or self.config.clip is None:
            return [None] * len(keys)
        texts = [fill_template(self.config.clip.text, {"category": k.category}) for k in keys]
        return list(self.clip.scores(images, texts))

    def _judge(
        self, image: np.ndarray, *, seed: int, attempt: int, clip_score: float | None
    ) -> Instance | dict[str, Any]:
        """The X-Paste filters: mask area within range, largest component only, CLIP score."""
        facts: dict[str, Any] = {"seed": seed, "attempt": attempt}
        if clip_score is not None:
            facts["clip_score"] = round(clip_score, 4)
        mask = largest_component(apply_segmenter(self.segmenter, image))
        fraction = float(mask.mean())
        facts["mask_fraction"] = round(fraction, 4)
        low, high = self.config.mask_area_range
        if not mask.any():
            return {**facts, "rejected": "no foreground found"}
        if not low <= fraction <= high:
            return {
                **facts,
                "rejected": f"mask covers {fraction:.1%}, outside {low:.0%}-{high:.0%}",
            }
        minimum = None if self.config.clip is None else self.config.clip.min_score
        if minimum is not None and clip_score is not None and clip_score < minimum:
            return {**facts, "rejected": f"CLIP score {clip_score:.3f} < {minimum}"}
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        return Instance(rgb=image[box].copy(), mask=mask[box].copy(), facts=facts)

    def _keep(self, key: InstanceKey, found: Instance | Rejected) -> None:
        self.memory[key] = found
        if self.folder is not None:
            self._write(key, found)

    def _paths(self, key: InstanceKey) -> tuple[Path, Path]:
        assert self.folder is not None
        slug = "".join(c if c.isalnum() else "_" for c in key.category)[:40]
        prompt_hash = hashlib.sha256(key.prompt.encode()).hexdigest()[:12]
        stem = self.folder / f"{slug}-{hashlib.sha256(key.category.encode()).hexdigest()[:6]}"
        return stem / f"{prompt_hash}-{key.slot}.png", stem / f"{prompt_hash}-{key.slot}.json"

    def _read(self, key: InstanceKey) -> bool:
        """Load a pooled instance (or a recorded rejection) from disk into memory, if there."""
        if self.folder is None:
            return False
        image_path, facts_path = self._paths(key)
        if not facts_path.is_file():
            return False
        try:
            facts = json.loads(facts_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:  # ValueError: JSONDecodeError, UnicodeDecodeError
            raise _damaged(facts_path, error) from None
        if not isinstance(facts, dict):
            raise _damaged(facts_path, "not a JSON object")
        if "attempts" in facts:
            self.memory[key] = Rejected(facts)
            return True
        if not image_path.is_file():
            return False
        try:
            with Image.open(image_path) as pil:
                rgba = np.asarray(pil.convert("RGBA"))
        except OSError as error:  # UnidentifiedImageError, a PNG cut short
            raise _damaged(image_path, error) from None
        self.memory[key] = Instance(rgb=rgba[..., :3].copy(), mask=rgba[..., 3] > 127, facts=facts)
        return True

    def _write(self, key: InstanceKey, found: Instance | Rejected) -> None:
        image_path, facts_path = self._paths(key)
        image_path.parent.mkdir(parents=True, exist_ok=True)
        facts = {"category": key.category, "prompt": key.prompt, "slot": key.slot, **found.facts}
        if isinstance(found, Instance):
            alpha = found.mask.astype(np.uint8)[..., None] * 255
            png = io.BytesIO()
            Image.fromarray(np.concatenate([found.rgb, alpha], axis=2), "RGBA").save(
                png, format="PNG"
            )
            # Atomic writes: workers sharing a pool never read half a file.
            write_atomic(image_path, png.getvalue(), field="pool_dir")
        # The JSON goes last: a reader that sees it also sees the image.
        write_atomic(facts_path, json.dumps(facts), field="pool_dir")
