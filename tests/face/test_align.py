"""Face alignment: FFHQ from four anchors (eye centres, mouth corners), as the Reference Adapter's photos were made,
and ArcFace's five-point crop."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from retarget.face.align import (
    ARCFACE_TEMPLATE, align_arcface, align_ffhq, ffhq_align, ffhq_anchors, ffhq_matrix, ffhq_quad_from_anchors,
    five_points_from_landmarks, transform_points,
)
from tests.conftest import needs_shared
from tests.face.conftest import observe

# A slightly tilted face: image-left eye, image-right eye, image-left mouth corner, image-right mouth corner.
ANCHORS = np.array([[330.3, 300.7], [470.2, 290.1], [350.6, 450.4], [460.9, 445.2]])


def blob_image(height: int, width: int, points, sigma: float) -> np.ndarray:
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    image = np.zeros((height, width), np.float32)
    for x, y in points:
        image += np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.repeat((np.clip(image, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def centroid(image: np.ndarray, near, radius: int = 12) -> np.ndarray:
    grey = image[..., 0].astype(np.float64)
    x0, y0 = int(round(near[0])), int(round(near[1]))
    window = grey[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1]
    ys, xs = np.mgrid[y0 - radius:y0 + radius + 1, x0 - radius:x0 + radius + 1]
    return np.array([(window * xs).sum() / window.sum(), (window * ys).sum() / window.sum()])


@pytest.mark.parametrize("height, width, scale, sigma, size", [
    (700, 800, 1.0, 6.0, 512),   # no pre-shrink
    (300, 300, 0.35, 2.5, 256),  # small face: the warp enlarges it
    (1400, 1300, 2.0, 12.0, 128),  # large face: pre-shrink by an integer factor
])
def test_anchors_land_where_the_recipe_puts_them(height, width, scale, sigma, size):
    anchors = ANCHORS * scale
    image = blob_image(height, width, anchors, sigma)
    aligned = ffhq_align(image, anchors, size)
    assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
    expected = transform_points(anchors, ffhq_matrix(anchors, size))
    found = np.array([centroid(aligned, p, radius=max(6, size // 40)) for p in expected])
    assert np.abs(found - expected).max() < 0.25
    # The recipe's template: eyes level, the face centred horizontally, eyes above the mouth.
    assert abs(expected[0, 1] - expected[1, 1]) < 0.05 * size
    assert abs(expected[:2, 0].mean() - size / 2) < 0.05 * size
    assert expected[2:, 1].min() > expected[:2, 1].max()


def test_quad_corners_sit_on_the_outer_pixel_edges():
    quad = ffhq_quad_from_anchors(ANCHORS)
    corners = transform_points(quad, ffhq_matrix(ANCHORS, 512))
    assert np.allclose(corners, [[-0.5, -0.5], [-0.5, 511.5], [511.5, 511.5], [511.5, -0.5]], atol=1e-3)


def laplacian_energy(image: np.ndarray) -> np.ndarray:
    return np.abs(cv2.Laplacian(image[..., 0].astype(np.float32), cv2.CV_32F))


def test_face_near_the_border_gets_blurred_reflect_padding():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)  # fine texture everywhere
    anchors = ANCHORS - [290.0, 0.0]  # the face at the left edge: the quad reaches far outside
    size = 256
    matrix = ffhq_matrix(anchors, size)
    aligned = ffhq_align(image, anchors, size)
    mirrored = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    # Where each output pixel comes from in the input.
    ys, xs = np.mgrid[:size, :size]
    source = transform_points(np.stack([xs, ys], -1).reshape(-1, 2).astype(np.float64), cv2.invertAffineTransform(matrix))
    outside = (source[:, 0] < -25).reshape(size, size)
    inside = ((source[:, 0] > 25) & (source[:, 0] < 375) & (source[:, 1] > 25) & (source[:, 1] < 375)).reshape(size, size)
    assert outside.sum() > 1000 and inside.sum() > 1000
    ours, plain = laplacian_energy(aligned), laplacian_energy(mirrored)
    # A plain mirror repeats the texture; the recipe's padding is blurred towards a flat colour.
    assert plain[outside].mean() > 5 * ours[outside].mean()
    # The picture itself keeps its texture.
    assert ours[inside].mean() > 5 * ours[outside].mean()
    # Far out, the padding approaches the picture's median colour.
    far = (source[:, 0] < -100).reshape(size, size)
    assert np.abs(aligned[far].astype(float).mean(0) - np.median(image, axis=(0, 1))).max() < 12


def test_large_face_is_antialiased():
    checker = ((np.indices((1000, 1000)).sum(0) % 2) * 255).astype(np.uint8)  # 1-pixel checkerboard: mean 127.5
    image = np.repeat(checker[..., None], 3, axis=2)
    anchors = ANCHORS * 1.5
    size = 128
    aligned = ffhq_align(image, anchors, size)
    single_warp = cv2.warpAffine(image, ffhq_matrix(anchors, size), (size, size), flags=cv2.INTER_LINEAR)
    centre = np.s_[32:96, 32:96]
    # One bilinear warp straight to the output aliases the pattern; the recipe averages it to grey.
    assert single_warp[centre].std() > 20
    assert aligned[centre].std() < 4
    assert abs(aligned[centre].mean() - 127.5) < 4


@pytest.mark.parametrize("bad, message", [
    (np.array([[1.0, 2.0], [np.nan, 3.0], [4.0, 5.0], [6.0, 7.0]]), "NaN or infinite"),
    (np.array([[1.0, 2.0], [np.inf, 3.0], [4.0, 5.0], [6.0, 7.0]]), "NaN or infinite"),
    (np.array([[10.0, 20.0], [10.0, 20.0], [5.0, 40.0], [15.0, 40.0]]), "coincide"),
    (np.zeros((5, 2)), "(4, 2)"),
])
def test_bad_anchors_are_refused(bad, message):
    image = np.zeros((64, 64, 3), np.uint8)
    for call in (lambda: ffhq_align(image, bad, 64), lambda: ffhq_matrix(bad, 64)):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            call()


def test_anchors_from_mediapipe_use_the_68_point_eye_contours():
    landmarks = np.zeros((478, 3))
    # Put only the six 68-point-equivalent contour points of each eye at one spot; every other point elsewhere.
    landmarks[:, :2] = 1000.0
    landmarks[[33, 160, 158, 133, 153, 144], :2] = [[100, 50], [110, 45], [120, 45], [130, 50], [120, 55], [110, 55]]
    landmarks[[362, 385, 387, 263, 373, 380], :2] = [[170, 50], [180, 45], [190, 45], [200, 50], [190, 55], [180, 55]]
    landmarks[61, :2], landmarks[291, :2] = [120, 120], [180, 120]
    anchors = ffhq_anchors(landmarks)
    assert np.allclose(anchors, [[115, 50], [185, 50], [120, 120], [180, 120]])


@needs_shared
def test_real_photos_align_to_the_template(landmarker_path, shared_dir):
    from retarget.face.align import align_ffhq
    from retarget.face.image_io import load_image
    from retarget.face.landmarker import FaceLandmarker

    with FaceLandmarker(landmarker_path, mode="image") as landmarker:
        for name in ("identity_freeman.jpg", "identity_jackie_wide.png"):
            image = load_image(shared_dir / "media" / name)
            observation = landmarker.detect(image)
            aligned, matrix = align_ffhq(image, observation.landmarks, size=512)
            assert np.array_equal(aligned, ffhq_align(image, ffhq_anchors(observation.landmarks), 512))
            expected = transform_points(ffhq_anchors(observation.landmarks), matrix)
            again = landmarker.detect(aligned)
            assert np.abs(ffhq_anchors(again.landmarks) - expected).max() < 6


@needs_shared
def test_the_reference_path_uses_ffhq_align(blendshape_models_dir, landmarker_path, shared_dir, monkeypatch):
    from retarget.weights.assets import resolve_models
    from retarget.face.image_io import load_image
    from retarget.config.models import ModelOptions
    from retarget.session.retargeter import Retargeter

    image = load_image(shared_dir / "media" / "identity_hepburn_small.png")
    with Retargeter(resolve_models(str(blendshape_models_dir)), ModelOptions(device="cpu", landmarker=landmarker_path)) as retargeter:
        received = []
        original = retargeter.pipeline.prepare_identity
        # Record what the generator is given (the call itself goes through unchanged).
        monkeypatch.setattr(retargeter.pipeline, "prepare_identity",
                            lambda embedding, reference=None: received.append(reference) or original(embedding, reference))
        retargeter.identity_from_image(image)
        anchors = ffhq_anchors(retargeter.observe(image, "identity").landmarks)
    assert len(received) == 1
    assert np.array_equal(received[0], ffhq_align(image, anchors, 512))


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
