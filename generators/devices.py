"""The torch device and dtype a model config names (`device: auto | cpu | cuda[:N] | mps`,
`dtype: auto | float32 | float16 | bfloat16`), for the diffusion and the language-model
generators alike; `field` is the config section named in errors. torch is imported when a
model is loaded, not with this module (a worker imports every generator class; torch comes with
the `diffusion` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthgate.errors import InputError

if TYPE_CHECKING:
    import torch


def resolve_device(name: str, *, field: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an unavailable device asked for by name is an error."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        return torch.device("mps" if mps is not None and mps.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(
                f"{field}.device: {name!r} was asked for, but this torch ({torch.__version__}) "
                "sees no CUDA GPU; set it to auto or cpu, or run on a machine with a GPU and a "
                "CUDA build of torch"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(
                f"{field}.device: {name!r} does not exist; this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{field}.device: 'mps' is not available here; set it to auto or cpu")
    return device


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """`auto` is float32 on the CPU and float16 on an accelerator."""
    import torch

    if name == "auto":
        return torch.float32 if device.type == "cpu" else torch.float16
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]
