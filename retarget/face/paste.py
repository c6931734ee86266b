"""Paste-back: the generated FFHQ-aligned face warped back into the identity photo at the photo's own resolution.

The identity's alignment (photo pixels -> aligned pixels, retarget.face.align.ffhq_matrix) is kept from
prepare time, so the inverse is exact. A fixed soft mask in the aligned frame (an ellipse around the face
oval, room for an open jaw, fading to zero before the crop's edges) is warped into the photo once per
identity; each frame then costs one warp of the face into the mask's bounding box and one blend there.
Pixels outside the mask's support are the photo's own bytes.

Resolution: when the face in the photo is larger than the generated crop, the pasted face is upsampled
(`upsampling`, `note`); `paste(face, upscaler=...)` takes any square face (e.g. 2x or 4x the crop from a
face upscaler) and warps it with the same geometry, so an upscaler can slot in later. The photo is never
downscaled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

ALIGNED_SIZE = 512  # the alignment's frame (retarget.session.retargeter.REFERENCE_SIZE)
# The blended region in the 512 px aligned frame. FFHQ crops put the face oval at about x 80..430 and
# y 140..490 (measured on the shared photos; a turned head reaches x 78); the ellipse covers it with room for
# the hair line and is cut 4 px inside the crop so the feather reaches zero before the crop's edges. The crop
# ends just below the chin, so the chin lies in the bottom feather (about half blended): a jaw opened far
# beyond the photo's chin leaves the crop, which no mask can paste back.
MASK_CENTRE = (256.0, 280.0)
MASK_AXES = (232.0, 240.0)
MASK_INSET = 4
FEATHER = 40.0  # aligned px of the soft edge...
MIN_FEATHER_PHOTO_PX = 8.0  # ...but never fewer photo pixels than this (small faces): no hard seam
UPSAMPLING_NOTE_ABOVE = 1.05  # photo px per generated px beyond which the note speaks

FRAMES = ("full", "crop")


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def aligned_mask(size: int = ALIGNED_SIZE, feather: float = FEATHER) -> np.ndarray:
    """(size, size) float32 alpha in the aligned frame: 1 inside, a smoothstep over `feather` px (at 512) to 0
    at the ellipse and at MASK_INSET px from the crop's edges, exactly 0 beyond."""
    import cv2

    k = size / ALIGNED_SIZE
    hard = np.zeros((size, size), np.uint8)
    centre = tuple(int(round(c * k)) for c in MASK_CENTRE)
    axes = tuple(int(round(a * k)) for a in MASK_AXES)
    cv2.ellipse(hard, centre, axes, 0, 0, 360, 255, thickness=-1)
    inset = max(1, int(round(MASK_INSET * k)))
    hard[:inset], hard[-inset:], hard[:, :inset], hard[:, -inset:] = 0, 0, 0, 0
    distance = cv2.distanceTransform(hard, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)  # px to the nearest 0
    return smoothstep(distance / max(feather * k, 1e-6)).astype(np.float32)


def _scaled_matrix(matrix: np.ndarray, k: float) -> np.ndarray:
    """The photo -> aligned matrix for a crop k times the size (pixel centres at whole numbers in both)."""
    scaled = np.asarray(matrix, np.float64) * k
    scaled[:, 2] += 0.5 * k - 0.5
    return scaled


