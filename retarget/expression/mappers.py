"""The mapper for an adapter's expression format: pure settings -> mapper, no perception involved.

A mapping change (gains, smoothing, relative, mirror) is a new mapper; the landmarker and SMIRK
that feed it stay as they are (retarget.engine.driving.DriverAnalyzer.set_mapping).
"""

from __future__ import annotations

import numpy as np

from retarget.expression.flame import FlameMapper
from retarget.config.mapping import MappingSettings
from retarget.expression.mapping import ExpressionMapper


def make_mapper(expression_kind: str, settings: MappingSettings | None = None,
                identity_neutral: np.ndarray | None = None,
                identity_flame: np.ndarray | None = None, bridge=None) -> ExpressionMapper | FlameMapper:
    """A fresh mapper (new filter state) for `expression_kind`; bad settings raise their one-line error.

    identity_neutral: the identity's 52 blendshapes; identity_flame: its 55 FLAME values (relative mode).
    bridge: an ExpressionBridge: a FLAME-55 adapter then maps blendshapes through it (BridgeMapper).
    """
    settings = settings or MappingSettings()
    settings.validate()
    if expression_kind == "flame55" and bridge is not None:
        from retarget.expression.bridge_mapping import BridgeMapper

        return BridgeMapper(bridge, settings, identity_neutral)
    if expression_kind == "flame55":
        return FlameMapper(settings, identity_flame)
    return ExpressionMapper(settings, identity_neutral)
