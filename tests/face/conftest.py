"""Fixtures for the face tests: ../shared photos, one MediaPipe landmarker per module, random ArcFace and SMIRK files."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.face.identity import ArcFaceEncoder
from retarget.weights.test_face_models import write_random_arcface_onnx
from retarget.face.image_io import load_image
from retarget.face.landmarker import FaceLandmarker, FaceObservation
from retarget.weights.test_face_models import write_random_smirk_checkpoint


IDENTITY_PHOTOS = ("identity_freeman.jpg", "identity_hepburn_small.png", "identity_jackie_wide.png",
                   "identity_painting_s9.jpg")


@pytest.fixture(scope="module")
def media(shared_dir):
    cache: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = load_image(shared_dir / "media" / name)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def face_landmarker(landmarker_path):
    with FaceLandmarker(landmarker_path, mode="image") as landmarker:
        yield landmarker


@pytest.fixture(scope="module")
def arcface(tmp_path_factory):
    return ArcFaceEncoder(write_random_arcface_onnx(tmp_path_factory.mktemp("arcface") / "arcface.onnx", seed=3))


@pytest.fixture(scope="module")
def smirk_checkpoint(tmp_path_factory):
    return write_random_smirk_checkpoint(tmp_path_factory.mktemp("smirk") / "SMIRK_em1.pt", seed=1)


def observe(landmarker: FaceLandmarker, image: np.ndarray) -> FaceObservation:
    observation = landmarker.detect(image)
    assert observation is not None
    return observation
