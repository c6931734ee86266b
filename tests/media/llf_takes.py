"""Synthetic Live Link Face takes shaped like real ones: any timecode rate, drop-frame, rows every Nth timecode
frame (30 Hz rows on a 60 fps timecode), skipped rows (gaps) and rows with no values (tracking lost)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retarget.media.live_link_face import ARKIT_COLUMNS, HEADER, ROTATION_COLUMNS
from retarget.media.timecode import format_timecode


@dataclass
class LlfTake:
    path: Path
    times: np.ndarray  # each row's real time, seconds from the first row
    values: np.ndarray  # (rows, 52 ARKit columns) as written; NaN rows: tracking lost
    timecodes: list[str]
    span: float  # first row to one row spacing after the last: how long the take lasts
    row_rate: float


def write_llf_take(path: Path, *, nominal: int = 60, drop: bool = False, step: int = 1, rows: int = 120,
                   start: float = 14 * 3600 + 3 * 60 + 50.4, gaps: tuple[tuple[int, int], ...] = (),
                   lost: tuple[int, ...] = (), seed: int = 0) -> LlfTake:
    """Rows at every `step`-th frame of a `nominal` fps timecode (drop-frame if `drop`), starting `start` seconds after
    midnight; rows [a, b) of each gap are left out (their time passes); rows in `lost` have empty curve cells."""
    rng = np.random.default_rng(seed)
    real = nominal * 1000 / 1001 if drop else nominal
    skipped = {r for a, b in gaps for r in range(a, b)}
    kept = [r for r in range(rows) if r not in skipped]
    first_frame = round(start * real)
    times, values, codes = [], [], []
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for r in kept:
            seconds = (first_frame + r * step) / real
            code = format_timecode(seconds, nominal, drop)
            row = rng.random(len(ARKIT_COLUMNS)).round(6)
            rotations = rng.normal(0, 0.1, len(ROTATION_COLUMNS)).round(6)
            if r in lost:
                cells = [""] * len(ARKIT_COLUMNS)
                row = np.full(len(ARKIT_COLUMNS), np.nan)
            else:
                cells = [f"{v:g}" for v in row]
            writer.writerow([code, 61, *cells, *(f"{v:g}" for v in rotations)])
            times.append(r * step / real)
            values.append(row)
            codes.append(code)
    row_rate = real / step
    return LlfTake(path, np.array(times), np.array(values), codes, (kept[-1] * step) / real + 1 / row_rate, row_rate)
