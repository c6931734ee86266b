"""H.264 video sinks: VideoSink at an exact frame rate (with the driver's audio), and
TimedVideoSink for live recordings, each frame at its capture time.

Frames go to a temporary name next to the target and are renamed on close(), so an interrupted
run never leaves a half-written file under the final name; abort() removes the temp.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np

from retarget.config.render import VideoOptions
from retarget.errors import RetargetError
from retarget.media.audio_mux import mux_audio, probe_audio
from retarget.media.frame_sink import FrameSink, as_rgb, remove_file
from retarget.outputs import fresh_temp, temp_path


def frame_rate(fps: float | Fraction) -> Fraction:
    """An exact frame rate: 25 -> 25/1, 29.97 -> 30000/1001 (NTSC rates are written as decimals)."""
    if isinstance(fps, Fraction):
        return fps
    value = float(fps)
    if value <= 0:
        raise ValueError(f"frame rate must be positive, got {fps}")
    for base in (24, 30, 48, 60, 120):
        if abs(value - base * 1000 / 1001) < 0.005:
            return Fraction(base * 1000, 1001)
    return Fraction(value).limit_denominator(1001)


def _is_write_failure(err: BaseException) -> bool:
    import errno

    return isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EIO, errno.EROFS)


class VideoSink(FrameSink):
    """H.264 (libx264, yuv420p) at an exact frame rate, optionally with the audio of `audio_from`.

    Frames go to `.name.partial.mp4`; close() adds the audio (see mux_audio) and renames to `path`.
    For jobs that add audio later (resumable or split runs), write without `audio_from` and call
    mux_audio() on the finished file.
    """

    def __init__(self, path, fps: float | Fraction, size: tuple[int, int], audio_from=None, video: VideoOptions | None = None,
                 preset: str = "medium", audio_start: float = 0.0):
        import av

        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.rate = frame_rate(fps)
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.audio_start = audio_start  # a time range's render: the audio from this second of the source
        # Probe the audio source now: finding it unreadable after a long render would be too late.
        self.audio_codec = probe_audio(self.audio_from) if self.audio_from is not None else None
        self.audio_error: str | None = None
        self.frames_written = 0
        self.partial = fresh_temp(self.path, "partial")
        if self.audio_from is not None:
            fresh_temp(self.path, "muxing")  # checked now: refused after a long render would be too late
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.partial), mode="w")
        # The quality knobs (CRF, ...) come from VideoOptions; the speed preset is the sink's own choice.
        options = {**(video or VideoOptions()).codec_options(), "preset": preset}
        stream = self._container.add_stream("libx264", rate=self.rate, options=options)
        w, h = self.size
        # yuv420p subsamples chroma 2x2, so x264 needs even sides; odd frames get one padded edge pixel.
        stream.width, stream.height = w + (w % 2), h + (h % 2)
        stream.pix_fmt = "yuv420p"
        # A 1/rate time base makes each frame's pts its index: exact at 25 and at 30000/1001 fps.
        stream.codec_context.time_base = 1 / self.rate
        self._stream = stream
        self._closed = False

    def write(self, rgb: np.ndarray) -> None:
        self._encode(rgb, self.frames_written)

    def _encode(self, rgb: np.ndarray, pts: int) -> None:
        import av

        image = as_rgb(rgb)
        w, h = self.size
        if image.shape[:2] != (h, w):
            import cv2

            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        if (self._stream.width, self._stream.height) != (w, h):
            image = np.pad(image, ((0, self._stream.height - h), (0, self._stream.width - w), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = pts
        frame.time_base = self._stream.codec_context.time_base
        for packet in self._stream.encode(frame):
            self._mux(packet)
        self.frames_written += 1

    def _mux(self, packet) -> None:
        self._container.mux(packet)

    def _flush(self) -> None:
        for packet in self._stream.encode():
            self._mux(packet)

    def close(self) -> None:
        import av

        if self._closed:
            return
        self._closed = True
        try:
            if self.frames_written == 0:
                raise RetargetError(f"{self.path}: no frames were written, so no video was made")
            self._flush()
            self._container.close()
            if self.audio_codec is not None:
                try:
                    mux_audio(self.partial, self.audio_from, self.path, start=self.audio_start)
                    remove_file(self.partial)
                except av.FFmpegError as err:
                    if _is_write_failure(err):
                        raise  # a full disk is not an audio problem: the video is not done
                    # Keep the render: a video without sound beats no video. Callers report audio_error.
                    self.audio_error = f"{self.audio_from}: audio could not be added ({' '.join(str(err).split())})"
                    os.replace(self.partial, self.path)
            else:
                os.replace(self.partial, self.path)
        except BaseException:
            self._discard()
            raise

    def abort(self) -> None:
        if not self._closed:
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        try:
            self._container.close()
        except Exception:  # an aborted encoder may refuse to finish; the file goes anyway
            pass
        remove_file(self.partial)
        remove_file(temp_path(self.path, "muxing"))


class TimedVideoSink(VideoSink):
    """A live recording: each frame is written at its capture time, so the file plays in real time.

    Live output arrives at whatever rate the generator manages (2 frames/s on a slow GPU, 30 on a
    fast one), never at the camera's nominal rate. Frames therefore carry their own timestamps in
    a millisecond time base (variable frame rate, which MP4 holds natively): nothing is duplicated
    or dropped, the file stays as small as the frames it has, and a frame is shown exactly as long
    as it was on screen. close() repeats the last frame at the stop time so the file lasts until
    Record was stopped, not just until the last new frame.
    """

    TIME_BASE = Fraction(1, 1000)

    def __init__(self, path, size: tuple[int, int], nominal_fps: float = 30.0, video: VideoOptions | None = None,
                 preset: str = "veryfast"):
        # nominal_fps only guides the encoder's rate control; timestamps decide the timing.
        super().__init__(path, nominal_fps, size, video=video, preset=preset)
        self._stream.codec_context.time_base = self.TIME_BASE
        # No B-frames: packets then leave in display order, so every sample's duration is exactly
        # the gap to the next timestamp (B-frame reordering shortened the file's last second).
        self._stream.codec_context.max_b_frames = 0
        self._start: float | None = None
        self._last_pts = -1
        self._last_image: np.ndarray | None = None
        self.last_time: float | None = None

    def write(self, rgb: np.ndarray, timestamp: float | None = None) -> None:
        """timestamp: seconds on any monotonic clock (time.monotonic() when omitted)."""
        import time

        t = time.monotonic() if timestamp is None else float(timestamp)
        if self._start is None:
            self._start = t
        # Strictly increasing pts: two frames captured within the same millisecond are one apart.
        pts = max(int(round((t - self._start) * 1000)), self._last_pts + 1)
        self._encode(rgb, pts)
        self._last_pts, self._last_image, self.last_time = pts, rgb, t

    @property
    def seconds(self) -> float:
        return max(self._last_pts, 0) / 1000.0

    @property
    def start_time(self) -> float | None:
        """The first frame's timestamp (the file's time 0), or None before any frame."""
        return self._start

    def close(self, end_time: float | None = None) -> None:
        """end_time: the stop time on the writers' clock (default now); the last frame is held until then."""
        import time

        if not self._closed and self._last_image is not None:
            end = time.monotonic() if end_time is None else float(end_time)
            end_pts = int(round((end - self._start) * 1000))
            if end_pts > self._last_pts:
                self._encode(self._last_image, end_pts)
                self.frames_written -= 1  # a repeat that ends the file, not a new frame
                self._last_pts = end_pts
        super().close()