@dataclass
class FacePlacement:
    """Where the identity's aligned face sits in its photo, and the blend mask there (built once per identity).

    photo: HxWx3 uint8; matrix: 2x3 from photo pixels to aligned pixels of a `size` crop; aligned: the
    identity's own aligned crop (for the optional colour match at the seam).
    """

    photo: np.ndarray
    matrix: np.ndarray
    size: int = ALIGNED_SIZE
    aligned: np.ndarray | None = None
    colour_match: bool = False
    roi: tuple[int, int, int, int] = field(init=False)  # x0, y0, x1, y1: the mask's support's box in the photo
    alpha: np.ndarray = field(init=False, repr=False)  # (y1-y0, x1-x0, 1) float32
    feather: float = field(init=False)  # the soft edge, in aligned px

    def __post_init__(self) -> None:
        import cv2

        self.photo = np.ascontiguousarray(self.photo, dtype=np.uint8)
        if self.photo.ndim != 3 or self.photo.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 uint8 photo, got {self.photo.shape}")
        self.matrix = np.asarray(self.matrix, np.float64).reshape(2, 3)
        height, width = self.photo.shape[:2]
        self.feather = max(FEATHER * self.size / ALIGNED_SIZE, MIN_FEATHER_PHOTO_PX / self.photo_px_per_aligned_px)
        mask = aligned_mask(self.size, self.feather * ALIGNED_SIZE / self.size)
        inverse = cv2.invertAffineTransform(self.matrix)
        ys, xs = np.nonzero(mask)
        corners = np.array([[xs.min() - 1, ys.min() - 1], [xs.max() + 1, ys.min() - 1],
                            [xs.min() - 1, ys.max() + 1], [xs.max() + 1, ys.max() + 1]], np.float64)
        mapped = corners @ inverse[:, :2].T + inverse[:, 2]
        x0, y0 = np.floor(mapped.min(0)).astype(int) - 1
        x1, y1 = np.ceil(mapped.max(0)).astype(int) + 2
        self.roi = (int(max(x0, 0)), int(max(y0, 0)), int(min(x1, width)), int(min(y1, height)))
        x0, y0, x1, y1 = self.roi
        if x1 <= x0 or y1 <= y0:
            raise ValueError("the aligned face lies outside the photo")
        # The mask warped into the photo's box: bilinear, zero outside the crop, so its support is exact.
        alpha = cv2.warpAffine(mask, self._roi_matrix(self.matrix), (x1 - x0, y1 - y0),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        alpha[alpha < 1.0 / 1024] = 0.0  # below any visible change: the support ends where the mask does
        self.alpha = alpha[..., None]
        self._alpha, self._beta = alpha, 1.0 - alpha
        self._photo_roi = np.ascontiguousarray(self.photo[y0:y1, x0:x1])
        self._ring: dict[int, np.ndarray] = {}
        self._ring_colour: np.ndarray | None = None  # the photo's mean colour along the seam (first colour match)

    @classmethod
    def from_alignment(cls, photo: np.ndarray, anchors, size: int = ALIGNED_SIZE, **kwargs) -> "FacePlacement":
        """From the FFHQ anchors the identity was aligned with (retarget.face.align.ffhq_anchors)."""
        from retarget.face.align import ffhq_matrix

        return cls(photo, ffhq_matrix(anchors, size), size, **kwargs)

    # ------------------------------------------------------------------ geometry
    @property
    def photo_px_per_aligned_px(self) -> float:
        return float(1.0 / np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def upsampling(self, generated_size: int | None = None) -> float:
        """Photo pixels per generated pixel across the face: above 1 the pasted face is enlarged (softer than the photo)."""
        return self.photo_px_per_aligned_px * self.size / (generated_size or self.size)

    def note(self, generated_size: int | None = None, source: str = "the identity photo") -> str | None:
        """One line when the pasted face is upsampled, else None."""
        factor = self.upsampling(generated_size)
        if factor <= UPSAMPLING_NOTE_ABOVE:
            return None
        side = generated_size or self.size
        return (f"note: the face in {source} is {factor:.1f}x the generated {side} px face, so the pasted face is "
                f"upsampled and softer than the rest of the photo (--frame crop gives the generated pixels as they are)")

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.photo.shape

    def support(self) -> np.ndarray:
        """(H, W) bool: the photo pixels paste() may change; every other pixel keeps the photo's bytes."""
        inside = np.zeros(self.photo.shape[:2], bool)
        x0, y0, x1, y1 = self.roi
        inside[y0:y1, x0:x1] = self.alpha[..., 0] > 0
        return inside

    def alpha_full(self) -> np.ndarray:
        """(H, W) float32: the blend weight of the pasted face at each photo pixel."""
        full = np.zeros(self.photo.shape[:2], np.float32)
        x0, y0, x1, y1 = self.roi
        full[y0:y1, x0:x1] = self.alpha[..., 0]
        return full

    def _roi_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """`matrix` (photo -> aligned) with the photo's origin moved to the roi's corner."""
        moved = np.array(matrix, np.float64)
        moved[:, 2] += moved[:, :2] @ np.array(self.roi[:2], np.float64)
        return moved

    # ------------------------------------------------------------------ the per-frame step
    def paste(self, face: np.ndarray, upscaler: Callable[[np.ndarray], np.ndarray] | None = None,
              colour_match: bool | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """The photo with `face` (a square aligned crop of any side, e.g. the generator's) blended in; a new array.

        upscaler: a face upscaler's seam (aligned crop -> a larger aligned crop, e.g. 2x); None: the face as given.
        colour_match: shift the face's colours to the photo's along the seam (default: the placement's setting;
        needs the identity's aligned crop). out: an HxWx3 uint8 array to write into (a batch's slot) instead of a new one.
        """
        import cv2

        face = np.asarray(face)
        if upscaler is not None:
            face = np.asarray(upscaler(face))
        if face.ndim != 3 or face.shape[2] != 3 or face.shape[0] != face.shape[1]:
            raise ValueError(f"expected a square HxWx3 aligned face, got {face.shape}")
        if (self.colour_match if colour_match is None else colour_match) and self.aligned is not None:
            face = self._colour_matched(face)
        side = face.shape[0]
        matrix = _scaled_matrix(self.matrix, side / self.size)
        ratio = self.upsampling(side)
        if ratio > 1.25:
            # Enlarged: cubic resize to about the photo's scale first, leaving the warp a near-unity rotation where
            # bilinear is enough (3-5x cheaper than a cubic warp of a large region).
            scaled, interpolation = int(round(side * ratio)), cv2.INTER_LINEAR
            face = cv2.resize(face, (scaled, scaled), interpolation=cv2.INTER_CUBIC)
            matrix = _scaled_matrix(matrix, scaled / side)
        elif ratio < 0.5:
            # Much smaller: area-average down to twice the photo's scale first (a warp alone would alias); the
            # region is small, so the warp can be cubic.
            scaled, interpolation = max(8, int(round(side * ratio * 2))), cv2.INTER_CUBIC
            face = cv2.resize(face, (scaled, scaled), interpolation=cv2.INTER_AREA)
            matrix = _scaled_matrix(matrix, scaled / side)
        else:
            interpolation = cv2.INTER_CUBIC
        x0, y0, x1, y1 = self.roi
        warped = cv2.warpAffine(np.ascontiguousarray(face), self._roi_matrix(matrix), (x1 - x0, y1 - y0),
                                flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        # OpenCV's weighted blend (w1 * face + w2 * photo) / (w1 + w2): where alpha is 0 it gives the photo's bytes.
        blended = cv2.blendLinear(warped, self._photo_roi, self._alpha, self._beta)
        if out is None:
            out = self.photo.copy()
        else:
            out[...] = self.photo
        out[y0:y1, x0:x1] = blended
        return out

    def paste_batch(self, faces, upscaler=None, colour_match: bool | None = None) -> np.ndarray:
        """(N, H, W, 3): each face of a generator batch pasted (one call per batch)."""
        out = np.empty((len(faces), *self.photo.shape), np.uint8)  # one copy of the photo per frame, no stacking
        for face, slot in zip(faces, out):
            self.paste(face, upscaler, colour_match, out=slot)
        return out

    # ------------------------------------------------------------------ colour match at the seam
    def _ring_weights(self, side: int) -> np.ndarray:
        """The feather band of the mask at this side: where the seam is, weighted towards its middle."""
        if side not in self._ring:
            mask = aligned_mask(side, self.feather * ALIGNED_SIZE / self.size)
            self._ring[side] = (mask * (1.0 - mask))[..., None]
        return self._ring[side]

    def _ring_mean(self, face: np.ndarray) -> np.ndarray:
        weights = self._ring_weights(face.shape[0])
        return (face.astype(np.float32) * weights).sum((0, 1)) / max(float(weights.sum()), 1e-6)

    def _colour_matched(self, face: np.ndarray) -> np.ndarray:
        """The face shifted per channel so that its mean colour along the seam is the photo's there."""
        if self._ring_colour is None:
            self._ring_colour = self._ring_mean(np.asarray(self.aligned))
        shift = self._ring_colour - self._ring_mean(face)
        if not np.any(np.abs(shift) >= 0.5):
            return face
        return np.clip(np.rint(face.astype(np.float32) + shift), 0, 255).astype(np.uint8)


def frame_output(images: np.ndarray, placement: FacePlacement | None, frame: str, colour_match: bool = False) -> np.ndarray:
    """The generator's aligned crops as the chosen frame: "full" pastes them into the photo, "crop" keeps them.

    A context made without a photo (placement None) has nothing to paste into: its output is the crop.
    """
    if frame not in FRAMES:
        raise ValueError(f"frame must be one of {', '.join(FRAMES)} (got {frame!r})")
    if frame == "crop" or placement is None:
        return images
    return placement.paste_batch(images, colour_match=colour_match)
