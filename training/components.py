"""The frozen model parts a trainer loads, adapter files, and LoRA weights read back from a UNet."""

from __future__ import annotations

from pathlib import Path

import torch

from retarget.errors import MissingWeightsError, RetargetError, first_line


def load_components(files):
    """The frozen parts, loaded by the pipeline's own loader (its one-line errors, never an unsafe load), all in fp32,
    plus the DDPM noise scheduler the training loss draws timesteps from."""
    from diffusers import DDPMScheduler

    from retarget.pipeline.loading import load_components as load_frozen_components

    unet, vae, text_encoder, tokenizer, sampler = load_frozen_components(files, torch.float32)
    try:
        noise_scheduler = DDPMScheduler.from_pretrained(files.scheduler)
    except (OSError, ValueError) as err:
        raise MissingWeightsError(f"cannot load the noise scheduler from {files.description}: {first_line(err)}") from None
    return unet, vae, text_encoder, tokenizer, sampler, noise_scheduler


def adapter_file(given: Path | None, default: Path | None, flag: str, missing: str) -> Path:
    """An adapter file from its option, else the models folder's; one clear line when there is none."""
    path = given or default
    if path is None:
        raise MissingWeightsError(f"{missing}; pass {flag} PATH")
    if not Path(path).is_file():
        raise RetargetError(f"{flag} {path}: no such file")
    return Path(path)


def lora_weights_of(unet, adapter: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{module path: (down, up)} of one attached peft LoRA, fp32 on the CPU, its scaling (alpha/r) folded into `up`
    so that a file without alphas (read as alpha = rank) gives the same weights."""
    found = {}
    for name, module in unet.named_modules():
        lora_a = getattr(module, "lora_A", None)
        if lora_a is None or adapter not in lora_a:
            continue
        scaling = float(module.scaling[adapter])
        down = module.lora_A[adapter].weight.detach().float().cpu().clone().contiguous()
        found[name] = (down, (module.lora_B[adapter].weight.detach().float().cpu() * scaling).contiguous())
    return found


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
