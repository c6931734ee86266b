"""The generator's host work and fused LoRAs: structure and counts, never times (issue #23)."""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np
import pytest
import torch

from retarget.weights.assets import resolve_models
from retarget.tools.benchmark.counts import python_calls, stubbed_networks
from retarget.pipeline import RetargetPipeline
from retarget.config.generation import GenerationSettings, preset_settings
from tests.pipeline.test_generator import expressions, reference_photo, unit_vectors


@pytest.fixture(scope="module")
def files(tiny_models_dir):
    return resolve_models(str(tiny_models_dir))


@pytest.fixture(scope="module")
def lcm_pipe(files, tmp_path_factory):
    from retarget.weights.testmodels import write_lcm_lora

    pipe = RetargetPipeline.from_files(files)
    pipe.load_lcm_lora(write_lcm_lora(tmp_path_factory.mktemp("lcm") / "lcm", files.unet.parent))
    return pipe


def functions_called(fn) -> Counter:
    """Names of the Python functions fn() calls on this thread (with their owning file's name)."""
    names: Counter = Counter()

    def profile(frame, event, arg):
        if event == "call":
            names[frame.f_code.co_name] += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return names


@pytest.mark.parametrize("preset", ["quality", "lcm"])
def test_fused_loras_give_the_unfused_images(lcm_pipe, preset):
    pipe = lcm_pipe
    ctx = pipe.prepare_identity(unit_vectors(1, 30)[0], reference_photo(30))
    settings = preset_settings(preset, GenerationSettings(ref_scale=0.8))
    exp = expressions(2, 31)
    pipe.fuse_loras = False
    try:
        unfused = pipe.generate(ctx, exp, settings, output="pt")
        assert not any(getattr(m, "merged", False) for m in pipe.unet.modules())
    finally:
        pipe.fuse_loras = True
    fused = pipe.generate(ctx, exp, settings, output="pt")
    merged = [m for m in pipe.unet.modules() if getattr(m, "merged_adapters", None)]
    assert merged, "generate fused no LoRA"
    want = {"reference", "lcm"} if preset == "lcm" else {"reference"}
    assert {name for m in merged for name in m.merged_adapters} == want
    torch.testing.assert_close(fused, unfused, rtol=1e-5, atol=1e-5)


def test_reference_pass_sees_the_base_weights_after_fusing(lcm_pipe):
    pipe = lcm_pipe
    photo, identity = reference_photo(32), unit_vectors(1, 32)[0]
    pipe.use_base_weights()
    before = pipe.prepare_identity(identity, photo).reference
    pipe.generate(pipe.prepare_identity(identity, photo), expressions(1, 33), preset_settings("lcm"))
    assert any(getattr(m, "merged", False) for m in pipe.unet.modules())
    after = pipe.prepare_identity(identity, photo).reference  # unfuses: the reference pass is the frozen UNet
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("preset,limit", [("quality", 10_000), ("lcm", 3_000)])
def test_generate_host_work_is_a_few_thousand_python_calls(lcm_pipe, preset, limit):
    """With the UNet and VAE stubbed, one warm generate makes few Python calls and never walks the module tree."""
    pipe = lcm_pipe
    ctx = pipe.prepare_identity(unit_vectors(1, 34)[0], reference_photo(34))
    settings = preset_settings(preset)
    calls: Counter = Counter()
    with stubbed_networks(pipe, calls):
        pipe.generate(ctx, expressions(1, 35), settings)
        calls.clear()
        count = python_calls(lambda: pipe.generate(ctx, expressions(1, 35), settings))
        assert calls == {"unet": settings.steps, "vae": 1}
        names = functions_called(lambda: pipe.generate(ctx, expressions(1, 36), settings))
    assert count <= limit, count
    walks = {"modules", "named_modules", "parameters", "named_parameters", "attn_processors", "from_config", "apply"}
    assert not walks & set(names), walks & set(names)


def test_a_settings_change_rebuilds_only_what_it_changes(lcm_pipe):
    pipe = lcm_pipe
    ctx = pipe.prepare_identity(unit_vectors(1, 37)[0], reference_photo(37))
    pipe.generate(ctx, expressions(1, 38), GenerationSettings(steps=3))
    names = functions_called(lambda: pipe.generate(ctx, expressions(1, 38), GenerationSettings(steps=4)))
    assert names["from_config"] >= 1 and names["fuse_lora"] == 0  # a new sampler; the same LoRA state
    names = functions_called(lambda: pipe.generate(ctx, expressions(1, 38), GenerationSettings(steps=4, ref_scale=0.5)))
    assert names["from_config"] == 0 and names["unfuse_lora"] == 1 and names["fuse_lora"] == 1


def test_fusing_and_unfusing_leaves_the_base_weights_bit_for_bit(lcm_pipe):
    """peft's unmerge subtracts (rounding); the base weights are put back exactly, however many settings changes."""
    pipe = lcm_pipe
    pipe.use_base_weights()
    base = {name: p.detach().clone() for name, p in pipe.unet.named_parameters() if "lora_" not in name}
    ctx = pipe.prepare_identity(unit_vectors(1, 39)[0], reference_photo(39))
    first = pipe.generate(ctx, expressions(1, 40), GenerationSettings(steps=2, ref_scale=0.8), output="pt")
    for scale in (0.3, 0.7, 0.55, 0.9):
        pipe.generate(ctx, expressions(1, 40), preset_settings("lcm", GenerationSettings(ref_scale=scale)))
    again = pipe.generate(ctx, expressions(1, 40), GenerationSettings(steps=2, ref_scale=0.8), output="pt")
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    pipe.use_base_weights()
    for name, p in pipe.unet.named_parameters():
        if name in base:
            assert torch.equal(p, base[name]), name
