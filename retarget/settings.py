"""Every generation knob in one place, with the paper's defaults."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

PAPER_STEPS = 25
PAPER_CFG = 3.0
PAPER_REF_SCALE = 0.8
PAPER_EXP_SCALE = 1.0
SAMPLERS = ("dpmsolver++", "lcm")
MAX_STEPS = 1000  # the scheduler's training timesteps
MAX_SEED = 2**63 - 1  # torch generators take 64 bits; per-frame noise adds the frame index


@dataclass
class GenerationSettings:
    """How one stream of frames is sampled.

    Defaults are the paper's: DPM-Solver++ 25 steps, classifier-free guidance 3.0,
    Reference Adapter LoRA scale 0.8, Expression Adapter scale 1.0.
    """

    steps: int = PAPER_STEPS
    cfg: float = PAPER_CFG
    ref_scale: float = PAPER_REF_SCALE
    exp_scale: float = PAPER_EXP_SCALE
    use_reference: bool = True
    seed: int = 0
    # The same initial noise for every frame keeps a video stable; per-frame noise is for stills.
    per_frame_noise: bool = False
    # "dpmsolver++" (the paper) or "lcm" (LCMScheduler; needs the LCM-LoRA loaded)
    sampler: str = "dpmsolver++"

    def validate(self) -> None:
        from retarget.errors import RetargetError

        if not isinstance(self.steps, Integral) or self.steps < 1:
            raise RetargetError(f"--steps must be at least 1 (got {self.steps})")
        if self.steps > MAX_STEPS:
            raise RetargetError(f"--steps must be at most {MAX_STEPS} (got {self.steps})")
        check_number("--cfg", self.cfg, low=1.0)
        check_number("--ref-scale", self.ref_scale, low=0.0)
        check_number("--exp-scale", self.exp_scale, low=0.0)
        if not isinstance(self.seed, Integral) or not 0 <= self.seed <= MAX_SEED:
            raise RetargetError(f"--seed must be a whole number from 0 to {MAX_SEED} (2^63 - 1; got {self.seed})")
        if self.sampler not in SAMPLERS:
            raise RetargetError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")

    @property
    def reference_active(self) -> bool:
        return self.use_reference and self.ref_scale > 0


@dataclass(frozen=True)
class Preset:
    name: str
    steps: int
    cfg: float
    trade: str  # what it gives up, shown wherever presets are offered
    sampler: str = "dpmsolver++"


PRESETS = {
    "quality": Preset("quality", PAPER_STEPS, PAPER_CFG, "the paper's settings: best fidelity, slowest"),
    "balanced": Preset("balanced", 12, PAPER_CFG, "about 2x faster; slightly softer detail"),
    "fast": Preset("fast", 6, 2.0, "about 4x faster; weaker guidance, less identity/expression precision"),
    # The mode the Arc2Face authors document for fast sampling; needs --lcm-lora.
    "lcm": Preset("lcm", 4, 1.0, "LCM-LoRA, 4 steps, no guidance: about 12x faster; a small loss of quality", "lcm"),
}


def preset_settings(name: str, base: GenerationSettings | None = None) -> GenerationSettings:
    """`base` with the preset's sampling knobs (steps, guidance) replaced."""
    from dataclasses import replace

    preset = PRESETS[name]
    return replace(base or GenerationSettings(), steps=preset.steps, cfg=preset.cfg, sampler=preset.sampler)


def check_number(name: str, value, *, low: float | None = None, high: float | None = None, low_open: bool = False) -> None:
    """A finite number within [low, high] (low excluded when low_open); NaN fails every check, unlike `<`."""
    import math

    from retarget.errors import RetargetError

    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise RetargetError(f"{name} must be a number (got {value!r})") from None
    if not math.isfinite(number):
        raise RetargetError(f"{name} must be a finite number (got {value})")
    if low is not None and (number <= low if low_open else number < low):
        raise RetargetError(f"{name} must be {'more than' if low_open else 'at least'} {low:g} (got {value})")
    if high is not None and number > high:
        raise RetargetError(f"{name} must be at most {high:g} (got {value})")
