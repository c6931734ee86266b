"""Face perception: image loading, MediaPipe landmarks/blendshapes, alignment, ArcFace identity, SMIRK."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from retarget.errors import BadInputError, MissingWeightsError, NoFaceError
from retarget.expression.blendshapes import BLENDSHAPE_NAMES, MIRROR_PERMUTATION, NUM_BLENDSHAPES, mirror_blendshapes
from retarget.face import landmarker as landmarker_module
from retarget.face.align import (
    ARCFACE_TEMPLATE, align_arcface, align_ffhq, ffhq_anchors, five_points_from_landmarks, transform_points,
)
from retarget.face.identity import ArcFaceEncoder, IdentityEmbedder, write_random_arcface_onnx
from retarget.face.image_io import load_image
from retarget.face.landmarker import (
    LANDMARKER_ENV, LANDMARKER_SHA256, FaceLandmarker, FaceObservation, find_landmarker_model,
)
from retarget.face.smirk import (
    SMIRK_PREFIX, SmirkExtractor, load_smirk_encoder, smirk_crop, write_random_smirk_checkpoint,
)
from tests.conftest import needs_shared

IDENTITY_PHOTOS = ("identity_freeman.jpg", "identity_hepburn_small.png", "identity_jackie_wide.png",
                   "identity_painting_s9.jpg")


# ---------------------------------------------------------------- fixtures

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


# ---------------------------------------------------------------- blendshapes

def test_mirror_permutation_swaps_pairs_and_is_an_involution():
    assert len(BLENDSHAPE_NAMES) == NUM_BLENDSHAPES == 52 and BLENDSHAPE_NAMES[0] == "_neutral"
    assert sorted(MIRROR_PERMUTATION) == list(range(52))
    assert (MIRROR_PERMUTATION[MIRROR_PERMUTATION] == np.arange(52)).all()
    values = np.arange(52, dtype=np.float32)
    mirrored = mirror_blendshapes(values)
    name = BLENDSHAPE_NAMES.index
    assert mirrored[name("eyeBlinkLeft")] == name("eyeBlinkRight")
    assert mirrored[name("mouthLeft")] == name("mouthRight")
    assert mirrored[name("jawRight")] == name("jawLeft")
    assert mirrored[name("jawOpen")] == name("jawOpen")
    batch = np.stack([values, values * 2])
    assert np.array_equal(mirror_blendshapes(batch), np.stack([mirrored, mirrored * 2]))


# ---------------------------------------------------------------- image loading

def test_load_image_modes_and_exif(tmp_path):
    rgba = np.zeros((4, 6, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :3, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    assert tuple(out[0, 0]) == (200, 0, 0) and tuple(out[0, 5]) == (255, 255, 255)

    Image.fromarray(np.full((3, 5), 77, np.uint8), "L").save(tmp_path / "g.png")
    assert load_image(tmp_path / "g.png").shape == (3, 5, 3)

    # EXIF orientation 6 (rotate 90 degrees clockwise to display): a 4x2 stored image shows as 2 rows x 4 cols.
    stored = Image.fromarray(np.zeros((4, 2, 3), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (2, 4, 3)


def test_load_image_errors_are_one_line(tmp_path):
    with pytest.raises(BadInputError) as missing:
        load_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(missing.value) and "not found" in str(missing.value)
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture\n" * 10)
    with pytest.raises(BadInputError) as bad:
        load_image(fake)
    message = str(bad.value)
    assert "notes.png" in message and "\n" not in message


@needs_shared
def test_load_real_media(media):
    for name in ("expression_exp1_rgba.png", "identity_hepburn_small.png", "identity_freeman.jpg"):
        image = media(name)
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert media("identity_hepburn_small.png").shape[:2] == (224, 225)


# ---------------------------------------------------------------- landmarker model lookup

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


# ---------------------------------------------------------------- landmarker

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


# ---------------------------------------------------------------- alignment

@needs_shared
def test_align_ffhq_puts_eyes_on_the_template(face_landmarker, media):
    eye_positions = []
    for name in ("identity_freeman.jpg", "identity_jackie_wide.png"):
        image = media(name)
        observation = observe(face_landmarker, image)
        aligned, matrix = align_ffhq(image, observation.landmarks, size=512)
        assert aligned.shape == (512, 512, 3) and aligned.dtype == np.uint8 and matrix.shape == (2, 3)
        eyes = transform_points(ffhq_anchors(observation.landmarks)[:2], matrix)
        eye_positions.append(eyes)
        # The aligned picture really shows that face at those positions.
        again = observe(face_landmarker, aligned)
        seen = ffhq_anchors(again.landmarks)[:2]
        assert np.abs(seen - eyes).max() < 8
    # Eyes level and symmetric about the centre; the same template spot in both photos.
    for eyes in eye_positions:
        assert abs(eyes[0, 1] - eyes[1, 1]) < 3
        assert abs(eyes.mean(0)[0] - 256) < 3
    assert np.abs(eye_positions[0] - eye_positions[1]).max() < 6


@needs_shared
def test_align_arcface(face_landmarker, media):
    image = media("identity_freeman.jpg")
    points = five_points_from_landmarks(observe(face_landmarker, image).landmarks)
    assert points.shape == (5, 2)
    assert points[0, 0] < points[1, 0] and points[3, 0] < points[4, 0]  # image-left first
    assert points[0, 1] < points[2, 1] < points[3, 1]  # eyes above nose above mouth
    face = align_arcface(image, points)
    assert face.shape == (112, 112, 3) and face.dtype == np.uint8
    from retarget.face.align import arcface_matrix

    assert np.abs(transform_points(points, arcface_matrix(points)) - ARCFACE_TEMPLATE).max() < 6


# ---------------------------------------------------------------- ArcFace identity

def test_random_arcface_interface(tmp_path, arcface):
    import onnx

    path = write_random_arcface_onnx(tmp_path / "a.onnx")
    assert path.stat().st_size < 1_000_000
    graph = onnx.load(str(path)).graph
    assert graph.input[0].name == "input.1"
    assert (arcface.input_mean, arcface.input_std) == (127.5, 127.5)  # no Sub/Mul at the start of the graph
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    batch = arcface.embed_aligned(faces)
    assert batch.shape == (3, 512) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    singles = np.concatenate([arcface.embed_aligned(face) for face in faces])
    assert np.allclose(batch, singles, atol=1e-5)
    assert np.allclose(arcface.embed_aligned(list(faces)), batch, atol=1e-6)


def test_arcface_fixed_batch_and_mxnet_normalisation(tmp_path):
    """Models with a fixed batch of 1, and MXNet exports that normalise inside the graph."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(write_random_arcface_onnx(tmp_path / "a.onnx")))
    graph = model.graph
    graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
    graph.initializer.extend([numpy_helper.from_array(np.array(127.5, np.float32), "mean"),
                              numpy_helper.from_array(np.array(1 / 127.5, np.float32), "scale")])
    graph.node[0].input[0] = "scaled"
    prefix = [helper.make_node("Sub", ["input.1", "mean"], ["centred"], name="_minusscalar0"),
              helper.make_node("Mul", ["centred", "scale"], ["scaled"], name="_mulscalar0")]
    nodes = prefix + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.save(model, str(tmp_path / "mx.onnx"))
    mx = ArcFaceEncoder(tmp_path / "mx.onnx")
    plain = ArcFaceEncoder(tmp_path / "a.onnx")
    assert (mx.input_mean, mx.input_std) == (0.0, 1.0) and mx.fixed_batch == 1
    faces = np.random.default_rng(1).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    # Same weights, normalisation moved into the graph: identical embeddings.
    assert np.allclose(mx.embed_aligned(faces), plain.embed_aligned(faces), atol=1e-4)


