"""The generator on tiny random models written in the published layouts (CPU, fast)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from retarget.weights.assets import resolve_models
from retarget.models.reference_attention import ATTEND, RECORD, ReferenceAttnProcessor
from retarget.pipeline import RetargetPipeline
from retarget.config.generation import GenerationSettings

FAST = dict(steps=3)


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 512)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def expressions(n: int, seed: int, dim: int = 55) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def reference_photo(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (512, 512, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def files(tiny_models_dir):
    return resolve_models(str(tiny_models_dir))


@pytest.fixture(scope="module")
def pipe(files):
    return RetargetPipeline.from_files(files)


@pytest.fixture(scope="module")
def context(pipe):
    return pipe.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0))


def test_loads_published_layout_of_tiny_set(pipe, files):
    assert files.is_test_model
    assert pipe.exp_dim == 55 and pipe.expression_kind == "flame55"
    assert pipe.has_reference
    assert pipe.image_size == 64


def test_id_token_replaced_by_arcface_vector(pipe):
    encoder = pipe.id_encoder
    id_token = encoder.tokenizer.encode("id", add_special_tokens=False)[0]
    assert encoder.prompt_ids[0, encoder.id_position] == id_token
    vec = torch.from_numpy(unit_vectors(1, 1))
    embedding = encoder.text_encoder.get_input_embeddings()
    plain = embedding(encoder.prompt_ids)[0]
    seen = {}
    with encoder._inject(vec):
        # registered after the injection hook, so it sees what the transformer receives
        handle = embedding.register_forward_hook(lambda m, i, o: seen.__setitem__("tokens", o.detach().clone()))
        try:
            encoder.text_encoder(encoder.prompt_ids)
        finally:
            handle.remove()
    tokens = seen["tokens"][0]
    expected_row = torch.zeros(encoder.text_encoder.config.hidden_size)
    expected_row[:512] = vec[0]  # zero-padded, no learned projection
    assert torch.equal(tokens[encoder.id_position], expected_row)
    others = [i for i in range(tokens.shape[0]) if i != encoder.id_position]
    assert torch.equal(tokens[others], plain[others])
    # and the prompt embedding depends on the vector
    assert not torch.allclose(encoder.encode(vec), encoder.encode(torch.from_numpy(unit_vectors(1, 2))))


def test_id_encoder_batch_equals_singles(pipe):
    vecs = torch.from_numpy(unit_vectors(3, 2))
    batched = pipe.id_encoder.encode(vecs)
    singles = torch.cat([pipe.id_encoder.encode(v[None]) for v in vecs])
    assert batched.shape == (3, 77, pipe.id_encoder.text_encoder.config.hidden_size)
    torch.testing.assert_close(batched, singles, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1])


def test_identity_changes_the_image(pipe):
    a = pipe.prepare_identity(unit_vectors(1, 3)[0], reference_photo(1))
    b = pipe.prepare_identity(unit_vectors(1, 4)[0], reference_photo(1))
    exp = expressions(1, 0)
    settings = GenerationSettings(**FAST)
    assert not np.array_equal(pipe.generate(a, exp, settings), pipe.generate(b, exp, settings))


def reference_mode(unet_kwargs: dict) -> str:
    """The reference mode a UNet call was given (its per-call attention argument), or "off"."""
    call = (unet_kwargs.get("cross_attention_kwargs") or {}).get("reference")
    return "off" if call is None else call.mode


def count_reference_passes(pipe):
    calls = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, a, kw: calls.append(reference_mode(kw)), with_kwargs=True)
    return calls, handle


def test_reference_unet_runs_once_per_identity(pipe):
    calls, handle = count_reference_passes(pipe)
    try:
        ctx = pipe.prepare_identity(unit_vectors(1, 5)[0], reference_photo(2))
        for _ in range(3):
            pipe.generate(ctx, expressions(2, 1), GenerationSettings(steps=4))
    finally:
        handle.remove()
    assert calls.count(RECORD) == 1
    assert calls.count(ATTEND) == 3 * 4


def test_reference_scale_zero_equals_plain_self_attention(pipe, files, context):
    from diffusers.models.attention_processor import AttnProcessor2_0

    plain = RetargetPipeline.from_files(files, use_ref_lora=False)
    plain.unet.set_attn_processor(
        {n: (AttnProcessor2_0() if n.endswith("attn1.processor") else p) for n, p in plain.unet.attn_processors.items()}
    )
    exp = expressions(2, 2)
    off = pipe.generate(context, exp, GenerationSettings(ref_scale=0.0, **FAST))
    reference = plain.generate(plain.prepare_identity(unit_vectors(1, 0)[0]), exp, GenerationSettings(**FAST))
    np.testing.assert_array_equal(off, reference)
    on = pipe.generate(context, exp, GenerationSettings(ref_scale=0.8, **FAST))
    assert np.abs(on.astype(int) - off.astype(int)).max() > 0
    # --no-reference (use_reference=False) is the same as scale 0
    np.testing.assert_array_equal(pipe.generate(context, exp, GenerationSettings(use_reference=False, **FAST)), off)


def test_reference_reaches_only_the_conditional_half(pipe):
    a = pipe.prepare_identity(unit_vectors(1, 6)[0], reference_photo(3))
    b = pipe.prepare_identity(unit_vectors(1, 6)[0], reference_photo(4))
    settings = GenerationSettings(**FAST)
    exp = torch.from_numpy(expressions(2, 3))
    latents = pipe.noise_for(settings, 2)
    t = torch.tensor(500)
    with torch.no_grad():
        ua, ca = pipe.noise_prediction(latents, t, pipe.conditioning(a, exp, settings))
        ub, cb = pipe.noise_prediction(latents, t, pipe.conditioning(b, exp, settings))
    torch.testing.assert_close(ua, ub, rtol=0, atol=0)
    assert (ca - cb).abs().max() > 1e-4


def test_expression_scale_zero_equals_no_adapter(pipe, files, context):
    bare = RetargetPipeline.from_files(files, use_exp_adapter=False)
    bare_context = bare.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0))
    settings = GenerationSettings(exp_scale=0.0, **FAST)
    with_adapter = pipe.generate(context, expressions(2, 4), settings)
    without = bare.generate(bare_context, np.zeros((2, 1), np.float32), GenerationSettings(**FAST))
    np.testing.assert_allclose(with_adapter.astype(int), without.astype(int), atol=1)


def test_different_expressions_give_different_images(pipe, context):
    images = pipe.generate(context, expressions(2, 5), GenerationSettings(**FAST))
    assert np.abs(images[0].astype(int) - images[1].astype(int)).mean() > 0.5


def test_batch_equals_single_frames_with_the_same_noise(pipe, context):
    exp = expressions(4, 6)
    settings = GenerationSettings(**FAST)
    batched = pipe.generate(context, exp, settings, output="pt")
    singles = torch.cat([pipe.generate(context, e[None], settings, output="pt") for e in exp])
    torch.testing.assert_close(batched, singles, rtol=1e-4, atol=1e-4)


def test_seed_controls_the_noise(pipe, context):
    exp = expressions(1, 7)
    first = pipe.generate(context, exp, GenerationSettings(seed=11, **FAST))
    again = pipe.generate(context, exp, GenerationSettings(seed=11, **FAST))
    other = pipe.generate(context, exp, GenerationSettings(seed=12, **FAST))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_fixed_noise_is_shared_and_per_frame_noise_is_not(pipe):
    fixed = pipe.noise_for(GenerationSettings(seed=3), 3)
    assert torch.equal(fixed[0], fixed[2])
    per_frame = pipe.noise_for(GenerationSettings(seed=3, per_frame_noise=True), 3, frame_indices=[0, 1, 2])
    assert torch.equal(per_frame[0], fixed[0]) and not torch.equal(per_frame[1], per_frame[0])


def test_three_identities_in_one_batch_equal_three_runs(pipe):
    ids, photos = unit_vectors(3, 8), np.stack([reference_photo(i) for i in (5, 6, 7)])
    batched_ctx = pipe.prepare_identity(ids, photos)
    exp = expressions(3, 8)
    settings = GenerationSettings(**FAST)
    batched = pipe.generate(batched_ctx, exp, settings, output="pt")
    singles = torch.cat(
        [pipe.generate(pipe.prepare_identity(ids[i], photos[i]), exp[i : i + 1], settings, output="pt") for i in range(3)]
    )
    torch.testing.assert_close(batched, singles, rtol=1e-4, atol=1e-4)


def test_wrong_expression_width_is_a_clear_error(pipe, context):
    from retarget.errors import RetargetError

    with pytest.raises(RetargetError, match="takes 55 values"):
        pipe.generate(context, np.zeros((1, 52), np.float32), GenerationSettings(**FAST))


def test_cached_reference_projections_are_exact_and_reused(pipe, context, monkeypatch):
    exp = expressions(3, 9)
    settings = GenerationSettings(**FAST)
    context = dataclasses.replace(context, projections={})
    with monkeypatch.context() as patch:  # project inside every attention call instead
        patch.setattr(pipe, "_reference_projections", lambda ctx, state: None)
        uncached = pipe.generate(context, exp, settings, output="pt")
    assert context.projections == {}
    cached = pipe.generate(context, exp, settings, output="pt")
    torch.testing.assert_close(cached, uncached, rtol=1e-5, atol=1e-5)
    assert len(context.projections) == 1
    (first,) = context.projections.values()
    assert set(first) == set(context.reference)
    pipe.generate(context, expressions(2, 10), settings)
    (again,) = context.projections.values()
    assert all(again[name][0] is k for name, (k, _) in first.items())  # projected once per identity
    # another LoRA scale re-projects (the LoRA lives in to_k/to_v)
    pipe.generate(context, expressions(1, 11), GenerationSettings(ref_scale=0.5, **FAST))
    assert len(context.projections) == 2


def test_nothing_is_left_in_the_processors_between_calls(pipe, context):
    pipe.generate(context, expressions(2, 13), GenerationSettings(**FAST))
    processors = [p for p in pipe.unet.attn_processors.values() if isinstance(p, ReferenceAttnProcessor)]
    assert len(processors) == len(context.reference)
    for processor in processors:
        state = vars(processor)
        assert set(state) == {"name", "plain"}, state.keys()


def test_two_threads_share_one_pipeline(pipe, files):
    """Calls from two threads on one pipeline give what each gives alone (they take turns, state is per call)."""
    import threading

    jobs = [
        (pipe.prepare_identity(unit_vectors(1, 20)[0], reference_photo(20)), expressions(2, 21), GenerationSettings(**FAST)),
        (pipe.prepare_identity(unit_vectors(1, 22)[0], reference_photo(22)), expressions(1, 23),
         GenerationSettings(ref_scale=0.5, exp_scale=0.7, **FAST)),
    ]
    alone = [pipe.generate(*job) for job in jobs]
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            for _ in range(2):
                results[i] = pipe.generate(*jobs[i])
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for i, expected in enumerate(alone):
        np.testing.assert_array_equal(results[i], expected)


def test_channels_last_gives_the_same_images(files, context):
    exp = expressions(2, 12)
    plain = RetargetPipeline.from_files(files)
    fast = RetargetPipeline.from_files(files)
    fast.enable_channels_last()
    a = plain.generate(plain.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0)), exp, GenerationSettings(**FAST), output="pt")
    b = fast.generate(fast.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0)), exp, GenerationSettings(**FAST), output="pt")
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_tiny_vae_decodes_at_the_same_size(files, tmp_path):
    from retarget.weights.testmodels import write_tiny_vae

    pipe = RetargetPipeline.from_files(files)
    ctx = pipe.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0))
    full = pipe.generate(ctx, expressions(1, 13), GenerationSettings(**FAST))
    pipe.use_tiny_vae(write_tiny_vae(tmp_path / "taesd"))
    tiny = pipe.generate(ctx, expressions(1, 13), GenerationSettings(**FAST))
    assert tiny.shape == full.shape and not np.array_equal(tiny, full)
    from retarget.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="tiny VAE"):
        pipe.use_tiny_vae(tmp_path / "nowhere")


def test_lcm_preset_uses_the_lcm_lora_and_scheduler(files, tmp_path):
    from retarget.errors import RetargetError
    from retarget.config.generation import preset_settings
    from retarget.weights.testmodels import write_lcm_lora

    pipe = RetargetPipeline.from_files(files)
    ctx = pipe.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0))
    lcm = preset_settings("lcm")
    assert (lcm.steps, lcm.cfg, lcm.sampler) == (4, 1.0, "lcm")
    with pytest.raises(RetargetError, match="LCM-LoRA"):
        pipe.generate(ctx, expressions(1, 14), lcm)
    pipe.load_lcm_lora(write_lcm_lora(tmp_path / "lcm", files.unet.parent))
    calls = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    try:
        image = pipe.generate(ctx, expressions(2, 14), lcm)
    finally:
        handle.remove()
    assert calls == [2] * 4  # 4 steps, no guidance: one half only
    assert set(pipe.unet.active_adapters()) == {"reference", "lcm"}
    assert image.shape == (2, 64, 64, 3)
    # back to the paper's sampler: the LCM-LoRA is off again
    pipe.generate(ctx, expressions(1, 14), GenerationSettings(**FAST))
    assert pipe.unet.active_adapters() == ["reference"]


def test_lcm_sampling_is_repeatable_and_steady_across_frames(files, tmp_path):
    """LCMScheduler adds noise between steps: seeded like the initial noise, so a frame repeats and a video holds still."""
    from retarget.config.generation import preset_settings
    from retarget.weights.testmodels import write_lcm_lora

    pipe = RetargetPipeline.from_files(files)
    pipe.load_lcm_lora(write_lcm_lora(tmp_path / "lcm", files.unet.parent))
    ctx = pipe.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0))
    exp = expressions(1, 16)
    lcm = preset_settings("lcm")
    first = pipe.generate(ctx, exp, lcm, output="pt")
    torch.manual_seed(123)  # the global generator plays no part
    torch.testing.assert_close(pipe.generate(ctx, exp, lcm, output="pt"), first, rtol=0, atol=0)
    pair = pipe.generate(ctx, np.concatenate([exp, exp]), lcm, output="pt")
    torch.testing.assert_close(pair[0], pair[1], rtol=0, atol=1e-6)
    torch.testing.assert_close(pair[:1], first, rtol=0, atol=1e-5)
    lcm.seed = 1
    assert not torch.allclose(pipe.generate(ctx, exp, lcm, output="pt"), first)


def test_torch_compile_gives_the_same_images(files):
    """Slow on a CPU (inductor compiles the tiny UNet once, about a minute): the price of checking it for real."""
    pipe = RetargetPipeline.from_files(files)
    ctx = pipe.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0))
    exp = expressions(2, 15)
    settings = GenerationSettings(steps=2)
    eager = pipe.generate(ctx, exp, settings, output="pt")
    pipe.enable_compile()
    compiled = pipe.generate(ctx, exp, settings, output="pt")
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-4)


def test_half_precision_path_matches_fp32_within_tolerance(files):
    """bf16 on the CPU exercises the reduced-precision path (casts in the processors, LoRA, reference features);
    fp16 itself needs CUDA and is not checked here."""
    exp = expressions(2, 16)
    images = {}
    for dtype in (torch.float32, torch.bfloat16):
        pipe = RetargetPipeline.from_files(files, dtype=dtype)
        assert pipe.unet.dtype == dtype and pipe.vae.dtype == dtype
        images[dtype] = pipe.generate(pipe.prepare_identity(unit_vectors(1, 0)[0], reference_photo(0)), exp,
                                      GenerationSettings(**FAST), output="pt")
    diff = (images[torch.float32] - images[torch.bfloat16]).abs()
    assert diff.mean() < 0.01 and diff.max() < 0.05


def test_prepare_identity_normalises_any_vector(pipe):
    unit = unit_vectors(1, 4)
    raw = unit * 23.7  # an insightface embedding before normalisation
    assert torch.allclose(pipe.prepare_identity(raw).prompt_embeds, pipe.prepare_identity(unit).prompt_embeds, atol=1e-5)
    for bad in (np.zeros((1, 512), np.float32), np.full((1, 512), np.nan, np.float32)):
        with pytest.raises(ValueError, match="finite and non-zero"):
            pipe.prepare_identity(bad)
