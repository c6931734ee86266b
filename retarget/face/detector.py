"""The published identity detector: insightface's SCRFD from the antelopev2 pack.

Arc2Face's release finds the identity face with `FaceAnalysis(name='antelopev2')` at
det_size (640, 640), keeps the largest face and aligns its 5 keypoints for ArcFace. This
runs the same detector through insightface's own SCRFD class.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

ANTELOPEV2_DIR = "antelopev2"
ANTELOPEV2_DETECTOR = "scrfd_10g_bnkps.onnx"
DETECTION_SIZE = (640, 640)  # the Arc2Face README's det_size
DETECTION_THRESHOLD = 0.5  # FaceAnalysis's default det_thresh
FETCH_DETECTOR_HINT = "`retarget download --to DIR` fetches it into DIR/antelopev2/"


def insightface_model_root() -> Path:
    """insightface's own model root ($INSIGHTFACE_HOME or ~/.insightface, then models/)."""
    return Path(os.environ.get("INSIGHTFACE_HOME", "~/.insightface")).expanduser() / "models"


def find_antelopev2_detector(*folders: Path | None) -> Path | None:
    """The SCRFD file in FOLDER/antelopev2/ for the given folders, then in insightface's model root; None if absent.

    The published archive unpacks either flat or into a nested antelopev2/ folder; both are accepted.
    """
    for root in [*(f for f in folders if f is not None), insightface_model_root()]:
        base = Path(root) / ANTELOPEV2_DIR
        for candidate in (base / ANTELOPEV2_DETECTOR, base / ANTELOPEV2_DIR / ANTELOPEV2_DETECTOR):
            if candidate.is_file():
                return candidate
    return None


def largest(bboxes: np.ndarray) -> int:
    """Index of the largest box by area: the official demo's rule for the identity face."""
    areas = (bboxes[:, 2] - bboxes[:, 0]) * (bboxes[:, 3] - bboxes[:, 1])
    # The demo sorts by area and takes the last, so among equal areas the later detection wins.
    return int(len(areas) - 1 - np.argmax(areas[::-1]))


class ScrfdFaceDetector:
    """insightface's SCRFD on an ONNX file; RGB image in, the largest face's 5 keypoints out."""

    def __init__(self, onnx_path, providers=None):
        import onnxruntime as ort
        from insightface.model_zoo import SCRFD

        self.path = Path(onnx_path)
        providers = list(providers or ["CPUExecutionProvider"])
        session = ort.InferenceSession(str(self.path), providers=providers)
        self.model = SCRFD(model_file=str(self.path), session=session)
        ctx_id = 0 if any(p != "CPUExecutionProvider" for p in providers) else -1
        self.model.prepare(ctx_id, input_size=DETECTION_SIZE, det_thresh=DETECTION_THRESHOLD)

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """insightface's (bboxes (N, 5), keypoints (N, 5, 2)) for an RGB image (SCRFD itself reads BGR)."""
        bgr = np.ascontiguousarray(np.asarray(image_rgb)[:, :, ::-1])
        return self.model.detect(bgr, input_size=DETECTION_SIZE)

    def largest_face_keypoints(self, image_rgb: np.ndarray) -> np.ndarray | None:
        """(5, 2) keypoints of the largest detected face, or None when there is none."""
        bboxes, kpss = self.detect(image_rgb)
        if kpss is None or len(bboxes) == 0:
            return None
        return np.asarray(kpss[largest(bboxes)], dtype=np.float32)

    def keypoints_near(self, image_rgb: np.ndarray, box) -> np.ndarray | None:
        """(5, 2) keypoints of the detected face whose box is nearest `box` (a chosen face), or None."""
        from retarget.face.selection import nearest

        bboxes, kpss = self.detect(image_rgb)
        if kpss is None or len(bboxes) == 0:
            return None
        index = nearest([tuple(b[:4]) for b in bboxes], tuple(box), max_distance=None)
        return np.asarray(kpss[index], dtype=np.float32)
