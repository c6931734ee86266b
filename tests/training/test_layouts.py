"""Fresh adapters go through the published-layout loaders and come back out unchanged."""

from __future__ import annotations

import torch

from training.common import load_components
from training.train_expression import expression_adapter_state_of, initial_expression_adapter, save_expression_adapter
from training.train_reference import initial_reference_lora, reference_lora_state_of, save_reference_lora


def test_round_trip_through_the_pipeline_loaders(blendshape_models_dir, tmp_path):
    from retarget.weights.assets import resolve_models
    from retarget.pipeline import RetargetPipeline

    files = resolve_models(str(blendshape_models_dir))
    unet, vae, text_encoder, tokenizer, sampler, _ = load_components(files)
    exp = initial_expression_adapter(unet, 51, seed=3)
    lora = initial_reference_lora(unet, 4, seed=3)
    lora = {k: (torch.randn_like(v) if k.endswith("up.weight") else v) for k, v in lora.items()}
    save_expression_adapter(exp, tmp_path / "exp_adapter.bin")
    save_reference_lora(lora, tmp_path / "lora.safetensors")
    pipe = RetargetPipeline.assemble(unet, vae, text_encoder, tokenizer, sampler, tmp_path / "exp_adapter.bin", tmp_path / "lora.safetensors")
    assert pipe.expression_kind == "blendshapes51"
    back = expression_adapter_state_of(pipe.unet)
    for group in exp:
        assert set(back[group]) == set(exp[group])
        for key in exp[group]:
            torch.testing.assert_close(back[group][key], exp[group][key])
    back_lora = reference_lora_state_of(pipe.unet)
    assert set(back_lora) == set(lora)
    for key in lora:
        torch.testing.assert_close(back_lora[key], lora[key])
