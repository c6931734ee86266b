"""What `retarget bench gpu` measures besides time: FLOPs of a UNet step, the chip's matrix peak,
fp16-vs-fp32 fidelity, and the LCM-LoRA / TAESD weights it times (hub copy or random published layout).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from retarget.tools.benchmark.common import sync

TAESD_HUB_ID = "madebyollin/taesd"


def unet_step_flops(pipe, conditioning: dict, latents: torch.Tensor) -> float:
    """FLOPs of one noise prediction (every UNet evaluation it makes), counted by torch's FLOP counter.

    Attention runs through PyTorch's math backend while counting, so its matrix products are seen on
    every device (the counter has no formula for the CPU's fused attention kernel).
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        pipe.noise_prediction(latents, torch.tensor(500, device=pipe.device), conditioning)
    return float(counter.get_total_flops())


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """Achieved TFLOP/s of a large square matrix product: the practical ceiling the UNet is compared with."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    repeat = 20 if device.type == "cuda" else 3
    started = time.perf_counter()
    for _ in range(repeat):
        a @ b
    sync(device)
    return 2 * n**3 * repeat / (time.perf_counter() - started) / 1e12


def psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 images; identical images are reported as 100 dB (JSON has no infinity)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else float(10 * np.log10(255.0**2 / mse))


class FullPrecision:
    """fp32 as fp32 on CUDA while the reference images are made: TF32 off for matmuls and convolutions."""

    def __enter__(self):
        self.saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        return self

    def __exit__(self, *exc):
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = self.saved


def _hub_copy(repo: str) -> str | None:
    """The local snapshot of a hub repo when the cache already holds one (never the network)."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo, local_files_only=True)
    except Exception:  # not cached, or huggingface_hub's many offline errors: all mean "no copy here"
        return None


def lcm_lora_source(explicit: str | None, models_root: Path, work: Path, full_size: bool, notes: list) -> str:
    """The LCM-LoRA to time: --lcm-lora, else the hub cache's copy, else random weights in its layout (in `work`)."""
    from retarget.pipeline import LCM_LORA_HUB_ID
    from retarget.weights.testmodels import LCM_LORA_RANK, write_lcm_lora

    if explicit:
        return explicit
    cached = _hub_copy(LCM_LORA_HUB_ID)
    if cached:
        return cached
    rank = LCM_LORA_RANK if full_size else 4
    path = write_lcm_lora(work / "lcm-lora", models_root, rank=rank)
    notes.append(f"LCM-LoRA: random weights (rank {rank}) in the layout of {LCM_LORA_HUB_ID} (its target layers, "
                 "diffusers' file format): no hub copy on this machine; timing only, images are noise")
    return str(path)


def tiny_vae_source(explicit: str | None, work: Path, full_size: bool, notes: list) -> str:
    """TAESD to time: --tiny-vae, else the hub cache's copy, else a random AutoencoderTiny with its config (in `work`)."""
    from retarget.weights.testmodels import write_tiny_vae

    if explicit:
        return explicit
    cached = _hub_copy(TAESD_HUB_ID)
    if cached:
        return cached
    size = "sd15" if full_size else "tiny"
    path = write_tiny_vae(work / "taesd", size=size)
    layout = f"{TAESD_HUB_ID}'s config" if full_size else "a 4x-upsampling TAESD config matching the tiny VAE"
    notes.append(f"TAESD: a random AutoencoderTiny with {layout}: no hub copy on this machine; timing only")
    return str(path)
