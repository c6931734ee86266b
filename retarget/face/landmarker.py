"""MediaPipe FaceLandmarker: finding its model file, and running it to get landmarks + blendshapes."""

from __future__ import annotations

import atexit
import hashlib
import os
import sys
import tempfile
import threading
from contextlib import contextmanager
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retarget.cache import file_sha256, user_cache_dir
from retarget.errors import BadInputError, MissingWeightsError, first_line
from retarget.names.blendshapes import BLENDSHAPE_NAMES, NUM_BLENDSHAPES

LANDMARKER_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
)
LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
LANDMARKER_ENV = "RETARGET_FACE_LANDMARKER"
LANDMARKER_FILENAME = "face_landmarker.task"
_HOW_TO_FIX = f"pass --landmarker PATH or set {LANDMARKER_ENV}"



_silence_lock = threading.Lock()
_silence_depth = 0
_saved_stderr: int | None = None


@contextmanager
def _native_stderr_silenced():
    """MediaPipe's C++ graph prints informational lines straight to fd 2 while it starts.

    fd 2 is process-wide: the first of overlapping callers (threads) points it at /dev/null and
    the last one restores it, under a lock, so stderr always comes back.
    """
    global _silence_depth, _saved_stderr
    if os.environ.get("RETARGET_DEBUG"):
        yield
        return
    with _silence_lock:
        if _silence_depth == 0:
            sys.stderr.flush()
            _saved_stderr = os.dup(2)
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
        _silence_depth += 1
    try:
        yield
    finally:
        with _silence_lock:
            _silence_depth -= 1
            if _silence_depth == 0 and _saved_stderr is not None:
                os.dup2(_saved_stderr, 2)
                os.close(_saved_stderr)
                _saved_stderr = None


