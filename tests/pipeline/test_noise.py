"""Seeded noise: a frame's noise depends on the seed and its index, never on the batch it is rendered in."""

from __future__ import annotations

import torch

from retarget.pipeline.noise import frame_noise, initial_noise, step_noise_generators
from retarget.config.generation import GenerationSettings

SHAPE = (1, 4, 8, 8)


def test_initial_noise_is_the_seeds_standard_normal_draw():
    expected = torch.randn(SHAPE, generator=torch.Generator("cpu").manual_seed(5))
    assert torch.equal(initial_noise(5, SHAPE), expected)
    assert not torch.equal(initial_noise(5, SHAPE), initial_noise(6, SHAPE))
    assert initial_noise(5, SHAPE).dtype == torch.float32


def test_fixed_noise_is_one_draw_for_every_frame():
    noise = frame_noise(GenerationSettings(seed=3), SHAPE, batch=4)
    assert noise.shape == (4, 4, 8, 8)
    for row in noise:
        assert torch.equal(row, initial_noise(3, SHAPE)[0])
    # Frame indices do not matter without per_frame_noise.
    assert torch.equal(frame_noise(GenerationSettings(seed=3), SHAPE, 4, frame_indices=[9, 10, 11, 12]), noise)


def test_per_frame_noise_follows_the_frame_index_not_the_batch():
    settings = GenerationSettings(seed=3, per_frame_noise=True)
    whole = frame_noise(settings, SHAPE, batch=6)
    second_batch = frame_noise(settings, SHAPE, batch=3, frame_indices=[3, 4, 5])
    assert torch.equal(second_batch, whole[3:])
    assert torch.equal(whole[2], initial_noise(5, SHAPE)[0])  # seed + index
    assert not torch.equal(whole[0], whole[1])


def test_step_generators_continue_each_frames_stream_after_its_initial_noise():
    settings = GenerationSettings(seed=7, per_frame_noise=True)
    generators = step_noise_generators(settings, SHAPE, batch=2, frame_indices=[4, 5])
    for generator, index in zip(generators, (4, 5)):
        stream = torch.Generator("cpu").manual_seed(7 + index)
        first = torch.randn(SHAPE, generator=stream)
        assert torch.equal(first, initial_noise(7 + index, SHAPE))  # the draw the generators skipped
        assert torch.equal(torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=stream))


def test_step_generators_are_the_same_for_every_frame_without_per_frame_noise():
    a, b = step_noise_generators(GenerationSettings(seed=7), SHAPE, batch=2, frame_indices=[4, 5])
    assert a is not b  # one generator each: drawing for one frame does not shift the other's stream
    assert torch.equal(torch.randn(SHAPE, generator=a), torch.randn(SHAPE, generator=b))
