"""Loading photos: modes, EXIF orientation, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from retarget.errors import BadInputError
from retarget.face.image_io import load_image
from tests.conftest import needs_shared


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
