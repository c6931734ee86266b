"""Kept for imports written before retarget.config: the generation settings and presets live there now."""

from retarget.config.generation import (  # noqa: F401
    MAX_SEED, MAX_STEPS, PAPER_CFG, PAPER_EXP_SCALE, PAPER_REF_SCALE, PAPER_STEPS, PRESETS, SAMPLERS,
    GenerationSettings, Preset, preset_settings,
)
from retarget.config.knobs import check_number  # noqa: F401
