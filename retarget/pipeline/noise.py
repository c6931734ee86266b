"""Seeded noise: the initial latents of each frame and the noise LCMScheduler adds between steps.

Everything is drawn on the CPU from the settings' seed, so a seed gives the same frames on every
device, and a frame's noise does not depend on which batch it was rendered in.
"""

from __future__ import annotations

import torch

from retarget.config.generation import GenerationSettings


def initial_noise(seed: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Seeded on the CPU so the same seed gives the same noise on every device."""
    return torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed), dtype=torch.float32)


def frame_noise(settings: GenerationSettings, shape: tuple[int, ...], batch: int, frame_indices=None) -> torch.Tensor:
    """Initial latents (B, C, h, w) for a batch from one frame's `shape` (1, C, h, w): the same noise for
    every frame, or, with per_frame_noise, the seed plus each frame's index."""
    if not settings.per_frame_noise:
        return initial_noise(settings.seed, shape).expand(batch, -1, -1, -1)
    indices = range(batch) if frame_indices is None else frame_indices
    return torch.cat([initial_noise(settings.seed + int(i), shape) for i in indices])


def step_noise_generators(settings: GenerationSettings, shape: tuple[int, ...], batch: int,
                          frame_indices=None) -> list[torch.Generator]:
    """One CPU generator per frame for the noise LCMScheduler adds between steps, seeded like the frame's
    initial noise and continuing its stream: repeatable, and the same for every frame unless per_frame_noise."""
    indices = (range(batch) if frame_indices is None else frame_indices) if settings.per_frame_noise else [0] * batch
    generators = []
    for i in indices:
        generator = torch.Generator("cpu").manual_seed(settings.seed + int(i))
        torch.randn(shape, generator=generator)  # the initial noise comes first in the frame's stream
        generators.append(generator)
    return generators
