"""`retarget extract`: the blendshape CSV of a video drives like the video itself."""

from __future__ import annotations

import numpy as np

from retarget.cli import main
from retarget.engine import perception_stream
from retarget.media.sources import open_source
from tests.conftest import needs_shared


pytestmark = needs_shared


def test_extract_then_csv_drives_like_the_video(tmp_path, shared_dir, landmarker_path, capsys):
    from retarget.engine.driving import DriverAnalyzer
    from retarget.names.blendshapes import BLENDSHAPE_NAMES
    from retarget.config.mapping import MappingSettings

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


def test_extract_live_link_face_reads_back_like_ours(tmp_path, shared_dir, landmarker_path):
    """`--format livelinkface` writes LLF's header layout; our reader reads it back as the same take."""
    import csv

    from retarget.media.blendshape_csv import read_take
    from retarget.media.live_link_face import HEADER

    video = shared_dir / "media" / "driver_d0.mp4"
    ours, llf = tmp_path / "ours.csv", tmp_path / "llf.csv"
    assert main(["extract", str(video), "--out", str(ours), "--landmarker", str(landmarker_path)]) == 0
    assert main(["extract", str(video), "--out", str(llf), "--format", "livelinkface",
                 "--landmarker", str(landmarker_path)]) == 0
    with open(llf, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == HEADER and rows[0][:3] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft"]
    assert all(r[1] == "61" for r in rows[1:]) and len(rows) == 1 + 78
    a, b = read_take(ours), read_take(llf)
    assert b.format == "live_link_face" and a.rate == b.rate
    np.testing.assert_allclose(b.times, a.times - a.times[0], atol=1e-6)
    # Every ARKit curve MediaPipe has is the same number; `_neutral` has no LLF column (read as 0).
    np.testing.assert_array_equal(np.isnan(a.values), np.isnan(b.values))
    found = ~np.isnan(a.values).any(axis=1)
    np.testing.assert_array_equal(a.values[found][:, 1:], b.values[found][:, 1:])
    assert (b.values[found][:, 0] == 0).all()
    assert set(b.extra) == {"TongueOut", "HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
                            "RightEyeYaw", "RightEyePitch", "RightEyeRoll"}
