"""What a render needs to know about a driver, read once: `SourceInfo` (rate, frames, size, duration, audio, kind).

A driver is probed once per render (`probe_source`) and the record is passed along, instead of each step
(range check, neutral frame, audio, assembly) reopening the file to ask again.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from retarget.media.frame_source import DEFAULT_FPS, FrameSource
from retarget.media.sources import BlendshapeCsvSource, ImageFolderSource, WebcamSource, open_source
from retarget.media.video_sink import frame_rate


@dataclass(frozen=True)
class SourceInfo:
    spec: str
    kind: str  # "video", "images" (a folder), "blendshapes" (a CSV) or "webcam"
    rate: Fraction  # the exact output rate (the input's own, else `fps` or DEFAULT_FPS)
    frame_count: int | None
    duration: float | None
    size: tuple[int, int] | None  # (width, height) of the pictures; None for a blendshape CSV
    has_audio: bool
    live: bool

    @property
    def fps(self) -> float:
        return float(self.rate)

    @classmethod
    def of(cls, source: FrameSource, spec) -> SourceInfo:
        return cls(spec=str(spec), kind=source_kind(source), rate=source_frame_rate(source),
                   frame_count=source.frame_count, duration=source.duration, size=source.size,
                   has_audio=bool(source.has_audio), live=source.live)


def source_frame_rate(source: FrameSource) -> Fraction:
    """The rate a source's frames are written at: the exact rate the input names, else its fps."""
    return source.frame_rate or frame_rate(source.fps or DEFAULT_FPS)


def source_kind(source: FrameSource) -> str:
    for cls, kind in ((WebcamSource, "webcam"), (ImageFolderSource, "images"), (BlendshapeCsvSource, "blendshapes")):
        if isinstance(source, cls):
            return kind
    return "video"


def probe_source(spec, fps: float | None = None) -> SourceInfo:
    """Open a driver once (a bad one fails here with one BadInputError line) and read what a render needs."""
    with open_source(spec, fps=fps) as source:
        return SourceInfo.of(source, spec)
