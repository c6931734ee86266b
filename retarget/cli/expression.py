"""`retarget --headless --expression EXPR.json`: a still from named values, optionally starting from a driver photo.

With `--driver IMAGE` the photo's mapped values (the same mapping flags as any image driver) are
the starting point and the file's named values replace theirs; without a driver, the rest is
neutral. A video driver is refused (a still is one expression), and so are mapping flags when
there is no driver for them to act on (never silently ignored).
"""

from __future__ import annotations

import argparse

import numpy as np

from retarget.errors import BadInputError
from retarget.names.kinds import media_kind

EXPRESSION_HELP = ("a still from named expression values (JSON: {\"kind\": \"blendshapes52\"|\"flame55\", \"values\": "
                   "{name: value}}, as the app saves); with --driver IMAGE the photo's values are the start and the "
                   "file's names override them")


def read_expression_option(args: argparse.Namespace):
    """Check --expression and the options around it before any model loads; returns the parsed file."""
    from retarget.expression.presets import read_expression

    drivers = args.driver or []
    if drivers and (len(drivers) != 1 or media_kind(drivers[0]) != "image"):
        raise BadInputError("--expression renders a still: with --driver give one image (its values are the starting "
                            "point), or leave --driver out")
    if not drivers:
        given = [flag for flag, on in (("--gain", bool(args.gains)), ("--intensity", args.intensity != 1.0),
                                       ("--mirror", args.mirror), ("--relative", args.relative),
                                       ("--neutral-frame", args.neutral_frame is not None)) if on]
        if given:
            raise BadInputError(f"{', '.join(given)}: mapping options act on a driver's values, and --expression alone "
                                "has none; drop them, or add --driver IMAGE to start from a photo")
    return read_expression(args.expression)


def expression_for_still(retargeter, composed, source: str, driver_image=None, driver_source: str = "",
                         mapping=None, identity_neutral=None, face: int | None = None) -> np.ndarray:
    """The vector fed to the loaded adapter: the driver photo's (or neutral) with the file's named values."""
    space = composed.space
    adapter_kind = retargeter.pipeline.expression_kind
    if space.kind == "blendshapes52" and adapter_kind == "flame55":  # named blendshapes through the bridge
        return _bridged_still(retargeter, composed, source, driver_image, driver_source, mapping, identity_neutral, face)
    space.check_adapter(adapter_kind, source)  # before the driver photo's analysis: the wrong file fails fast
    start = None
    if driver_image is not None:
        start = retargeter.expression_from_image(driver_image, source=driver_source, mapping=mapping,
                                                 identity_neutral=identity_neutral, face=face)
    return space.vector_for(adapter_kind, composed.values, start=start)


def _bridged_still(retargeter, composed, source, driver_image, driver_source, mapping, identity_neutral, face) -> np.ndarray:
    """A blendshapes52 file on the FLAME-55 adapter: the 52 values (over the driver photo's mapped blendshapes)
    through the adapter's expression bridge; refused in one line naming the fit command without one."""
    from dataclasses import replace

    from retarget.config import MappingSettings
    from retarget.expression.bridge import missing_bridge_message

    bridge = getattr(retargeter, "bridge", None)
    if bridge is None:
        raise BadInputError(f"{source}: " + missing_bridge_message("a blendshapes52 expression file"))
    start = None
    if driver_image is not None:
        start = retargeter.expression_from_image(
            driver_image, source=driver_source, mapping=replace(mapping or MappingSettings(), expression_source="bridge"),
            identity_neutral=identity_neutral, face=face, blendshapes=True)
    return bridge(composed.space.vector_for("blendshapes52", composed.values, start=start))
