"""Backgrounds to paste or paint objects onto: procedural, or images from a folder.

`Backgrounds(config, size=...)` draws one HxWx3 uint8 background per call from the caller's
seeded rng. Folder images are cropped at random to the target aspect and resized; they should not
already hold objects of the batch's categories, which nobody would label.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from synthgate.config import BackgroundConfig
from synthgate.errors import InputError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


class Backgrounds:
    """A source of backgrounds of one size."""

    def __init__(
        self, config: BackgroundConfig, *, size: tuple[int, int], field: str = "image.background"
    ) -> None:
        self.config = config
        self.width, self.height = size
        self.files: list[Path] = []
        if config.source == "folder":
            folder = config.folder
            if folder is None or not folder.is_dir():
                raise InputError(f"{field}.folder: {folder} is not a folder of images")
            self.files = sorted(
                p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
            )
            if not self.files:
                raise InputError(
                    f"{field}.folder: {folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})"
                )

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """A background and where it came from (a file name, or "procedural")."""
        if self.files:
            path = self.files[int(rng.integers(len(self.files)))]
            return self._crop(path, rng), path.name
        return procedural_background(rng, width=self.width, height=self.height), "procedural"

    def _crop(self, path: Path, rng: np.random.Generator) -> np.ndarray:
        try:
            with Image.open(path) as pil:
                image = np.asarray(pil.convert("RGB"))
        except (OSError, UnidentifiedImageError) as error:
            raise InputError(f"image.background.folder: cannot read {path}: {error}") from None
        height, width = image.shape[:2]
        aspect = self.width / self.height
        crop_h = max(1, min(height, round(width / aspect)))
        crop_w = max(1, min(width, round(crop_h * aspect)))
        x = int(rng.integers(width - crop_w + 1))
        y = int(rng.integers(height - crop_h + 1))
        crop = image[y : y + crop_h, x : x + crop_w]
        return cv2.resize(crop, (self.width, self.height), interpolation=cv2.INTER_AREA)


SMOOTH_STEP = 8  # the gradient and blobs are drawn on a grid this many times coarser


def procedural_background(rng: np.random.Generator, *, width: int, height: int) -> np.ndarray:
    """A soft two-colour gradient with a few blurred blobs and fine luminance grain.

    The smooth part is drawn on a coarse grid and resized (it has no detail to lose), and the
    grain is one channel shared by the three: at 512 px this takes a few ms on the thread that
    feeds the diffusion model, where drawing every pixel in float64 took 40 ms.
    """
    first = rng.uniform(30, 225, size=3)
    second = np.clip(first + rng.uniform(-90, 90, size=3), 0, 255)
    angle = rng.uniform(0, 2 * np.pi)
    cols, rows = -(-width // SMOOTH_STEP) + 1, -(-height // SMOOTH_STEP) + 1
    xs = np.linspace(0, width - 1, cols, dtype=np.float32)  # pixel coordinates of the grid
    ys = np.linspace(0, height - 1, rows, dtype=np.float32)
    along = ys[:, None] * np.float32(np.sin(angle)) + xs[None, :] * np.float32(np.cos(angle))
    t = ((along - along.min()) / max(float(np.ptp(along)), 1.0))[..., None]
    image = (first * (1 - t) + second * t).astype(np.float32)
    for _ in range(int(rng.integers(0, 4))):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        spread = 2 * (rng.uniform(0.1, 0.4) * min(width, height)) ** 2
        weight = 0.5 * np.outer(
            np.exp(-((ys - cy) ** 2) / spread), np.exp(-((xs - cx) ** 2) / spread)
        )
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        image += weight.astype(np.float32)[..., None] * (colour - image)
    smooth = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    grain = rng.standard_normal((height, width, 1), dtype=np.float32) * np.float32(3)
    return np.clip(smooth + grain + np.float32(0.5), 0, 255).astype(np.uint8)
