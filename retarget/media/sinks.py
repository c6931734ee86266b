"""Frame sinks: H.264 video with the driver's audio, PNG sequences, blendshape CSVs, callbacks.

Every file sink writes under a temporary name next to its target and renames on close(), so an
interrupted run never leaves a half-written file under the final name; abort() removes the temp.
"""

from __future__ import annotations

import csv
import heapq
import itertools
import os
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np

from retarget.errors import BadInputError, RetargetError
from retarget.expression.blendshapes import BLENDSHAPE_NAMES
from retarget.outputs import temp_path

# Audio codecs worth copying into MP4/MOV: players handle these there. FFmpeg also muxes PCM into
# MP4 (as 'ipcm'), but few players decode that, so PCM and anything else is re-encoded to AAC.
_MP4_COPY_CODECS = frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"})


_temp_path = temp_path  # one naming rule for every writer (retarget/outputs.py)


def _remove(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


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


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
    return image


class _Sink:
    """close() on success, abort() on an exception."""

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class VideoSink(_Sink):
    """H.264 (libx264, yuv420p) at an exact frame rate, optionally with the audio of `audio_from`.

    Frames go to `.name.partial.mp4`; close() adds the audio (see mux_audio) and renames to `path`.
    For jobs that add audio later (resumable or split runs), write without `audio_from` and call
    mux_audio() on the finished file.
    """

    def __init__(self, path, fps: float | Fraction, size: tuple[int, int], audio_from=None, crf: int = 18,
                 preset: str = "medium"):
        import av

        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.rate = frame_rate(fps)
        self.audio_from = Path(audio_from) if audio_from is not None else None
        # Probe the audio source now: finding it unreadable after a long render would be too late.
        self.audio_codec = _probe_audio(self.audio_from) if self.audio_from is not None else None
        self.audio_error: str | None = None
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = _temp_path(self.path, "partial")
        self._container = av.open(str(self.partial), mode="w")
        stream = self._container.add_stream("libx264", rate=self.rate, options={"crf": str(crf), "preset": preset})
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

        image = _as_rgb(rgb)
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
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        import av

        if self._closed:
            return
        self._closed = True
        try:
            if self.frames_written == 0:
                raise RetargetError(f"{self.path}: no frames were written, so no video was made")
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            if self.audio_codec is not None:
                try:
                    mux_audio(self.partial, self.audio_from, self.path)
                    _remove(self.partial)
                except av.FFmpegError as err:
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
        _remove(self.partial)
        _remove(_temp_path(self.path, "muxing"))


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

    def __init__(self, path, size: tuple[int, int], nominal_fps: float = 30.0, crf: int = 18, preset: str = "veryfast"):
        # nominal_fps only guides the encoder's rate control; timestamps decide the timing.
        super().__init__(path, nominal_fps, size, crf=crf, preset=preset)
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


def _probe_audio(path: Path) -> str | None:
    """The codec of the first audio stream of `path`, None when it has none; BadInputError if unreadable."""
    import av

    if not path.is_file():
        raise BadInputError(f"{path}: does not exist (wanted for its audio)")
    try:
        with av.open(str(path)) as container:
            stream = _audio_stream(container)
            return stream.codec_context.name if stream is not None else None
    except av.FFmpegError as err:
        raise BadInputError(f"{path}: its audio cannot be read ({' '.join(str(getattr(err, 'strerror', err)).split())})") from None


def _audio_stream(container):
    return container.streams.audio[0] if container.streams.audio else None


def _video_seconds(stream, container) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return (container.duration or 0) / 1_000_000


def mux_audio(video_path, audio_source_path, out_path) -> bool:
    """Write `out_path`: the video of `video_path` (copied, not re-encoded) with the first audio
    stream of `audio_source_path`, trimmed to the video's duration. Packets are copied when the
    output container takes the codec; otherwise the audio is re-encoded to AAC. `out_path` may be
    `video_path` (the swap is atomic). Returns False, writing the video alone, when the source has
    no audio.
    """
    import av

    video_path, out_path = Path(video_path), Path(out_path)
    temp = _temp_path(out_path, "muxing")
    try:
        codec = _probe_audio(Path(audio_source_path))
        copy = codec is not None and _copyable(codec, out_path)
        try:
            _mux(video_path, audio_source_path if codec else None, temp, copy=copy)
        except av.FFmpegError:
            if not copy:
                raise
            # The muxer refused the copied codec after all: fall back to AAC.
            _remove(temp)
            _mux(video_path, audio_source_path, temp, copy=False)
        os.replace(temp, out_path)
    except BaseException:
        _remove(temp)
        raise
    return codec is not None


def _copyable(codec: str, out_path: Path) -> bool:
    import av

    with av.open(os.devnull, mode="w", format=_format_for(out_path)) as probe:
        supported = probe.supported_codecs
        mp4_like = "mp4" in probe.format.name or "mov" in probe.format.name
    return codec in supported and (codec in _MP4_COPY_CODECS or not mp4_like)


def _format_for(path: Path) -> str:
    formats = {"mov": "mov", "mkv": "matroska", "webm": "webm", "avi": "avi"}
    return formats.get(path.suffix.lower().lstrip("."), "mp4")


def _mux(video_path: Path, audio_path, out: Path, *, copy: bool) -> None:
    import av

    with av.open(str(video_path)) as vin, av.open(str(out), mode="w", format=_format_for(out),
                                                    options={"movflags": "+faststart"}) as oc:
        vstream = vin.streams.video[0]
        ovideo = oc.add_stream_from_template(vstream)
        limit = _video_seconds(vstream, vin)
        streams = [_copied_packets(vin, vstream, ovideo, None)]
        ain = av.open(str(audio_path)) if audio_path is not None else None
        try:
            if ain is not None:
                astream = ain.streams.audio[0]
                if copy:
                    oaudio = oc.add_stream_from_template(astream)
                    streams.append(_copied_packets(ain, astream, oaudio, limit))
                else:
                    rate = astream.rate or 48000
                    # WAVs often carry an unordered "1 channels" layout the AAC encoder rejects.
                    layout = "mono" if astream.layout.nb_channels == 1 else "stereo"
                    oaudio = oc.add_stream("aac", rate=rate, layout=layout)
                    streams.append(_aac_packets(ain, astream, oaudio, limit))
            # Interleave by time ourselves: handing the muxer all video first would make it
            # buffer the whole video in memory while it waits for audio.
            for _, _, packet in heapq.merge(*streams, key=lambda item: (item[0], item[1])):
                oc.mux(packet)
        finally:
            if ain is not None:
                ain.close()


def _copied_packets(container, stream, out_stream, limit: float | None):
    tb = stream.time_base
    for packet in container.demux(stream):
        if packet.dts is None:  # the demuxer's end-of-stream flush packet
            continue
        seconds = float(packet.dts * tb)
        if limit is not None and packet.pts is not None and float(packet.pts * tb) >= limit:
            break
        packet.stream = out_stream
        yield seconds, out_stream.index, packet


def _aac_packets(container, stream, out_stream, limit: float):
    """Decode, cut at `limit` seconds to the sample, and re-encode to AAC; yields (time, index, packet)."""
    import av

    rate, layout = out_stream.rate, out_stream.layout.name
    to_planar = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    # The AAC encoder takes fixed-size frames; a second resampler re-chunks the trimmed audio.
    to_frames = av.AudioResampler(format="fltp", layout=layout, rate=rate,
                                  frame_size=out_stream.codec_context.frame_size or 1024)
    room = int(round(limit * rate))
    written = 0

    def planar_chunks():
        # Decoded audio starts at 0: FFmpeg already dropped the source encoder's priming samples.
        for frame in _decoded_audio(container, stream):
            yield from to_planar.resample(frame)
        yield from to_planar.resample(None)

    def sized_frames():
        nonlocal room
        for chunk in planar_chunks():
            if room <= 0:
                break
            data = chunk.to_ndarray()[:, :room]
            room -= data.shape[1]
            piece = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout=layout)
            piece.sample_rate = rate
            yield from to_frames.resample(piece)
        yield from to_frames.resample(None)

    for frame in itertools.chain(sized_frames(), [None]):
        if frame is not None:
            frame.pts, frame.time_base = written, Fraction(1, rate)
            written += frame.samples
        for packet in out_stream.encode(frame):
            seconds = float(packet.dts * packet.time_base) if packet.dts is not None else 0.0
            yield seconds, out_stream.index, packet


