"""Paste-back: the aligned face warped back into the identity photo at its own resolution, with a soft mask.

Stand-in generators: one returns the identity's own aligned crop (paste-back must give the photo back), one a
flat colour (the change must stay inside the mask's support and fade in smoothly).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from retarget.face.align import align_ffhq
from retarget.face.paste import FacePlacement, aligned_mask, frame_output
from tests.conftest import needs_shared
from tests.face.conftest import observe

# The soft edge: between neighbouring photo pixels the mask's weight changes by at most this much (a hard seam
# is 1.0), so a pasted flat colour adds at most STEP_BOUND * 255 + 1 levels to any step the photo already has.
STEP_BOUND = 0.2
CASES = ("identity_jackie_wide.png", "identity_hepburn_small.png", "tilted")


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def tilted(photo: np.ndarray, degrees: float = 25.0) -> np.ndarray:
    """The photo turned by `degrees` on a canvas large enough to hold all of it (a tilted face)."""
    h, w = photo.shape[:2]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    size = (int(h * sin + w * cos), int(h * cos + w * sin))
    matrix[:, 2] += np.array(size) / 2 - np.array([w / 2, h / 2])
    return cv2.warpAffine(photo, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def placed(media, face_landmarker):
    """name -> (photo, the identity's aligned crop, its FacePlacement), as identity_from_image makes them."""
    cache = {}

    def get(name: str):
        if name not in cache:
            photo = tilted(media("identity_painting_s9.jpg")) if name == "tilted" else media(name)
            aligned, matrix = align_ffhq(photo, observe(face_landmarker, photo).landmarks)
            cache[name] = photo, aligned, FacePlacement(photo, matrix, aligned=aligned)
        return cache[name]

    return get


@needs_shared
@pytest.mark.parametrize("name", CASES)
def test_the_identity_crop_pasted_back_gives_the_photo_back(placed, name):
    photo, aligned, placement = placed(name)
    out = placement.paste(aligned)  # the stand-in generator returns the identity's own aligned crop
    support = placement.support()
    assert out.shape == photo.shape and out.dtype == np.uint8  # the photo's resolution, never downscaled
    assert psnr(out, photo) >= 40.0
    assert np.array_equal(out[~support], photo[~support])  # outside the mask: the photo's own bytes
    assert 0.005 < support.mean() < 0.9  # the mask covers the face, not nothing and not everything


@needs_shared
def test_the_tilted_face_is_found_tilted(placed):
    """The rotated case really is one: the alignment turns by about the 25 degrees the photo was turned."""
    _, _, placement = placed("tilted")
    angle = np.degrees(np.arctan2(placement.matrix[1, 0], placement.matrix[0, 0]))
    assert 15 < abs(angle) < 35


@needs_shared
@pytest.mark.parametrize("name", CASES)
def test_a_flat_colour_changes_only_the_mask_and_fades_in(placed, name):
    photo, _, placement = placed(name)
    colour = np.array([250, 20, 200], np.uint8)
    face = np.broadcast_to(colour, (512, 512, 3)).copy()
    out = placement.paste(face)
    changed = np.any(out != photo, axis=2)
    support = placement.support()
    assert changed.any() and not (changed & ~support).any()  # confined to the mask's support
    # Smooth: along rows and columns, the step between neighbours grows by at most STEP_BOUND * 255 + 1 over the
    # photo's own step (out = photo + a * (colour - photo), so the added step is |da| * |colour - photo| + rounding).
    bound = STEP_BOUND * 255 + 1
    for axis in (0, 1):
        added = np.abs(np.diff(out.astype(int), axis=axis)) - np.abs(np.diff(photo.astype(int), axis=axis))
        assert added.max() <= bound, f"a step of {added.max()} levels at the seam (bound {bound:.0f})"
    alpha = placement.alpha_full()
    assert max(np.abs(np.diff(alpha, axis=a)).max() for a in (0, 1)) <= STEP_BOUND
    # The check can fail: a hard cut-out of the same support breaks the bound.
    hard = np.where(support[..., None], colour, photo)
    assert max((np.abs(np.diff(hard.astype(int), axis=a)) - np.abs(np.diff(photo.astype(int), axis=a))).max()
               for a in (0, 1)) > bound


@needs_shared
def test_a_smaller_or_larger_generated_face_lands_in_the_same_place(placed):
    """The generator's own size (64 px on the tiny test models) and a face upscaler's larger crop use the same geometry."""
    photo, aligned, placement = placed("identity_jackie_wide.png")
    exact = placement.paste(aligned)
    small = placement.paste(cv2.resize(aligned, (64, 64), interpolation=cv2.INTER_AREA))
    upscaled = placement.paste(aligned, upscaler=lambda f: cv2.resize(f, (1024, 1024), interpolation=cv2.INTER_CUBIC))
    support = placement.support()
    assert psnr(upscaled[support], exact[support]) > 40  # the upscaler's seam: a 2x crop lands exactly
    # 64 px is blurry, but in place: a shifted face would score far lower than an unshifted blurry one.
    assert psnr(small[support], photo[support]) > 24
    shifted = np.roll(small, 6, axis=1)
    assert psnr(small[support], photo[support]) > psnr(shifted[support], photo[support]) + 2


@needs_shared
def test_the_note_says_when_the_pasted_face_is_upsampled(placed):
    _, _, large = placed("identity_jackie_wide.png")  # its face is larger than 512 px in the photo
    _, _, small = placed("identity_hepburn_small.png")
    assert large.upsampling() > 1.05 and "upsampled" in large.note()
    assert small.upsampling() < 1 and small.note() is None
    assert small.upsampling(64) > 1 and "64 px" in small.note(64)  # the tiny test models' 64 px faces are enlarged


@needs_shared
def test_colour_match_evens_out_the_seam(media, face_landmarker):
    photo = media("identity_jackie_wide.png")
    aligned, matrix = align_ffhq(photo, observe(face_landmarker, photo).landmarks)
    warmer = np.clip(aligned.astype(int) + [30, 10, -20], 0, 255).astype(np.uint8)  # a generated face in other light
    plain = FacePlacement(photo, matrix, aligned=aligned)
    matched = FacePlacement(photo, matrix, aligned=aligned, colour_match=True)
    support = plain.support()
    error_plain = np.abs(plain.paste(warmer)[support].astype(int) - photo[support]).mean()
    error_matched = np.abs(matched.paste(warmer)[support].astype(int) - photo[support]).mean()
    assert error_matched < error_plain / 3
    assert np.array_equal(matched.paste(aligned), plain.paste(aligned))  # nothing to match: the face is left alone


def test_the_mask_is_soft_and_zero_at_the_crop_edges():
    mask = aligned_mask(512)
    assert mask.max() == 1.0 and mask[280, 256] == 1.0
    assert not mask[:4].any() and not mask[-4:].any() and not mask[:, :4].any() and not mask[:, -4:].any()
    assert max(np.abs(np.diff(mask, axis=a)).max() for a in (0, 1)) < 0.05  # 40 px of soft edge


def test_the_knob_offers_the_frames_there_are():
    from retarget.config.frame import FRAMES as KNOB_FRAMES
    from retarget.face.paste import FRAMES

    assert KNOB_FRAMES == FRAMES


def test_frame_output_keeps_the_crop_or_pastes():
    photo = np.full((300, 400, 3), 90, np.uint8)
    placement = FacePlacement(photo, np.array([[2.56, 0.0, -100.0], [0.0, 2.56, -50.0]]))  # a 200 px face at (39, 20)
    crops = np.zeros((2, 512, 512, 3), np.uint8)
    assert frame_output(crops, placement, "crop") is crops
    assert frame_output(crops, None, "full") is crops  # a context without a photo keeps its crop
    full = frame_output(crops, placement, "full")
    assert full.shape == (2, 300, 400, 3)
    with pytest.raises(ValueError, match="full, crop"):
        frame_output(crops, placement, "wide")
