"""Reference Adapter attention: the main UNet's self-attention also attends to reference tokens.

Nothing is stored in the processors between calls. Each UNet call that involves the reference
passes a `ReferenceCall` as `cross_attention_kwargs={"reference": call}`, diffusers' own channel
for per-call processor arguments:
- RECORD (the reference pass, once per identity): each self-attention processor writes the
  hidden states that feed it into `call.features`.
- ATTEND: the conditional rows of the batch use keys/values computed from [own tokens;
  reference tokens] through the layer's own projections (which carry the LoRA); the
  unconditional rows run plain self-attention. The reference tokens' keys/values may come
  precomputed (`call.projections`, per identity and LoRA state) so they are not projected again
  at every step and frame.
Cross-attention layers get the same keyword; their processors are diffusers' own, subclassed
only to accept it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention, AttnProcessor2_0, IPAdapterAttnProcessor2_0

RECORD, ATTEND = "record", "attend"


@dataclass
class ReferenceCall:
    """What the self-attention processors need for one UNet call."""

    mode: str  # RECORD or ATTEND
    # RECORD: filled with each layer's self-attention input; ATTEND: those inputs, (I or B, N, C) each.
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    # Rows [cond_start:] of the batch are conditional (diffusers puts [uncond, cond] for CFG).
    cond_start: int = 0
    # Precomputed to_k/to_v of the reference tokens per layer, or None to project in the call
    # (training: the LoRA changes at every step, and gradients must flow through it).
    projections: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None


def attention_module_path(processor_name: str) -> str:
    """`down_blocks.0....attn1.processor` -> the Attention module's path in the UNet."""
    return processor_name.removesuffix(".processor")


def project_reference(unet, features: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """to_k/to_v of the reference tokens of every self-attention layer, with the UNet's LoRAs as set now."""
    projections = {}
    for name, reference in features.items():
        attn = unet.get_submodule(attention_module_path(name))
        projections[name] = (attn.to_k(reference), attn.to_v(reference))
    return projections


class ReferenceAttnProcessor:
    """Self-attention processor for one `attn1` layer."""

    def __init__(self, name: str):
        self.name = name
        self.plain = AttnProcessor2_0()

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        reference: ReferenceCall | None = None,
    ) -> torch.Tensor:
        if reference is not None and reference.mode == RECORD:
            reference.features[self.name] = hidden_states.detach()
        if reference is None or reference.mode != ATTEND or encoder_hidden_states is not None:
            return self.plain(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if attention_mask is not None or hidden_states.ndim != 3:
            raise ValueError("reference attention supports unmasked (batch, tokens, channels) self-attention only")
        if reference.projections is not None:
            ref_key, ref_value = reference.projections[self.name]
        else:
            features = reference.features[self.name]
            ref_key, ref_value = attn.to_k(features), attn.to_v(features)
        start = reference.cond_start
        cond = self._attend_with_reference(attn, hidden_states[start:], ref_key, ref_value)
        if start == 0:
            return cond
        uncond = self.plain(attn, hidden_states[:start], None, None, temb)
        return torch.cat([uncond, cond])

    @staticmethod
    def _attend_with_reference(attn: Attention, hidden: torch.Tensor, ref_key: torch.Tensor, ref_value: torch.Tensor) -> torch.Tensor:
        # Projections are row-wise, so to_k([own; reference]) == [to_k(own); to_k(reference)]:
        # the reference part can be projected once per identity.
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


class CrossAttnProcessor(AttnProcessor2_0):
    """diffusers' plain processor for `attn2`, taking (and not needing) the per-call reference."""

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, reference=None):
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class ExpressionAttnProcessor(IPAdapterAttnProcessor2_0):
    """diffusers' IP-Adapter processor (the Expression Adapter's to_k_ip/to_v_ip), taking the per-call reference."""

    @classmethod
    def replacing(cls, processor: IPAdapterAttnProcessor2_0) -> "ExpressionAttnProcessor":
        weight = processor.to_k_ip[0].weight
        new = cls(processor.hidden_size, processor.cross_attention_dim, processor.num_tokens, processor.scale)
        new.load_state_dict(processor.state_dict(), assign=True)  # its tensors (also on the meta device, for counting)
        return new.to(weight.device, weight.dtype).requires_grad_(weight.requires_grad)

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 scale: float = 1.0, ip_adapter_masks=None, reference=None):
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb, scale, ip_adapter_masks)


def install_reference_processors(unet) -> None:
    """Self-attention layers get a ReferenceAttnProcessor; cross-attention layers the same diffusers
    processors as before, able to take the per-call `reference` keyword."""
    processors = {}
    for name, processor in unet.attn_processors.items():
        if name.endswith("attn1.processor"):
            processors[name] = ReferenceAttnProcessor(name)
        elif isinstance(processor, IPAdapterAttnProcessor2_0):
            processors[name] = ExpressionAttnProcessor.replacing(processor)
        elif type(processor) is AttnProcessor2_0:
            processors[name] = CrossAttnProcessor()
        else:
            raise ValueError(f"{name}: unexpected attention processor {type(processor).__name__}")
    unet.set_attn_processor(processors)
