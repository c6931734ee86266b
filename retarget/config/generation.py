"""How frames are sampled (GenerationSettings, with the paper's defaults) and the named presets."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from retarget.config.knobs import check_number, knob, validate_knobs

PAPER_STEPS = 25
PAPER_CFG = 3.0
PAPER_REF_SCALE = 0.8
PAPER_EXP_SCALE = 1.0
SAMPLERS = ("dpmsolver++", "lcm")
MAX_STEPS = 1000  # the scheduler's training timesteps
MAX_SEED = 2**63 - 1  # torch generators take 64 bits; per-frame noise adds the frame index


def check_seed(name: str, value) -> None:
    from numbers import Integral

    from retarget.errors import RetargetError

    if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= value <= MAX_SEED:
        raise RetargetError(f"{name} must be a whole number from 0 to {MAX_SEED} (2^63 - 1; got {value})")


def _check_sampler(name: str, value) -> None:
    from retarget.errors import RetargetError

    if value not in SAMPLERS:
        raise RetargetError(f"unknown sampler {value!r}; choose from {', '.join(SAMPLERS)}")


@dataclass
class GenerationSettings:
    """How one stream of frames is sampled.

    Defaults are the paper's: DPM-Solver++ 25 steps, classifier-free guidance 3.0,
    Reference Adapter LoRA scale 0.8, Expression Adapter scale 1.0.
    """

    CLI_GROUP: ClassVar[str] = "generation"  # --help group of the knobs without one of their own

    SECTION: ClassVar[str] = "gen"  # saved-settings keys gen/<name>
    TITLE: ClassVar[str] = "Generation"  # the app's settings group

    steps: int = knob(PAPER_STEPS, flag="--steps", low=1, high=MAX_STEPS, help=f"DPM-Solver++ steps (default {PAPER_STEPS})",
                      label="Steps", gui_range=(1, 100))
    cfg: float = knob(PAPER_CFG, flag="--cfg", low=1.0, help=f"classifier-free guidance (default {PAPER_CFG})",
                      label="CFG", gui_range=(1.0, 15.0), step=0.5, decimals=1, gui_beside="steps",
                      tooltip="Classifier-free guidance; 1.0 turns it off (one UNet pass per step, faster)")
    ref_scale: float = knob(PAPER_REF_SCALE, flag="--ref-scale", low=0.0,
                            help=f"Reference Adapter scale, 0 = off (default {PAPER_REF_SCALE})",
                            label="Reference Adapter scale", gui_range=(0.0, 2.0), step=0.05)
    exp_scale: float = knob(PAPER_EXP_SCALE, flag="--exp-scale", low=0.0, help=f"Expression Adapter scale (default {PAPER_EXP_SCALE})",
                            label="Expression scale", gui_range=(0.0, 3.0), step=0.05)
    use_reference: bool = knob(True, flag="--no-reference", help="switch the Reference Adapter off (and do not load it)",
                               label="Reference Adapter", gui_pair="ref_scale",
                               tooltip="Keeps the identity's appearance (hair, skin) close to the photo")
    seed: int = knob(0, flag="--seed", check=check_seed, help="seed of the initial noise (default 0)",
                     label="Seed", gui_range=(0, 2**31 - 1))
    # The same initial noise for every frame keeps a video stable; per-frame noise is for stills.
    per_frame_noise: bool = knob(False, flag="--per-frame-noise", group="video drivers",
                                 help="new noise every frame (default: one fixed noise keeps video stable)")
    # "dpmsolver++" (the paper) or "lcm" (LCMScheduler; needs the LCM-LoRA loaded); chosen through --preset
    sampler: str = knob("dpmsolver++", check=_check_sampler, help="the sampler: dpmsolver++ (the paper) or lcm (LCM-LoRA)")

    def validate(self) -> None:
        validate_knobs(self)

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
    preset = PRESETS[name]
    return replace(base or GenerationSettings(), steps=preset.steps, cfg=preset.cfg, sampler=preset.sampler)


@dataclass
class PresetChoice:
    """The preset picked (it overrides steps, guidance and sampler); not part of GenerationSettings, whose
    fields are recorded in resumable jobs' manifests."""

    SECTION: ClassVar[str] = "gen"
    TITLE: ClassVar[str] = "Generation"

    preset: str | None = knob(
        None, flag="--preset", group="speed", choices=tuple(PRESETS),
        help="sampling preset, overriding --steps/--cfg: "
             + "; ".join(f"{p.name} = {p.steps} steps, CFG {p.cfg} ({p.trade})" for p in PRESETS.values()),
        label="Preset", tooltip="Quality presets: fewer sampling steps are faster but less detailed",
    )

    def apply(self, settings: GenerationSettings) -> GenerationSettings:
        return preset_settings(self.preset, settings) if self.preset else settings


__all__ = [
    "MAX_SEED", "MAX_STEPS", "PAPER_CFG", "PAPER_EXP_SCALE", "PAPER_REF_SCALE", "PAPER_STEPS", "PRESETS", "SAMPLERS",
    "GenerationSettings", "Preset", "PresetChoice", "check_number", "preset_settings",
]
