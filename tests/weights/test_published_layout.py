"""Full-size adapter checkpoints in exactly the published key layout load completely, and every tensor matters.

Uses the SD 1.5-shaped UNet (random weights, built in memory) with adapter files written in the
published layouts (facts in ../shared/docs/OFFICIAL_FORMATS.md), loaded through the same code as
the real files.
"""

from __future__ import annotations

import re

import pytest
import torch
from safetensors.torch import save_file

from retarget.models.tokenizer_vocab import write_clip_tokenizer
from retarget.pipeline import RetargetPipeline
from retarget.config.generation import GenerationSettings
from retarget.weights.testmodels import UNET_CONFIGS, VAE_CONFIGS, expression_adapter_state, reference_lora_state

PUBLISHED_LORA_BYTES = 51_137_360
PUBLISHED_EXP_ADAPTER_BYTES = 78_085_419


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    from diffusers import AutoencoderKL, DPMSolverMultistepScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from retarget.weights.testmodels import SD15_SCHEDULER_CONFIG

    root = tmp_path_factory.mktemp("fullsize")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**UNET_CONFIGS["sd15"])
    exp_path = root / "exp_adapter.bin"
    torch.save(expression_adapter_state(unet, 55, seed=1), exp_path)
    lora_path = root / "pytorch_lora_weights.safetensors"
    save_file(reference_lora_state(unet, 128, seed=2), lora_path, metadata={"format": "pt"})
    vocab = write_clip_tokenizer(root / "tokenizer")
    encoder = CLIPTextModel(CLIPTextConfig(vocab_size=vocab, hidden_size=768, intermediate_size=64,
                                           num_attention_heads=12, num_hidden_layers=1, eos_token_id=vocab - 1, bos_token_id=vocab - 2))
    vae = AutoencoderKL(**VAE_CONFIGS["tiny"])
    scheduler = DPMSolverMultistepScheduler.from_config(SD15_SCHEDULER_CONFIG)
    pipe = RetargetPipeline.assemble(unet, vae, encoder, CLIPTokenizer.from_pretrained(root / "tokenizer"), scheduler, exp_path, lora_path)
    return pipe, exp_path, lora_path


def test_files_have_the_published_keys_and_shapes(full_size):
    _, exp_path, lora_path = full_size
    state = torch.load(exp_path, weights_only=True)
    proj = state["image_proj"]
    assert proj["proj.0.weight"].shape == (110, 55) and proj["proj.2.weight"].shape == (4 * 768, 110)
    assert proj["norm.weight"].shape == (768,)
    assert sorted(state["ip_adapter"]) == sorted(f"{k}.to_{kv}_ip.weight" for k in range(1, 32, 2) for kv in "kv")
    widths = {state["ip_adapter"][f"{k}.to_k_ip.weight"].shape[0] for k in range(1, 32, 2)}
    assert widths == {320, 640, 1280}
    # the published files' sizes follow from the key names and shapes
    assert lora_path.stat().st_size == PUBLISHED_LORA_BYTES
    assert abs(exp_path.stat().st_size - PUBLISHED_EXP_ADAPTER_BYTES) < 16_384  # pickle framing varies slightly
    lora = __import__("safetensors.torch", fromlist=["load_file"]).load_file(lora_path)
    assert len(lora) == 128
    pattern = re.compile(r"unet\.(down|up|mid)_blocks?\.[\d.]*attentions\.\d\.transformer_blocks\.0\.attn1\.(to_q|to_k|to_v|to_out\.0)\.lora\.(down|up)\.weight")
    assert all(pattern.fullmatch(k) for k in lora)
    assert {v.shape[0] for k, v in lora.items() if k.endswith("down.weight")} == {128}


def test_every_tensor_is_loaded(full_size):
    pipe, exp_path, lora_path = full_size
    state = torch.load(exp_path, weights_only=True)
    processors = [p for n, p in pipe.unet.attn_processors.items() if n.endswith("attn2.processor")]
    assert len(processors) == 16
    for index, processor in enumerate(processors):
        key = 2 * index + 1
        assert torch.equal(processor.to_k_ip[0].weight, state["ip_adapter"][f"{key}.to_k_ip.weight"])
        assert torch.equal(processor.to_v_ip[0].weight, state["ip_adapter"][f"{key}.to_v_ip.weight"])
    projection = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    assert torch.equal(projection.ff.net[0].proj.weight, state["image_proj"]["proj.0.weight"])
    assert torch.equal(projection.ff.net[2].bias, state["image_proj"]["proj.2.bias"])
    assert torch.equal(projection.norm.weight, state["image_proj"]["norm.weight"])

    from safetensors.torch import load_file

    lora = load_file(lora_path)
    modules = dict(pipe.unet.named_modules())
    for key, value in lora.items():
        path, part = re.fullmatch(r"unet\.(.+)\.lora\.(down|up)\.weight", key).groups()
        layer = modules[path]
        peft_weight = (layer.lora_A if part == "down" else layer.lora_B)["reference"].weight
        assert torch.equal(peft_weight, value), key


def test_every_loaded_tensor_changes_the_output(full_size):
    """A non-zero gradient for every adapter tensor: changing any of them changes the noise prediction."""
    pipe, _, _ = full_size
    settings = GenerationSettings()
    adapter_params = {
        name: p for name, p in pipe.unet.named_parameters() if "lora_" in name or "to_k_ip" in name or "to_v_ip" in name or "encoder_hid_proj" in name
    }
    assert len(adapter_params) == 128 + 32 + 6
    prompt = pipe.id_encoder.encode(torch.nn.functional.normalize(torch.randn(1, 512), dim=-1))
    latents = torch.randn(1, 4, 8, 8)
    context = type("Ctx", (), {})()
    from retarget.pipeline import IdentityContext

    context = IdentityContext(prompt, pipe.id_encoder.encode_unconditional(), pipe.reference_features(prompt, latents))
    for p in adapter_params.values():
        p.requires_grad_(True)
    try:
        conditioning = pipe.conditioning(context, torch.randn(1, 55), settings)
        uncond, cond = pipe.noise_prediction(latents, torch.tensor(400), conditioning)
        (uncond.square().sum() + cond.square().sum()).backward()
        without_grad = [n for n, p in adapter_params.items() if p.grad is None or p.grad.abs().max() == 0]
        assert without_grad == []
    finally:
        for p in adapter_params.values():
            p.requires_grad_(False)
            p.grad = None
