"""Blendshape curves in CSV: read as a take (ours, `timestamp`, or a Live Link Face take, `Timecode`),
played as a frame source at a constant rate with each frame placed by time, and written in our format
by BlendshapeCsvWriter (Live Link Face's: retarget.media.live_link_face), so readers and writers stay in step.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.media.frame_sink import CsvFileSink, blendshape_vector
from retarget.media.frame_source import DEFAULT_FPS, Frame, FrameSource, check_file, one_line
from retarget.media.timecode import Timecode, frame_number, parse_timecode, real_rate, timecode_rate
from retarget.media.video_sink import frame_rate

LIVE_LINK_FACE_DEFAULT_FPS = 60.0


@dataclass
class Take:
    """A blendshape CSV's rows as recorded: each at its own time, nothing resampled or closed up.

    values: (rows, 52) float32 in BLENDSHAPE_NAMES order; a row with no face (tracking lost, empty
    cells, a NaN/inf cell) is all NaN. rate: the rows' real rate (from their spacing). For a Live
    Link Face take, `timecodes` holds each row's Timecode text and `extra` the columns MediaPipe has
    no blendshape for (TongueOut, head and eye rotations), cell by cell, so a save keeps them.
    """

    times: np.ndarray
    values: np.ndarray
    rate: Fraction
    format: str = "timestamp"  # or "live_link_face", or "rows" (no time column)
    timecodes: list[str] | None = None
    timecode_rate: int | None = None
    drop_frame: bool = False
    extra: dict[str, list[str]] = field(default_factory=dict)
    missing_values: int = 0

    @property
    def duration(self) -> float:
        """From the first row to one row spacing after the last (the last row lasts one spacing)."""
        return float(self.times[-1] - self.times[0] + 1 / self.rate) if len(self.times) else 0.0

    @property
    def face_found(self) -> np.ndarray:
        return np.isfinite(self.values).all(axis=1)


def _rows(path: Path) -> list[list[str]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise BadInputError(f"{path}: is not a text CSV file") from None
    except csv.Error as err:
        raise BadInputError(f"{path}: is not a readable CSV ({one_line(err)})") from None
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if not rows:
        raise BadInputError(f"{path}: has no header row")
    return rows


def _columns(path: Path, header: list[str]) -> dict[int, int]:
    """blendshape index -> CSV column, names matched case-insensitively; a one-line error if any is missing."""
    wanted = {name.lower(): i for i, name in enumerate(BLENDSHAPE_NAMES)}
    columns: dict[int, int] = {}
    for col, name in enumerate(h.lower() for h in header):
        if name in wanted and wanted[name] not in columns:
            columns[wanted[name]] = col
    if not columns:
        raise BadInputError(f"{path}: has no blendshape columns (expected ARKit names such as jawOpen)")
    missing = [BLENDSHAPE_NAMES[i] for i in range(1, len(BLENDSHAPE_NAMES)) if i not in columns]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise BadInputError(f"{path}: is missing blendshape columns {shown}")
    return columns


def _values(path: Path, body, columns: dict[int, int]) -> tuple[np.ndarray, int]:
    """(rows, 52) with NaN rows for no face; and how many rows had a NaN/inf cell (held like no face)."""
    values = np.full((len(body), len(BLENDSHAPE_NAMES)), np.nan, dtype=np.float32)
    missing = 0
    for r, row in enumerate(body):
        # A row whose blendshape cells are all empty is a frame with no face (tracking lost).
        if all(col >= len(row) or not row[col].strip() for col in columns.values()):
            continue
        values[r] = 0.0  # `_neutral`, which Live Link Face has no column for
        try:
            for b, col in columns.items():
                values[r, b] = float(row[col])
        except (ValueError, IndexError):
            raise BadInputError(f"{path}: row {r + 2} has a missing or non-numeric blendshape value") from None
        if not np.isfinite(values[r]).all():
            values[r] = np.nan  # a missing value: the last expression is held there
            missing += 1
    return values, missing


def _spacing_rate(times: np.ndarray, default: float) -> Fraction:
    """Rows per second from the median spacing of the rows (gaps and jitter do not move a median)."""
    steps = np.diff(times)
    steps = steps[steps > 0]
    if not steps.size:
        return frame_rate(default)
    rate = 1.0 / float(np.median(steps))
    return frame_rate(rate) if math.isfinite(rate) and rate > 0 else frame_rate(default)


def _timecode_times(path: Path, body, col: int, take: Take) -> None:
    texts = [row[col].strip() if col < len(row) else "" for row in body]
    codes = [parse_timecode(t) for t in texts]
    if not codes or any(c is None for c in codes):
        bad = next((i for i, c in enumerate(codes) if c is None), 0)
        raise BadInputError(f"{path}: row {bad + 2} has no readable Timecode (HH:MM:SS:FF.sss); got {texts[bad]!r}")
    nominal = timecode_rate(codes)
    drop = any(c.drop for c in codes)
    frames = np.array([frame_number(c, nominal) for c in codes], dtype=np.float64)
    frames[frames < frames[0]] += frame_number(Timecode(24, 0, 0, 0.0, drop), nominal)  # a take that runs past midnight
    frames -= frames[0]
    tc_rate = real_rate(nominal, drop)
    take.times = frames / float(tc_rate)
    # Rows per second = the timecode's rate / the usual step of the whole frame field (2 for 30 Hz rows on
    # 60 fps); whole frames, since the sub-frame part jitters from row to row.
    steps = np.diff(np.floor(frames))
    steps = steps[steps > 0]
    step = max(1, round(float(np.median(steps)))) if steps.size else 1
    take.rate = tc_rate / step
    take.format, take.timecodes, take.timecode_rate, take.drop_frame = "live_link_face", texts, nominal, drop


def read_take(path) -> Take:
    """Every row of a blendshape CSV at its own time: ours (`timestamp`) or a Live Link Face take (`Timecode`)."""
    path = Path(path)
    check_file(path)
    rows = _rows(path)
    header = [cell.strip() for cell in rows[0]]
    lowered = [h.lower() for h in header]
    columns = _columns(path, header)
    body = rows[1:]
    values, missing = _values(path, body, columns)
    take = Take(np.arange(len(body), dtype=np.float64) / DEFAULT_FPS, values, frame_rate(DEFAULT_FPS),
                format="rows", missing_values=missing)
    if "timecode" in lowered:
        _timecode_times(path, body, lowered.index("timecode"), take)
        used = set(columns.values()) | {lowered.index("timecode")}
        take.extra = {header[c]: [row[c].strip() if c < len(row) else "" for row in body]
                      for c in range(len(header)) if c not in used and lowered[c] != "blendshapecount"}
    elif "timestamp" in lowered:
        col = lowered.index("timestamp")
        try:
            take.times = np.array([float(row[col]) for row in body], dtype=np.float64)
        except (ValueError, IndexError):
            raise BadInputError(f"{path}: has a missing or non-numeric timestamp") from None
        if not np.isfinite(take.times).all():
            raise BadInputError(f"{path}: has a NaN or infinite timestamp (row {int(np.argmin(np.isfinite(take.times))) + 2})")
        if np.any(np.diff(take.times) < 0):
            raise BadInputError(f"{path}: timestamps go backwards (row {int(np.argmax(np.diff(take.times) < 0)) + 3}); "
                                "sort the rows by time")
        take.rate, take.format = _spacing_rate(take.times, DEFAULT_FPS), "timestamp"
    return take


def grid_rows(take: Take, fps: float | Fraction | None = None) -> tuple[np.ndarray, Fraction]:
    """The row each output frame shows when the take is played at `fps` (default: the take's own rate).

    Frame k is at k/fps after the first row and shows the last row at or before that time, looking
    ahead half a frame (so rows on the grid map one to one whatever rounding their times carry). Gaps
    hold the row before them; the frame count covers the take's whole duration, so the output lasts
    as long as the take (to within one frame).
    """
    rate = frame_rate(fps) if fps else take.rate
    count = max(1, round(take.duration * rate)) if len(take.times) else 0
    grid = take.times[0] + np.arange(count) / float(rate) if count else np.zeros(0)
    rows = np.searchsorted(take.times, grid + 0.5 / float(rate), side="right") - 1
    return np.clip(rows, 0, max(len(take.times) - 1, 0)), rate


class BlendshapeCsvSource(FrameSource):
    """A blendshape CSV as frames at a constant rate, each placed by time (see grid_rows).

    `fps`: the output rate; default the take's real rate (its rows' spacing), so a 30 Hz Live Link
    Face take on a 60 fps timecode renders at 30 fps and lasts as long as the take. Rows without a
    face yield frames without blendshapes (the mapping holds the last expression there).
    """

    def __init__(self, path, fps: float | None = None):
        self.path = Path(path)
        self.take = read_take(self.path)
        if self.take.format == "rows" and fps:  # no time column: the rows are at the rate given
            self.take.times = np.arange(len(self.take.times), dtype=np.float64) / float(fps)
            self.take.rate = frame_rate(fps)
        self.format = self.take.format
        self.missing_values = self.take.missing_values
        self._rows, self.frame_rate = grid_rows(self.take, fps)
        self.fps = float(self.frame_rate)
        self.frame_count = len(self._rows)
        self.duration = self.frame_count / self.fps
        self._index = 0

    def __next__(self) -> Frame:
        if self._index >= self.frame_count:
            raise StopIteration
        i = self._index
        self._index += 1
        r = self._rows[i]
        row = self.take.values[r]
        blendshapes = row.copy() if np.isfinite(row).all() else None
        # A row's first frame carries the row's own time (what the mapping's smoothing should see); a row held
        # over a gap or repeated for a higher --fps carries its frame's time on the grid.
        grid = float(self.take.times[0] + i / self.frame_rate)
        first = i == 0 or self._rows[i - 1] != r
        own = float(self.take.times[r])
        return Frame(index=i, time=own if first and abs(own - grid) <= 0.5 / self.fps else grid, blendshapes=blendshapes)


class BlendshapeCsvWriter(CsvFileSink):
    """Our CSV: `timestamp` (seconds) + the 52 BLENDSHAPE_NAMES; BlendshapeCsvSource reads it back exactly."""

    def __init__(self, path):
        super().__init__(path, ("timestamp", *BLENDSHAPE_NAMES))

    def write(self, time: float, blendshapes: np.ndarray | None) -> None:
        """One row; `None` (no face in that frame) writes empty cells, which read back as no face."""
        if blendshapes is None:
            self._row((repr(float(time)), *([""] * len(BLENDSHAPE_NAMES))))
            return
        values = blendshape_vector(blendshapes, len(BLENDSHAPE_NAMES))
        # repr() of a float and 9 significant digits of a float32 both read back bit-exact.
        self._row((repr(float(time)), *(f"{v:.9g}" for v in values.tolist())))