def test_arcface_unreadable(tmp_path):
    with pytest.raises(MissingWeightsError):
        ArcFaceEncoder(tmp_path / "absent.onnx")
    junk = tmp_path / "arcface.onnx"
    junk.write_bytes(b"\x00garbage" * 100)
    with pytest.raises((BadInputError, MissingWeightsError)) as err:
        ArcFaceEncoder(junk)
    assert "arcface.onnx" in str(err.value) and "\n" not in str(err.value)


@needs_shared
def test_identity_embeddings(face_landmarker, media, arcface):
    embedder = IdentityEmbedder(arcface, face_landmarker, use_insightface=False)
    vectors = {}
    for name in IDENTITY_PHOTOS:
        vector = embedder.embed(media(name), source=name)
        assert vector.shape == (512,) and abs(np.linalg.norm(vector) - 1) < 1e-5
        vectors[name] = vector
    again = embedder.embed(media("identity_freeman.jpg"))
    assert np.allclose(again, vectors["identity_freeman.jpg"], atol=1e-6)
    names = list(vectors)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not np.allclose(vectors[a], vectors[b], atol=1e-3), (a, b)
    observation = observe(face_landmarker, media("identity_jackie_wide.png"))
    direct = embedder.embed_with_landmarks(media("identity_jackie_wide.png"), observation.landmarks)
    assert np.allclose(direct, vectors["identity_jackie_wide.png"], atol=1e-6)