def _decoded_audio(container, stream):
    import av

    try:
        for packet in container.demux(stream):
            yield from packet.decode()
    except av.FFmpegError:
        return  # a damaged tail ends the audio; the video still gets what decoded


class PngSequenceSink(_Sink):
    """frame_000000.png, frame_000001.png, ... in `folder`; each written under a temp name, then renamed."""

    def __init__(self, folder, start_index: int = 0, compress_level: int = 3):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.next_index = int(start_index)
        self.compress_level = compress_level
        self._temp: Path | None = None

    def path_for(self, index: int) -> Path:
        return self.folder / f"frame_{index:06d}.png"

    def write(self, rgb: np.ndarray, index: int | None = None) -> Path:
        from PIL import Image

        index = self.next_index if index is None else int(index)
        target = self.path_for(index)
        self._temp = target.with_name(f".{target.name}.partial")
        Image.fromarray(_as_rgb(rgb)).save(self._temp, format="PNG", compress_level=self.compress_level)
        os.replace(self._temp, target)
        self._temp = None
        self.next_index = index + 1
        return target

    def abort(self) -> None:
        _remove(self._temp)
        self._temp = None


class BlendshapeCsvWriter(_Sink):
    """Our CSV: `timestamp` (seconds) + the 52 BLENDSHAPE_NAMES; BlendshapeCsvSource reads it back exactly."""

    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = _temp_path(self.path, "partial")
        self._file = self.partial.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(("timestamp", *BLENDSHAPE_NAMES))
        self.rows_written = 0

    def write(self, time: float, blendshapes: np.ndarray | None) -> None:
        """One row; `None` (no face in that frame) writes empty cells, which read back as no face."""
        if blendshapes is None:
            self._writer.writerow((repr(float(time)), *([""] * len(BLENDSHAPE_NAMES))))
            self.rows_written += 1
            return
        values = np.asarray(blendshapes, dtype=np.float32).reshape(-1)
        if values.size != len(BLENDSHAPE_NAMES):
            raise ValueError(f"expected {len(BLENDSHAPE_NAMES)} blendshapes, got {values.size}")
        # repr() of a float and 9 significant digits of a float32 both read back bit-exact.
        self._writer.writerow((repr(float(time)), *(f"{v:.9g}" for v in values.tolist())))
        self.rows_written += 1

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        if not self._file.closed:
            self._file.close()
        _remove(self.partial)


