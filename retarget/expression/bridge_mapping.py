"""Blendshapes -> the FLAME-55 adapter through the expression bridge, with the blendshape controls.

The driver's 52 blendshapes get every blendshape control first (mirror, relative calibration onto
the identity photo's own blendshapes, intensity and the region/name gains, One Euro smoothing:
retarget.expression.mapping.ExpressionMapper, unchanged), then the bridge maps them to the 55 FLAME
values the adapter takes. So brows/mouth/cheeks/nose gains act on a FLAME adapter here, which they
cannot on SMIRK's global coefficients. The FLAME-only `expression` gain scales the bridge's 50
expression coefficients afterwards (eyelid and jaw values stay in SMIRK's ranges).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace

import numpy as np

from retarget.expression.bridge import ExpressionBridge
from retarget.config.mapping import FLAME_ONLY_GAINS, MappingSettings
from retarget.expression.mapping import ExpressionMapper


class BridgeMapper(ExpressionMapper):
    """An ExpressionMapper whose output goes through the bridge: (52,) blendshapes in, (55,) FLAME out.

    `mapped_blendshapes` holds the last blendshape vector it sent to the bridge (for the app's chart).
    """

    def __init__(self, bridge: ExpressionBridge, settings: MappingSettings | None = None,
                 identity_neutral: np.ndarray | None = None):
        settings = settings or MappingSettings()
        flame_only = {k: float(v) for k, v in settings.gains.items() if k.strip().lower() in FLAME_ONLY_GAINS}
        blendshape_gains = {k: v for k, v in settings.gains.items() if k not in flame_only}
        super().__init__(replace(settings, gains=blendshape_gains), identity_neutral)
        self.settings = settings  # what the caller set (DriverAnalyzer.mapping reads it back)
        self.bridge = bridge
        self.expression_gain = float(np.prod(list(flame_only.values()))) if flame_only else 1.0
        self.mapped_blendshapes = np.zeros(len(self.identity_neutral), dtype=np.float32)

    def __call__(self, values, t: float) -> np.ndarray:
        blendshapes = super().__call__(values, t)
        self.mapped_blendshapes = blendshapes
        return self.to_flame(blendshapes)

    def to_flame(self, blendshapes) -> np.ndarray:
        """The bridge on already mapped blendshapes, then the FLAME-only expression gain."""
        flame = self.bridge(blendshapes)
        if self.expression_gain != 1.0:
            flame[..., :50] *= np.float32(self.expression_gain)
        return flame


def bridge_fingerprint(bridge: ExpressionBridge) -> str:
    """A short content id of a bridge's map (a resumable job's key changes when the bridge is refitted)."""
    digest = hashlib.sha256(np.ascontiguousarray(bridge.weight).tobytes() + np.ascontiguousarray(bridge.bias).tobytes())
    return digest.hexdigest()[:16]
