"""Which driving signal an Expression Adapter accepts, and when it goes through the expression bridge.

A driver gives either images (a video, a camera, a folder of stills: MediaPipe and, for FLAME,
SMIRK can read them) or blendshapes only (a blendshape CSV, a Live Link Face take). Blendshape
adapters take both. The FLAME-55 adapter takes images through SMIRK (`--expression-source smirk`,
the default) or, through a fitted expression bridge (retarget.expression.bridge), blendshapes:
every blendshape-only driver, and image drivers with `--expression-source bridge`. Without a
bridge those are refused in one line that names the command fitting one.
"""

from __future__ import annotations

from retarget.config.mapping import EXPRESSION_SOURCES
from retarget.expression.bridge import missing_bridge_message

FLAME = "flame55"
IMAGES = "images"  # a video, a camera, a folder of images, a still
BLENDSHAPES = "blendshapes"  # a blendshape CSV or Live Link Face take


def driver_signal(spec) -> str:
    """The signal a driver spec gives: BLENDSHAPES for a CSV, IMAGES for anything else."""
    from retarget.media.kinds import media_kind

    return BLENDSHAPES if media_kind(spec) == "blendshapes" else IMAGES


def uses_bridge(adapter_kind: str | None, signal: str, expression_source: str = "smirk") -> bool:
    """Whether this signal reaches this adapter through the expression bridge."""
    return adapter_kind == FLAME and (signal == BLENDSHAPES or expression_source == "bridge")


def driver_refusal(adapter_kind: str | None, signal: str, bridge_available: bool,
                   expression_source: str = "smirk") -> str | None:
    """The one line refusing this driver for this adapter, or None when it can drive it.

    adapter_kind: RetargetPipeline.expression_kind; signal: IMAGES or BLENDSHAPES (driver_signal);
    bridge_available: a bridge is fitted for the adapter file (retarget.expression.bridge.find_bridge).
    """
    if expression_source not in EXPRESSION_SOURCES:
        return f"--expression-source {expression_source}: use {' or '.join(EXPRESSION_SOURCES)}"
    if uses_bridge(adapter_kind, signal, expression_source) and not bridge_available:
        what = ("a blendshape CSV or Live Link Face driver" if signal == BLENDSHAPES
                else "driving with --expression-source bridge")
        return missing_bridge_message(what)
    return None


def accepts_driver(adapter_kind: str | None, signal: str, bridge_available: bool, expression_source: str = "smirk") -> bool:
    return driver_refusal(adapter_kind, signal, bridge_available, expression_source) is None


def check_driver(adapter_kind: str | None, signal: str, bridge_available: bool, expression_source: str = "smirk") -> None:
    """driver_refusal as a BadInputError (the CLI's one-line refusal)."""
    from retarget.errors import BadInputError

    reason = driver_refusal(adapter_kind, signal, bridge_available, expression_source)
    if reason is not None:
        raise BadInputError(reason)
