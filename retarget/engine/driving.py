"""Driver frames -> the expression vectors the loaded Expression Adapter speaks.

Image frames go through MediaPipe (VIDEO mode: it tracks between frames) and then either the
blendshape mapping (smoothing, relative mode, gains, mirroring) for blendshape adapters, or the
SMIRK encoder for the published adapter, whose 55 FLAME values get the same controls in FLAME
space (retarget.expression.flame; mirroring flips the image before SMIRK), or, with a fitted
expression bridge, the blendshape mapping then the bridge (retarget.expression.bridge_mapping: CSV
drivers, and every driver with expression_source "bridge", which never runs SMIRK). Blendshape CSV
frames skip the landmarker. A frame with no face holds the last expression.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError, RetargetError
from retarget.names.blendshapes import mirror_blendshapes
from retarget.expression.flame import NUM_FLAME, FlameHistory
from retarget.expression.mappers import make_mapper
from retarget.config.mapping import MappingSettings
from retarget.face.landmarker import FaceLandmarker
from retarget.media.sources import Frame


def driver_flame(smirk, image: np.ndarray, landmarks: np.ndarray, mirror: bool) -> np.ndarray:
    """SMIRK's 55 values for a driver image; with mirror, of the flipped image (exact, not a coefficient swap)."""
    if mirror:
        image = image[:, ::-1]
        landmarks = np.array(landmarks, dtype=np.float64, copy=True)
        landmarks[:, 0] = image.shape[1] - 1 - landmarks[:, 0]
    return smirk.encode(np.ascontiguousarray(image), landmarks)


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
    raw_flame: np.ndarray | None = None  # FLAME-55 adapter: SMIRK's values before the controls (None: no face)
    landmarks: np.ndarray | None = None  # (478, 3) in the driver image's pixels (None: no face); the app's overlay
    face_boxes: list | None = None  # every face's box in this frame, numbered left to right (index 0 = face 1)
    face_number: int | None = None  # which of them drove this frame (1-based); None: no face used


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
        identity_flame: np.ndarray | None = None,
        flame_history: FlameHistory | None = None,
        smirk=None,
        face: int | None = None,
        bridge=None,
        smirk_loader=None,
    ):
        """identity_neutral: the identity's 52 blendshapes; identity_flame: its 55 FLAME values (relative mode).

        smirk: an already loaded SmirkExtractor to share (else smirk_loader() gives one, else one is loaded
        from smirk_path); it is only loaded when the stream drives a FLAME-55 adapter through SMIRK.
        bridge: the ExpressionBridge of a FLAME-55 adapter: blendshape CSVs, and every driver when the
        mapping's expression_source is "bridge", drive through it (retarget.expression.signals).
        face: drive with face N (numbered from 1, left to right, where faces first appear), tracked
        from frame to frame; None: the largest face of each frame (retarget.face.selection).
        """
        from retarget.face.selection import FaceTracker

        self.tracker = FaceTracker(face)
        self.expression_kind = expression_kind
        self._identity_neutral = identity_neutral
        self._identity_flame = identity_flame
        self.bridge = bridge
        self.blendshapes_only = False  # a blendshape recording's stream: always through the bridge
        self._pending_neutral = None  # a blendshape neutral given before a stream's first frame (see set_neutral_from)
        self._frames_seen = 0
        self._image_refusal = None  # see _make_mapper
        self.smirk = smirk
        self._smirk_source = (smirk_loader, smirk_path, device)
        mapping = mapping or MappingSettings()
        self.flame_history = flame_history if flame_history is not None else FlameHistory()
        # The mapper (and with it the mapping: mapper.settings) is swapped whole by set_mapping.
        self.mapper = self._make_mapper(mapping)
        self._landmarker_path = landmarker_path
        self._landmarker: FaceLandmarker | None = None
        self._last_timestamp_ms = -1
        self.frames_without_face = 0

    @property
    def via_bridge(self) -> bool:
        """Whether this stream's FLAME values come from blendshapes through the bridge (no SMIRK)."""
        from retarget.expression.bridge_mapping import BridgeMapper

        return isinstance(self.mapper, BridgeMapper)

    def _make_mapper(self, mapping: MappingSettings):
        """The mapper for these settings (SMIRK, when they use it, is loaded at the first image frame)."""
        from retarget.expression.signals import BLENDSHAPES, PICTURES, check_signal, uses_bridge

        signal = BLENDSHAPES if self.blendshapes_only else PICTURES
        if uses_bridge(self.expression_kind, signal, mapping.expression_source):
            check_signal(self.expression_kind, signal, bridge_available=self.bridge is not None,
                         expression_source=mapping.expression_source)
            return make_mapper(self.expression_kind, mapping, self._identity_neutral, bridge=self.bridge)
        try:
            mapper = make_mapper(self.expression_kind, mapping, self._identity_neutral, self._identity_flame)
        except RetargetError as err:
            if self.expression_kind != "flame55" or self.bridge is None or self._frames_seen:
                raise
            # Controls SMIRK's FLAME cannot take (a cheeks gain, say): fine for a blendshape recording, which goes
            # through the bridge; an image stream is refused with this error at its first frame.
            self._image_refusal = err
            return make_mapper(self.expression_kind, mapping, self._identity_neutral, bridge=self.bridge)
        self._image_refusal = None
        if self.expression_kind == "flame55" and self.smirk is None and self._smirk_source[:2] == (None, None):
            raise BadInputError("the FLAME-55 Expression Adapter needs the SMIRK encoder (SMIRK_em1.pt)")
        return mapper

    def _load_smirk(self):
        loader, path, device = self._smirk_source
        if loader is not None:
            return loader()
        if path is None:
            raise BadInputError("the FLAME-55 Expression Adapter needs the SMIRK encoder (SMIRK_em1.pt)")
        from retarget.face.smirk import SmirkExtractor

        return SmirkExtractor(path, device=device)

    def _drive_blendshapes_only(self) -> None:
        """A blendshape recording reaches a FLAME-55 adapter through the bridge (refused in one line without one)."""
        self.blendshapes_only, self._image_refusal = True, None
        if not self.via_bridge:  # (already bridged: keep the mapper and any neutral set on it)
            self.mapper = self._make_mapper(self.mapper.settings)
        if self._pending_neutral is not None:
            self.mapper.set_neutral(self._pending_neutral)
            self._pending_neutral = None

    @property
    def mapping(self) -> MappingSettings:
        return self.mapper.settings

    def set_mapping(self, mapping: MappingSettings) -> None:
        """New mapping controls from the next frame on; the landmarker and SMIRK stay.

        Bad settings raise their one-line error and leave the current mapper in place. Like a fresh
        analyzer's, the new mapper's smoothing starts over; a relative-mode driver neutral carries
        over while mirroring is unchanged (it is kept in the mirrored space).
        """
        old, was_bridge = self.mapper, self.via_bridge
        new = self._make_mapper(mapping)
        same_space = was_bridge == _is_bridge(new)  # a blendshape neutral cannot serve SMIRK's FLAME, nor the reverse
        if (same_space and new.settings.relative and old.driver_neutral is not None
                and new.settings.mirror == old.settings.mirror):
            new.driver_neutral = old.driver_neutral.copy()
        self.mapper = new  # one assignment: the perception thread reads self.mapper once per frame

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

    def set_neutral_from(self, values: np.ndarray) -> None:
        """Relative mode: this raw driver frame is the driver's neutral face.

        values: the frame's raw blendshapes (DrivenFrame.raw_blendshapes) or, for the FLAME-55
        adapter, its raw FLAME values (DrivenFrame.raw_flame); raw blendshapes of a frame that a
        FLAME analyzer of the same Retargeter has seen are looked up.
        """
        if self.expression_kind != "flame55" or self.via_bridge:
            self.mapper.set_neutral(values)  # blendshapes (the bridge maps after the controls)
            return
        values = np.asarray(values, dtype=np.float32).reshape(-1)
        if values.size == NUM_FLAME:
            self.mapper.set_neutral(values)
            return
        flame = self.flame_history.flame_for(values)
        if flame is None and self.bridge is not None and self._frames_seen == 0:
            self._pending_neutral = values  # a blendshape recording's row (--neutral-frame): used if the stream is one
            return
        if flame is None:
            raise BadInputError("set neutral: that frame's FLAME values are not known any more; set the neutral "
                                "again while the driver shows the neutral face")
        self.mapper.set_neutral(flame)

    def raw_flame(self, image: np.ndarray, landmarks: np.ndarray, mirror: bool | None = None) -> np.ndarray:
        if self.smirk is None:
            self.smirk = self._load_smirk()
        return driver_flame(self.smirk, image, landmarks, self.mapping.mirror if mirror is None else mirror)

    def _timestamp_ms(self, t: float) -> int:
        # MediaPipe's VIDEO mode needs strictly increasing integer milliseconds.
        ms = max(int(round(t * 1000.0)), self._last_timestamp_ms + 1)
        self._last_timestamp_ms = ms
        return ms

    def __call__(self, frame: Frame, capture_time: float | None = None) -> DrivenFrame:
        mapper = self.mapper  # once: a set_mapping from another thread takes effect on the next frame
        mirror = mapper.settings.mirror
        face_boxes = face_number = None
        if frame.image is None and self.expression_kind == "flame55" and not self.blendshapes_only:
            self._drive_blendshapes_only()  # a blendshape recording: through the bridge, or refused in one line
            mapper = self.mapper
        if self._pending_neutral is not None and not self.via_bridge:
            raise BadInputError("set neutral: that frame's FLAME values are not known; set the neutral again while "
                                "the driver shows the neutral face")
        if frame.image is not None and self._image_refusal is not None:
            raise self._image_refusal
        self._frames_seen += 1
        if frame.image is None:  # a blendshape recording
            raw, landmarks = frame.blendshapes, None
        else:
            observation, face_boxes, face_number = self._choose_face(
                self.landmarker.detect_all(frame.image, timestamp_ms=self._timestamp_ms(frame.time)))
            raw = None if observation is None else observation.blendshapes
            landmarks = None if observation is None else observation.landmarks
        seen = landmarks  # as found in frame.image (the FLAME branch mirrors its own copy)
        face_found = raw is not None
        if not face_found:
            self.frames_without_face += 1
        if _is_bridge(mapper):  # FLAME-55 from blendshapes: the blendshape controls, then the bridge
            expression = mapper(raw, frame.time)
            return DrivenFrame(frame.index, frame.time, frame.image, expression, mapper.mapped_blendshapes, face_found,
                               capture_time, raw, landmarks=seen, face_boxes=face_boxes, face_number=face_number)
        if self.expression_kind == "flame55":
            raw_flame = self.raw_flame(frame.image, landmarks, mirror) if face_found else None
            if face_found:
                self.flame_history.remember(raw, raw_flame)
            expression = mapper(raw_flame, frame.time)
            shown = raw if face_found else np.zeros(52, np.float32)
            if face_found and mirror:
                shown = mirror_blendshapes(shown)
            return DrivenFrame(frame.index, frame.time, frame.image, expression, shown, face_found, capture_time, raw, raw_flame,
                               landmarks=seen, face_boxes=face_boxes, face_number=face_number)
        mapped = mapper(raw, frame.time)
        expression = mapped[1:] if self.expression_kind == "blendshapes51" else mapped
        return DrivenFrame(frame.index, frame.time, frame.image, expression, mapped, face_found, capture_time, raw, landmarks=seen,
                           face_boxes=face_boxes, face_number=face_number)

    def follow_face(self, box) -> None:
        """Drive with the face nearest this box (x0, y0, x1, y1 driver pixels) from the next frame on, tracked after."""
        self.tracker.follow(box)

    def _choose_face(self, faces):
        """(the observation to use or None, every box left to right, its 1-based number or None)."""
        from retarget.face.selection import left_to_right

        boxes = [face.box for face in faces]
        order = left_to_right(boxes)
        index = self.tracker.pick(boxes)
        if index is None:
            return None, [boxes[i] for i in order], None
        return faces[index], [boxes[i] for i in order], order.index(index) + 1


def _is_bridge(mapper) -> bool:
    from retarget.expression.bridge_mapping import BridgeMapper

    return isinstance(mapper, BridgeMapper)