# ---------------------------------------------------------------- SMIRK

def test_smirk_checkpoint_loads_strictly(smirk_checkpoint, tmp_path):
    state = torch.load(smirk_checkpoint, weights_only=True)
    assert any(k.startswith(SMIRK_PREFIX + "encoder.") for k in state)
    assert any(k.startswith(SMIRK_PREFIX + "expression_layers.") for k in state)
    assert any(not k.startswith(SMIRK_PREFIX) for k in state)
    model = load_smirk_encoder(smirk_checkpoint)
    assert not model.training
    assert torch.equal(model.expression_layers[0].weight, state[SMIRK_PREFIX + "expression_layers.0.weight"])

    broken = dict(state)
    del broken[SMIRK_PREFIX + "expression_layers.0.bias"]
    broken[SMIRK_PREFIX + "extra.weight"] = torch.zeros(1)
    torch.save(broken, tmp_path / "broken.pt")
    with pytest.raises(BadInputError) as err:
        load_smirk_encoder(tmp_path / "broken.pt")
    assert "1 missing, 1 unexpected" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(MissingWeightsError):
        load_smirk_encoder(tmp_path / "absent.pt")


def test_smirk_output_ranges(smirk_checkpoint):
    extractor = SmirkExtractor(smirk_checkpoint)
    with torch.no_grad():  # make the raw head outputs large so that every clamp is exercised
        extractor.model.expression_layers[0].weight.mul_(200.0)
    crops = np.random.default_rng(0).random((4, 224, 224, 3), dtype=np.float32)
    values = extractor.encode_batch(crops)
    assert values.shape == (4, 55) and values.dtype == np.float32
    eyelids, jaw = values[:, 50:52], values[:, 52:55]
    assert eyelids.min() >= 0 and eyelids.max() <= 1
    assert jaw[:, 0].min() >= 0 and np.abs(jaw[:, 1:]).max() <= 0.2 + 1e-6
    assert np.abs(values[:, :50]).max() > 1  # expression values are not clamped
    assert np.allclose(extractor.encode_batch(crops[1]), values[1:2], rtol=1e-4, atol=1e-2)  # batch = single


def test_smirk_crop_keeps_rgb_and_geometry():
    image = np.zeros((300, 400, 3), np.uint8)
    image[100:200, 150:250] = (255, 0, 0)  # a pure red face-sized square
    corners = np.array([[150, 100], [250, 100], [150, 200], [250, 200]], np.float32)
    landmarks = np.concatenate([corners, np.full((1, 2), (200, 150), np.float32)])
    crop = smirk_crop(image, landmarks)
    assert crop.shape == (224, 224, 3) and crop.dtype == np.float32
    assert np.allclose(crop[112, 112], (1.0, 0.0, 0.0))
    # The box is 100 px wide and the crop 1.4x that: red covers the middle 1/1.4 of the crop.
    red = crop[112, :, 0] > 0.5
    assert abs(red.sum() - 224 / 1.4) < 3
    assert crop.min() >= 0 and crop.max() <= 1


@needs_shared
def test_smirk_on_a_real_face(face_landmarker, media, smirk_checkpoint):
    image = media("expression_exp3_rgba.png")
    observation = observe(face_landmarker, image)
    values = SmirkExtractor(smirk_checkpoint).encode(image, observation.landmarks)
    assert values.shape == (55,) and np.isfinite(values).all()
