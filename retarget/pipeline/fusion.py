"""The UNet's LoRAs fused into its weights for generation, and its exact base weights back for the reference pass.

Fusing goes through diffusers' fuse_lora/unfuse_lora (peft's merge/unmerge), so a UNet call does no LoRA
work. peft unmerges by subtracting what it added, which rounds: W + d - d is not W in floating point, and
after many settings changes (a slider dragged, two threads on two scales) the base weights would drift and
the same settings would stop giving the same images. So the weights of the layers about to be merged are
copied first and put back after peft's unmerge: exact, at the memory of one copy of those layers.
"""

from __future__ import annotations

import warnings

import torch


class LoraFusion:
    """Merges named LoRA adapters into a diffusers model's weights and restores them bit for bit."""

    def __init__(self, model):
        self.model = model
        self._saved: list[tuple[torch.Tensor, torch.Tensor]] = []  # (live parameter, copy of its base value)
        self.fused = False

    def fuse(self, adapter_names: list[str]) -> None:
        """Merge the adapters at the weights set_adapters gave them (unfusing whatever was fused first)."""
        from peft.tuners.tuners_utils import BaseTunerLayer

        self.unfuse()
        wanted = set(adapter_names)
        for module in self.model.modules():
            if isinstance(module, BaseTunerLayer) and wanted & set(getattr(module, "lora_A", {})):
                base = module.get_base_layer()
                for param in (base.weight, getattr(base, "bias", None)):
                    if param is not None:
                        self._saved.append((param, param.detach().clone()))
        self.model.fuse_lora(adapter_names=adapter_names)
        self.fused = True

    def unfuse(self) -> None:
        if not self.fused:
            return
        with warnings.catch_warnings():  # peft warns for each layer of an adapter that was not fused
            warnings.filterwarnings("ignore", message="Already unmerged")
            self.model.unfuse_lora()  # peft's bookkeeping (merged_adapters); its subtraction is then overwritten
        with torch.no_grad():
            for param, saved in self._saved:
                param.copy_(saved)
        self._saved.clear()
        self.fused = False
