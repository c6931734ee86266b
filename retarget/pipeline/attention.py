"""Which PyTorch scaled-dot-product-attention kernel the UNet's attention runs on (--attention).

diffusers' attention processors (ours and the IP-Adapter's included) call
torch.nn.functional.scaled_dot_product_attention, which picks a kernel per call. `restrict_attention`
narrows that choice for every call of one module through torch.nn.attention.sdpa_kernel, entered by
a forward pre-hook and left by a forward hook (always_call: also after an error), so the UNet's
processors stay as they are. "math" is PyTorch's reference kernel (slower; for comparing numerics or
working around a fused kernel that misbehaves on a driver); flash, efficient and cudnn are the fused
ones, each refused at load time with one line where this device and dtype cannot run it.
"""

from __future__ import annotations

import threading

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from retarget.errors import BadInputError

AUTO = "auto"
ATTENTION_BACKENDS = {
    "math": SDPBackend.MATH,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "cudnn": SDPBackend.CUDNN_ATTENTION,
}


def check_attention(name: str, device: torch.device, dtype: torch.dtype) -> None:
    """One tiny attention call under the kernel: a BadInputError naming what to use when it cannot run here."""
    if name == AUTO:
        return
    if name not in ATTENTION_BACKENDS:
        raise BadInputError(f"--attention {name}: not a kernel; use {AUTO} or one of {', '.join(ATTENTION_BACKENDS)}")
    probe = torch.zeros(1, 1, 8, 64, device=device, dtype=dtype)  # (batch, heads, tokens, head width) as in the UNet
    try:
        with sdpa_kernel([ATTENTION_BACKENDS[name]]):
            torch.nn.functional.scaled_dot_product_attention(probe, probe, probe)
    except RuntimeError:
        raise BadInputError(f"--attention {name}: PyTorch has no such kernel for {device.type} with "
                            f"{str(dtype).replace('torch.', '')}; use --attention {AUTO} or math") from None


class RestrictedAttention:
    """The hooks that hold one module's calls to one attention kernel; remove() undoes them."""

    def __init__(self, module: torch.nn.Module, name: str):
        self.name = name
        self._open = threading.local()  # each thread's entered sdpa_kernel contexts (nested calls stack)
        self._handles = [module.register_forward_pre_hook(self._enter),
                         module.register_forward_hook(self._leave, always_call=True)]

    def _enter(self, module, args) -> None:
        context = sdpa_kernel([ATTENTION_BACKENDS[self.name]])
        context.__enter__()
        self._stack().append(context)

    def _leave(self, module, args, output) -> None:
        stack = self._stack()
        if stack:
            stack.pop().__exit__(None, None, None)

    def _stack(self) -> list:
        if not hasattr(self._open, "stack"):
            self._open.stack = []
        return self._open.stack

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


def restrict_attention(module: torch.nn.Module, name: str, device: torch.device,
                       dtype: torch.dtype) -> RestrictedAttention | None:
    """Every call of `module` on the named kernel (checked first); None for auto (PyTorch's own choice)."""
    check_attention(name, device, dtype)
    return None if name == AUTO else RestrictedAttention(module, name)
