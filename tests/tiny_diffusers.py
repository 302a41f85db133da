"""Tiny random-weight diffusers pipelines, built from config and saved like real checkpoints.

`image_section` and `specs_for` make the configs and specs the tests run them with. The tests
load them back through `synthgate.generators.diffusion.models` (`from_pretrained` with
`local_files_only=True`), the path production uses, so nothing here touches the network: the
CLIP tokenizer is built from an inline byte-level vocabulary with no merges.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    StableDiffusionGLIGENPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from tokenizers import pre_tokenizers
from transformers import (
    CLIPConfig,
    CLIPModel,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
)

from synthgate.samples import SampleSpec, sample_seed

KIND_OF_GENERATOR = {
    "diffusion_object_paste": "text2image",
    "diffusion_layout": "layout",
    "diffusion_inpaint": "inpaint",
}
GENERATORS = tuple(KIND_OF_GENERATOR)
CATEGORIES = ["dog", "cat", "bird"]
TinyKind = Literal["text2image", "layout", "inpaint"]
HIDDEN = 16  # text hidden size = UNet cross-attention dim (GLIGEN needs them equal)
MAX_TOKENS = 77


def tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary is every byte, alone and word-final; no merges."""
    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = symbols + [s + "</w>" for s in symbols] + ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    tokenizer.model_max_length = MAX_TOKENS
    return tokenizer


# Sizes of the random pipelines: "tiny" for tests; "sd15" has Stable Diffusion 1.5's
# architecture (860M-parameter UNet, 12-layer 768-wide text encoder, 4-level VAE), so a
# benchmark on it does a real model's arithmetic without its weights.
SHAPES: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "text": {
            "hidden_size": HIDDEN,
            "intermediate_size": 32,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
        },
        "unet": {
            "sample_size": 8,
            "layers_per_block": 1,
            "block_out_channels": (16, 32),
            "norm_num_groups": 8,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
            "attention_head_dim": 4,
        },
        "vae": {
            "block_out_channels": (8, 8, 8, 8),
            "layers_per_block": 1,
            "norm_num_groups": 4,
            "sample_size": 64,
        },
    },
    "sd15": {
        "text": {
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_attention_heads": 12,
            "num_hidden_layers": 12,
            "hidden_act": "quick_gelu",
        },
        "unet": {
            "sample_size": 64,
            "layers_per_block": 2,
            "block_out_channels": (320, 640, 1280, 1280),
            "norm_num_groups": 32,
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            "attention_head_dim": 8,
        },
        "vae": {
            "block_out_channels": (128, 256, 512, 512),
            "layers_per_block": 2,
            "norm_num_groups": 32,
            "sample_size": 512,
        },
    },
}
Shape = Literal["tiny", "sd15"]


def _text_config(tokenizer: CLIPTokenizer, shape: Shape = "tiny") -> CLIPTextConfig:
    sizes = SHAPES[shape]["text"]
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=MAX_TOKENS,
        projection_dim=sizes["hidden_size"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **sizes,
    )


def tiny_components(
    kind: TinyKind,
    *,
    seed: int = 0,
    shape: Shape = "tiny",
    unet: Mapping[str, Any] | None = None,
    vae: Mapping[str, Any] | None = None,
) -> dict[str, object]:
    """UNet (4 or 9 input channels, gated attention for GLIGEN), VAE (x8), text encoder; `unet`
    and `vae` replace values of their configs (a VAE's levels: its block_out_channels)."""
    torch.manual_seed(seed)  # weights only: the tests' sampling uses seeded generators
    tokenizer = tiny_tokenizer()
    text_config = _text_config(tokenizer, shape)
    unet_model = UNet2DConditionModel(
        in_channels=9 if kind == "inpaint" else 4,
        out_channels=4,
        cross_attention_dim=text_config.hidden_size,
        attention_type="gated" if kind == "layout" else "default",
        **{**SHAPES[shape]["unet"], **(unet or {})},
    )
    vae_sizes = {**SHAPES[shape]["vae"], **(vae or {})}
    levels = len(vae_sizes["block_out_channels"])
    vae_model = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        **vae_sizes,
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    text_encoder = CLIPTextModel(text_config).eval()
    return {
        "unet": unet_model.eval(),
        "vae": vae_model.eval(),
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "scheduler": scheduler,
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }


PIPELINE_CLASSES = {
    "text2image": StableDiffusionPipeline,
    "layout": StableDiffusionGLIGENPipeline,
    "inpaint": StableDiffusionInpaintPipeline,
}


def save_tiny_pipeline(
    kind: TinyKind,
    folder: Path,
    *,
    seed: int = 0,
    shape: Shape = "tiny",
    unet: Mapping[str, Any] | None = None,
    vae: Mapping[str, Any] | None = None,
) -> Path:
    """Build a random pipeline of `kind` and `shape` (`unet` and `vae`: see `tiny_components`)
    and `save_pretrained` it into `folder`."""
    components = tiny_components(kind, seed=seed, shape=shape, unet=unet, vae=vae)
    pipeline = PIPELINE_CLASSES[kind](**components)
    pipeline.save_pretrained(folder)
    return folder


def save_tiny_clip(folder: Path, *, seed: int = 0) -> Path:
    """A tiny CLIP model (text + vision towers) and its tokenizer, saved like a real one."""
    torch.manual_seed(seed)
    tokenizer = tiny_tokenizer()
    text = _text_config(tokenizer).to_dict()
    vision = CLIPVisionConfig(
        hidden_size=HIDDEN,
        intermediate_size=32,
        num_attention_heads=2,
        num_hidden_layers=2,
        image_size=32,
        patch_size=8,
        projection_dim=HIDDEN,
    ).to_dict()
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=HIDDEN))
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def image_section(generator: str, model_path: Path | str, **overrides: Any) -> dict[str, Any]:
    """An `image:` config section for a diffusion generator on a tiny model (64 px, 2 steps)."""
    model = {
        "path": str(model_path),
        "scheduler": "ddim",
        "steps": 2,
        "guidance": 5.0,
        "dtype": "float32",
        "device": "cpu",
        "batch_size": 2,
    }
    model.update(overrides.pop("model", {}))
    section: dict[str, Any] = {"generator": generator, "count": 4, "size": [64, 64], "model": model}
    section.update(overrides)
    return section


def specs_for(generator: str, count: int, *, seed: int = 7, first: int = 0) -> list[SampleSpec]:
    return [
        SampleSpec(
            batch_id="test-batch",
            index=index,
            modality="image",
            generator=generator,
            category=CATEGORIES[index % len(CATEGORIES)],
            seed=sample_seed(seed, "image", index),
        )
        for index in range(first, first + count)
    ]
