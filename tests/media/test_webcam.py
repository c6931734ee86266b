"""Webcam sources: a missing camera is a one-line bad input."""

from __future__ import annotations

import pytest

from retarget.errors import BadInputError
from retarget.media.sources import WebcamSource, list_cameras, open_source


def test_no_camera_is_a_bad_input():
    if list_cameras(2):
        pytest.skip("this machine has a camera")
    for spec in ("webcam:0", "/dev/video7"):
        with pytest.raises(BadInputError) as info:
            open_source(spec)
        assert "camera" in str(info.value) and spec in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(BadInputError):
        WebcamSource(3)
