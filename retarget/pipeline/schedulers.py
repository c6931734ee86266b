"""The sampler of a settings state, built once and reused (diffusers' from_config is thousands of Python calls)."""

from __future__ import annotations

import torch

from retarget.config.generation import GenerationSettings


class SchedulerCache:
    """One scheduler per (sampler, steps, device). Not for two sampling loops at once: the pipeline's lock
    serialises them, and set_timesteps (diffusers' own reset) clears the last loop's state."""

    def __init__(self, config):
        self.config = config
        self._schedulers: dict = {}

    def get(self, settings: GenerationSettings, device: torch.device):
        from diffusers import DPMSolverMultistepScheduler, LCMScheduler

        key = (settings.sampler, settings.steps, device)
        scheduler = self._schedulers.get(key)
        if scheduler is None:
            scheduler_class = LCMScheduler if settings.sampler == "lcm" else DPMSolverMultistepScheduler
            scheduler = self._schedulers[key] = scheduler_class.from_config(self.config)
        scheduler.set_timesteps(settings.steps, device=device)
        return scheduler