class StampedVideoSink(VideoSink):
    """An offline render of a variable-frame-rate driver: frame i at the driver's own time `times[i]`.

    Timestamps on a 90 kHz clock (MP4 holds variable frame rate natively); the last frame lasts
    `last_duration` (its packet's duration), so the file is exactly as long as the driver. No B-frames:
    packets leave in display order and the last one out is the last frame.
    """

    TIME_BASE = Fraction(1, 90000)

    def __init__(self, path, times, size: tuple[int, int], last_duration: float, audio_from=None,
                 video: VideoOptions | None = None, preset: str = "medium", audio_start: float = 0.0):
        self.times = [float(t) - float(times[0]) for t in times]
        span = self.times[-1] + last_duration
        super().__init__(path, frame_rate(len(self.times) / span if span > 0 else 25.0), size, audio_from, video, preset,
                         audio_start)
        self._stream.codec_context.time_base = self.TIME_BASE
        self._stream.codec_context.max_b_frames = 0
        self._last_duration = last_duration
        self._held = None

    def write(self, rgb: np.ndarray) -> None:
        if self.frames_written >= len(self.times):
            raise RetargetError(f"{self.path}: more frames than the driver's {len(self.times)} frame times")
        self._encode(rgb, round(self.times[self.frames_written] / self.TIME_BASE))

    def _mux(self, packet) -> None:
        # One packet held back: the last one gets its duration before it is written.
        if self._held is not None:
            self._container.mux(self._held)
        self._held = packet

    def _flush(self) -> None:
        super()._flush()
        if self._held is not None:
            self._held.duration = max(1, round(self._last_duration / self._held.time_base))
            self._container.mux(self._held)
            self._held = None
