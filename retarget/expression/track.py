"""A video's expression track: the per-frame blendshapes of a CSV, edited over frame ranges, with undo/redo.

The track is what `retarget extract` writes and the CSV driver reads (retarget.media.blendshape_csv):
one row per frame, a time, the 52 named blendshapes; a row without a face stays one (NaN here,
empty cells in the file), and no edit invents a face there. Edits work on frames [start, stop) of
one channel or a region (retarget.config.mapping.REGIONS) and keep values in the blendshapes'
range 0..1, which the mapping clips to anyway. Every row keeps its own time (loading and saving never
change timing). Saving writes the track's own format (a Live Link Face take as LLF, its timecodes,
TongueOut and rotation columns kept), never over the file the track came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError, RetargetError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.config.mapping import REGIONS
from retarget.config.knobs import check_number
from retarget.media.frame_source import DEFAULT_FPS

VALID_RANGE = (0.0, 1.0)  # every MediaPipe blendshape (and `_neutral`, a score) lies in 0..1
OPERATIONS = ("scale", "offset", "smooth", "flatten", "clamp")
ALL_CHANNELS = "all"
TRACK_FORMATS = ("timestamp", "live_link_face")


@dataclass
class ExpressionTrack:
    """frames x channels values (float32; a NaN row is a frame without a face) and each frame's time."""

    times: np.ndarray  # (N,) seconds, as the CSV holds them
    values: np.ndarray  # (N, C) float32
    fps: float = DEFAULT_FPS
    names: tuple[str, ...] = BLENDSHAPE_NAMES
    source: Path | None = None  # the file it was loaded from: never written to
    take: object | None = None  # the retarget.media.blendshape_csv.Take it was read as: its timecodes and other columns

    def __post_init__(self) -> None:
        self.times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        self.values = np.array(self.values, dtype=np.float32, copy=True)
        if self.values.ndim != 2 or self.values.shape != (len(self.times), len(self.names)):
            raise ValueError(f"values must be (frames, {len(self.names)}) for {len(self.times)} times, got {self.values.shape}")

    @classmethod
    def load(cls, path) -> "ExpressionTrack":
        """Our CSV or a Live Link Face take, read by the CSV driver's own reader (so both see the same values).

        Every row stays a frame at its own time (gaps and rows without tracking included): loading and
        saving never change a take's timing.
        """
        from retarget.media.blendshape_csv import read_take

        path = Path(path)
        if path.suffix.lower() != ".csv":
            raise BadInputError(f"{path}: an expression track is a .csv file (from `retarget extract` or Live Link Face)")
        take = read_take(path)
        if not len(take.times):
            raise BadInputError(f"{path}: has no frames (only a header)")
        return cls(take.times.copy(), take.values, float(take.rate), BLENDSHAPE_NAMES, path, take)

    @property
    def format(self) -> str:
        """`live_link_face` for a track from an LLF take (saved as one), else `timestamp` (our format)."""
        return "live_link_face" if self.take is not None and self.take.format == "live_link_face" else "timestamp"

    def save(self, path, inputs=(), format: str | None = None) -> Path:
        """Write the track atomically, never onto its source or an input: in its own format by default (a Live
        Link Face take as LLF, with its timecodes, TongueOut and rotation columns), or `format` (timestamp |
        live_link_face)."""
        from retarget.outputs import check_file_output

        path = Path(path)
        if path.suffix.lower() != ".csv":
            raise BadInputError(f"{path}: save the track under a .csv name")
        format = format or self.format
        if format not in TRACK_FORMATS:
            raise RetargetError(f"unknown track format '{format}': use {' or '.join(TRACK_FORMATS)}")
        check_file_output(path, [("the track's source", self.source), *inputs], "save")
        writer = self._writer(path, format)  # written under a hidden temporary name, renamed when complete
        try:
            for i, (t, row) in enumerate(zip(self.times.tolist(), self.values)):
                row = row if np.isfinite(row).all() else None
                if format == "timestamp":
                    writer.write(t, row)
                else:
                    writer.write(t, row, self._extra_cells(i), self._timecode(i))
        except BaseException:
            writer.abort()
            raise
        writer.close()
        return path

    def _writer(self, path: Path, format: str):
        from retarget.media.blendshape_csv import BlendshapeCsvWriter
        from retarget.media.live_link_face import LiveLinkFaceWriter, nominal_rate_for

        if format == "timestamp":
            return BlendshapeCsvWriter(path)
        if self.take is not None and self.take.timecode_rate:
            return LiveLinkFaceWriter(path, self.take.timecode_rate, self.take.drop_frame)
        return LiveLinkFaceWriter(path, *nominal_rate_for(self.fps))

    def _timecode(self, row: int) -> str | None:
        """The source take's own Timecode text (kept verbatim), when the track came from LLF."""
        if self.take is None or self.take.timecodes is None or len(self.take.timecodes) != len(self.times):
            return None
        return self.take.timecodes[row]

    def _extra_cells(self, row: int) -> dict[str, str]:
        if self.take is None:
            return {}
        return {name: cells[row] for name, cells in self.take.extra.items() if len(cells) == len(self.times)}

    @property
    def frame_count(self) -> int:
        return len(self.times)

    @property
    def face_found(self) -> np.ndarray:
        return np.isfinite(self.values).all(axis=1)

    def channels(self, spec) -> np.ndarray:
        """Column indices of a channel name, a region (brows, eyes, mouth, jaw, cheeks, nose), `all`, or a list of names."""
        lower = {n.lower(): i for i, n in enumerate(self.names)}
        if isinstance(spec, str):
            key = spec.strip().lower()
            if key == ALL_CHANNELS:
                return np.arange(len(self.names))
            if key in REGIONS:
                return np.array([lower[n.lower()] for n in REGIONS[key]])
            if key in lower:
                return np.array([lower[key]])
            raise RetargetError(f"unknown channel '{spec}': use a blendshape name such as jawOpen, a region "
                                f"({', '.join(REGIONS)}) or {ALL_CHANNELS}")
        names = [str(s) for s in spec]
        if not names or any(n.strip().lower() not in lower for n in names):
            raise RetargetError(f"channels {names}: give one region, {ALL_CHANNELS}, or a list of blendshape names such as jawOpen")
        return np.array(sorted({lower[n.strip().lower()] for n in names}))

    def check_range(self, start: int, stop: int) -> tuple[int, int]:
        """Frames [start, stop) within the track, or a one-line error."""
        try:
            a, b = int(start), int(stop)
        except (TypeError, ValueError):
            raise RetargetError(f"frame range {start}..{stop}: give whole frame numbers") from None
        n = self.frame_count
        if not 0 <= a < b <= n:
            raise RetargetError(f"frame range {start}..{stop} (end excluded) is not inside the track's {n} frames "
                                f"(0 to {n - 1}); select at least one frame")
        return a, b


