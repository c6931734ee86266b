"""SMPTE-style timecodes as Live Link Face writes them: `HH:MM:SS:FF.sss`, drop-frame `HH:MM:SS;FF.sss`.

FF counts frames at the timecode's own rate (24, 25, 30, 48, 50, 60 or 120 fps), the part after the
dot is a fraction of a frame. The timecode's rate is not the rate rows arrive at: Live Link Face
records 30 Hz takes on a 60 fps timecode (FF steps by 2), so a take's real rate comes from the
rows' spacing (blendshape_csv), never from the timecode's rate alone. Drop-frame timecodes (`;`)
are 29.97 or 59.94 fps: they skip frame numbers 0-1 (0-3 at 59.94) at each minute except every
tenth, and are converted back to real time here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

TIMECODE_RATES = (24, 25, 30, 48, 50, 60, 120)  # FF's range tells them apart
DEFAULT_RATE = 60  # Live Link Face's own default, for takes too short to show their rate
_PATTERN = re.compile(r"^\s*(\d+)[:;](\d{1,2})[:;](\d{1,2})([:;])(\d+(?:\.\d*)?)\s*$")


@dataclass(frozen=True)
class Timecode:
    hours: int
    minutes: int
    seconds: int
    frames: float  # FF plus the sub-frame fraction
    drop: bool  # `;` before FF: drop-frame

    @property
    def whole_seconds(self) -> int:
        return self.hours * 3600 + self.minutes * 60 + self.seconds


def parse_timecode(text: str) -> Timecode | None:
    """`HH:MM:SS:FF(.sss)` or `HH:MM:SS;FF(.sss)` -> Timecode; None for anything else."""
    match = _PATTERN.match(str(text))
    if not match:
        return None
    h, m, s, sep, ff = match.groups()
    return Timecode(int(h), int(m), int(s), float(ff), sep == ";" or ";" in str(text))


def timecode_rate(codes: list[Timecode]) -> int:
    """The nominal rate (frames per timecode second) of a take's timecodes.

    FF runs up to rate-1: once a take crosses a whole second (so FF came close to its top), the
    smallest known rate above FF's maximum is it; a take within one second keeps LLF's default.
    """
    top = max(math.floor(c.frames) for c in codes)
    drop = any(c.drop for c in codes)
    candidates = [r for r in ((30, 60) if drop else TIMECODE_RATES) if r > top] or [max(TIMECODE_RATES)]
    crossed = len({c.whole_seconds for c in codes}) > 1
    if crossed:
        return candidates[0]
    return DEFAULT_RATE if DEFAULT_RATE in candidates else candidates[0]


def real_rate(nominal: int, drop: bool) -> Fraction:
    """Frames per real second: drop-frame 30 -> 30000/1001, 60 -> 60000/1001."""
    return Fraction(nominal * 1000, 1001) if drop else Fraction(nominal)


def frame_number(code: Timecode, nominal: int) -> float:
    """Frames since 00:00:00:00 (with the sub-frame fraction); drop-frame numbers skipped are not counted."""
    count = code.whole_seconds * nominal + code.frames
    if code.drop:
        dropped = nominal // 15  # 2 at 29.97, 4 at 59.94
        minutes = code.hours * 60 + code.minutes
        count -= dropped * (minutes - minutes // 10)
    return count


def timecode_seconds(code: Timecode, nominal: int) -> float:
    """Real seconds since 00:00:00:00."""
    return float(frame_number(code, nominal) / real_rate(nominal, code.drop))


def format_timecode(seconds: float, nominal: int, drop: bool = False, decimals: int = 3) -> str:
    """Real seconds since 00:00:00:00 -> `HH:MM:SS:FF.sss` (drop-frame: `HH:MM:SS;FF.sss`)."""
    frames = Fraction(seconds).limit_denominator(10**9) * real_rate(nominal, drop)
    scale = 10**decimals
    ticks = round(frames * scale)  # frames in 1/scale units: the sub-frame fraction rounds once, here
    whole, sub = divmod(ticks, scale)
    if drop:  # frame count -> drop-frame label (SMPTE 12M)
        dropped = nominal // 15
        per_10_min = nominal * 600 - dropped * 9
        per_min = nominal * 60 - dropped
        tens, rest = divmod(whole, per_10_min)
        whole += dropped * 9 * tens + (dropped * ((rest - dropped) // per_min) if rest > dropped else 0)
    secs, ff = divmod(whole, nominal)
    mins, ss = divmod(secs, 60)
    hh, mm = divmod(mins, 60)
    text = f"{hh % 24:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"
    return f"{text}.{sub:0{decimals}d}" if decimals else text
