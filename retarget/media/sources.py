"""Frame sources: video files, webcams, image folders and blendshape CSVs, all as iterators of Frame.

Every source probes its input when it is opened, so a bad file fails with one BadInputError line
before any output exists; a file that breaks part-way stops cleanly and records `decode_error`.
"""

from __future__ import annotations

import contextlib
import csv
import math
import re
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from retarget.errors import BadInputError
from retarget.expression.blendshapes import BLENDSHAPE_NAMES
from retarget.media.kinds import IMAGE_SUFFIXES, webcam_device

LIVE_LINK_FACE_DEFAULT_FPS = 60.0
# Frame rates a Live Link Face take can be recorded at; the FF field of the timecode tells them apart.
_TIMECODE_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 120.0)


@dataclass
class Frame:
    index: int
    time: float
    image: np.ndarray | None = None
    blendshapes: np.ndarray | None = None


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _ffmpeg_reason(err: Exception) -> str:
    # PyAV's str() repeats the errno and the file name; strerror alone is the useful part.
    return _one_line(getattr(err, "strerror", None) or err)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise BadInputError(f"{path}: does not exist")
    if path.is_dir():
        raise BadInputError(f"{path}: is a folder, not a file")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: is empty (0 bytes)")


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


class FrameSource:
    """Iterator of Frame with close() and `with` support; subclasses fill in the metadata."""

    fps: float = 25.0
    frame_count: int | None = None
    duration: float | None = None
    has_audio: bool = False
    size: tuple[int, int] | None = None
    live: bool = False
    decode_error: str | None = None

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
        _check_file(self.path)
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
        self.frame_rate: Fraction = Fraction(rate) if rate else Fraction(25)
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


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV logs every failed backend probe to stderr; probing for cameras should be silent."""
    import cv2

    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _camera_label(device: int | str) -> str:
    return f"webcam:{device}" if isinstance(device, int) else str(device)


class WebcamSource(FrameSource):
    """A live camera through OpenCV capture; times come from a monotonic clock."""

    live = True

    def __init__(self, device: int | str, width: int | None = None, height: int | None = None, fps: float | None = None):
        import cv2

        if isinstance(device, str) and device.isdigit():
            device = int(device)
        self.device = device
        label = _camera_label(device)
        with _quiet_opencv():
            # A device node needs V4L2; the default backend list would also try FFmpeg, which logs loudly.
            is_node = isinstance(device, str) and device.startswith("/dev/video")
            cap = cv2.VideoCapture(device, cv2.CAP_V4L2) if is_node else cv2.VideoCapture(device)
            if not cap.isOpened():
                cap.release()
                raise BadInputError(f"no camera at {label} (it could not be opened; is one connected and free?)")
            if width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
            self._t0 = time.monotonic()
            ok, bgr = cap.read()
        if not ok or bgr is None:
            cap.release()
            raise BadInputError(f"no camera at {label} (it opened but delivered no frame)")
        self._cap = cap
        self._pending = (time.monotonic() - self._t0, bgr)
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or fps or 30.0)
        self.size = (bgr.shape[1], bgr.shape[0])
        self._index = 0

    def __next__(self) -> Frame:
        import cv2

        if self._cap is None:
            raise StopIteration
        if self._pending is not None:
            (t, bgr), self._pending = self._pending, None
        else:
            ok, bgr = self._cap.read()
            t = time.monotonic() - self._t0
            if not ok or bgr is None:
                self.decode_error = f"{_camera_label(self.device)} stopped delivering frames"
                self.close()
                raise StopIteration
        index = self._index
        self._index += 1
        return Frame(index=index, time=t, image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_cameras(max_index: int = 8) -> list[int]:
    """Indices of cameras that open and deliver a frame, probed without log noise."""
    import cv2

    found = []
    with _quiet_opencv():
        for index in range(max_index):
            cap = cv2.VideoCapture(index)
            try:
                if cap.isOpened() and cap.read()[0]:
                    found.append(index)
            finally:
                cap.release()
    return found


def _natural_key(name: str):
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _unreadable_image_errors() -> tuple:
    from PIL import Image

    # Pillow reports damage as OSError/SyntaxError/ValueError, and too-large images as DecompressionBombError.
    return (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


class ImageFolderSource(FrameSource):
    """Image files of a folder in natural order (frame2 before frame10), timed at `fps`.

    A file that cannot be read is skipped (counted in `skipped`, the first named in `decode_error`);
    the frames after it still come, numbered without a gap.
    """

    def __init__(self, folder, fps: float = 25.0):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise BadInputError(f"{self.folder}: is not a folder")
        self.files = sorted(
            (p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
            key=lambda p: _natural_key(p.name),
        )
        if not self.files:
            raise BadInputError(f"{self.folder}: contains no images ({', '.join(IMAGE_SUFFIXES)})")
        self.fps = float(fps)
        self.frame_count = len(self.files)
        self.duration = len(self.files) / self.fps
        self._index = 0  # next file
        self._emitted = 0  # next frame index
        self.skipped = 0
        try:
            first = self._load(self.files[0])
        except _unreadable_image_errors() as err:
            raise BadInputError(f"{self.files[0]}: is not an image that can be read ({_one_line(err)}); "
                                f"remove it from the folder or replace it") from None
        self._pending = first
        self.size = (first.shape[1], first.shape[0])

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            # Phone photos store their orientation in EXIF; frames must come out upright.
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))

    def __next__(self) -> Frame:
        while self._index < len(self.files):
            path = self.files[self._index]
            self._index += 1
            if self._pending is not None:
                image, self._pending = self._pending, None
            else:
                try:
                    image = self._load(path)
                except _unreadable_image_errors() as err:
                    self.skipped += 1
                    self._first_skip = getattr(self, "_first_skip", None) or f"{path.name}: {_one_line(err)[:120]}"
                    self.decode_error = f"{self.skipped} unreadable image(s) skipped (first: {self._first_skip})"
                    continue
            index = self._emitted
            self._emitted += 1
            return Frame(index=index, time=index / self.fps, image=image)
        raise StopIteration


def _parse_timecode(text: str) -> tuple[int, float] | None:
    """'HH:MM:SS:FF.sss' -> (whole seconds, frames incl. the sub-frame fraction)."""
    parts = re.split(r"[:;]", text.strip())
    if len(parts) != 4:
        return None
    try:
        h, m, s = (int(p) for p in parts[:3])
        frames = float(parts[3])
    except ValueError:
        return None
    return h * 3600 + m * 60 + s, frames


class BlendshapeCsvSource(FrameSource):
    """Blendshape curves from a CSV: ours (`timestamp` + BLENDSHAPE_NAMES) or a Live Link Face take.

    Live Link Face writes `Timecode` (HH:MM:SS:FF.sss, FF counted at the take's frame rate, the part
    after the dot a fraction of a frame), `BlendShapeCount`, 52 ARKit curves in PascalCase and 9 head
    and eye rotations, which are ignored here. Columns match BLENDSHAPE_NAMES case-insensitively.
    """

    def __init__(self, path, fps: float | None = None):
        self.path = Path(path)
        _check_file(self.path)
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.reader(fh))
        except UnicodeDecodeError:
            raise BadInputError(f"{self.path}: is not a text CSV file") from None
        except csv.Error as err:
            raise BadInputError(f"{self.path}: is not a readable CSV ({_one_line(err)})") from None
        rows = [r for r in rows if any(cell.strip() for cell in r)]
        if not rows:
            raise BadInputError(f"{self.path}: has no header row")
        header = [cell.strip() for cell in rows[0]]
        lowered = [h.lower() for h in header]
        wanted = {name.lower(): i for i, name in enumerate(BLENDSHAPE_NAMES)}
        columns: dict[int, int] = {}  # blendshape index -> csv column
        for col, name in enumerate(lowered):
            if name in wanted and wanted[name] not in columns:
                columns[wanted[name]] = col
        if not columns:
            raise BadInputError(f"{self.path}: has no blendshape columns (expected ARKit names such as jawOpen)")
        missing = [BLENDSHAPE_NAMES[i] for i in range(1, len(BLENDSHAPE_NAMES)) if i not in columns]
        if missing:
            shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
            raise BadInputError(f"{self.path}: is missing blendshape columns {shown}")
        body = rows[1:]
        values = np.zeros((len(body), len(BLENDSHAPE_NAMES)), dtype=np.float32)
        # A row whose blendshape cells are all empty is a frame with no face (as `retarget extract` writes it).
        self._no_face = np.array(
            [all(col >= len(row) or not row[col].strip() for col in columns.values()) for row in body], dtype=bool
        )
        # A NaN/inf cell is a missing value: the row counts as one without a reading, so the last
        # expression is held there (it must never reach the smoothing filter's state).
        self.missing_values = 0
        for r, row in enumerate(body):
            if self._no_face[r]:
                continue
            try:
                for b, col in columns.items():
                    values[r, b] = float(row[col])
            except (ValueError, IndexError):
                raise BadInputError(f"{self.path}: row {r + 2} has a missing or non-numeric blendshape value") from None
            if not np.isfinite(values[r]).all():
                values[r] = 0.0
                self._no_face[r] = True
                self.missing_values += 1
        self._values = values
        self.format = "timestamp"
        if "timecode" in lowered:
            self.format = "live_link_face"
            self._times, self.fps = self._timecode_times(body, lowered.index("timecode"), fps)
        elif "timestamp" in lowered:
            col = lowered.index("timestamp")
            try:
                self._times = np.array([float(row[col]) for row in body], dtype=np.float64)
            except (ValueError, IndexError):
                raise BadInputError(f"{self.path}: has a missing or non-numeric timestamp") from None
            if not np.isfinite(self._times).all():
                raise BadInputError(f"{self.path}: has a NaN or infinite timestamp (row {int(np.argmin(np.isfinite(self._times))) + 2})")
            steps = np.diff(self._times)
            steps = steps[steps > 0]
            self.fps = float(fps) if fps else (1.0 / float(np.median(steps)) if steps.size else 25.0)
            if not math.isfinite(self.fps) or self.fps <= 0:
                self.fps = 25.0
        else:
            self.fps = float(fps or 25.0)
            self._times = np.arange(len(body), dtype=np.float64) / self.fps
        self.frame_count = len(body)
        self.duration = float(self._times[-1] + 1.0 / self.fps) if len(body) else 0.0
        self._index = 0

    def _timecode_times(self, body, col: int, fps: float | None) -> tuple[np.ndarray, float]:
        parsed = [_parse_timecode(row[col]) if col < len(row) else None for row in body]
        if not parsed or any(p is None for p in parsed):
            rate = float(fps or LIVE_LINK_FACE_DEFAULT_FPS)
            return np.arange(len(body), dtype=np.float64) / rate, rate
        seconds = np.array([p[0] for p in parsed], dtype=np.float64)
        frames = np.array([p[1] for p in parsed], dtype=np.float64)
        if fps:
            rate = float(fps)
        else:
            # The FF field runs up to rate-1; once a take spans whole seconds its maximum names the rate.
            rate = LIVE_LINK_FACE_DEFAULT_FPS
            if seconds.max() - seconds.min() >= 2:
                top = math.floor(frames.max())
                rate = next((r for r in _TIMECODE_RATES if top < r), LIVE_LINK_FACE_DEFAULT_FPS)
        times = seconds + frames / rate
        times -= times[0]
        times[times < 0] += 24 * 3600  # a take that runs past midnight
        return times, rate

    def __next__(self) -> Frame:
        if self._index >= len(self._values):
            raise StopIteration
        i = self._index
        self._index += 1
        blendshapes = None if self._no_face[i] else self._values[i].copy()
        return Frame(index=i, time=float(self._times[i]), blendshapes=blendshapes)


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
        return ImageFolderSource(path, fps=fps or 25.0)
    if path.suffix.lower() == ".csv":
        return BlendshapeCsvSource(path, fps=fps)
    return VideoFileSource(path, start=start, stop=stop)
