"""What a path or driver spec names: an image, a video, a blendshape CSV or a camera.

The one registry of suffixes and webcam specs, so that the CLI, the frame sources, the batch
expander, the output checks, the evaluation and the app all agree. Names only: nothing here
touches the file system (a folder of images is the caller's `is_dir()` check).
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Literal

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# Containers our encoder writes (media.video_sink picks the muxer from the suffix).
OUTPUT_VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")
# Every video FFmpeg reads as a driver: what we write and the common camera/web formats.
VIDEO_SUFFIXES = OUTPUT_VIDEO_SUFFIXES + (".avi", ".webm", ".mpg", ".mpeg", ".flv", ".wmv", ".ts", ".gif")
BLENDSHAPE_SUFFIXES = (".csv",)  # ours or Live Link Face

MediaKind = Literal["webcam", "image", "video", "blendshapes"]

_WEBCAM = re.compile(r"^(?:webcam:(?P<dev>.+)|(?P<node>/dev/video\d+))$")


def webcam_device(spec) -> int | str | None:
    """`webcam:N` -> N, `webcam:NAME` or `/dev/videoN` -> that device name; None when `spec` is not a camera."""
    match = _WEBCAM.match(str(spec))
    if not match:
        return None
    device = match.group("dev") or match.group("node")
    return int(device) if device.isdigit() else device


def is_webcam_spec(spec) -> bool:
    return webcam_device(spec) is not None


def media_kind(spec) -> MediaKind | None:
    """The kind a driver spec or file name names by its text alone; None for anything else (a folder, an unknown suffix)."""
    if is_webcam_spec(spec):
        return "webcam"
    suffix = PurePath(str(spec)).suffix.lower()
    for kind, suffixes in (("image", IMAGE_SUFFIXES), ("video", VIDEO_SUFFIXES), ("blendshapes", BLENDSHAPE_SUFFIXES)):
        if suffix in suffixes:
            return kind
    return None


def file_patterns(suffixes) -> str:
    """`(".png", ".jpg")` -> `"*.png *.jpg"`, for file-dialog filters."""
    return " ".join(f"*{suffix}" for suffix in suffixes)
