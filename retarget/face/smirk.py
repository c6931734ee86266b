"""SMIRK's expression encoder: a face crop -> 55 FLAME values (50 expression, 2 eyelid, 3 jaw).

Only needed for the published Expression Adapter, which speaks FLAME-55. Module and key names
follow the SMIRK release (`SMIRK_em1.pt`), so its checkpoint loads unchanged.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retarget.errors import BadInputError, MissingWeightsError, load_tensor_file

SMIRK_PREFIX = "smirk_encoder.expression_encoder."
SMIRK_BACKBONE = "tf_mobilenetv3_large_minimal_100"
SMIRK_INPUT_SIZE = 224
SMIRK_CROP_SCALE = 1.4
NUM_EXPRESSION = 50
NUM_FLAME = NUM_EXPRESSION + 2 + 3
_HOW_TO_GET = "SMIRK_em1.pt from the SMIRK authors' release (georgeretsi/smirk)"


class SmirkExpressionEncoder(nn.Module):
    """MobileNetV3 features -> global average pool -> Linear(55), with SMIRK's output clamps."""

    def __init__(self, n_exp: int = NUM_EXPRESSION):
        super().__init__()
        import timm

        self.encoder = timm.create_model(SMIRK_BACKBONE, pretrained=False, features_only=True)
        feature_dim = self.encoder.feature_info[-1]["num_chs"]
        self.expression_layers = nn.Sequential(nn.Linear(feature_dim, n_exp + 2 + 3))
        self.n_exp = n_exp

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) RGB in [0, 1] -> (N, 55): expression, eyelids in [0, 1], jaw (open >= 0, sideways +-0.2)."""
        features = self.encoder(images)[-1]
        features = F.adaptive_avg_pool2d(features, 1).flatten(1)
        raw = self.expression_layers(features)
        n = self.n_exp
        expression = raw[:, :n]
        eyelids = raw[:, n:n + 2].clamp(0.0, 1.0)
        jaw = torch.cat([F.relu(raw[:, n + 2:n + 3]), raw[:, n + 3:n + 5].clamp(-0.2, 0.2)], dim=1)
        return torch.cat([expression, eyelids, jaw], dim=1)


def _read_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise MissingWeightsError(f"SMIRK checkpoint not found at {path} ({_HOW_TO_GET})")
    state = load_tensor_file(path, "SMIRK checkpoint (SMIRK_em1.pt)")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BadInputError(f"{path}: not a SMIRK checkpoint (expected a dict of tensors)")
    return state


def load_smirk_encoder(checkpoint_path, device="cpu") -> SmirkExpressionEncoder:
    """The expression encoder from a full SMIRK checkpoint (keys under SMIRK_PREFIX), strictly loaded, eval mode."""
    path = Path(checkpoint_path)
    state = _read_checkpoint(path)
    encoder_state = {key[len(SMIRK_PREFIX):]: value for key, value in state.items()
                     if isinstance(key, str) and key.startswith(SMIRK_PREFIX)}
    if not encoder_state:
        raise BadInputError(f"{path}: no '{SMIRK_PREFIX}*' weights; expected {_HOW_TO_GET}")
    model = SmirkExpressionEncoder()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(encoder_state))
    unexpected = sorted(set(encoder_state) - set(expected))
    wrong_shape = sorted(k for k in set(expected) & set(encoder_state) if expected[k].shape != encoder_state[k].shape)
    if missing or unexpected or wrong_shape:
        example = (missing + unexpected + wrong_shape)[0]
        raise BadInputError(
            f"{path}: SMIRK expression encoder does not match ({len(missing)} missing, {len(unexpected)} unexpected, "
            f"{len(wrong_shape)} mis-shaped keys, e.g. {example})"
        )
    model.load_state_dict(encoder_state, strict=True)
    return model.to(device).eval()


def smirk_crop_matrix(landmarks: np.ndarray, size: int = SMIRK_INPUT_SIZE, scale: float = SMIRK_CROP_SCALE) -> np.ndarray:
    """2x3 similarity from image pixels to the crop: a square of scale x the landmarks' mean box side."""
    xy = np.asarray(landmarks, dtype=np.float64)[:, :2]
    left, top = xy.min(axis=0)
    right, bottom = xy.max(axis=0)
    centre_x, centre_y = (left + right) / 2.0, (top + bottom) / 2.0
    side = int(((right - left) + (bottom - top)) / 2.0 * scale)  # SMIRK truncates to whole pixels
    side = max(side, 1)
    # The square's corners go to pixel centres 0 and size - 1, as in SMIRK's training crops.
    s = (size - 1) / side
    return np.array([[s, 0.0, s * (side / 2.0 - centre_x)], [0.0, s, s * (side / 2.0 - centre_y)]])


def smirk_crop(image_rgb: np.ndarray, landmarks: np.ndarray, size: int = SMIRK_INPUT_SIZE) -> np.ndarray:
    """size x size float32 RGB crop in [0, 1] around the face, black outside the image."""
    import cv2

    matrix = smirk_crop_matrix(landmarks, size)
    crop = cv2.warpAffine(np.ascontiguousarray(image_rgb), matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    crop = crop.astype(np.float32)
    return crop / 255.0 if np.asarray(image_rgb).dtype == np.uint8 else crop


class SmirkExtractor:
    """Landmarked frames -> FLAME-55 vectors for the published Expression Adapter."""

    def __init__(self, checkpoint_path, device="cpu"):
        self.device = torch.device(device)
        self.model = load_smirk_encoder(checkpoint_path, self.device)

    @torch.inference_mode()
    def encode_batch(self, crops) -> np.ndarray:
        """(N, 55) for 224x224 RGB crops in [0, 1] (a list or an (N, H, W, 3) array)."""
        crops = np.asarray(crops, dtype=np.float32)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.ndim != 4 or crops.shape[-1] != 3:
            raise ValueError(f"expected (N, H, W, 3) RGB crops, got shape {crops.shape}")
        images = torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2))).to(self.device)
        return self.model(images).float().cpu().numpy()

    def encode(self, image_rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """(55,) FLAME values of the face that the landmarks (pixels) describe."""
        return self.encode_batch(smirk_crop(image_rgb, landmarks)[None])[0]
