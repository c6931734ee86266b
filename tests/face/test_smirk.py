"""The SMIRK expression encoder: strict checkpoint loading, output ranges, the crop, a real face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retarget.errors import BadInputError, MissingWeightsError
from retarget.face.smirk import SMIRK_PREFIX, SmirkExtractor, load_smirk_encoder, smirk_crop
from tests.conftest import needs_shared
from tests.face.conftest import observe


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
