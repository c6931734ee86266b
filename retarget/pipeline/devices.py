"""Which torch device and dtype a run uses (--device, --dtype)."""

from __future__ import annotations

import torch

from retarget.errors import RetargetError


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise RetargetError(f"--device {name}: not a device name (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RetargetError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RetargetError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def default_dtype(device: torch.device) -> torch.dtype:
    return torch.float16 if device.type == "cuda" else torch.float32


def pick_dtype(name: str, device: torch.device) -> torch.dtype:
    """--dtype auto|fp16|bf16|fp32 (auto: fp16 on CUDA, fp32 elsewhere)."""
    if name == "auto":
        return default_dtype(device)
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]
