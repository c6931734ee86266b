"""Reference Adapter attention: the main UNet's self-attention also attends to reference tokens.

A ReferenceBank is shared by the 16 self-attention processors. In "record" mode (the
reference pass, run once per identity) each processor stores the hidden states that feed its
self-attention. In "attend" mode the conditional rows of the batch use keys/values computed
from [own tokens; reference tokens] through the layer's own projections (which carry the
LoRA); the unconditional rows run plain self-attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0


class ReferenceBank:
    """Shared state between the reference pass and the self-attention processors."""

    OFF, RECORD, ATTEND = "off", "record", "attend"

    def __init__(self) -> None:
        self.mode = self.OFF
        self.features: dict[str, torch.Tensor] = {}
        # Rows [cond_start:] of the batch are conditional (diffusers puts [uncond, cond] for CFG).
        self.cond_start = 0
        # The reference tokens' keys/values depend only on the identity and the LoRA scale, so at
        # inference they are projected once per identity instead of at every step and frame.
        self.cache_projections = True
        self.lora_state: tuple | None = None  # (reference scale, LCM on) the UNet's LoRAs are set to
        self._projections: dict[str, tuple] = {}

    def reference_projections(self, name: str, attn, reference: torch.Tensor):
        """to_k/to_v of the reference tokens, cached per (features tensor, LoRA scale) unless gradients flow."""
        if not self.cache_projections or torch.is_grad_enabled():
            return attn.to_k(reference), attn.to_v(reference)
        key = (id(reference), reference.shape, self.lora_state)
        cached = self._projections.get(name)
        if cached is None or cached[0] != key or cached[1] is not reference:
            cached = (key, reference, attn.to_k(reference), attn.to_v(reference))
            self._projections[name] = cached
        return cached[2], cached[3]

    def clear_cache(self) -> None:
        self._projections = {}


class ReferenceAttnProcessor:
    """Self-attention processor for one `attn1` layer, driven by a ReferenceBank."""

    def __init__(self, name: str, bank: ReferenceBank):
        self.name = name
        self.bank = bank
        self.plain = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        bank = self.bank
        if bank.mode == ReferenceBank.RECORD:
            bank.features[self.name] = hidden_states.detach()
        if bank.mode != ReferenceBank.ATTEND or encoder_hidden_states is not None:
            return self.plain(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if attention_mask is not None or hidden_states.ndim != 3:
            raise ValueError("reference attention supports unmasked (batch, tokens, channels) self-attention only")
        reference = bank.features[self.name]
        start = bank.cond_start
        cond = self._attend_with_reference(attn, hidden_states[start:], *bank.reference_projections(self.name, attn, reference))
        if start == 0:
            return cond
        uncond = self.plain(attn, hidden_states[:start], None, None, temb)
        return torch.cat([uncond, cond])

    @staticmethod
    def _attend_with_reference(attn: Attention, hidden: torch.Tensor, ref_key: torch.Tensor, ref_value: torch.Tensor) -> torch.Tensor:
        # Projections are row-wise, so to_k([own; reference]) == [to_k(own); to_k(reference)]:
        # the reference part can come from the per-identity cache.
        batch = hidden.shape[0]
        if ref_key.shape[0] != batch:
            if ref_key.shape[0] != 1:
                raise ValueError(f"{ref_key.shape[0]} reference feature sets for {batch} conditional rows")
            ref_key, ref_value = ref_key.expand(batch, -1, -1), ref_value.expand(batch, -1, -1)
        query = attn.to_q(hidden)
        key = torch.cat([attn.to_k(hidden), ref_key.to(hidden.dtype)], dim=1)
        value = torch.cat([attn.to_v(hidden), ref_value.to(hidden.dtype)], dim=1)
        head_dim = key.shape[-1] // attn.heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(batch, -1, attn.heads, head_dim).transpose(1, 2)

        query, key, value = heads(query), heads(key), heads(value)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden
        return out / attn.rescale_output_factor


def install_reference_processors(unet, bank: ReferenceBank) -> None:
    """Give every self-attention layer a ReferenceAttnProcessor; other layers keep theirs."""
    processors = {}
    for name, processor in unet.attn_processors.items():
        if name.endswith("attn1.processor"):
            processors[name] = ReferenceAttnProcessor(name, bank)
        else:
            processors[name] = processor
    unet.set_attn_processor(processors)
