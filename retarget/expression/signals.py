"""Which driver signal an Expression Adapter kind can take, and when it goes through the expression bridge.

The one rule, asked before any model loads (the CLI, from the adapter file's input width, read
without its weights), again by the offline engine before a job touches the disk, and by the
analyzer per stream. A driver gives pictures (an image, a video, an image folder, a webcam:
perception turns them into MediaPipe blendshapes or SMIRK's FLAME-55) or blendshape curves (a CSV:
ours or a Live Link Face take; no pictures, so no SMIRK). Blendshape adapters take both. The
FLAME-55 adapter takes pictures through SMIRK (`--expression-source smirk`, the default) or,
through a fitted expression bridge (retarget.expression.bridge), blendshapes: every blendshape
CSV, and pictures with `--expression-source bridge`. Without a bridge those are refused in one line
that names the command fitting one.
"""

from __future__ import annotations

from pathlib import Path

from retarget.config.mapping import EXPRESSION_SOURCES
from retarget.errors import BadInputError
from retarget.names.kinds import media_kind

FLAME = "flame55"
PICTURES = "pictures"
BLENDSHAPES = "blendshapes"


def driver_signal(spec) -> str:
    """`blendshapes` for a blendshape CSV driver, `pictures` for everything else."""
    return BLENDSHAPES if media_kind(spec) == "blendshapes" else PICTURES


def uses_bridge(adapter_kind: str | None, signal: str, expression_source: str = "smirk") -> bool:
    """Whether this signal reaches this adapter through the expression bridge."""
    return adapter_kind == FLAME and (signal == BLENDSHAPES or expression_source == "bridge")


def signal_refusal(adapter_kind: str | None, signal: str, adapter_file: Path | None = None, *,
                   bridge_available: bool | None = None, expression_source: str = "smirk", bridge_file=None) -> str | None:
    """None when an adapter of `adapter_kind` can be driven by `signal`; else the reason, one line saying what to do.

    bridge_available: whether a bridge is fitted for the adapter; None: looked up from `adapter_file`
    (retarget.expression.bridge.find_bridge, with `bridge_file` = --bridge), False when that is unknown too.
    An unknown adapter kind (None) is not refused here.
    """
    if expression_source not in EXPRESSION_SOURCES:
        return f"--expression-source {expression_source}: use {' or '.join(EXPRESSION_SOURCES)}"
    if not uses_bridge(adapter_kind, signal, expression_source):
        return None
    if bridge_available is None:
        from retarget.expression.bridge import find_bridge

        bridge_available = bridge_file is not None or (adapter_file is not None and find_bridge(adapter_file) is not None)
    if bridge_available:
        return None
    from retarget.expression.bridge import missing_bridge_message

    what = "a blendshape CSV or Live Link Face driver" if signal == BLENDSHAPES else "driving with --expression-source bridge"
    return missing_bridge_message(what)


def check_signal(adapter_kind: str | None, signal: str, adapter_file: Path | None = None, driver: str = "", **bridge) -> None:
    """signal_refusal as a one-line BadInputError naming the driver (bridge: signal_refusal's keyword options)."""
    reason = signal_refusal(adapter_kind, signal, adapter_file, **bridge)
    if reason is not None:
        raise BadInputError(f"{driver}: {reason}" if driver else reason)
