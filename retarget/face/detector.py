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


def write_random_scrfd_onnx(path, seed: int = 0) -> Path:
    """A small random net with SCRFD's interface, as insightface's SCRFD class reads it; for tests.

    input.1 [1, 3, H, W]; 9 outputs: scores (N_s, 1), then box distances (N_s, 4), then keypoint
    offsets (N_s, 10) for strides 8, 16, 32, with two anchors per location (N_s = H/s * W/s * 2).
    """
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    strides, anchors = (8, 16, 32), 2
    initializers, nodes, outputs = [], [], []
    heads = {"score": 1, "bbox": 4, "kps": 10}
    results = {name: [] for name in heads}
    for stride in strides:
        for name, width in heads.items():
            # Scores spread widely (a few pass the threshold); boxes stay in sigmoid's unsaturated range so sizes differ.
            spread = 8.0 if name == "score" else 2.0
            weight = rng.normal(0, spread / np.sqrt(3 * stride * stride), (anchors * width, 3, stride, stride))
            # Zero-mean kernels: flat areas (like SCRFD's own black letterbox padding) never look like a face.
            weight = (weight - weight.mean(axis=(1, 2, 3), keepdims=True)).astype(np.float32)
            # A low score bias leaves a handful of detections above the threshold, as on a real photo.
            bias = rng.normal(-8.0 if name == "score" else 0.0, 0.5, anchors * width).astype(np.float32)
            prefix = f"{name}_{stride}"
            initializers += [numpy_helper.from_array(weight, f"{prefix}_w"), numpy_helper.from_array(bias, f"{prefix}_b"),
                             numpy_helper.from_array(np.array([-1, width], np.int64), f"{prefix}_shape")]
            nodes += [
                helper.make_node("Conv", ["input.1", f"{prefix}_w", f"{prefix}_b"], [f"{prefix}_conv"],
                                 kernel_shape=[stride, stride], strides=[stride, stride]),
                # (1, anchors*width, h, w) -> (h*w*anchors, width): location-major, anchor-minor, as SCRFD decodes.
                helper.make_node("Transpose", [f"{prefix}_conv"], [f"{prefix}_t"], perm=[0, 2, 3, 1]),
                helper.make_node("Reshape", [f"{prefix}_t", f"{prefix}_shape"], [f"{prefix}_flat"]),
            ]
            # Scores are probabilities; box distances positive (up to two strides); keypoint offsets free.
            if name == "score":
                nodes.append(helper.make_node("Sigmoid", [f"{prefix}_flat"], [f"{prefix}_out"]))
            elif name == "bbox":
                initializers.append(numpy_helper.from_array(np.array(2.0, np.float32), f"{prefix}_two"))
                nodes += [helper.make_node("Sigmoid", [f"{prefix}_flat"], [f"{prefix}_sig"]),
                          helper.make_node("Mul", [f"{prefix}_sig", f"{prefix}_two"], [f"{prefix}_out"])]
            else:
                nodes.append(helper.make_node("Identity", [f"{prefix}_flat"], [f"{prefix}_out"]))
            results[name].append(helper.make_tensor_value_info(f"{prefix}_out", TensorProto.FLOAT, [f"n{stride}", width]))
    for name in heads:  # insightface reads all scores, then all boxes, then all keypoints
        outputs += results[name]
    graph = helper.make_graph(
        nodes, "random_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "H", "W"])],
        outputs, initializer=initializers,
    )
    from retarget.face.identity import save_test_onnx

    return save_test_onnx(graph, path)
