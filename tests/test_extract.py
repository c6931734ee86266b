"""`retarget extract`: the blendshape CSV of a video drives like the video itself."""

from __future__ import annotations

import numpy as np

from retarget.cli import main
from retarget.engine import perception_stream
from retarget.media.sources import open_source
from tests.conftest import needs_shared


pytestmark = needs_shared


def test_extract_then_csv_drives_like_the_video(tmp_path, shared_dir, landmarker_path, capsys):
    from retarget.driving import DriverAnalyzer
    from retarget.expression.blendshapes import BLENDSHAPE_NAMES
    from retarget.expression.mapping import MappingSettings

    video = shared_dir / "media" / "driver_d0.mp4"
    csv_path = tmp_path / "x.csv"
    assert main(["extract", str(video), "--out", str(csv_path), "--landmarker", str(landmarker_path)]) == 0
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",") == ["timestamp", *BLENDSHAPE_NAMES]
    assert len(lines) == 1 + 78

    mapping = MappingSettings(relative=True, calibration_window=10, gains={"mouth": 1.4}, mirror=True)

    def vectors(spec: str) -> np.ndarray:
        with open_source(spec) as source, DriverAnalyzer("blendshapes52", landmarker_path, mapping) as analyzer:
            return np.stack([f.expression for f in perception_stream(source, analyzer)])

    from_video, from_csv = vectors(str(video)), vectors(str(csv_path))
    assert from_video.shape == from_csv.shape == (78, 52)
    np.testing.assert_array_equal(from_video, from_csv)
