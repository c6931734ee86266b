"""Generated frames must be finite: a model file holding NaN/inf renders black frames, which must never be
written as a result. When a batch is not finite, the loaded weights are scanned (only then: it costs a pass
over every parameter) to name the file that holds the bad values."""

from __future__ import annotations

import torch

from retarget.errors import BadInputError

# Parameter names of the UNet that come from the adapter files, not from the UNet's own weights.
_LORA_MARKS = ("lora_",)
_ADAPTER_MARKS = ("to_k_ip", "to_v_ip", "encoder_hid_proj", "image_projection")


def _first_bad_parameter(module) -> str | None:
    """The first non-finite parameter, an adapter's own (LoRA, IP-Adapter) before the base model's: a fused
    LoRA holding NaN has spread it into the base weights it was merged into, and the LoRA is the cause."""
    adapters = _LORA_MARKS + _ADAPTER_MARKS
    named = sorted(module.named_parameters(), key=lambda item: not any(mark in item[0] for mark in adapters))
    for name, parameter in named:
        if parameter.is_floating_point() and not bool(torch.isfinite(parameter).all()):
            return name
    return None


def broken_model_file(generator) -> str:
    """Which loaded file holds NaN/inf weights ("the Reference Adapter LoRA /path" ...), or a generic cause."""
    sources = getattr(generator, "model_sources", {}) or {}

    def named(kind: str, label: str) -> str:
        path = sources.get(kind)
        return f"{label} {path}" if path else label

    bad = _first_bad_parameter(generator.unet)
    if bad is not None:
        if any(mark in bad for mark in _LORA_MARKS):
            return named("ref_lora", "the Reference Adapter LoRA")
        if any(mark in bad for mark in _ADAPTER_MARKS):
            return named("exp_adapter", "the Expression Adapter")
        return named("unet", "the UNet")
    encoder = getattr(getattr(generator, "sd", None), "text_encoder", None)
    for module, kind, label in ((generator.vae, "vae", "the VAE"), (getattr(generator, "tiny_vae", None), "tiny_vae", "the tiny VAE"),
                                (encoder, "encoder", "the identity encoder")):
        if module is not None and _first_bad_parameter(module) is not None:
            return named(kind, label)
    return ""


def check_finite(images: torch.Tensor, generator) -> None:
    """Refuse a decoded batch holding NaN/inf, naming the model file that caused it."""
    if bool(torch.isfinite(images).all()):
        return
    culprit = broken_model_file(generator)
    if culprit:
        raise BadInputError(f"{culprit} holds NaN/inf weights, so the frames came out blank (nothing was written); "
                            f"replace it with a good copy")
    raise BadInputError("the generator produced NaN/inf values (no model file holds any; half precision may overflow): "
                        "nothing was written; try --dtype float32")
