"""Blendshape curves in CSV: read as a frame source (ours, `timestamp`, or a Live Link Face take,
`Timecode`), and written in our format by BlendshapeCsvWriter, so reader and writer stay in step.
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError
from retarget.expression.blendshapes import BLENDSHAPE_NAMES
from retarget.media.frame_sink import FrameSink, remove_file
from retarget.media.frame_source import Frame, FrameSource, check_file, one_line
from retarget.outputs import fresh_temp

LIVE_LINK_FACE_DEFAULT_FPS = 60.0
# Frame rates a Live Link Face take can be recorded at; the FF field of the timecode tells them apart.
_TIMECODE_RATES = (24.0, 25.0, 30.0, 48.0, 50.0, 60.0, 120.0)


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
        check_file(self.path)
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as fh:
                rows = list(csv.reader(fh))
        except UnicodeDecodeError:
            raise BadInputError(f"{self.path}: is not a text CSV file") from None
        except csv.Error as err:
            raise BadInputError(f"{self.path}: is not a readable CSV ({one_line(err)})") from None
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
            backwards = np.flatnonzero(np.diff(self._times) < 0)
            if backwards.size:
                raise BadInputError(f"{self.path}: the timestamp goes backwards at row {int(backwards[0]) + 3}; "
                                    f"sort the rows by time (or fix that row)")
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


class BlendshapeCsvWriter(FrameSink):
    """Our CSV: `timestamp` (seconds) + the 52 BLENDSHAPE_NAMES; BlendshapeCsvSource reads it back exactly."""

    def __init__(self, path):
        self.path = Path(path)
        self.partial = fresh_temp(self.path, "partial")
        self.path.parent.mkdir(parents=True, exist_ok=True)
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
        remove_file(self.partial)
