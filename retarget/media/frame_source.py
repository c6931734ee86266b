"""What every frame source yields and shares: the Frame record, the FrameSource iterator base and
the input-file checks that make a bad file fail with one BadInputError line before any output exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from retarget.errors import BadInputError

# The rate of a driver that names none (an image folder, a CSV without a time column, a video without a rate).
DEFAULT_FPS = 25.0


@dataclass
class Frame:
    index: int
    time: float
    image: np.ndarray | None = None
    blendshapes: np.ndarray | None = None


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def check_file(path: Path) -> None:
    if not path.exists():
        raise BadInputError(f"{path}: does not exist")
    if path.is_dir():
        raise BadInputError(f"{path}: is a folder, not a file")
    if not path.is_file():  # a pipe (`<(cat take.csv)`), a device: it reads once and has no size
        raise BadInputError(f"{path}: is a pipe or a device, not a file (a driver is read more than once); "
                            f"save it to a file first (e.g. take.csv) and pass that")
    if path.stat().st_size == 0:
        raise BadInputError(f"{path}: is empty (0 bytes)")


class FrameSource:
    """Iterator of Frame with close() and `with` support; subclasses fill in the metadata."""

    fps: float = DEFAULT_FPS
    frame_rate: Fraction | None = None  # the exact rate where the input names one (a video, a resampled CSV)
    frame_count: int | None = None
    duration: float | None = None
    has_audio: bool = False
    size: tuple[int, int] | None = None
    live: bool = False
    decode_error: str | None = None  # why a file stopped part-way (the frames before it were read)
    skipped: int = 0  # inputs passed over (an image folder's unreadable files)
    missing_values: int = 0  # rows whose values were missing (a CSV's NaN/inf or empty cells)

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
