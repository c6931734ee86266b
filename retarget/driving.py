"""Driver frames -> the expression vectors the loaded Expression Adapter speaks.

Image frames go through MediaPipe (VIDEO mode: it tracks between frames) and then either the
blendshape mapping (smoothing, relative mode, gains, mirroring) for blendshape adapters, or the
SMIRK encoder (FLAME-55, One Euro smoothed) for the published adapter. Blendshape CSV frames
skip the landmarker. A frame with no face holds the last expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError
from retarget.expression.blendshapes import mirror_blendshapes
from retarget.expression.mapping import ExpressionMapper, MappingSettings, OneEuroFilter
from retarget.face.landmarker import FaceLandmarker
from retarget.media.sources import Frame


@dataclass
class DrivenFrame:
    index: int
    time: float
    image: np.ndarray | None  # the driver frame (None for CSV drivers)
    expression: np.ndarray  # what the generator takes (55 FLAME, 52 or 51 blendshapes)
    blendshapes: np.ndarray  # the 52 mapped blendshapes (for display and CSV export); raw ones for FLAME drivers
    face_found: bool
    capture_time: float | None = None  # monotonic seconds, for live latency
    raw_blendshapes: np.ndarray | None = None  # what the landmarker saw (None: no face); "Set neutral" uses it
    landmarks: np.ndarray | None = None  # (478, 3) in the driver image's pixels (None: no face); the app's overlay


class DriverAnalyzer:
    """Stateful per stream (tracking, smoothing, calibration): one instance per driver stream, frames in order."""

    def __init__(
        self,
        expression_kind: str,
        landmarker_path: Path,
        mapping: MappingSettings | None = None,
        identity_neutral: np.ndarray | None = None,
        smirk_path: Path | None = None,
        device: str = "cpu",
    ):
        self.expression_kind = expression_kind
        self.mapping = mapping or MappingSettings()
        self.mapper = ExpressionMapper(self.mapping, identity_neutral)
        self._landmarker_path = landmarker_path
        self._landmarker: FaceLandmarker | None = None
        self._last_timestamp_ms = -1
        self.smirk = None
        self._flame_filter = None
        self._last_flame = np.zeros(55, np.float32)
        if expression_kind == "flame55":
            from retarget.face.smirk import SmirkExtractor

            if smirk_path is None:
                raise BadInputError("the FLAME-55 Expression Adapter needs the SMIRK encoder (SMIRK_em1.pt)")
            self.smirk = SmirkExtractor(smirk_path, device=device)
            if self.mapping.smoothing:
                self._flame_filter = OneEuroFilter(self.mapping.min_cutoff, self.mapping.beta)
        self.frames_without_face = 0

    @property
    def landmarker(self) -> FaceLandmarker:
        if self._landmarker is None:
            self._landmarker = FaceLandmarker(self._landmarker_path, mode="video")
        return self._landmarker

    def close(self) -> None:
        if self._landmarker is not None:
            self._landmarker.close()
            self._landmarker = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_neutral_from(self, blendshapes: np.ndarray) -> None:
        """Relative mode: this (raw) driver vector is the driver's neutral face."""
        self.mapper.set_neutral(blendshapes)

    def _timestamp_ms(self, t: float) -> int:
        # MediaPipe's VIDEO mode needs strictly increasing integer milliseconds.
        ms = max(int(round(t * 1000.0)), self._last_timestamp_ms + 1)
        self._last_timestamp_ms = ms
        return ms

    def __call__(self, frame: Frame, capture_time: float | None = None) -> DrivenFrame:
        if frame.image is None:  # a blendshape recording
            if self.expression_kind == "flame55":
                raise BadInputError("a blendshape CSV cannot drive the FLAME-55 Expression Adapter; use a blendshape adapter (--exp-adapter)")
            raw, landmarks = frame.blendshapes, None
        else:
            observation = self.landmarker.detect(frame.image, timestamp_ms=self._timestamp_ms(frame.time))
            raw = None if observation is None else observation.blendshapes
            landmarks = None if observation is None else observation.landmarks
        seen = landmarks  # as found in frame.image (the FLAME branch mirrors its own copy)
        face_found = raw is not None
        if not face_found:
            self.frames_without_face += 1
        if self.expression_kind == "flame55":
            if face_found:
                image = frame.image[:, ::-1] if self.mapping.mirror else frame.image
                if self.mapping.mirror:
                    landmarks = landmarks.copy()
                    landmarks[:, 0] = frame.image.shape[1] - 1 - landmarks[:, 0]
                flame = self.smirk.encode(np.ascontiguousarray(image), landmarks)
                if self._flame_filter is not None:
                    flame = self._flame_filter(flame, frame.time)
                self._last_flame = np.asarray(flame, np.float32)
            shown = raw if face_found else np.zeros(52, np.float32)
            if face_found and self.mapping.mirror:
                shown = mirror_blendshapes(shown)
            return DrivenFrame(frame.index, frame.time, frame.image, self._last_flame.copy(), shown, face_found, capture_time, raw,
                               landmarks=seen)
        mapped = self.mapper(raw, frame.time)
        expression = mapped[1:] if self.expression_kind == "blendshapes51" else mapped
        return DrivenFrame(frame.index, frame.time, frame.image, expression, mapped, face_found, capture_time, raw, landmarks=seen)
