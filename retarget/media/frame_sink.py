"""What every frame sink shares: close() on success, abort() on an exception, the small helpers
(RGB check, removing a temp file) the file sinks use, and the CSV sinks' temp-file-then-rename.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable

import numpy as np

from retarget.outputs import fresh_temp


def remove_file(path: Path | None) -> None:
    if path is not None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an RGB uint8 HxWx3 image, got {image.dtype} {image.shape}")
    return image


class FrameSink:
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


class CallbackSink(FrameSink):
    """Hands each result to `fn(frame_index, driver_rgb, output_rgb)` (previews, virtual cameras, GUIs)."""

    def __init__(self, fn: Callable[[int, np.ndarray | None, np.ndarray], None]):
        self.fn = fn

    def write(self, frame_index: int, driver_rgb: np.ndarray | None, output_rgb: np.ndarray) -> None:
        self.fn(frame_index, driver_rgb, output_rgb)


class CsvFileSink(FrameSink):
    """Rows written to `.name.partial.csv` under a header; close() renames it to `path`, abort() removes it."""

    def __init__(self, path, header) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = fresh_temp(self.path, "partial")
        self._file = self.partial.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(header)
        self.rows_written = 0

    def _row(self, cells) -> None:
        self._writer.writerow(cells)
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


def blendshape_vector(blendshapes, count: int) -> np.ndarray:
    """A frame's blendshapes as a flat float32 vector of `count` values (a ValueError otherwise)."""
    values = np.asarray(blendshapes, dtype=np.float32).reshape(-1)
    if values.size != count:
        raise ValueError(f"expected {count} blendshapes, got {values.size}")
    return values
