"""Expression controls in FLAME space, for the published Expression Adapter (55 SMIRK values).

The same controls as for blendshapes, where FLAME has a meaning for them:
- relative mode: the driver's change from its own neutral frame, added to the identity photo's
  own FLAME values (SMIRK on the identity photo);
- intensity: scales that change (from zero when not relative);
- mirror: handled before SMIRK (the driver image is flipped), see DriverAnalyzer;
- gains: `eyes` scales the 2 eyelid values, `jaw` the 3 jaw values, `expression` the 50
  expression coefficients together. The 50 coefficients are global (each moves the whole face),
  so brows/mouth/cheeks/nose and single blendshape names have no FLAME counterpart: a gain other
  than 1 on them is refused with a message, never silently ignored;
- One Euro smoothing on the resulting 55 values.
Results stay in SMIRK's output ranges (eyelids 0..1, jaw opening >= 0, jaw sideways +-0.2).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from retarget.errors import RetargetError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.config.mapping import FLAME_ONLY_GAINS, MappingSettings, REGIONS
from retarget.expression.mapping import StreamMapper, fixed_vector

NUM_FLAME = 55
FLAME_GROUPS = {"expression": slice(0, 50), "eyes": slice(50, 52), "jaw": slice(52, 55)}
NO_FLAME_REGION = ("the published FLAME-55 adapter has no {name} control: its 50 expression coefficients are global, "
                   "not per region; use the eyes, jaw or expression gain, or an adapter trained on blendshapes")
CONTROLS = ("relative", "set_neutral", "intensity", "mirror", "smoothing")


def control_support(expression_kind: str | None, bridge: bool = False) -> dict[str, str | None]:
    """Which controls apply to an adapter: control -> None when it applies, else the reason (for a tooltip).

    Keys: relative, set_neutral, intensity, mirror, smoothing, and gain.<name> for every region
    (brows, eyes, mouth, jaw, cheeks, nose) plus gain.expression. bridge: a FLAME-55 adapter driven
    with blendshapes through the expression bridge (retarget.expression.bridge_mapping), where every
    region gain applies in blendshape space before the bridge, and the expression gain after it.
    """
    support: dict[str, str | None] = {name: None for name in CONTROLS}
    for region in REGIONS:
        support[f"gain.{region}"] = None
    for name in FLAME_ONLY_GAINS:
        support[f"gain.{name}"] = None
    if expression_kind == "flame55" and not bridge:
        for region in REGIONS:
            if region not in FLAME_GROUPS:
                support[f"gain.{region}"] = NO_FLAME_REGION.format(name=region)
    elif expression_kind != "flame55":
        support["gain.expression"] = "the expression gain scales FLAME's 50 expression coefficients: the FLAME-55 adapter only"
    return support


def flame_gains(settings: MappingSettings) -> np.ndarray:
    """(55,) multipliers (intensity included) for these settings; RetargetError for a gain FLAME cannot apply."""
    gains = np.ones(NUM_FLAME, dtype=np.float64)
    lower_names = {n.lower() for n in BLENDSHAPE_NAMES}
    for key, value in settings.gains.items():
        name = key.strip().lower()
        if name in FLAME_GROUPS:
            gains[FLAME_GROUPS[name]] = float(value)
        elif float(value) == 1.0 and (name in REGIONS or name in lower_names):
            continue  # a gain of 1 changes nothing, so it is not refused (the app sends every region)
        else:
            raise RetargetError(f"--gain {key}: " + NO_FLAME_REGION.format(name=key.strip()))
    return gains * float(settings.intensity)


def clamp_to_smirk_ranges(flame: np.ndarray) -> np.ndarray:
    out = np.array(flame, dtype=np.float64)
    out[50:52] = np.clip(out[50:52], 0.0, 1.0)
    out[52] = max(out[52], 0.0)
    out[53:55] = np.clip(out[53:55], -0.2, 0.2)
    return out


def _flame(values, what: str) -> np.ndarray:
    return fixed_vector(values, NUM_FLAME, what, "FLAME (50 expression, 2 eyelid, 3 jaw)")


class FlameMapper(StreamMapper):
    """The driver's raw FLAME-55 per frame (None: no face) -> the vector fed to the adapter.

    relative: identity + gains x intensity x (x - driver neutral); otherwise gains x intensity x x;
    then SMIRK's ranges, then One Euro smoothing. Until a relative stream has a neutral it shows
    the identity's own values.
    """

    def __init__(self, settings: MappingSettings | None = None, identity_flame: np.ndarray | None = None):
        self.settings = settings or MappingSettings()
        self._gains = flame_gains(self.settings)
        if self.settings.relative and identity_flame is None:
            raise RetargetError("relative mode with the FLAME-55 adapter needs the identity photo's own FLAME values "
                                "(SMIRK on the identity photo); load the identity first")
        self.identity_flame = np.zeros(NUM_FLAME) if identity_flame is None else _flame(identity_flame, "identity_flame")
        super().__init__(self.settings)

    def set_neutral(self, flame) -> None:
        """The driver's neutral face, as raw FLAME of the (already mirrored, if mirroring) driver image."""
        self.driver_neutral = _flame(flame, "neutral")
        self._window = []

    def map(self, flame) -> np.ndarray:
        """The unsmoothed mapping of one raw driver vector."""
        x = _flame(flame, "driver FLAME")
        if self.settings.relative:
            if self.driver_neutral is None:
                return self.identity_flame.copy()
            y = self.identity_flame + self._gains * (x - self.driver_neutral)
        else:
            y = self._gains * x
        return clamp_to_smirk_ranges(y)

    def _vector(self, values) -> np.ndarray:
        return _flame(values, "driver FLAME")

    def _rest(self) -> np.ndarray:
        return self.identity_flame if self.settings.relative else np.zeros(NUM_FLAME)

    def _map(self, raw: np.ndarray) -> np.ndarray:
        return self.map(raw)


class FlameHistory:
    """Recent frames' raw blendshapes -> their raw FLAME, so "Set neutral" (which hands back a frame's
    raw blendshapes) finds that frame's FLAME values, also for an analyzer made after the frame."""

    def __init__(self, size: int = 600):
        self._items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.size = size

    @staticmethod
    def _key(blendshapes) -> bytes:
        return np.asarray(blendshapes, dtype=np.float32).tobytes()

    def remember(self, blendshapes, flame) -> None:
        key = self._key(blendshapes)
        self._items[key] = np.asarray(flame, dtype=np.float32).copy()
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def flame_for(self, blendshapes) -> np.ndarray | None:
        return self._items.get(self._key(blendshapes))
