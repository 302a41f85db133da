"""CLIP score of an image against a text, from a local CLIP model (transformers), for filtering.

`ClipScorer(config, device=...)` loads a `CLIPModel` and its tokenizer with
`local_files_only=True`, once per process, and `scores(images, texts)` returns the cosine
similarity of each image with its text. Images are resized, centre-cropped and normalised here
(the checkpoint's preprocessor_config.json if it has one), so no image processor is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from synthgate.config import ClipFilterConfig
from synthgate.errors import InputError

FIELD = "image.clip.path"
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


def _resolve(path: str) -> Path:
    local = Path(path).expanduser()
    if local.is_dir() and (local / "config.json").is_file():
        return local.resolve()
    if not local.exists() and "/" in path and not path.startswith((".", "/", "~")):
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(path, local_files_only=True))
        except Exception:
            pass
    raise InputError(
        f"{FIELD}: no CLIP model at {path!r} (a folder with config.json, or a Hugging Face id "
        "in the local cache); weights are never downloaded at run time. On a machine with "
        "network access run `hf download openai/clip-vit-base-patch32 --local-dir <folder>`, "
        f"copy the folder here and set {FIELD} to it"
    )


class ClipScorer:
    """Cosine similarity of images and texts under one local CLIP model."""

    def __init__(self, config: ClipFilterConfig, *, device: str) -> None:
        self.folder = _resolve(config.path)
        self.device = device
        key = (str(self.folder), device)
        if key not in _LOADED:
            from transformers import AutoTokenizer, CLIPModel

            try:
                loaded: Any = CLIPModel.from_pretrained(  # (model, loading info)
                    self.folder, local_files_only=True, output_loading_info=True
                )
            except (OSError, ValueError) as error:
                raise InputError(f"{FIELD}: cannot load CLIP from {self.folder}: {error}") from None
            model, loading = loaded
            # A checkpoint of another model (a text encoder alone, as a Stable Diffusion folder's
            # text_encoder/) loads with the missing weights drawn at random, and its scores
            # would filter instances by chance. (position_ids: a buffer some versions save.)
            missing = sorted(
                k for k in loading.get("missing_keys", ()) if not k.endswith("position_ids")
            )
            if missing:
                raise InputError(
                    f"{FIELD}: {self.folder} is not a whole CLIP model (CLIPModel, text and "
                    f"vision towers): {len(missing)} of its weights are missing ({missing[0]}, "
                    "...) and would be random; point it at a CLIP checkpoint, e.g. "
                    "openai/clip-vit-base-patch32"
                )
            try:
                tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
            except (OSError, ValueError) as error:
                raise InputError(f"{FIELD}: cannot load CLIP from {self.folder}: {error}") from None
            _LOADED[key] = (model.eval().to(device), tokenizer)
        self.model, self.tokenizer = _LOADED[key]
        self.image_size = int(self.model.config.vision_config.image_size)
        self.mean, self.std = self._normalisation()

    def _normalisation(self) -> tuple[np.ndarray, np.ndarray]:
        config_file = self.folder / "preprocessor_config.json"
        data = json.loads(config_file.read_text()) if config_file.is_file() else {}
        mean = np.asarray(data.get("image_mean", OPENAI_MEAN), dtype=np.float32)
        std = np.asarray(data.get("image_std", OPENAI_STD), dtype=np.float32)
        return mean, std

    def _pixels(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        scale = self.image_size / min(height, width)
        resized = cv2.resize(
            image,
            (
                max(self.image_size, round(width * scale)),
                max(self.image_size, round(height * scale)),
            ),
            interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
        )
        top = (resized.shape[0] - self.image_size) // 2
        left = (resized.shape[1] - self.image_size) // 2
        crop = resized[top : top + self.image_size, left : left + self.image_size]
        return ((crop.astype(np.float32) / 255.0 - self.mean) / self.std).transpose(2, 0, 1)

    @torch.no_grad()
    def scores(self, images: list[np.ndarray], texts: list[str]) -> list[float]:
        pixels = torch.from_numpy(np.stack([self._pixels(image) for image in images]))
        tokens = self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        image_features = self.model.get_image_features(pixel_values=pixels.to(self.device))
        text_features = self.model.get_text_features(**tokens.to(self.device))
        image_features = _as_tensor(image_features)
        text_features = _as_tensor(text_features)
        image_features = image_features / image_features.norm(dim=-1, keepdim=True)
        text_features = text_features / text_features.norm(dim=-1, keepdim=True)
        return [float(v) for v in (image_features * text_features).sum(dim=-1).cpu()]


def _as_tensor(features: Any) -> torch.Tensor:
    # transformers 5 returns a model output here; earlier versions returned the tensor.
    if isinstance(features, torch.Tensor):
        return features
    return features.pooler_output if hasattr(features, "pooler_output") else features[0]