def find_landmarker_model(
    explicit: str | os.PathLike | None = None,
    models_dir: Path | None = None,
    download: bool = True,
) -> Path:
    """Locate face_landmarker.task: explicit path, $RETARGET_FACE_LANDMARKER, models folder, cache, download."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise MissingWeightsError(f"MediaPipe face landmarker model not found at {path}; {_HOW_TO_FIX}")
        return path
    from_env = os.environ.get(LANDMARKER_ENV)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise MissingWeightsError(
                f"MediaPipe face landmarker model not found at {path} (from ${LANDMARKER_ENV}); {_HOW_TO_FIX}"
            )
        return path
    if models_dir is not None and (Path(models_dir) / LANDMARKER_FILENAME).is_file():
        return Path(models_dir) / LANDMARKER_FILENAME
    cached = user_cache_dir() / LANDMARKER_FILENAME
    # The cache only ever holds our verified download, so a mismatch means damage: fetch again.
    if cached.is_file() and file_sha256(cached) == LANDMARKER_SHA256:
        return cached
    if not download:
        raise MissingWeightsError(f"MediaPipe face landmarker model {LANDMARKER_FILENAME} not found; {_HOW_TO_FIX}")
    download_checked(LANDMARKER_URL, cached, LANDMARKER_SHA256)
    return cached


def landmarker_for(explicit=None, models=None, download: bool = True) -> Path:
    """The README's order: --landmarker, $RETARGET_FACE_LANDMARKER, the models folder's (ModelFiles), cache, download."""
    models_dir = models.landmarker.parent if models is not None and getattr(models, "landmarker", None) else None
    return find_landmarker_model(explicit, models_dir=models_dir, download=download)


def download_checked(url: str, target: Path, sha256: str) -> None:
    """Fetch url into target via a temp file in the same folder; rename only once the checksum matches."""
    from tqdm.auto import tqdm

    failure = f"could not download the MediaPipe face landmarker model from {url}"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".partial", delete=False)
    except OSError as err:
        raise MissingWeightsError(f"{failure} ({err}); {_HOW_TO_FIX}") from None
    temp = Path(handle.name)
    try:
        digest = hashlib.sha256()
        with handle, urllib.request.urlopen(url, timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=target.name, leave=False) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    handle.write(block)
                    digest.update(block)
                    bar.update(len(block))
        if digest.hexdigest() != sha256:
            raise MissingWeightsError(f"{failure}: checksum mismatch (got {digest.hexdigest()[:12]}..., "
                                      f"expected {sha256[:12]}...); {_HOW_TO_FIX}")
        os.replace(temp, target)  # atomic: the final name only ever holds a complete, verified file
    except MissingWeightsError:
        raise
    except (OSError, urllib.error.URLError, ValueError) as err:
        reason = getattr(err, "reason", None) or err
        raise MissingWeightsError(f"{failure} ({reason}); {_HOW_TO_FIX}") from None
    finally:
        temp.unlink(missing_ok=True)


# Every MediaPipe graph from its creation until it is closed. MediaPipe's finaliser closes a graph through the
# graph's task dispatcher; when the garbage collector finds an unclosed graph in a reference cycle it has already
# stopped that dispatcher's worker (a weak reference cleared), and the close() waits forever. Held here, an open
# graph is never the collector's; one dropped without close() is closed later, outside any finaliser.
_open_graphs: dict[int, object] = {}
_dropped_graphs: list = []
_graphs_lock = threading.Lock()


def _hold(graph) -> None:
    with _graphs_lock:
        _open_graphs[id(graph)] = graph


def _close_graph(graph) -> None:
    try:
        graph.close()  # a closed graph's own finaliser does nothing
    finally:
        with _graphs_lock:
            _open_graphs.pop(id(graph), None)


@atexit.register  # MediaPipe's own finaliser fails (with a traceback) once the interpreter is shutting down
def _close_open_graphs() -> None:
    with _graphs_lock:
        graphs = list(_open_graphs.values())
    for graph in graphs:
        _close_graph(graph)


def _close_dropped_graphs() -> None:
    while _dropped_graphs:
        try:
            graph = _dropped_graphs.pop()
        except IndexError:  # another thread took the last one
            return
        _close_graph(graph)


@dataclass
class FaceObservation:
    """One face as MediaPipe sees it, in the pixel coordinates of the image it was found in."""

    blendshapes: np.ndarray  # (52,) float32, BLENDSHAPE_NAMES order
    landmarks: np.ndarray  # (478, 3) float32: x, y in pixels; z in the same scale as x (image width)
    box: tuple[float, float, float, float]  # (x0, y0, x1, y1): extent of the landmarks, pixels

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)


class FaceLandmarker:
    """MediaPipe Tasks FaceLandmarker with blendshapes: the largest face (detect) or all of them (detect_all, up to num_faces)."""

    def __init__(self, model_path, mode: str = "image", num_faces: int = 4, min_confidence: float = 0.5):
        from mediapipe.tasks.python.core.base_options import BaseOptions
        from mediapipe.tasks.python.vision import FaceLandmarkerOptions, RunningMode
        from mediapipe.tasks.python.vision import FaceLandmarker as _MPFaceLandmarker

        self._landmarker = None
        modes = {"image": RunningMode.IMAGE, "video": RunningMode.VIDEO}
        if mode not in modes:
            raise ValueError(f"mode must be 'image' or 'video', not {mode!r}")
        path = Path(model_path)
        try:
            # Handing MediaPipe the bytes avoids its trouble with non-ASCII paths.
            model_bytes = path.read_bytes()
        except OSError as err:
            raise MissingWeightsError(f"cannot read MediaPipe face landmarker model {path} ({err.strerror or err}); "
                                      f"{_HOW_TO_FIX}") from None
        options = FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=model_bytes),
            running_mode=modes[mode],
            num_faces=num_faces,
            min_face_detection_confidence=min_confidence,
            min_face_presence_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
            output_face_blendshapes=True,
        )
        _close_dropped_graphs()
        try:
            with _native_stderr_silenced():
                self._landmarker = _MPFaceLandmarker.create_from_options(options)
            _hold(self._landmarker)
        except (RuntimeError, ValueError, OSError) as err:  # a bundle without its models: FileNotFoundError
            first = first_line(err)
            raise MissingWeightsError(f"{path} is not a usable MediaPipe face landmarker model ({first}); "
                                      f"{_HOW_TO_FIX}") from None
        self.mode = mode
        self._last_timestamp: int | None = None

    def detect(self, image_rgb: np.ndarray, timestamp_ms: int | None = None) -> FaceObservation | None:
        """The largest face in an RGB uint8 image (video mode: timestamps in ms, strictly increasing)."""
        faces = self.detect_all(image_rgb, timestamp_ms)
        if not faces:
            return None
        return max(faces, key=lambda face: face.area)

    def detect_all(self, image_rgb: np.ndarray, timestamp_ms: int | None = None) -> list[FaceObservation]:
        """Every face found (up to num_faces), in MediaPipe's order; retarget.face.selection numbers them."""
        import mediapipe as mp

        if self._landmarker is None:
            raise RuntimeError("FaceLandmarker is closed")
        image = np.asarray(image_rgb)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise BadInputError(f"expected an HxWx3 uint8 RGB image, got {image.dtype} array of shape {image.shape}")
        # MediaPipe needs C-contiguous memory; flipped or sliced views are not.
        image = np.ascontiguousarray(image[:, :, :3])
        height, width = image.shape[:2]
        frame = mp.Image(image_format=mp.ImageFormat.SRGB, data=image)
        if self.mode == "video":
            if timestamp_ms is None:
                raise ValueError("timestamp_ms is required in video mode")
            timestamp_ms = int(timestamp_ms)
            if self._last_timestamp is not None and timestamp_ms <= self._last_timestamp:
                raise ValueError(f"timestamps must increase: {timestamp_ms} ms after {self._last_timestamp} ms")
            self._last_timestamp = timestamp_ms
            result = self._landmarker.detect_for_video(frame, timestamp_ms)
        else:
            result = self._landmarker.detect(frame)

        faces = []
        for i, points in enumerate(result.face_landmarks):
            landmarks = np.array([(p.x * width, p.y * height, p.z * width) for p in points], dtype=np.float32)
            box = (float(landmarks[:, 0].min()), float(landmarks[:, 1].min()),
                   float(landmarks[:, 0].max()), float(landmarks[:, 1].max()))
            blendshapes = _blendshape_vector(result.face_blendshapes[i] if i < len(result.face_blendshapes) else [])
            faces.append(FaceObservation(blendshapes=blendshapes, landmarks=landmarks, box=box))
        return faces

    def close(self) -> None:
        graph, self._landmarker = self._landmarker, None
        if graph is not None:
            _close_graph(graph)
        _close_dropped_graphs()

    def __del__(self):
        # Never close from a finaliser (the collector may run it on any thread, MediaPipe's dispatcher's own
        # included): a graph dropped without close() is closed by the next landmarker made or closed.
        graph = getattr(self, "_landmarker", None)
        if graph is not None:
            self._landmarker = None
            _dropped_graphs.append(graph)

    def __enter__(self) -> "FaceLandmarker":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_NAME_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}


def _blendshape_vector(categories) -> np.ndarray:
    values = np.zeros(NUM_BLENDSHAPES, dtype=np.float32)
    for category in categories:
        # Place by name, so a model that reorders its categories cannot scramble our vectors.
        index = _NAME_INDEX.get(category.category_name, category.index)
        if 0 <= index < NUM_BLENDSHAPES:
            values[index] = category.score
    return values
