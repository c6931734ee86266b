"""Identity vectors: the published ArcFace ONNX net on 112x112 aligned faces, as Arc2Face expects them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from retarget.errors import BadInputError, MissingWeightsError, NoFaceError, first_line
from retarget.face.align import align_arcface, five_points_from_landmarks

ARCFACE_INPUT_SIZE = 112
EMBEDDING_DIM = 512
logger = logging.getLogger(__name__)


def _input_normalisation(graph) -> tuple[float, float]:
    """insightface's rule: MXNet exports normalise inside the graph (Sub and Mul among the first nodes)."""
    names = [node.name for node in graph.node[:8]]
    has_sub = any(name.startswith(("Sub", "_minus")) for name in names)
    has_mul = any(name.startswith(("Mul", "_mul")) for name in names)
    return (0.0, 1.0) if has_sub and has_mul else (127.5, 127.5)


class ArcFaceEncoder:
    """onnxruntime session on arcface.onnx; RGB faces in, L2-normalised 512-d vectors out."""

    def __init__(self, onnx_path, providers=None):
        import onnx
        import onnxruntime as ort

        path = Path(onnx_path)
        self.path = path
        if not path.is_file():
            raise MissingWeightsError(f"ArcFace model not found at {path} (arcface.onnx from FoivosPar/Arc2Face)")
        try:
            # Weights are not needed to read the node names, so skip any external data.
            graph = onnx.load(str(path), load_external_data=False).graph
            self.input_mean, self.input_std = _input_normalisation(graph)
            self.session = ort.InferenceSession(str(path), providers=list(providers or ["CPUExecutionProvider"]))
        except Exception as err:  # onnx/onnxruntime raise assorted types for corrupt files
            raise BadInputError(f"{path}: not a readable ONNX model ({first_line(err)})") from None
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4:
            raise BadInputError(f"{path}: expected one 1x3x112x112 input and one output, "
                                f"got inputs {[i.shape for i in inputs]} and outputs {[o.shape for o in outputs]}")
        self.input_name = inputs[0].name
        self.output_name = outputs[0].name
        batch, _, height, width = inputs[0].shape
        # Exports either fix the batch to 1 or leave it symbolic; a fixed one means one face per run.
        self.fixed_batch = batch if isinstance(batch, int) and batch > 0 else None
        self.input_size = (
            width if isinstance(width, int) else ARCFACE_INPUT_SIZE,
            height if isinstance(height, int) else ARCFACE_INPUT_SIZE,
        )

    def _blob(self, faces: list[np.ndarray]) -> np.ndarray:
        import cv2

        batch = []
        for face in faces:
            face = np.asarray(face)
            if face.ndim != 3 or face.shape[2] != 3:
                raise ValueError(f"expected HxWx3 RGB faces, got shape {face.shape}")
            if (face.shape[1], face.shape[0]) != self.input_size:
                face = cv2.resize(face, self.input_size, interpolation=cv2.INTER_LINEAR)
            batch.append(face.astype(np.float32))
        blob = (np.stack(batch) - self.input_mean) / self.input_std
        return np.ascontiguousarray(blob.transpose(0, 3, 1, 2), dtype=np.float32)

    def embed_aligned(self, faces) -> np.ndarray:
        """(N, 512) float32 unit vectors for one aligned RGB face (HxWx3) or a list/array of them."""
        if isinstance(faces, np.ndarray) and faces.ndim == 3:
            faces = [faces]
        faces = list(faces)
        if not faces:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        blob = self._blob(faces)
        step = self.fixed_batch or len(blob)
        chunks = [self.session.run([self.output_name], {self.input_name: blob[i:i + step]})[0]
                  for i in range(0, len(blob), step)]
        vectors = np.concatenate(chunks).reshape(len(blob), -1).astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)


class IdentityEmbedder:
    """Largest face -> 5 keypoints -> 112x112 crop -> ArcFace vector, as Arc2Face's release does it.

    The keypoints come from insightface's SCRFD (antelopev2) when its file is present (pass
    detector_path, or it is looked up in insightface's model root); otherwise from MediaPipe,
    with one warning line, since the embedding then differs slightly from the published recipe's.
    """

    def __init__(self, arcface: ArcFaceEncoder, landmarker, use_insightface: bool = True,
                 detector_path: Path | None = None, warn_without_detector: bool = True):
        from retarget.cache import user_cache_dir
        from retarget.face.detector import find_antelopev2_detector

        self.arcface = arcface
        self.landmarker = landmarker  # must run in image mode
        self.detector = None
        if use_insightface:
            # A models folder keeps antelopev2/ beside arcface.onnx; `hub` runs keep it in our cache.
            path = detector_path or find_antelopev2_detector(arcface.path.parent, user_cache_dir())
            if path is not None:
                self.detector = _load_detector(path)
            elif warn_without_detector:
                from retarget.face.detector import FETCH_DETECTOR_HINT

                logger.warning(
                    "identity keypoints come from MediaPipe because insightface's antelopev2 detector "
                    f"(scrfd_10g_bnkps.onnx) is not on disk, so the embedding will differ slightly; {FETCH_DETECTOR_HINT}"
                )
        self.last_keypoints: np.ndarray | None = None  # the 5 points of the latest crop (for checks and display)

    @property
    def uses_scrfd(self) -> bool:
        return self.detector is not None

    def embed(self, image_rgb: np.ndarray, source: str = "image") -> np.ndarray:
        """(512,) unit vector of the largest face; NoFaceError when there is none."""
        points = self._detector_points(image_rgb)
        if points is None:
            observation = self.landmarker.detect(image_rgb) if self.landmarker is not None else None
            if observation is None:
                raise NoFaceError(f"no face found in {source}")
            points = five_points_from_landmarks(observation.landmarks)
        return self._embed_points(image_rgb, points)

    def embed_with_landmarks(self, image_rgb: np.ndarray, landmarks: np.ndarray, near=None) -> np.ndarray:
        """(512,) unit vector: SCRFD's largest face when the detector is loaded, else the face these landmarks describe.

        near: a chosen face's box (x0, y0, x1, y1); SCRFD then takes the detection nearest it, not the largest.
        """
        points = self._detector_points(image_rgb) if near is None else self._detector_points_near(image_rgb, near)
        if points is None:
            points = five_points_from_landmarks(landmarks)
        return self._embed_points(image_rgb, points)

    def _embed_points(self, image_rgb: np.ndarray, points: np.ndarray) -> np.ndarray:
        self.last_keypoints = np.asarray(points, dtype=np.float32)
        face = align_arcface(image_rgb, points, size=self.arcface.input_size[0])
        return self.arcface.embed_aligned(face)[0]

    def _detector_points(self, image_rgb: np.ndarray) -> np.ndarray | None:
        return None if self.detector is None else self.detector.largest_face_keypoints(image_rgb)

    def _detector_points_near(self, image_rgb: np.ndarray, box) -> np.ndarray | None:
        return None if self.detector is None else self.detector.keypoints_near(image_rgb, box)


def _load_detector(path: Path):
    try:
        from retarget.face.detector import ScrfdFaceDetector

        return ScrfdFaceDetector(path)
    except ImportError:
        raise MissingWeightsError(
            f"the antelopev2 detector is at {path} but insightface is not installed; "
            "run `pip install --no-deps \"insightface>=2.1\"`"
        ) from None
    except Exception as err:  # onnxruntime/insightface raise assorted types for unusable files
        raise BadInputError(f"{path}: not a usable SCRFD detector ({first_line(err)})") from None
