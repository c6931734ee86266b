"""Live Link Face's CSV layout, and a writer for it, so a take we write is read by LLF's own consumers.

An LLF take is `Timecode` (see retarget.media.timecode), `BlendShapeCount` (61), the 52 ARKit curves
in PascalCase in the app's own column order, then 9 head and eye rotations. MediaPipe's 52 are
ARKit's minus `tongueOut`, plus `_neutral` (a score LLF has no column for).
"""

from __future__ import annotations

import numpy as np

from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.media.frame_sink import CsvFileSink, blendshape_vector
from retarget.media.timecode import format_timecode

# The column order of Live Link Face's CSV (as the app writes it: JawRight before JawLeft, MouthRight before MouthLeft).
ARKIT_COLUMNS: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft", "EyeSquintLeft", "EyeWideLeft",
    "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight",
    "EyeWideRight", "JawForward", "JawRight", "JawLeft", "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker",
    "MouthRight", "MouthLeft", "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight", "MouthRollLower", "MouthRollUpper",
    "MouthShrugLower", "MouthShrugUpper", "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft",
    "MouthLowerDownRight", "MouthUpperUpLeft", "MouthUpperUpRight", "BrowDownLeft", "BrowDownRight", "BrowInnerUp",
    "BrowOuterUpLeft", "BrowOuterUpRight", "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft",
    "NoseSneerRight", "TongueOut",
)
ROTATION_COLUMNS: tuple[str, ...] = (
    "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll", "RightEyeYaw", "RightEyePitch",
    "RightEyeRoll",
)
HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount", *ARKIT_COLUMNS, *ROTATION_COLUMNS)
BLENDSHAPE_COUNT = len(ARKIT_COLUMNS) + len(ROTATION_COLUMNS)  # 61, what LLF writes in every row
# LLF's columns that MediaPipe has no blendshape for: kept verbatim from a source take, else written as 0.
EXTRA_COLUMNS: tuple[str, ...] = ("TongueOut", *ROTATION_COLUMNS)
# Where each ARKit column's value is in a BLENDSHAPE_NAMES vector (None: TongueOut).
_OURS = {name.lower(): i for i, name in enumerate(BLENDSHAPE_NAMES)}
_SOURCE_INDEX = [_OURS.get(name.lower()) for name in ARKIT_COLUMNS]


class LiveLinkFaceWriter(CsvFileSink):
    """A Live Link Face take: one row per frame at its time, written as a timecode at `nominal` fps.

    `start`: the first row's timecode in seconds since midnight (keeps a source take's clock);
    `extra`: values for TongueOut and the rotations by column name (per row lists; default 0).
    A frame with no face writes empty curve cells, as LLF does when tracking is lost.
    """

    def __init__(self, path, nominal: int = 60, drop: bool = False):
        self.nominal, self.drop = int(nominal), bool(drop)
        super().__init__(path, HEADER)

    def write(self, time: float, blendshapes: np.ndarray | None, extra: dict[str, str] | None = None,
              timecode: str | None = None) -> None:
        """One row at `time` seconds (or the given `timecode` text, kept verbatim); `None`: no face."""
        code = timecode or format_timecode(time, self.nominal, self.drop)
        extra = extra or {}
        blank = "" if blendshapes is None else "0"  # a row without tracking has no values to fill in
        tail = [extra.get(name, blank) for name in ROTATION_COLUMNS]
        if blendshapes is None:
            cells = [extra.get("TongueOut", "") if i is None else "" for i in _SOURCE_INDEX]
        else:
            values = blendshape_vector(blendshapes, len(BLENDSHAPE_NAMES))
            cells = [extra.get("TongueOut", "0") if i is None else f"{values[i]:.9g}" for i in _SOURCE_INDEX]
        self._row((code, BLENDSHAPE_COUNT, *cells, *tail))


def nominal_rate_for(fps: float) -> tuple[int, bool]:
    """The timecode rate (and drop-frame) to write a take of this real rate with: NTSC rates as drop-frame."""
    from retarget.media.timecode import TIMECODE_RATES

    for base in (30, 60):
        if abs(fps - base * 1000 / 1001) < 0.005:
            return base, True
    rounded = round(fps)
    if abs(fps - rounded) < 1e-6 and rounded in TIMECODE_RATES:
        return rounded, False
    return 60, False  # other rates: LLF's default, with the sub-frame fraction carrying the exact time
