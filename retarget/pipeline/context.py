"""The identity context: everything per identity, computed once and reused for any number of frames."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class IdentityContext:
    """Everything per identity, computed once and reused for any number of frames."""

    prompt_embeds: torch.Tensor  # (I, 77, D): one row per identity
    uncond_embeds: torch.Tensor  # (1, 77, D): the empty prompt
    reference: dict[str, torch.Tensor] | None  # self-attention inputs of the reference pass, (I, N, C) each
    # The identity photo's own 52 blendshapes: the neutral that relative driving maps onto.
    blendshapes: np.ndarray | None = None
    # Its 55 FLAME values (SMIRK on the photo), for relative driving of the FLAME-55 adapter.
    flame: np.ndarray | None = None
    # Where its aligned face sits in its photo (retarget.face.paste.FacePlacement), for full-frame output;
    # None for a context made from an aligned crop alone (its output stays the crop).
    placement: object | None = field(default=None, repr=False, compare=False)
    # The reference tokens' keys/values depend only on the identity and the LoRA state, so at
    # inference they are projected once per identity and LoRA state, not at every step and frame.
    projections: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_identities(self) -> int:
        return self.prompt_embeds.shape[0]
