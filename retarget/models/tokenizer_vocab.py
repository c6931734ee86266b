"""A minimal CLIP BPE vocabulary for randomly initialised test models.

The real SD 1.5 tokenizer cannot be downloaded on build machines, so test model sets carry
a vocabulary that knows the byte alphabet plus the few words our prompts use, in the same
file format (vocab.json + merges.txt) that CLIPTokenizer reads.
"""

from __future__ import annotations

import json
from pathlib import Path

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
PROMPT_WORDS = ("photo", "of", "a", "id", "person")


def byte_alphabet() -> list[str]:
    """The 256 printable stand-ins for bytes used by byte-level BPE (GPT-2/CLIP convention)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = 0
    chars = {}
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


def write_clip_tokenizer(out: Path, vocab_size: int | None = None, max_length: int = 77) -> int:
    """Write vocab.json, merges.txt and configs; return the vocabulary size."""
    out.mkdir(parents=True, exist_ok=True)
    alphabet = byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet]
    merges: list[str] = []
    for word in PROMPT_WORDS:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        while len(symbols) > 1:
            merged = symbols[0] + symbols[1]
            if f"{symbols[0]} {symbols[1]}" not in merges:
                merges.append(f"{symbols[0]} {symbols[1]}")
                tokens.append(merged)
            symbols = [merged] + symbols[2:]
    specials = [BOS, EOS]
    if vocab_size is not None:
        filler = vocab_size - len(tokens) - len(specials)
        if filler < 0:
            raise ValueError(f"vocab_size {vocab_size} is too small")
        tokens += [f"<|unused{i}|>" for i in range(filler)]
    tokens += specials
    vocab = {tok: i for i, tok in enumerate(tokens)}
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special_map = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (out / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2))
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": max_length, "do_lower_case": True, **special_map}
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    return len(tokens)
