"""Arc2Face ID encoder: the fine-tuned CLIP text encoder with an ArcFace vector in place of a token."""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from transformers import CLIPTextModel, CLIPTokenizer

ID_PROMPT = "photo of a id person"
ARCFACE_DIM = 512


class Arc2FaceIdEncoder:
    """Turns L2-normalised 512-d ArcFace vectors into 77xD prompt embeddings.

    The embedding of the token "id" is replaced by the ArcFace vector zero-padded to the
    encoder width; everything else (position embeddings, causal mask, final layer norm) is the
    CLIP text model's own forward, so a forward hook on the token embedding is all we need.
    """

    def __init__(self, text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer):
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        width = text_encoder.config.hidden_size
        if width < ARCFACE_DIM:
            raise ValueError(f"ID encoder width {width} is smaller than the ArcFace vector ({ARCFACE_DIM})")
        self.prompt_ids = self._tokenize(ID_PROMPT)
        self.empty_ids = self._tokenize("")
        id_token = tokenizer.encode("id", add_special_tokens=False)
        if len(id_token) != 1:
            raise ValueError(f"tokenizer splits 'id' into {len(id_token)} tokens; expected one")
        positions = (self.prompt_ids[0] == id_token[0]).nonzero().flatten()
        if len(positions) != 1:
            raise ValueError(f"'id' token appears {len(positions)} times in {ID_PROMPT!r}")
        self.id_position = int(positions[0])

    def _tokenize(self, text: str) -> torch.Tensor:
        return self.tokenizer(
            text,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids

    @property
    def device(self) -> torch.device:
        return self.text_encoder.device

    @property
    def dtype(self) -> torch.dtype:
        return self.text_encoder.dtype

    @contextmanager
    def _inject(self, id_vectors: torch.Tensor):
        width = self.text_encoder.config.hidden_size
        padded = F.pad(id_vectors, (0, width - id_vectors.shape[-1]))

        def replace_id_token(module, inputs, output):
            output = output.clone()
            output[:, self.id_position] = padded.to(output.dtype)
            return output

        handle = self.text_encoder.get_input_embeddings().register_forward_hook(replace_id_token)
        try:
            yield
        finally:
            handle.remove()

    @torch.no_grad()
    def encode(self, id_vectors: torch.Tensor) -> torch.Tensor:
        """(B, 512) ArcFace vectors -> (B, 77, D) prompt embeddings."""
        id_vectors = id_vectors.to(self.device, self.dtype)
        ids = self.prompt_ids.to(self.device).expand(id_vectors.shape[0], -1)
        with self._inject(id_vectors):
            return self.text_encoder(ids).last_hidden_state

    @torch.no_grad()
    def encode_unconditional(self) -> torch.Tensor:
        """The empty prompt, which classifier-free guidance uses as its negative."""
        return self.text_encoder(self.empty_ids.to(self.device)).last_hidden_state
