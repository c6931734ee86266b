"""`retarget --headless`: the refusals that need no model, made before any model loads or anything is written.

Each depends only on the drivers, the outputs and the Expression Adapter's kind (read from the adapter
file's input width, not its weights): the output's kind against the driver's, `--side-by-side` and
`--fps` against the driver's kind, and whether the adapter kind can take the driver's signal (the rule
itself is retarget.expression.signals.signal_refusal).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from retarget.errors import BadInputError
from retarget.names.kinds import OUTPUT_VIDEO_SUFFIXES, media_kind


def check_before_loading(args: argparse.Namespace, drivers: list, still: bool, webcam: bool, batch: bool) -> None:
    """One-line BadInputError for a job that cannot run, before models load; nothing is written. The adapter's
    signal (check_adapter_signal) is asked after the drivers are read: a broken take is named before the bridge."""
    check_output_kind(args.out, drivers, still, webcam, batch)
    csv_drivers = [d for d in drivers if media_kind(d) == "blendshapes"]
    if getattr(args, "side_by_side", None) is not None and csv_drivers:
        raise BadInputError(f"--side-by-side: {csv_drivers[0]} is a blendshape CSV, which has no pictures to put beside "
                            "the output; drop --side-by-side or drive with the video")
    if getattr(args, "fps", None) is not None and (still or webcam or len(csv_drivers) < len(drivers)):
        other = next((d for d in drivers if media_kind(d) != "blendshapes"), drivers[0] if drivers else "--expression")
        raise BadInputError(f"--fps: sets the output rate of blendshape CSV drivers; {other} keeps its own frame times")


def check_output_kind(out: Path, drivers: list, still: bool, webcam: bool, batch: bool) -> None:
    """A video driver (or CSV, image folder, webcam) makes a video or a PNG folder; a batch makes a folder."""
    if still:
        return  # the caller checks a still's image output
    suffix = Path(out).suffix.lower()
    videos = ", ".join(OUTPUT_VIDEO_SUFFIXES)
    if batch:
        if suffix:
            raise BadInputError(f"--out {out}: several drivers need an output folder, not a file name")
    elif webcam:
        if suffix not in OUTPUT_VIDEO_SUFFIXES:
            raise BadInputError(f"--out {out}: a webcam driver records a video; use {videos}")
    elif suffix and suffix not in OUTPUT_VIDEO_SUFFIXES:
        raise BadInputError(f"--out {out}: {drivers[0]} makes a video; use {videos}, or a folder name (no suffix) for PNGs")


def check_adapter_signal(args: argparse.Namespace, drivers: list) -> None:
    """The loaded adapter's kind must take every driver's signal (blendshape curves or pictures)."""
    from retarget.weights.assets import expression_adapter_before_loading
    from retarget.expression.signals import check_signal, driver_signal

    signals = {driver_signal(d): d for d in drivers}
    source = getattr(args, "expression_source", "smirk")
    if len(signals) == 1 and "pictures" in signals and source != "bridge":
        return  # every adapter kind takes pictures through SMIRK or MediaPipe: no need to look at the adapter file
    kind, adapter_file = expression_adapter_before_loading(str(args.models), getattr(args, "exp_adapter", None))
    for signal, driver in signals.items():
        check_signal(kind, signal, adapter_file, str(driver), expression_source=source, bridge_file=getattr(args, "bridge", None))