def side_by_side(driver_rgb: np.ndarray, output_rgb: np.ndarray) -> np.ndarray:
    """driver | output, the driver scaled to the output's height (aspect kept)."""
    import cv2

    driver, output = _as_rgb(driver_rgb), _as_rgb(output_rgb)
    h = output.shape[0]
    if driver.shape[0] != h:
        w = max(1, int(round(driver.shape[1] * h / driver.shape[0])))
        driver = cv2.resize(driver, (w, h), interpolation=cv2.INTER_AREA)
    return np.concatenate([driver, output], axis=1)


def side_by_side_size(driver_size: tuple[int, int], output_size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of side_by_side() frames, to size the sink before the first frame arrives."""
    (dw, dh), (ow, oh) = driver_size, output_size
    return max(1, int(round(dw * oh / dh))) + ow, oh


class SideBySideSink(_Sink):
    """Feeds driver|output frames to an inner sink (usually a VideoSink)."""

    def __init__(self, inner):
        self.inner = inner

    def write(self, driver_rgb: np.ndarray, output_rgb: np.ndarray) -> None:
        self.inner.write(side_by_side(driver_rgb, output_rgb))

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()


class CallbackSink(_Sink):
    """Hands each result to `fn(frame_index, driver_rgb, output_rgb)` (previews, virtual cameras, GUIs)."""

    def __init__(self, fn: Callable[[int, np.ndarray | None, np.ndarray], None]):
        self.fn = fn

    def write(self, frame_index: int, driver_rgb: np.ndarray | None, output_rgb: np.ndarray) -> None:
        self.fn(frame_index, driver_rgb, output_rgb)
