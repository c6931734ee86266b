"""Reading and checking the Expression Adapter and Reference Adapter files in their published layouts.

The loaders check every key against what the UNet needs before handing the weights to
diffusers, so a wrong or truncated file gives one clear line instead of a half-loaded model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from retarget.errors import BadInputError, describe_file_error, load_tensor_file

EXPRESSION_KINDS = {55: "flame55", 52: "blendshapes52", 51: "blendshapes51"}
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def self_attention_paths(unet) -> list[str]:
    """Module paths of the transformer blocks' self-attention (`attn1`), in `attn_processors` order."""
    return [name[: -len(".processor")] for name in unet.attn_processors if name.endswith("attn1.processor")]


def cross_attention_widths(unet) -> list[int]:
    """Output width of each cross-attention layer, in `attn_processors` order (the IP-Adapter numbering)."""
    modules = dict(unet.named_modules())
    return [
        modules[name[: -len(".processor")]].to_q.out_features
        for name in unet.attn_processors
        if name.endswith("attn2.processor")
    ]


def _load_tensors(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    if path.suffix != ".safetensors":
        return load_tensor_file(path, "adapter weights file")
    try:
        return load_file(path)
    except Exception as err:  # safetensors reports a cut-short or foreign file with its own error type
        raise BadInputError(describe_file_error(path, err, "safetensors file")) from None


def _describe_mismatch(expected: set[str], found: set[str]) -> str:
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    return ", ".join(parts)


def load_expression_adapter(path: Path, unet) -> tuple[dict, int]:
    """Read an IP-Adapter-layout Expression Adapter; return (state dict, expression width)."""
    state = _load_tensors(path)
    if path.suffix == ".safetensors":  # flat `image_proj.` / `ip_adapter.` keys, as diffusers saves them
        nested = {"image_proj": {}, "ip_adapter": {}}
        for key, value in state.items():
            group, _, rest = key.partition(".")
            nested.setdefault(group, {})[rest] = value
        state = nested
    if not isinstance(state, dict) or set(state) != {"image_proj", "ip_adapter"}:
        keys = sorted(state)[:4] if isinstance(state, dict) else type(state).__name__
        raise BadInputError(f"{path}: not an Expression Adapter (expected `image_proj` and `ip_adapter`, found {keys})")
    proj, ip = state["image_proj"], state["ip_adapter"]
    expected_proj = {f"{m}.{p}" for m in ("proj.0", "proj.2", "norm") for p in ("weight", "bias")}
    widths = cross_attention_widths(unet)
    expected_ip = {f"{2 * i + 1}.to_{kv}_ip.weight" for i in range(len(widths)) for kv in ("k", "v")}
    problems = _describe_mismatch(expected_proj, set(proj)) or _describe_mismatch(expected_ip, set(ip))
    if problems:
        raise BadInputError(f"{path}: Expression Adapter keys do not match this UNet: {problems}")
    dim = unet.config.cross_attention_dim
    exp_dim, hidden = proj["proj.0.weight"].shape[1], proj["proj.0.weight"].shape[0]
    shapes_ok = (
        proj["norm.weight"].shape == (dim,)
        and proj["proj.2.weight"].shape[1] == hidden
        and proj["proj.2.weight"].shape[0] % dim == 0
        and hidden % exp_dim == 0
        and all(ip[f"{2 * i + 1}.to_k_ip.weight"].shape == (w, dim) for i, w in enumerate(widths))
        and all(ip[f"{2 * i + 1}.to_v_ip.weight"].shape == (w, dim) for i, w in enumerate(widths))
    )
    if not shapes_ok:
        raise BadInputError(f"{path}: Expression Adapter shapes do not fit this UNet (cross-attention width {dim})")
    if exp_dim not in EXPRESSION_KINDS:
        raise BadInputError(f"{path}: Expression Adapter input width {exp_dim} is neither 55 (FLAME) nor 52/51 (blendshapes)")
    return state, exp_dim


def reference_lora_keys(unet) -> set[str]:
    """The published LoRA key names for this UNet (older diffusers format)."""
    return {
        f"unet.{attn_path}.{target}.lora.{part}.weight"
        for attn_path in self_attention_paths(unet)
        for target in LORA_TARGETS
        for part in ("down", "up")
    }


def load_reference_lora(path: Path, unet) -> dict[str, torch.Tensor]:
    """Read the Reference Adapter LoRA and check it covers exactly attn1 q/k/v/out of every block."""
    state = _load_tensors(path)
    problems = _describe_mismatch(reference_lora_keys(unet), set(state))
    if problems:
        raise BadInputError(f"{path}: Reference Adapter LoRA keys do not match this UNet: {problems}")
    ranks = {v.shape[0] for k, v in state.items() if k.endswith("down.weight")}
    if len(ranks) != 1:
        raise BadInputError(f"{path}: Reference Adapter LoRA has mixed ranks {sorted(ranks)}")
    return state


def expression_adapter_kind(path: Path) -> str | None:
    """The kind of an Expression Adapter file (flame55, blendshapes52, blendshapes51) from `proj.0`'s input width,
    read without loading the weights (safetensors: the header; torch files: memory-mapped); None if unreadable."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                width = handle.get_slice("image_proj.proj.0.weight").get_shape()[1]
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:  # a legacy (non-zip) torch file cannot be memory-mapped
                state = torch.load(path, map_location="cpu", weights_only=True)
            width = state["image_proj"]["proj.0.weight"].shape[1]
    except Exception:  # any problem is reported by the real loader, with its own message
        return None
    return EXPRESSION_KINDS.get(int(width))