@dataclass(frozen=True)
class Edit:
    """One edit of frames [start, stop) of `channels` (a name, region, `all` or list of names).

    amount: the factor (scale), the value added (offset), the Gaussian sigma in frames (smooth), the
    constant (flatten; None: each channel's mean over the range). low/high: the bounds (clamp; None:
    the valid range 0..1).
    """

    operation: str
    start: int
    stop: int
    channels: object = ALL_CHANNELS
    amount: float | None = None
    low: float | None = None
    high: float | None = None

    def describe(self) -> str:
        what = self.channels if isinstance(self.channels, str) else ", ".join(self.channels)
        frames = f"frames {self.start}-{self.stop - 1}"
        if self.operation == "scale":
            return f"scale {what} x{self.amount:g} on {frames}"
        if self.operation == "offset":
            return f"offset {what} by {self.amount:+g} on {frames}"
        if self.operation == "smooth":
            return f"smooth {what} (sigma {self.amount:g} frames) on {frames}"
        if self.operation == "flatten":
            return f"flatten {what} to {'its mean' if self.amount is None else f'{self.amount:g}'} on {frames}"
        low, high = _clamp_bounds(self)
        return f"clamp {what} to {low:g}..{high:g} on {frames}"


def _clamp_bounds(edit: Edit) -> tuple[float, float]:
    return (VALID_RANGE[0] if edit.low is None else float(edit.low), VALID_RANGE[1] if edit.high is None else float(edit.high))


def check_edit(track: ExpressionTrack, edit: Edit) -> tuple[int, int, np.ndarray]:
    """(start, stop, column indices) for a valid edit; a one-line RetargetError otherwise."""
    if edit.operation not in OPERATIONS:
        raise RetargetError(f"unknown edit '{edit.operation}': use one of {', '.join(OPERATIONS)}")
    a, b = track.check_range(edit.start, edit.stop)
    columns = track.channels(edit.channels)
    op = edit.operation
    if op in ("scale", "offset"):
        check_number(f"{op} amount", edit.amount, low=0.0 if op == "scale" else None)
    elif op == "smooth":
        check_number("smooth sigma (frames)", edit.amount, low=0.0, low_open=True)
    elif op == "flatten" and edit.amount is not None:
        check_number("flatten value", edit.amount, low=VALID_RANGE[0], high=VALID_RANGE[1])
    elif op == "clamp":
        low, high = _clamp_bounds(edit)
        check_number("clamp low", low, low=VALID_RANGE[0], high=VALID_RANGE[1])
        check_number("clamp high", high, low=VALID_RANGE[0], high=VALID_RANGE[1])
        if low > high:
            raise RetargetError(f"clamp low {low:g} is above high {high:g}")
    return a, b, columns


