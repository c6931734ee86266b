"""Identity keypoints from insightface's SCRFD (the published recipe), MediaPipe only as the fallback."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from retarget.face.align import align_arcface
from retarget.face.detector import ANTELOPEV2_DETECTOR, DETECTION_SIZE, find_antelopev2_detector
from retarget.weights.test_face_models import write_random_scrfd_onnx
from retarget.face.identity import ArcFaceEncoder, IdentityEmbedder
from retarget.weights.test_face_models import write_random_arcface_onnx


def noise_photo(seed: int, shape=(480, 600, 3)) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


@pytest.fixture
def models_dir(tmp_path, monkeypatch):
    """A models folder with arcface.onnx and antelopev2/scrfd_10g_bnkps.onnx (random weights)."""
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "no-insightface-home"))
    folder = tmp_path / "models"
    write_random_arcface_onnx(folder / "arcface.onnx", seed=3)
    write_random_scrfd_onnx(folder / "antelopev2" / ANTELOPEV2_DETECTOR, seed=0)
    return folder


def official_keypoints(root, image_rgb):
    """What the Arc2Face demo does: FaceAnalysis('antelopev2'), det_size 640, the largest face's kps."""
    from insightface.app import FaceAnalysis

    app = FaceAnalysis(name="antelopev2", root=str(root), allowed_modules=["detection"], providers=["CPUExecutionProvider"])
    app.prepare(ctx_id=-1, det_size=(640, 640))
    faces = app.get(np.ascontiguousarray(image_rgb[:, :, ::-1]))
    face = sorted(faces, key=lambda f: (f["bbox"][2] - f["bbox"][0]) * (f["bbox"][3] - f["bbox"][1]))[-1]
    return face["kps"], faces


def test_scrfd_keypoints_are_the_ones_used_for_the_crop(models_dir):
    arcface = ArcFaceEncoder(models_dir / "arcface.onnx")
    embedder = IdentityEmbedder(arcface, landmarker=None)  # finds antelopev2/ beside arcface.onnx
    assert embedder.uses_scrfd and DETECTION_SIZE == (640, 640)
    for seed in (0, 3):
        photo = noise_photo(seed)
        expected, faces = official_keypoints(models_dir.parent, photo)
        assert len(faces) > 1  # several candidates, so the largest-face rule matters
        scores = [f["det_score"] for f in faces]
        assert not np.allclose(expected, faces[int(np.argmax(scores))]["kps"])  # largest, not most confident
        vector = embedder.embed(photo, source="photo")
        assert np.allclose(embedder.last_keypoints, expected, atol=1e-4)
        assert np.allclose(vector, arcface.embed_aligned(align_arcface(photo, expected))[0], atol=1e-6)
        # Landmarks (MediaPipe's) do not override the detector when it is present.
        landmarks = np.random.default_rng(1).uniform(100, 300, (478, 3))
        assert np.allclose(embedder.embed_with_landmarks(photo, landmarks), vector, atol=1e-6)


def test_without_the_detector_mediapipe_points_are_used_and_one_line_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "empty"))
    arcface = ArcFaceEncoder(write_random_arcface_onnx(tmp_path / "m" / "arcface.onnx", seed=3))
    with caplog.at_level(logging.WARNING):
        embedder = IdentityEmbedder(arcface, landmarker=None)
    assert not embedder.uses_scrfd
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and "\n" not in messages[0]
    assert "differ slightly" in messages[0] and "retarget download --to DIR" in messages[0]
    # The fallback: 5 points from the MediaPipe landmarks.
    from retarget.face.align import five_points_from_landmarks

    landmarks = np.zeros((478, 3))
    landmarks[:, :2] = np.random.default_rng(2).uniform(150, 350, (478, 2))
    photo = noise_photo(1)
    embedder.embed_with_landmarks(photo, landmarks)
    assert np.allclose(embedder.last_keypoints, five_points_from_landmarks(landmarks))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        IdentityEmbedder(arcface, landmarker=None, warn_without_detector=False)
    assert not caplog.records


def test_detector_lookup_models_folder_nested_and_insightface_root(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("INSIGHTFACE_HOME", str(home))
    assert find_antelopev2_detector(tmp_path / "a") is None
    flat = write_random_scrfd_onnx(tmp_path / "a" / "antelopev2" / ANTELOPEV2_DETECTOR)
    nested = write_random_scrfd_onnx(tmp_path / "b" / "antelopev2" / "antelopev2" / ANTELOPEV2_DETECTOR)
    own = write_random_scrfd_onnx(home / "models" / "antelopev2" / ANTELOPEV2_DETECTOR)
    assert find_antelopev2_detector(tmp_path / "a") == flat
    assert find_antelopev2_detector(tmp_path / "b") == nested
    assert find_antelopev2_detector(tmp_path / "c") == own  # insightface's own model root
    assert find_antelopev2_detector(None, tmp_path / "a") == flat


def test_models_folder_reports_its_detector(tiny_models_dir, tmp_path, monkeypatch):
    from retarget.weights.assets import resolve_models

    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "empty"))
    folder = shutil.copytree(tiny_models_dir, tmp_path / "models")
    assert resolve_models(str(folder)).detector is None
    path = write_random_scrfd_onnx(folder / "antelopev2" / ANTELOPEV2_DETECTOR)
    assert resolve_models(str(folder)).detector == path


def test_an_unusable_detector_file_is_a_clear_error(tmp_path):
    from retarget.errors import BadInputError

    arcface = ArcFaceEncoder(write_random_arcface_onnx(tmp_path / "arcface.onnx", seed=3))
    broken = tmp_path / "antelopev2" / ANTELOPEV2_DETECTOR
    broken.parent.mkdir()
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(BadInputError, match="not a usable SCRFD detector"):
        IdentityEmbedder(arcface, landmarker=None)
