"""Every knob in one place: dataclasses whose fields carry default, range, help, flag, app label and saved key.

- knobs: the Knob metadata, knob() fields, validation (check_number, validate_knobs)
- generation: GenerationSettings (the paper's defaults), PRESETS, PresetChoice
- models: ModelOptions (weights, device, dtype, speed options)
- mapping: MappingSettings (smoothing, relative mode, intensity, gains, mirror)
- render: VideoOptions (encoder), RenderOptions (offline jobs), LiveOptions
- frame: FrameOptions (full photo with the face pasted back, or the aligned crop)
- provenance: ProvenanceOptions (marking outputs as AI-generated: on unless turned off for research)
- cli_options: argparse options generated from the fields; store: saved settings (with old-key migration)

Adding a knob = adding one field with knob(...) to the right dataclass: the command line
(add_knob_options), validation, the app's settings form (when it has a label) and its saved
settings follow from the field.
"""

from retarget.config.frame import FrameOptions
from retarget.config.generation import (
    MAX_SEED, MAX_STEPS, PAPER_CFG, PAPER_EXP_SCALE, PAPER_REF_SCALE, PAPER_STEPS, PRESETS, SAMPLERS,
    GenerationSettings, Preset, PresetChoice, preset_settings,
)
from retarget.config.knobs import Knob, KnobField, check_number, check_whole, knob, knob_fields, validate_knobs
from retarget.config.mapping import MappingSettings
from retarget.config.models import MODELS_HELP, ModelOptions
from retarget.config.provenance import ProvenanceOptions
from retarget.config.render import LiveOptions, RenderOptions, VideoOptions

# The knob classes of `retarget --headless`, in --help order, and of the app's settings form.
HEADLESS_KNOBS = (PresetChoice, ModelOptions, RenderOptions, VideoOptions, LiveOptions, FrameOptions, GenerationSettings,
                  MappingSettings, ProvenanceOptions)
APP_FORM_KNOBS = (PresetChoice, GenerationSettings, MappingSettings, ModelOptions, RenderOptions, VideoOptions, LiveOptions,
                  FrameOptions, ProvenanceOptions)

__all__ = [
    "APP_FORM_KNOBS", "FrameOptions", "HEADLESS_KNOBS", "MAX_SEED", "MAX_STEPS", "MODELS_HELP", "PAPER_CFG", "PAPER_EXP_SCALE",
    "PAPER_REF_SCALE", "PAPER_STEPS", "PRESETS", "SAMPLERS", "GenerationSettings", "Knob", "KnobField", "LiveOptions",
    "MappingSettings", "ModelOptions", "Preset", "PresetChoice", "ProvenanceOptions", "RenderOptions", "VideoOptions", "check_number",
    "check_whole", "knob", "knob_fields", "preset_settings", "validate_knobs",
]
