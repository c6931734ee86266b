"""Which driver signal an Expression Adapter kind can take: the one rule, asked before any model loads.

A driver gives pictures (an image, a video, an image folder, a webcam: perception turns them into
the adapter's values, MediaPipe blendshapes or SMIRK's FLAME-55) or blendshape curves (a CSV: ours
or a Live Link Face take; no pictures, so no SMIRK). `signal_refusal` is the rule; the CLI asks it
before models load (from the adapter file's input width, read without its weights) and the offline
engine asks it again before a job touches the disk.
"""

from __future__ import annotations

from pathlib import Path

from retarget.errors import BadInputError
from retarget.media.kinds import media_kind

PICTURES = "pictures"
BLENDSHAPES = "blendshapes"


def driver_signal(spec) -> str:
    """`blendshapes` for a blendshape CSV driver, `pictures` for everything else."""
    return BLENDSHAPES if media_kind(spec) == "blendshapes" else PICTURES


def signal_refusal(adapter_kind: str | None, signal: str, adapter_file: Path | None = None) -> str | None:
    """None when an adapter of `adapter_kind` (its file: `adapter_file`, when known) can be driven by `signal`;
    else the reason, one line saying what to do. An unknown kind (None) is not refused here."""
    if adapter_kind == "flame55" and signal == BLENDSHAPES:
        return ("a blendshape CSV cannot drive the FLAME-55 Expression Adapter (it takes SMIRK's FLAME values, "
                "which need pictures); use a blendshape adapter (--exp-adapter) or a video driver")
    return None


def check_signal(adapter_kind: str | None, signal: str, adapter_file: Path | None = None, driver: str = "") -> None:
    """signal_refusal as a one-line BadInputError naming the driver."""
    reason = signal_refusal(adapter_kind, signal, adapter_file)
    if reason is not None:
        raise BadInputError(f"{driver}: {reason}" if driver else reason)
