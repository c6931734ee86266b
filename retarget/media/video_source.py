"""Video files through PyAV: frames come out upright (display matrix or rotate tag) and in RGB.

The file is probed when it is opened, so a bad file fails with one BadInputError line before any
output exists; a file that breaks part-way stops cleanly and records `decode_error`.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError
from retarget.media.frame_source import DEFAULT_FPS, Frame, FrameSource, check_file, one_line


def _ffmpeg_reason(err: Exception) -> str:
    # PyAV's str() repeats the errno and the file name; strerror alone is the useful part.
    return one_line(getattr(err, "strerror", None) or err)


def _looks_like_text(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4096)
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class Orientation:
    """How to turn stored pixels into displayed ones: transpose, then mirror columns and/or rows."""

    transpose: bool = False
    flip_x: bool = False
    flip_y: bool = False

    @classmethod
    def from_matrix(cls, a: float, b: float, c: float, d: float) -> "Orientation":
        """From FFmpeg's display matrix, which maps a stored pixel (x, y) to x' = a*x + c*y, y' = b*x + d*y
        (image axes, y down). Covers all eight EXIF-style orientations, flips included."""
        if abs(a) < abs(b):  # a quarter turn: x' comes from y and y' from x
            return cls(True, c < 0, b < 0)
        return cls(False, a < 0, d < 0)

    @classmethod
    def from_rotation(cls, degrees: float) -> "Orientation":
        """From a counter-clockwise display rotation in degrees."""
        theta = math.radians(degrees)
        return cls.from_matrix(round(math.cos(theta)), -round(math.sin(theta)), round(math.sin(theta)), round(math.cos(theta)))

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self.transpose:
            image = image.swapaxes(0, 1)
        if self.flip_x:
            image = image[:, ::-1]
        if self.flip_y:
            image = image[::-1]
        return np.ascontiguousarray(image)

    def displayed_size(self, width: int, height: int) -> tuple[int, int]:
        return (height, width) if self.transpose else (width, height)


def _display_matrix(frame) -> tuple[float, float, float, float] | None:
    for side in frame.side_data:
        if getattr(side.type, "name", "") == "DISPLAYMATRIX":
            m = np.frombuffer(bytes(side), dtype="<i4")
            if m.size >= 5:
                return float(m[0]), float(m[1]), float(m[3]), float(m[4])
    return None


class VideoFileSource(FrameSource):
    """Any file FFmpeg decodes, through PyAV; frames come out upright and in RGB.

    `start`/`stop` pick absolute frame indices [start, stop): frames before are decoded and skipped,
    so indices match a full pass no matter how the file's keyframes fall.
    """

    def __init__(self, path, start: int = 0, stop: int | None = None):
        import av

        self.path = Path(path)
        if start < 0 or (stop is not None and stop < start):
            raise BadInputError(f"{self.path}: bad frame range start={start} stop={stop}")
        self.start, self.stop = int(start), stop
        check_file(self.path)
        try:
            self._container = av.open(str(self.path), mode="r")
        except av.FFmpegError as err:
            if _looks_like_text(self.path):
                raise BadInputError(f"{self.path}: is a text file, not a video") from None
            hint = ""
            with self.path.open("rb") as fh:
                if fh.read(12)[4:8] == b"ftyp":
                    # An MP4/MOV whose index (moov) is missing: cut short, or still being written.
                    hint = "; the MP4 looks truncated or unfinished"
            raise BadInputError(f"{self.path}: is not a video FFmpeg can read ({_ffmpeg_reason(err)}{hint})") from None
        try:
            self._open_stream()
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self) -> None:
        import av

        container = self._container
        # Cover art in audio files shows up as a one-picture "video" stream; it is not a video.
        videos = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
        if not videos:
            what = " (it holds only audio)" if container.streams.audio else ""
            raise BadInputError(f"{self.path}: has no video stream{what}")
        stream = self._stream = videos[0]
        stream.codec_context.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.frame_rate: Fraction = Fraction(rate) if rate else Fraction(DEFAULT_FPS)
        self.fps = float(self.frame_rate)
        self.has_audio = bool(container.streams.audio)
        self._declared_frames = int(stream.frames or 0)
        tb = stream.time_base
        self._time_base = tb
        self._start_pts = stream.start_time if stream.start_time is not None else None
        if stream.duration and tb:
            self.duration = float(stream.duration * tb)
        elif container.duration:
            self.duration = container.duration / 1_000_000
        self._total_frames: int | None = self._declared_frames or None
        self._frames = self._decoded()
        self._index = 0
        self._done = False
        # Decode one frame now: a file that opens but yields nothing must fail before any output exists,
        # and the display matrix (rotation) rides on decoded frames.
        self._pending = next(self._frames, None)
        if self._pending is None:
            reason = f" ({self.decode_error})" if self.decode_error else ""
            raise BadInputError(f"{self.path}: no video frame could be decoded{reason}")
        # FFmpeg's counter-clockwise angle, for information; `orientation` is what gets applied.
        self.rotation = int(round(self._pending.rotation or 0))
        matrix = _display_matrix(self._pending)
        if matrix is not None:
            self.orientation = Orientation.from_matrix(*matrix)
        else:
            # Older muxers wrote a clockwise `rotate` tag instead of a display matrix.
            with contextlib.suppress(ValueError):
                tags = {k.lower(): v for k, v in stream.metadata.items()}  # Matroska upper-cases tag names
                self.rotation = -int(float(tags.get("rotate", 0)))
            self.orientation = Orientation.from_rotation(self.rotation)
        # One name per turn: -90 and 270 are the same, as are -180 and 180.
        self.rotation = (self.rotation % 360) - 360 if self.rotation % 360 > 180 else self.rotation % 360
        self.size = self.orientation.displayed_size(self._pending.width, self._pending.height)

    @property
    def total_frames(self) -> int | None:
        """Frames in the whole file: the container's count, else one counted by demuxing (no decoding)."""
        if self._total_frames is None:
            self._total_frames = self._count_packets()
        return self._total_frames

    @property
    def frame_count(self) -> int | None:  # type: ignore[override]
        """Frames this source will yield (the start/stop range within the file)."""
        total = self.total_frames
        if total is None:
            return None
        end = total if self.stop is None else min(total, self.stop)
        return max(0, end - self.start)

    def _count_packets(self) -> int | None:
        import av

        try:
            with av.open(str(self.path)) as probe:
                stream = probe.streams[self._stream.index]
                return sum(1 for p in probe.demux(stream) if p.size and p.dts is not None)
        except av.FFmpegError:
            return None

    def _decoded(self):
        import av

        try:
            for packet in self._container.demux(self._stream):
                try:
                    yield from packet.decode()
                except av.FFmpegError as err:
                    # One damaged packet need not end the video; the decoder resyncs at the next keyframe.
                    self.decode_error = self.decode_error or f"decoding failed at frame {self._index}: {_ffmpeg_reason(err)}"
        except av.FFmpegError as err:
            self.decode_error = self.decode_error or f"reading stopped at frame {self._index}: {_ffmpeg_reason(err)}"

    def __next__(self) -> Frame:
        while not self._done:
            if self.stop is not None and self._index >= self.stop:
                break
            if self._pending is not None:
                av_frame, self._pending = self._pending, None
            else:
                av_frame = next(self._frames, None)
            if av_frame is None:
                self._note_shortfall()
                break
            index = self._index
            self._index += 1
            if index < self.start:
                continue
            return Frame(index=index, time=self._frame_time(av_frame, index), image=self._to_rgb(av_frame))
        self._done = True
        raise StopIteration

    def _note_shortfall(self) -> None:
        # A clean demuxer EOF can still hide a cut-off file; one frame short is within what edit
        # lists and dropped leading B-frames explain, more is worth reporting.
        if self.decode_error is None and self._declared_frames and self._index < self._declared_frames - 1:
            self.decode_error = f"the stream ended after {self._index} of the {self._declared_frames} frames it declares"

    def _frame_time(self, av_frame, index: int) -> float:
        if av_frame.pts is None or not self._time_base:
            return index / self.fps
        # Times from pts, so variable-frame-rate files keep their real timing; 0 is the stream start.
        return float((av_frame.pts - (self._start_pts or 0)) * self._time_base)

    def _to_rgb(self, av_frame) -> np.ndarray:
        return self.orientation.apply(av_frame.to_ndarray(format="rgb24"))

    def close(self) -> None:
        self._done = True
        self._frames.close()
        self._container.close()


def variable_frame_times(path, count: int) -> tuple[list[float], float] | None:
    """(each frame's time from the first, the last frame's duration) of a variable-frame-rate video of `count`
    frames, read from its packets (no decoding); None for a constant rate, or when the packets do not match
    `count` frames (a damaged file: the caller keeps a constant rate)."""
    import av

    try:
        with av.open(str(path)) as container:
            videos = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
            if not videos:
                return None
            stream = videos[0]
            packets = [(p.pts, p.duration) for p in container.demux(stream) if p.size and p.pts is not None]
            time_base = stream.time_base
    except av.FFmpegError:
        return None
    if len(packets) != count or count < 2 or not time_base:
        return None
    packets.sort()
    pts = np.array([p for p, _ in packets], dtype=np.int64)
    steps = np.diff(pts)
    if steps.min() <= 0 or steps.max() - steps.min() <= 1:  # one tick of rounding: a constant rate
        return None
    last = packets[-1][1] or int(np.median(steps))
    return [float((p - pts[0]) * time_base) for p in pts.tolist()], float(last * time_base)
