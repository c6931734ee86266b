"""The part of a driver an offline render covers: [start, end) seconds of the driver's own time.

Times count from the driver's first frame: a video's frame times (a variable-frame-rate video keeps its own),
a CSV take's or an image folder's constant-rate grid (frame k at k/fps, whatever time a row carries). The
rendered frames are renumbered from 0, so the output starts at 0 and lasts as long as the range.
"""

from __future__ import annotations

from dataclasses import dataclass

from retarget.errors import BadInputError
from retarget.media.frame_source import DEFAULT_FPS

# Frame times read from a container's ticks carry rounding (0.9999999 for 1.0): a frame this close to a bound is on it.
_TOLERANCE = 1e-4


@dataclass(frozen=True)
class TimeRange:
    start: float = 0.0
    end: float | None = None

    @classmethod
    def of(cls, options) -> "TimeRange":
        """The range of a RenderOptions."""
        return cls(float(options.start or 0.0), None if options.end is None else float(options.end))

    @property
    def whole(self) -> bool:
        return self.start <= 0 and self.end is None

    def job_key(self) -> dict:
        """Another range is another job (its frames are numbered from another first frame)."""
        return {} if self.whole else {"time_range": [self.start, self.end]}

    def before(self, seconds: float) -> bool:
        return seconds < self.start - _TOLERANCE

    def after(self, seconds: float) -> bool:
        return self.end is not None and seconds >= self.end - _TOLERANCE

    def check(self, source, driver) -> None:
        """Refuse a start at or beyond the driver's end when its duration is known without decoding."""
        duration = source.duration
        if self.start > 0 and duration and self.start >= duration - _TOLERANCE:
            raise BadInputError(f"--start {self.start:g}: {driver} lasts {duration:.2f} s; "
                                f"start before its end (times are seconds from its first frame)")

    def frame_count(self, source) -> int | None:
        """How many frames the range holds, for progress (a constant rate's estimate; None when unknown)."""
        total = source.frame_count
        if self.whole or not total:
            return total
        fps = float(source.fps or DEFAULT_FPS)
        return sum(1 for i in range(total) if not self.before(i / fps) and not self.after(i / fps))


def frame_seconds(source, frame) -> float:
    """A frame's time from the driver's first frame: a video's own (pts) time, else its place on the rate's grid."""
    from retarget.media.video_source import VideoFileSource

    if isinstance(source, VideoFileSource):
        return float(frame.time)
    return frame.index / float(source.fps or DEFAULT_FPS)
