"""Frame sources: video files, webcams, image folders and blendshape CSVs, all as iterators of Frame.

`open_source` picks the source a driver spec names; each kind lives in its own module
(video_source, webcam, image_folder, blendshape_csv) and is re-exported here, so callers import
from one place. Every source probes its input when it is opened, so a bad file fails with one
BadInputError line before any output exists; a file that breaks part-way stops cleanly and records
`decode_error`.
"""

from __future__ import annotations

from pathlib import Path

from retarget.media.blendshape_csv import LIVE_LINK_FACE_DEFAULT_FPS, BlendshapeCsvSource
from retarget.media.frame_source import DEFAULT_FPS, Frame, FrameSource
from retarget.media.image_folder import ImageFolderSource
from retarget.names.kinds import webcam_device
from retarget.media.video_source import Orientation, VideoFileSource
from retarget.media.webcam import WebcamSource, list_cameras

__all__ = [
    "LIVE_LINK_FACE_DEFAULT_FPS",
    "BlendshapeCsvSource",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "Orientation",
    "VideoFileSource",
    "WebcamSource",
    "list_cameras",
    "open_source",
]


def open_source(spec, *, start: int = 0, stop: int | None = None, fps: float | None = None) -> FrameSource:
    """`webcam:N` or `/dev/videoN` -> camera, a folder -> images, `.csv` -> blendshapes, else a video file.

    `start`/`stop` pick a frame range of a video file; `fps` times image folders and CSVs without one.
    """
    text = str(spec)
    device = webcam_device(text)
    if device is not None:
        return WebcamSource(device)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, fps=fps or DEFAULT_FPS)
    if path.suffix.lower() == ".csv":
        return BlendshapeCsvSource(path, fps=fps)
    return VideoFileSource(path, start=start, stop=stop)
