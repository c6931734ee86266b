"""MediaPipe FaceLandmarker: finding and fetching its model, landmarks and blendshapes on real faces."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import cv2
import numpy as np
import pytest

from retarget.errors import MissingWeightsError, NoFaceError
from retarget.names.blendshapes import BLENDSHAPE_NAMES, mirror_blendshapes
from retarget.face import landmarker as landmarker_module
from retarget.face.identity import IdentityEmbedder
from retarget.face.landmarker import LANDMARKER_ENV, LANDMARKER_SHA256, FaceLandmarker, find_landmarker_model
from tests.conftest import needs_shared
from tests.face.conftest import observe


def test_find_landmarker_model_order(tmp_path, monkeypatch):
    explicit, from_env, models = tmp_path / "explicit.task", tmp_path / "env.task", tmp_path / "models"
    for path in (explicit, from_env, models / "face_landmarker.task"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    cache = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv(LANDMARKER_ENV, str(from_env))
    assert find_landmarker_model(explicit, models_dir=models, download=False) == explicit
    assert find_landmarker_model(None, models_dir=models, download=False) == from_env
    monkeypatch.delenv(LANDMARKER_ENV)
    assert find_landmarker_model(None, models_dir=models, download=False) == models / "face_landmarker.task"

    # The cache is used only for a file with the pinned checksum.
    cached = cache / "retarget" / "face_landmarker.task"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"cached model")
    monkeypatch.setattr(landmarker_module, "LANDMARKER_SHA256", hashlib.sha256(b"cached model").hexdigest())
    assert find_landmarker_model(None, models_dir=tmp_path / "empty", download=False) == cached


def test_find_landmarker_model_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    with pytest.raises(MissingWeightsError) as explicit:
        find_landmarker_model(tmp_path / "absent.task")
    assert "absent.task" in str(explicit.value) and "--landmarker" in str(explicit.value)
    monkeypatch.setenv(LANDMARKER_ENV, str(tmp_path / "env_absent.task"))
    with pytest.raises(MissingWeightsError, match=LANDMARKER_ENV):
        find_landmarker_model()
    monkeypatch.delenv(LANDMARKER_ENV)
    with pytest.raises(MissingWeightsError):
        find_landmarker_model(download=False)


def test_download_with_bad_checksum_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.delenv(LANDMARKER_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    wrong = tmp_path / "wrong.task"
    wrong.write_bytes(b"not the model" * 1000)
    monkeypatch.setattr(landmarker_module, "LANDMARKER_URL", wrong.as_uri())
    with pytest.raises(MissingWeightsError) as err:
        find_landmarker_model()
    assert "checksum" in str(err.value) and "\n" not in str(err.value)
    cache = tmp_path / "xdg" / "retarget"
    assert not (cache / "face_landmarker.task").exists()
    assert list(cache.iterdir()) == []  # no partial download left behind

    monkeypatch.setattr(landmarker_module, "LANDMARKER_URL", (tmp_path / "gone.task").as_uri())
    with pytest.raises(MissingWeightsError, match="could not download"):
        find_landmarker_model()


@needs_shared
def test_download_verifies_and_installs(landmarker_path, tmp_path, monkeypatch):
    monkeypatch.delenv(LANDMARKER_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(landmarker_module, "LANDMARKER_URL", landmarker_path.as_uri())
    path = find_landmarker_model()
    assert path == tmp_path / "xdg" / "retarget" / "face_landmarker.task"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == LANDMARKER_SHA256
    assert sorted(p.name for p in path.parent.iterdir()) == ["face_landmarker.task"]


@needs_shared
def test_blendshape_names_match_the_model(face_landmarker, media):
    import mediapipe as mp

    image = media("expression_exp3_rgba.png")
    result = face_landmarker._landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
    assert tuple(c.category_name for c in result.face_blendshapes[0]) == BLENDSHAPE_NAMES


@needs_shared
def test_pucker_expression(face_landmarker, media):
    image = media("expression_exp3_rgba.png")
    observation = observe(face_landmarker, image)
    assert observation.blendshapes.shape == (52,) and observation.blendshapes.dtype == np.float32
    assert observation.landmarks.shape == (478, 3) and observation.landmarks.dtype == np.float32
    assert BLENDSHAPE_NAMES[1 + int(np.argmax(observation.blendshapes[1:]))] == "mouthPucker"
    # Pixel coordinates: the box lies inside the image and covers a sizeable part of this portrait.
    x0, y0, x1, y1 = observation.box
    height, width = image.shape[:2]
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height and (x1 - x0) > width / 3
    assert np.allclose(observation.landmarks[:, :2].min(0), (x0, y0))


@needs_shared
@pytest.mark.parametrize("name", ["expression_exp1_rgba.png", "identity_hepburn_small.png",
                                  "identity_jackie_wide.png", "identity_painting_s9.jpg"])
def test_faces_found(face_landmarker, media, name):
    observe(face_landmarker, media(name))


@needs_shared
def test_mirrored_image_mirrors_blendshapes(face_landmarker, media):
    image = media("identity_hepburn_small.png")  # eyes look strongly to one side
    original = observe(face_landmarker, image)
    mirrored = observe(face_landmarker, np.fliplr(image))  # a non-contiguous view on purpose
    name = BLENDSHAPE_NAMES.index
    assert original.blendshapes[name("eyeLookInLeft")] > 0.4 > original.blendshapes[name("eyeLookInRight")]
    assert mirrored.blendshapes[name("eyeLookInRight")] > 0.4 > mirrored.blendshapes[name("eyeLookInLeft")]
    expected = mirror_blendshapes(original.blendshapes)
    # MediaPipe is not exactly mirror-symmetric on a 225-pixel photo, so allow some noise, but
    # mirroring the vector must explain the mirrored photo far better than the unmirrored vector.
    error = np.abs(mirrored.blendshapes - expected).mean()
    assert error < 0.05 and error < 0.6 * np.abs(mirrored.blendshapes - original.blendshapes).mean()
    assert np.abs(mirrored.blendshapes - expected).max() < 0.25
    width = image.shape[1]
    x0, y0, x1, y1 = original.box
    assert np.allclose(mirrored.box, (width - x1, y0, width - x0, y1), atol=0.03 * width)


@needs_shared
def test_no_face(face_landmarker, media, arcface):
    image = media("noface_alpaca_s23.jpg")
    assert face_landmarker.detect(image) is None
    with pytest.raises(NoFaceError) as err:
        IdentityEmbedder(arcface, face_landmarker).embed(image, source="noface_alpaca_s23.jpg")
    assert str(err.value) == "no face found in noface_alpaca_s23.jpg"


@needs_shared
def test_largest_face_is_chosen(face_landmarker, media):
    photo = media("identity_freeman.jpg")
    big = cv2.resize(photo, (400, 600), interpolation=cv2.INTER_AREA)
    small = cv2.resize(photo, (200, 300), interpolation=cv2.INTER_AREA)
    canvas = np.full((600, 700, 3), 255, np.uint8)
    canvas[:, 300:] = big
    canvas[150:450, :200] = small
    observation = observe(face_landmarker, canvas)
    assert observation.box[0] > 300  # the big copy on the right
    # ... and the small copy alone is also a face, so two were seen.
    assert observe(face_landmarker, np.ascontiguousarray(canvas[:, :300])).box[2] < 200


@needs_shared
def test_video_mode(landmarker_path, shared_dir):
    import av

    frames = []
    with av.open(str(shared_dir / "media" / "driver_d0.mp4")) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) == 5:
                break
    with FaceLandmarker(landmarker_path, mode="video") as video:
        observations = [video.detect(frame, timestamp_ms=40 * i) for i, frame in enumerate(frames)]
        with pytest.raises(ValueError):
            video.detect(frames[0], timestamp_ms=40)  # going back in time
        with pytest.raises(ValueError):
            video.detect(frames[0])
    assert all(o is not None for o in observations)
    centres = np.array([o.landmarks[:, :2].mean(0) for o in observations])
    assert np.abs(np.diff(centres, axis=0)).max() < 20  # a tracked face moves little between frames


def test_landmarker_discovery_follows_the_readme_order(tmp_path, monkeypatch):
    from retarget.face.landmarker import LANDMARKER_ENV, LANDMARKER_FILENAME, landmarker_for

    class Files:
        landmarker = tmp_path / "models" / LANDMARKER_FILENAME

    Files.landmarker.parent.mkdir()
    Files.landmarker.write_bytes(b"models folder")
    flag, env = tmp_path / "flag.task", tmp_path / "env.task"
    flag.write_bytes(b"flag")
    env.write_bytes(b"env")
    monkeypatch.setenv(LANDMARKER_ENV, str(env))
    assert landmarker_for(flag, Files, download=False) == flag  # 1. the flag
    assert landmarker_for(None, Files, download=False) == env  # 2. the environment beats the models folder
    monkeypatch.delenv(LANDMARKER_ENV)
    assert landmarker_for(None, Files, download=False) == Files.landmarker  # 3. the models folder
    from retarget.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError):  # 4./5. no cache, and no download asked for
        landmarker_for(None, None, download=False)


def test_overlapping_stderr_silencing_always_restores_stderr(monkeypatch):
    from retarget.face.landmarker import _native_stderr_silenced

    monkeypatch.delenv("RETARGET_DEBUG", raising=False)
    original = os.fstat(2)
    inside = threading.Barrier(2)
    first_out = threading.Event()

    def worker(index: int):
        with _native_stderr_silenced():
            inside.wait(timeout=10)
            if index == 0:
                pass  # leaves first, while the other is still inside
            else:
                first_out.wait(timeout=10)
                time.sleep(0.05)
        if index == 0:
            first_out.set()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    now = os.fstat(2)
    assert (now.st_dev, now.st_ino) == (original.st_dev, original.st_ino)
