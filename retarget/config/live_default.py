"""The app's live preset on a first run, by device: on a GPU, the fastest preset that keeps the paper's look.

Decided from the work each preset does per frame (SD-1.5 at 512x512, full VAE), counted by `retarget bench
count` (docs/benchmarks/counts.json), not from timings: GPU frame rates have not been measured. Of the presets
that keep the paper's look (its sampler and CFG 3 with fewer steps, or the Arc2Face authors' LCM-LoRA mode),
the one with the least work is picked; `fast` (CFG 2) trades identity and expression precision away, so it is
never a default. On a CPU no preset is live-rate, so the paper's stays and the slow-live notice offers faster.
"""

from __future__ import annotations

# TFLOP per generated frame (counts.json, `tflop_per_frame_sd15` before the speed work; relative order unchanged after).
TFLOP_PER_FRAME = {"quality": 46.9, "balanced": 23.8, "fast": 13.2, "lcm": 6.7}
KEEPS_PAPER_LOOK = ("quality", "balanced", "lcm")
ACCELERATORS = ("cuda", "mps")


def is_accelerator(device) -> bool:
    return str(device).split(":")[0] in ACCELERATORS


def live_default_preset(device, lcm_loaded: bool) -> str | None:
    """The live preset for a user who has not chosen one, once the models are on `device` (a torch.device or its
    name); None: keep the paper's settings (a CPU). `lcm` needs the LCM-LoRA loaded."""
    if not is_accelerator(device):
        return None
    offered = [name for name in KEEPS_PAPER_LOOK if name != "lcm" or lcm_loaded]
    return min(offered, key=TFLOP_PER_FRAME.__getitem__)
