"""MediaPipe's 52 ARKit-style blendshapes: names in the model's output order, and mirroring."""

from __future__ import annotations

import numpy as np

# The order in which MediaPipe's FaceLandmarker (face_landmarker.task, v1) reports its
# categories; adapters trained on blendshapes index their inputs by this order.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
    "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight",
    "jawForward", "jawLeft", "jawOpen", "jawRight",
    "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
NUM_BLENDSHAPES = 52
assert len(BLENDSHAPE_NAMES) == NUM_BLENDSHAPES


def _mirror_permutation() -> np.ndarray:
    index = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
    permutation = []
    for name in BLENDSHAPE_NAMES:
        # A horizontally mirrored face moves each left-side action to the right side
        # (this includes jawLeft/jawRight and mouthLeft/mouthRight); the rest are symmetric.
        if name.endswith("Left"):
            name = name[: -len("Left")] + "Right"
        elif name.endswith("Right"):
            name = name[: -len("Right")] + "Left"
        permutation.append(index[name])
    return np.asarray(permutation, dtype=np.int64)


MIRROR_PERMUTATION: np.ndarray = _mirror_permutation()


def mirror_blendshapes(values: np.ndarray) -> np.ndarray:
    """Blendshapes of the horizontally mirrored face: swap every ...Left/...Right pair on the last axis."""
    values = np.asarray(values)
    if values.shape[-1] != NUM_BLENDSHAPES:
        raise ValueError(f"expected {NUM_BLENDSHAPES} blendshapes on the last axis, got shape {values.shape}")
    return values[..., MIRROR_PERMUTATION]
