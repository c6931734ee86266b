"""The generator's numbers, fixed: uint8 output of one still and one 4-frame batch on the tiny test models.

Written before the restructuring of issue 13; it must pass unchanged after it. Inputs are the
generator's own (ArcFace vector, aligned reference photo, expression vectors), so preprocessing
changes in front of the generator do not move it. Regenerate only for a change that is meant to
change the numbers: RETARGET_WRITE_GOLDEN=1 pytest tests/test_golden.py, and say why in the commit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from retarget.config.generation import GenerationSettings

GOLDEN = Path(__file__).parent / "golden" / "generator_tiny.npz"


def _inputs(exp_dim: int, image_size: int):
    rng = np.random.default_rng(1234)
    identity = rng.standard_normal(512).astype(np.float32)
    identity /= np.linalg.norm(identity)  # ArcFace vectors are unit length
    reference = rng.integers(0, 256, size=(image_size, image_size, 3), dtype=np.uint8)
    still = rng.standard_normal(exp_dim).astype(np.float32)
    batch = rng.standard_normal((4, exp_dim)).astype(np.float32)
    return identity, reference, still, batch


@pytest.fixture(scope="module")
def outputs(tiny_models_dir):
    from retarget.weights.assets import resolve_models
    from retarget.pipeline import RetargetPipeline

    pipe = RetargetPipeline.from_files(resolve_models(str(tiny_models_dir)), device="cpu")
    identity, reference, still, batch = _inputs(pipe.exp_dim, pipe.image_size)
    context = pipe.prepare_identity(identity, reference)
    settings = GenerationSettings(steps=6, cfg=3.0, ref_scale=0.8, seed=7)
    return {
        "still": pipe.generate(context, still, settings),
        "batch": pipe.generate(context, batch, settings),
    }


def _assert_same(name: str, got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (name, got.shape, want.shape)
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    # Bit-identical on the build machine. A different CPU's float kernels may round a few
    # pixels the other way; any real change to the computation moves far more than this.
    assert diff.max() <= 1, f"{name}: max difference {diff.max()} (a change to the generator's numbers)"
    assert (diff > 0).mean() <= 0.002, f"{name}: {(diff > 0).mean():.2%} of values differ"


def test_generator_output_is_unchanged(outputs):
    if os.environ.get("RETARGET_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        np.savez_compressed(GOLDEN, **outputs)
        pytest.skip(f"wrote {GOLDEN}")
    golden = np.load(GOLDEN)
    assert outputs["still"].shape[0] == 1 and outputs["batch"].shape[0] == 4
    for name in ("still", "batch"):
        _assert_same(name, outputs[name], golden[name])


def test_golden_frames_are_not_degenerate():
    """The fixed images must carry information, or the comparison above would prove nothing."""
    golden = np.load(GOLDEN)
    for name in ("still", "batch"):
        assert golden[name].std() > 5, name
    frames = golden["batch"].astype(np.int16)
    assert np.abs(frames[0] - frames[1]).mean() > 1  # different expressions, different images
