"""From the driver's blendshapes to the ones the generator gets: mirror, relative calibration, gains, smoothing.

Vectors are in BLENDSHAPE_NAMES order. Every step is a pure function of the inputs and their
timestamps, so a blendshape CSV and the video it was extracted from map to the same vectors.
"""

from __future__ import annotations

import math

import numpy as np

# The settings (with their regions and gain names) live with every other knob in retarget.config.
from retarget.config.mapping import FLAME_ONLY_GAINS, NEUTRAL_INDEX, MappingSettings
from retarget.errors import RetargetError
from retarget.names.blendshapes import BLENDSHAPE_NAMES, mirror_blendshapes

NUM = len(BLENDSHAPE_NAMES)


class OneEuroFilter:
    """The One Euro filter (Casiez, Roussel, Vogel, CHI 2012), element-wise over a vector.

    A low-pass whose cutoff rises with the signal's speed: still faces lose their jitter, fast
    expressions keep up. `min_cutoff` (Hz) sets smoothing at rest, `beta` how fast it opens up.
    """

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("OneEuroFilter needs min_cutoff > 0, d_cutoff > 0 and beta >= 0")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff, dt: float):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def __call__(self, values, t: float) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        if self._x is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        if dt <= 0:
            # A repeated (or out-of-order) timestamp carries no time to filter over: keep the estimate.
            return self._x.copy()
        dx = (x - self._x) / dt
        self._dx = self._dx + self._alpha(self.d_cutoff, dt) * (dx - self._dx)
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        self._x = self._x + self._alpha(cutoff, dt) * (x - self._x)
        self._t = float(t)
        return self._x.copy()


def fixed_vector(values, size: int, what: str, order: str) -> np.ndarray:
    """A float64 vector of exactly `size` values (ValueError naming `what` and the expected order otherwise)."""
    # float32 first: a vector read back from a CSV and one straight from the landmarker then agree bit for bit.
    v = np.asarray(values, dtype=np.float32).reshape(-1)
    if v.size != size:
        raise ValueError(f"{what} must have {size} values in {order} order, got {v.size}")
    return v.astype(np.float64)


def _vector(values, what: str) -> np.ndarray:
    return fixed_vector(values, NUM, what, "BLENDSHAPE_NAMES")


class StreamMapper:
    """What every per-stream mapper shares: hold the last output on a missing value, the driver's
    neutral (set, or the median of the first second of face, `calibration_seconds`, in relative mode), One
    Euro smoothing. Subclasses say how a raw vector is read (`_vector`), what shows before the first
    face (`_rest`), and how a raw vector maps (`_map`)."""

    def __init__(self, settings: MappingSettings):
        self.settings = settings
        self._filter = OneEuroFilter(settings.min_cutoff, settings.beta)
        self.driver_neutral: np.ndarray | None = None
        self.reset()

    @property
    def calibration_window(self) -> int | None:
        return self.settings.calibration_window

    @property
    def calibrated(self) -> bool:
        return self.driver_neutral is not None

    def reset(self, keep_neutral: bool = True) -> None:
        """Start a new stream: forget smoothing, the held output and the face-less count."""
        self._filter.reset()
        self._last: np.ndarray | None = None
        self._window: list[np.ndarray] = []
        self._window_start: float | None = None  # the first face's time (the neutral window is in seconds)
        self.frames_without_face = 0
        if not keep_neutral:
            self.driver_neutral = None

    def __call__(self, values, t: float) -> np.ndarray:
        if values is not None and not np.isfinite(np.asarray(values, dtype=np.float64)).all():
            values = None  # a missing value: hold the last expression; never let NaN into the filter state
        if values is None:
            self.frames_without_face += 1
            held = self._last if self._last is not None else self._rest()
            return held.astype(np.float32)
        raw = self._vector(values)
        if self.settings.relative and self.driver_neutral is None:
            self._calibrate(raw, t)
        y = self._map(raw)
        if self.settings.smoothing:
            y = self._filter(y, t)
        self._last = y
        return y.astype(np.float32)

    def _calibrate(self, raw: np.ndarray, t: float) -> None:
        """Relative mode before a neutral is set: collect the window, and set the neutral to its median when full."""
        frames, seconds = self.calibration_window, float(self.settings.calibration_seconds)
        if frames is None:
            if seconds <= 0:
                return
            if self._window_start is None:
                self._window_start = t
            if t - self._window_start < seconds - 1e-9:  # the first second of face, whatever the frame rate
                self._window.append(raw)
                return
        elif frames <= 0:
            return
        else:
            self._window.append(raw)
            if len(self._window) < frames:
                return
        if self._window:
            self.set_neutral(np.median(np.stack(self._window), axis=0).astype(np.float32))

    def set_neutral(self, values) -> None:
        raise NotImplementedError

    def _vector(self, values) -> np.ndarray:
        raise NotImplementedError

    def _rest(self) -> np.ndarray:
        raise NotImplementedError

    def _map(self, raw: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class ExpressionMapper(StreamMapper):
    """Maps one driver blendshape vector per frame (None: no face) to the generator's vector.

    mirror -> relative (x - driver neutral + identity neutral, clipped) -> gains x intensity on the
    deviation from the identity's neutral (from 0 when not relative), clipped -> One Euro smoothing.
    `_neutral` bypasses relative mode and gains.
    """

    def __init__(self, settings: MappingSettings | None = None, identity_neutral: np.ndarray | None = None):
        self.settings = settings or MappingSettings()
        self.settings.validate()
        for key, value in self.settings.gains.items():
            if key.strip().lower() in FLAME_ONLY_GAINS and float(value) != 1.0:
                raise RetargetError(f"--gain {key}: scales FLAME's 50 expression coefficients, which only the FLAME-55 "
                                    "adapter takes; this adapter takes blendshapes (use a region or a blendshape name)")
        self.identity_neutral = (
            np.zeros(NUM, dtype=np.float64) if identity_neutral is None else _vector(identity_neutral, "identity_neutral")
        )
        self._gains = self.settings.gain_vector() * float(self.settings.intensity)
        super().__init__(self.settings)

    def set_neutral(self, blendshapes) -> None:
        """The driver's neutral face, as the landmarker reports it (mirroring is applied here)."""
        v = _vector(blendshapes, "neutral")
        self.driver_neutral = mirror_blendshapes(v) if self.settings.mirror else v
        self._window = []

    def calibrate(self, samples) -> np.ndarray:
        """Set the driver's neutral to the per-blendshape median of a window of frames; returns it."""
        stack = np.stack([_vector(s, "calibration sample") for s in samples]) if len(samples) else None
        if stack is None:
            raise ValueError("calibrate() needs at least one sample")
        self.set_neutral(np.median(stack, axis=0).astype(np.float32))
        return self.driver_neutral.copy()

    def _vector(self, values) -> np.ndarray:
        return _vector(values, "blendshapes")

    def _rest(self) -> np.ndarray:
        return self.identity_neutral

    def _map(self, raw: np.ndarray) -> np.ndarray:
        x = mirror_blendshapes(raw) if self.settings.mirror else raw
        if self.settings.relative:
            base = self.identity_neutral
            if self.driver_neutral is None:
                y = base.copy()  # still calibrating: show the identity's own neutral face
            else:
                y = np.clip(x - self.driver_neutral + base, 0.0, 1.0)
        else:
            base = np.zeros(NUM, dtype=np.float64)
            y = x
        y = np.clip(base + self._gains * (y - base), 0.0, 1.0)
        y[NEUTRAL_INDEX] = x[NEUTRAL_INDEX]
        return y
