"""Which face: numbering left to right, --identity-face / --driver-face, tracking a driver face across frames."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import BadInputError
from retarget.face.selection import FaceTracker, check_face_number, largest, left_to_right, nearest
from tests.test_cli import assert_one_line_error, run_cli
from tests.conftest import needs_shared
from tests.face_media import blank, inside, swap_video, two_face_photo


# ---------------------------------------------------------------- boxes only
def test_faces_are_numbered_left_to_right_and_the_default_is_the_largest():
    boxes = [(300, 0, 400, 100), (0, 0, 50, 50), (150, 0, 330, 180)]  # centres x 350, 25, 240
    assert left_to_right(boxes) == [1, 2, 0]
    assert largest(boxes) == 2


def test_an_out_of_range_number_is_one_line_listing_the_valid_ones():
    boxes = [(0, 0, 50, 60), (100, 0, 180, 90)]
    check_face_number(2, boxes, "x.png")
    with pytest.raises(BadInputError) as err:
        check_face_number(3, boxes, "x.png", "--identity-face")
    message = str(err.value)
    assert "\n" not in message and "--identity-face 3" in message and "2 faces" in message and "choose 1 to 2" in message
    assert "1: 50x60 px at (0, 0)" in message and "2: 80x90 px at (100, 0)" in message


def test_tracker_follows_the_chosen_face_while_the_two_swap_size():
    tracker, default = FaceTracker(1), FaceTracker()
    picked_left, largest_left = [], []
    for step in range(11):
        left, right = 60 + 8 * step, 140 - 8 * step  # the left face grows, the right one shrinks
        boxes = [(400 - right / 2, 100, 400 + right / 2, 100 + right), (100 - left / 2, 100, 100 + left / 2, 100 + left)]
        picked_left.append(boxes[tracker.pick(boxes)][0] < 250)
        largest_left.append(boxes[default.pick(boxes)][0] < 250)
    assert all(picked_left)
    assert largest_left[0] is False and largest_left[-1] is True  # "largest" switched faces half way


def test_tracker_holds_when_its_face_is_gone_and_takes_it_up_again_nearby_not_the_neighbour():
    tracker = FaceTracker(2)
    a, b = (0, 0, 100, 100), (110, 0, 210, 100)
    assert tracker.pick([a, b]) == 1
    assert tracker.pick([a]) is None  # only the neighbour is left: hold the last expression
    assert tracker.pick([]) is None
    moved = (120, 5, 220, 105)
    assert tracker.pick([a, moved]) == 1  # back, near where it was
    assert tracker.box == moved


def test_tracker_waits_for_enough_faces_and_follow_switches_to_the_clicked_box():
    tracker = FaceTracker(2)
    assert tracker.pick([(0, 0, 10, 10)]) is None  # face 2 is not there yet
    boxes = [(0, 0, 100, 100), (200, 0, 300, 100)]
    assert tracker.pick(boxes) == 1
    tracker.follow((10, 10, 90, 90))
    assert tracker.pick(boxes[::-1]) == 1  # the left one, wherever it is in the detector's list
    assert tracker.pick(boxes) == 0
    assert nearest(boxes, (1000, 0, 1100, 100)) is None  # too far to be the same face
    with pytest.raises(BadInputError):
        FaceTracker(0)


# ---------------------------------------------------------------- real photos and MediaPipe
@pytest.fixture(scope="module")
def two_faces(shared_dir, landmarker_path):
    """Freeman large on the left, the painting small on the right; and each alone on the same canvas."""
    photo, rects = two_face_photo(shared_dir, landmarker_path)
    return photo, rects, [blank(photo, rects[1]), blank(photo, rects[0])]


@pytest.fixture(scope="module")
def retargeter(tiny_models_dir, landmarker_path):
    from retarget.weights.assets import resolve_models
    from retarget.config.models import ModelOptions
    from retarget.session.retargeter import Retargeter

    with Retargeter(resolve_models(str(tiny_models_dir)), ModelOptions(device="cpu", landmarker=landmarker_path)) as r:
        yield r


def _cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@needs_shared
def test_identity_face_picks_the_chosen_face_of_a_two_face_photo(two_faces, retargeter):
    photo, rects, alone = two_faces
    faces = retargeter.faces(photo)
    assert len(faces) == 2 and inside(faces[0].box, rects[0]) and inside(faces[1].box, rects[1])  # 1 = left
    embeddings = {}
    for number in (1, 2):
        retargeter.identity_from_image(photo, face=number)
        embeddings[number] = retargeter.identity_embedding
        assert inside(retargeter.identity_box, rects[number - 1])
    solo = []
    for image in alone:
        retargeter.identity_from_image(image)
        solo.append(retargeter.identity_embedding)
    # Each choice gives (nearly) the embedding of that face photographed alone, not the other one's.
    for number in (1, 2):
        own, other = _cosine(embeddings[number], solo[number - 1]), _cosine(embeddings[number], solo[2 - number])
        assert own > 0.98 and own > other + 0.02, (number, own, other)
    # No choice: the largest (Freeman, on the left), exactly as face 1.
    retargeter.identity_from_image(photo)
    np.testing.assert_allclose(retargeter.identity_embedding, embeddings[1], atol=1e-6)
    with pytest.raises(BadInputError, match="choose 1 to 2"):
        retargeter.identity_from_image(photo, face=3)


@needs_shared
def test_a_driver_photo_and_its_neutral_use_the_chosen_face(two_faces, retargeter):
    photo = two_faces[0]
    faces = retargeter.faces(photo)
    right = retargeter.driver_neutral(photo, "two.png", face=2)  # --neutral-frame with --driver-face 2
    np.testing.assert_allclose(right, retargeter.expression_from_observation(photo, faces[1]), atol=1e-5)
    assert not np.allclose(right, retargeter.driver_neutral(photo, "two.png"), atol=1e-3)  # default: the largest, face 1
    chosen = retargeter.expression_from_image(photo, face=2)  # an image driver with --driver-face 2
    assert not np.allclose(chosen, retargeter.expression_from_image(photo), atol=1e-3)
    with pytest.raises(BadInputError, match="--driver-face|face 3"):
        retargeter.expression_from_image(photo, face=3)


def _chosen_boxes(video, landmarker_path, face):
    from retarget.engine.driving import DriverAnalyzer
    from retarget.media.sources import open_source

    with open_source(str(video)) as source, DriverAnalyzer("blendshapes52", landmarker_path, face=face) as analyzer:
        driven = [analyzer(frame) for frame in source]
    return driven


@needs_shared
def test_driver_face_is_tracked_while_the_two_faces_swap_size(shared_dir, landmarker_path, tmp_path):
    video, rects = swap_video(shared_dir, tmp_path / "swap.mp4")
    tracked = _chosen_boxes(video, landmarker_path, face=1)
    assert len(tracked) == len(rects)
    for frame, (left, right) in zip(tracked, rects):
        assert frame.face_found and frame.face_boxes is not None and len(frame.face_boxes) == 2, frame.index
        assert frame.face_number == 1, frame.index  # still the leftmost
        assert np.all(frame.landmarks[:, 0] < left[2]) and np.all(frame.landmarks[:, 0] > left[0]), frame.index
    largest_side = ["left" if inside(_box(f.landmarks), r[0]) else "right" for f, r in zip(_chosen_boxes(video, landmarker_path, None), rects)]
    assert largest_side[0] == "right" and largest_side[-1] == "left"  # the default would have switched faces


@needs_shared
def test_the_flame_path_crops_the_tracked_face_for_smirk(shared_dir, landmarker_path, tiny_models_dir, tmp_path):
    from retarget.engine.driving import DriverAnalyzer
    from retarget.face.smirk import SmirkExtractor
    from retarget.media.sources import open_source

    video, rects = swap_video(shared_dir, tmp_path / "swap.mp4", frames=4)
    smirk = SmirkExtractor(tiny_models_dir / "smirk" / "SMIRK_em1.pt")
    with open_source(str(video)) as source, DriverAnalyzer("flame55", landmarker_path, smirk=smirk, face=1) as tracked, \
            DriverAnalyzer("flame55", landmarker_path, smirk=smirk) as default:
        for frame in source:
            driven, largest_face = tracked(frame), default(frame)
            assert inside(_box(driven.landmarks), rects[frame.index][0])  # the left face...
            np.testing.assert_allclose(driven.raw_flame, smirk.encode(frame.image, driven.landmarks), atol=1e-5)  # ...is SMIRK's crop
            if frame.index == 0:  # the right face is the larger one here: the default reads another face
                assert inside(_box(largest_face.landmarks), rects[0][1])
                assert not np.allclose(driven.raw_flame, largest_face.raw_flame, atol=1e-3)


def _box(landmarks):
    return landmarks[:, 0].min(), landmarks[:, 1].min(), landmarks[:, 0].max(), landmarks[:, 1].max()


# ---------------------------------------------------------------- the CLI
@needs_shared
def test_cli_face_numbers_out_of_range_are_one_line_and_exit_2(two_faces, tmp_path, shared_dir, landmarker_path):
    from PIL import Image

    photo = tmp_path / "two.png"
    Image.fromarray(two_faces[0]).save(photo)
    base = ["--headless", "--models", "random:tiny", "--landmarker", str(landmarker_path), "--out", str(tmp_path / "o.png")]
    result = run_cli([*base, "--identity", str(photo), "--driver", str(photo), "--identity-face", "3"], tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, "--identity-face 3", "2 faces", "choose 1 to 2")
    single = str(shared_dir / "media" / "expression_exp1_rgba.png")
    result = run_cli([*base, "--identity", str(photo), "--driver", single, "--identity-face", "1", "--driver-face", "2"], tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, "--driver-face 2", "1 face", "choose 1")
    result = run_cli([*base, "--identity", str(photo), "--driver", single, "--driver-face", "0"], tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, "--driver-face 0", "numbered from 1")
    assert not (tmp_path / "o.png").exists()
    video, _ = swap_video(shared_dir, tmp_path / "swap.mp4", frames=3)
    result = run_cli([*base[:-2], "--out", str(tmp_path / "o.mp4"), "--identity", str(photo), "--driver", str(video),
                      "--driver-face", "3"], tmp_path)
    assert result.returncode == 2
    assert_one_line_error(result, "--driver-face 3", "frame 0 of", "2 faces", "choose 1 to 2")
    assert not (tmp_path / "o.mp4").exists() and not list(tmp_path.glob(".o.mp4*"))


@needs_shared
def test_cli_names_the_faces_of_a_group_photo_and_renders_the_chosen_one(two_faces, tmp_path, landmarker_path):
    from PIL import Image

    photo = tmp_path / "two.png"
    Image.fromarray(two_faces[0]).save(photo)
    base = ["--headless", "--models", "random:tiny", "--landmarker", str(landmarker_path), "--steps", "2",
            "--identity", str(photo), "--driver", str(photo)]
    result = run_cli([*base, "--out", str(tmp_path / "a.png")], tmp_path)
    assert result.returncode == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "faces, numbered left to right" in line]
    assert len(notes) == 1 and "using 1 (the largest)" in notes[0] and "--identity-face N" in notes[0], result.stderr
    result = run_cli([*base, "--identity-face", "2", "--driver-face", "2", "--out", str(tmp_path / "b.png")], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "numbered left to right" not in result.stderr  # chosen: nothing to explain
    assert (tmp_path / "b.png").is_file()


def test_with_scrfd_a_chosen_face_takes_the_detection_nearest_its_box_not_the_largest(tmp_path, monkeypatch):
    from retarget.face.detector import ANTELOPEV2_DETECTOR, largest as largest_detection
    from retarget.weights.test_face_models import write_random_scrfd_onnx
    from retarget.face.identity import ArcFaceEncoder, IdentityEmbedder
    from retarget.weights.test_face_models import write_random_arcface_onnx

    monkeypatch.setenv("INSIGHTFACE_HOME", str(tmp_path / "no-insightface-home"))
    write_random_arcface_onnx(tmp_path / "arcface.onnx", seed=3)
    write_random_scrfd_onnx(tmp_path / "antelopev2" / ANTELOPEV2_DETECTOR, seed=0)
    embedder = IdentityEmbedder(ArcFaceEncoder(tmp_path / "arcface.onnx"), landmarker=None)
    photo = (np.random.default_rng(0).random((480, 600, 3)) * 255).astype(np.uint8)  # the random SCRFD finds several "faces"
    bboxes, kpss = embedder.detector.detect(photo)
    biggest = largest_detection(bboxes)
    other = next(i for i in range(len(bboxes)) if not np.allclose(bboxes[i], bboxes[biggest]))
    landmarks = np.zeros((478, 3), np.float32)  # unused while SCRFD is there
    chosen = embedder.embed_with_landmarks(photo, landmarks, near=tuple(bboxes[other][:4]))
    np.testing.assert_allclose(embedder.last_keypoints, kpss[other], atol=1e-4)
    default = embedder.embed_with_landmarks(photo, landmarks)
    np.testing.assert_allclose(embedder.last_keypoints, kpss[biggest], atol=1e-4)
    assert not np.allclose(chosen, default, atol=1e-3)
