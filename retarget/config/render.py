"""How output is written: the video encoder (VideoOptions), offline jobs (RenderOptions) and live streams (LiveOptions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from retarget.config.knobs import knob, validate_knobs
from retarget.errors import RetargetError


@dataclass
class VideoOptions:
    """The H.264 encoder's settings for every video written: offline renders, side-by-side videos and live recordings."""

    SECTION: ClassVar[str] = "video"
    TITLE: ClassVar[str] = "Output video"

    crf: int = knob(18, flag="--crf", group="video drivers", low=0, high=51,
                    help="H.264 quality of the videos written (CRF: 0 = lossless, 51 = worst; lower = bigger files; default 18)",
                    label="Quality (CRF)", tooltip="H.264 constant rate factor of renders and recordings: 0 = lossless, "
                                                   "18 = visually lossless (default), 51 = worst; lower means bigger files")

    def validate(self) -> None:
        validate_knobs(self)

    def codec_options(self) -> dict[str, str]:
        """libx264's private options (PyAV stream `options`)."""
        return {"crf": str(self.crf)}


@dataclass
class RenderOptions:
    """One offline job (retarget.engine.OfflineRenderer.render)."""

    SECTION: ClassVar[str] = "render"
    TITLE: ClassVar[str] = "Render"

    batch_size: int = knob(4, flag="--batch-size", group="video drivers", low=1, help="frames per generator call (default 4)")
    resume: bool = knob(False, flag="--resume", group="video drivers", help="continue a stopped job from the frames already rendered")
    side_by_side: Path | None = knob(None, flag="--side-by-side", group="video drivers", help="also write a driver|output video here")
    # A blendshape CSV's rows come at their own times; the output is a constant rate with frames placed by time.
    fps: float | None = knob(None, flag="--fps", group="video drivers", low=0.0, low_open=True, high=240.0,
                             help="blendshape CSV drivers: the output's frame rate, each frame showing the row at its time "
                                  "(default: the take's own rate, from its rows' spacing)")
    # Read by the command line, which finds that frame's face before the job starts (not part of the job's manifest).
    neutral_frame: int | None = knob(None, flag="--neutral-frame", group="expression mapping", low=0,
                                     help="relative mode: this driver frame is the neutral face (default: the median of the first second)")
    # A time range of the driver, in seconds from its first frame (the driver's own times: a variable-rate video's
    # frame times, a CSV take's grid); the output starts at 0. No app label: the Render video dialog asks per job.
    start: float = knob(0.0, flag="--start", group="video drivers", low=0.0, metavar="SECONDS",
                        help="video/CSV/image-folder drivers: render from this time of the driver, in seconds (default 0)")
    end: float | None = knob(None, flag="--end", group="video drivers", low=0.0, low_open=True, metavar="SECONDS",
                             help="video/CSV/image-folder drivers: render up to (not including) this time, in seconds "
                                  "(default: the driver's end)")
    video: VideoOptions = field(default_factory=VideoOptions)
    # Render only frames [start, stop) (a share of one long video); perception still runs from frame 0
    # so smoothing and calibration match a single-process run.
    frame_range: tuple[int, int | None] | None = None
    assemble: bool = True
    progress: bool = True
    # Hold the work folder's lock for the job (off for the ranks of a split job, whose main process holds it).
    lock: bool = True

    def validate(self) -> None:
        validate_knobs(self)
        if self.end is not None and self.end <= self.start:
            raise RetargetError(f"--end {self.end:g} must be after --start {self.start:g} (times in seconds)")
        self.video.validate()


@dataclass
class LiveOptions:
    """A live stream (retarget.engine.LiveStream)."""

    SECTION: ClassVar[str] = "live"
    TITLE: ClassVar[str] = "Live"

    min_change: float = knob(0.0, flag="--min-change", group="speed", low=0.0,
                             help="live: skip generation while the expression changed less than this (mean absolute change); 0 = off")

    def validate(self) -> None:
        validate_knobs(self)
