"""What every frame sink shares: close() on success, abort() on an exception, and the small helpers
(RGB check, removing a temp file) the file sinks use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np


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