def _gaussian_smooth(values: np.ndarray, a: int, b: int, columns: np.ndarray, sigma: float) -> np.ndarray:
    """Frames [a, b) of `columns` smoothed over time; neighbours outside the range are read (no seam), not changed.

    Frames without a face neither contribute nor change (a normalised convolution over the valid frames).
    """
    from scipy.ndimage import convolve1d

    radius = max(1, int(np.ceil(3.0 * sigma)))
    lo, hi = max(0, a - radius), min(len(values), b + radius)
    window = values[lo:hi][:, columns].astype(np.float64)
    valid = np.isfinite(window)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    total = convolve1d(np.where(valid, window, 0.0), kernel, axis=0, mode="constant", cval=0.0)
    weight = convolve1d(valid.astype(np.float64), kernel, axis=0, mode="constant", cval=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        smoothed = np.where(valid, total / weight, np.nan)
    return smoothed[a - lo:b - lo]


def edited_block(track: ExpressionTrack, edit: Edit) -> tuple[int, int, np.ndarray, np.ndarray]:
    """(start, stop, columns, new values of that block) for `edit`; the track is not changed."""
    a, b, columns = check_edit(track, edit)
    block = track.values[a:b][:, columns].astype(np.float64)
    op = edit.operation
    if op == "scale":
        new = block * float(edit.amount)
    elif op == "offset":
        new = block + float(edit.amount)
    elif op == "smooth":
        new = _gaussian_smooth(track.values, a, b, columns, float(edit.amount))
    elif op == "flatten":
        if edit.amount is None:
            with np.errstate(invalid="ignore"):
                level = np.nanmean(block, axis=0) if np.isfinite(block).any() else np.zeros(block.shape[1])
        else:
            level = np.full(block.shape[1], float(edit.amount))
        new = np.where(np.isfinite(block), level[None, :], np.nan)
    else:
        new = np.clip(block, *_clamp_bounds(edit))
    # The blendshapes' own range; a frame without a face (NaN) stays without one.
    return a, b, columns, np.clip(new, *VALID_RANGE).astype(np.float32)


@dataclass
class _Entry:
    edit: Edit
    start: int
    stop: int
    columns: np.ndarray
    before: np.ndarray
    after: np.ndarray


@dataclass
class TrackHistory:
    """A track with its edits: apply, undo, redo (each edit one entry; a new edit clears redo)."""

    track: ExpressionTrack
    _done: list[_Entry] = field(default_factory=list)
    _undone: list[_Entry] = field(default_factory=list)
    revision: int = 0  # changes with every apply/undo/redo: tells a cache that the values moved

    def apply(self, edit: Edit) -> Edit:
        a, b, columns, new = edited_block(self.track, edit)
        before = self.track.values[a:b][:, columns].copy()
        self._put(a, b, columns, new)
        self._done.append(_Entry(edit, a, b, columns, before, new))
        self._undone.clear()
        return edit

    def undo(self) -> Edit | None:
        if not self._done:
            return None
        entry = self._done.pop()
        self._put(entry.start, entry.stop, entry.columns, entry.before)
        self._undone.append(entry)
        return entry.edit

    def redo(self) -> Edit | None:
        if not self._undone:
            return None
        entry = self._undone.pop()
        self._put(entry.start, entry.stop, entry.columns, entry.after)
        self._done.append(entry)
        return entry.edit

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def edits(self) -> list[Edit]:
        return [entry.edit for entry in self._done]

    def _put(self, a: int, b: int, columns: np.ndarray, block: np.ndarray) -> None:
        self.track.values[a:b, columns] = block
        self.revision += 1


def driven_vectors(track: ExpressionTrack, analyzer) -> np.ndarray:
    """(frames, E): what the generator gets for each frame when this track drives it through `analyzer`
    (a fresh retarget.engine.driving.DriverAnalyzer): frame by frame in order, as the CSV driver path feeds it."""
    from retarget.media.frame_source import Frame

    found = track.face_found
    return np.stack([
        analyzer(Frame(i, float(t), blendshapes=track.values[i].copy() if found[i] else None)).expression
        for i, t in enumerate(track.times.tolist())
    ])
