"""How the driver's expression is mapped (MappingSettings): smoothing, relative mode, intensity, gains, mirror.

The mappers themselves are in retarget.expression (mapping for blendshapes, flame for FLAME-55).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from retarget.config.knobs import check_number, knob, validate_knobs
from retarget.errors import RetargetError
from retarget.names.blendshapes import BLENDSHAPE_NAMES

NEUTRAL_INDEX = 0  # MediaPipe's `_neutral`: a confidence-like score, not a facial action

# Face regions by ARKit name prefix; a gain on a region applies to each of its names.
_REGION_PREFIXES = {
    "brows": ("brow",),
    "eyes": ("eye",),
    "mouth": ("mouth",),
    "jaw": ("jaw",),
    "cheeks": ("cheek",),
    "nose": ("nose",),
}
REGIONS: dict[str, tuple[str, ...]] = {
    region: tuple(n for n in BLENDSHAPE_NAMES if n.startswith(prefixes)) for region, prefixes in _REGION_PREFIXES.items()
}
# Gains that only the FLAME-55 adapter has (retarget.expression.flame); blendshape mapping refuses them.
FLAME_ONLY_GAINS = ("expression",)
GAIN_EXAMPLE = "expected NAME=VALUE, e.g. --gain mouth=1.5"
# Where a FLAME-55 adapter's driving values come from (retarget.expression.signals).
EXPRESSION_SOURCES = ("smirk", "bridge")


def parse_gains(items: list[str]) -> dict[str, float]:
    """`--gain NAME=VALUE` strings (repeatable) -> {name: value}."""
    gains = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            gains[name.strip()] = float(value)
        except ValueError:
            raise RetargetError(f"--gain {item}: {GAIN_EXAMPLE}") from None
        if not sep:
            raise RetargetError(f"--gain {item}: {GAIN_EXAMPLE}")
    return gains


def gain_vector(gains: dict[str, float]) -> np.ndarray:
    """The per-name multipliers these gains describe; `_neutral` always 1."""
    lower = {n.lower(): i for i, n in enumerate(BLENDSHAPE_NAMES)}
    vector = np.ones(len(BLENDSHAPE_NAMES), dtype=np.float64)
    named: dict[int, float] = {}
    for key, value in gains.items():
        k = key.strip()
        if k.lower() in REGIONS:
            for name in REGIONS[k.lower()]:
                vector[BLENDSHAPE_NAMES.index(name)] = float(value)
        elif k.lower() in lower and lower[k.lower()] != NEUTRAL_INDEX:
            named[lower[k.lower()]] = float(value)
        elif k.lower() in FLAME_ONLY_GAINS:
            continue  # checked against the loaded adapter (refused by ExpressionMapper unless it is 1)
        else:
            raise RetargetError(
                f"unknown gain '{key}': use a blendshape name such as jawOpen, a region ({', '.join(REGIONS)}) "
                "or, for the FLAME-55 adapter, expression"
            )
    for index, value in named.items():
        vector[index] = value
    return vector


def _check_gains(name: str, gains: dict) -> None:
    for key, value in gains.items():
        check_number(f"{name} {key}", value, low=0.0)
    gain_vector(gains)  # unknown names


def _gain_tooltip(name: str) -> str:
    if name in REGIONS:
        return f"Gain on the {name} blendshapes (1 = as the driver does it)"
    return f"Gain on FLAME's {name} coefficients (1 = as the driver does it)"


@dataclass
class MappingSettings:
    SECTION: ClassVar[str] = "map"
    TITLE: ClassVar[str] = "Expression mapping"

    smoothing: bool = knob(True, flag="--no-smoothing", group="expression mapping", help="turn One Euro smoothing off (on by default)",
                           label="Smoothing (One Euro)")
    min_cutoff: float = knob(1.0, flag="--smoothing-cutoff", group="expression mapping", low=0.0, low_open=True,
                             help="One Euro min cutoff in Hz (lower = smoother; default 1.0)")
    beta: float = knob(0.3, flag="--smoothing-beta", group="expression mapping", low=0.0,
                       help="One Euro speed coefficient (higher = less lag; default 0.3)")
    # Relative mode transfers the driver's change from its own neutral face onto the identity's neutral.
    relative: bool = knob(False, flag="--relative", group="expression mapping",
                          help="map the driver's change from its neutral face onto the identity's own expression",
                          label="Relative to the driver's neutral face",
                          tooltip="Transfers the driver's change from its neutral face onto the identity's own expression")
    intensity: float = knob(1.0, flag="--intensity", group="expression mapping", low=0.0, help="overall expression intensity (default 1.0)")
    # Per blendshape name or per region in REGIONS; a name's own gain wins over its region's.
    gains: dict[str, float] = knob(
        default_factory=dict, flag="--gain", group="expression mapping", metavar="NAME=VALUE", parse=parse_gains,
        check=_check_gains,
        help="gain for a blendshape or a region (brows, eyes, mouth, jaw, cheeks, nose); repeatable. "
             "The FLAME-55 adapter takes eyes (eyelids), jaw and expression (its 50 coefficients together)",
        label="{} gain", keys=(*REGIONS, *FLAME_ONLY_GAINS), item_default=1.0, key="map/gain_{}",
        gui_range=(0.0, 3.0), step=0.1, tooltip=_gain_tooltip,
    )
    # Swap left and right, for a driver seen in a mirror (e.g. a selfie preview).
    mirror: bool = knob(False, flag="--mirror", group="expression mapping",
                        help="swap left and right (selfie cameras); FLAME-55: the driver image is flipped before SMIRK",
                        label="Mirror (swap left and right)")
    # FLAME-55 adapters only: SMIRK per driver frame, or MediaPipe's blendshapes through the fitted bridge.
    expression_source: str = knob("smirk", flag="--expression-source", group="expression mapping", choices=EXPRESSION_SOURCES,
                                  help="FLAME-55 adapters: smirk (SMIRK on every driver frame; default) or bridge (MediaPipe's "
                                       "blendshapes through the fitted expression bridge: no SMIRK, every region gain applies)",
                                  label="FLAME driving from",
                                  tooltip="FLAME-55 adapters: smirk reads each driver frame with SMIRK; bridge maps MediaPipe's "
                                          "blendshapes through the calibrated expression bridge (no SMIRK; region gains apply)")
    # Relative mode starting uncalibrated: the median of the driver's first second (from its first face) becomes
    # its neutral, whatever the rate (25 frames were 0.42 s of a 60 Hz take and 2.1 s of a 12 fps clip).
    calibration_seconds: float = knob(1.0, low=0.0, help="seconds whose median is the driver's neutral when relative mode starts")
    # A window in frames instead (library and tests); None: calibration_seconds decides.
    calibration_window: int | None = knob(None, low=0, help="frames whose median is the driver's neutral (instead of seconds)")

    def gain_vector(self) -> np.ndarray:
        """The per-name multipliers these gains describe; `_neutral` always 1."""
        return gain_vector(self.gains)

    def validate(self) -> None:
        validate_knobs(self)
