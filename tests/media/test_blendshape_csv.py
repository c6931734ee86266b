"""Blendshape CSVs: our own format (exact round trip) and Live Link Face's, and the bad ones."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from retarget.errors import BadInputError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.media.blendshape_csv import BlendshapeCsvWriter
from retarget.media.sources import BlendshapeCsvSource, open_source


# Live Link Face's CSV columns, in the app's order: timecode, count, 52 ARKit curves, 9 rotations.
LLF_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,EyeLookUpLeft,"
    "EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,EyeLookOutRight,EyeLookUpRight,"
    "EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,JawOpen,MouthClose,MouthFunnel,MouthPucker,"
    "MouthRight,MouthLeft,MouthSmileLeft,MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,"
    "MouthDimpleRight,MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,MouthUpperUpLeft,"
    "MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,BrowOuterUpRight,CheekPuff,"
    "CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,TongueOut,HeadYaw,HeadPitch,HeadRoll,"
    "LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,RightEyePitch,RightEyeRoll"
).split(",")


def test_csv_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.random((40, len(BLENDSHAPE_NAMES)), dtype=np.float32)
    times = np.arange(40) / 29.97
    target = tmp_path / "curves.csv"
    with BlendshapeCsvWriter(target) as writer:
        for t, v in zip(times, values):
            writer.write(t, v)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.csv"]
    with open(target, newline="") as fh:
        assert next(csv.reader(fh)) == ["timestamp", *BLENDSHAPE_NAMES]
    with open_source(str(target)) as src:
        assert isinstance(src, BlendshapeCsvSource)
        # 29.97 rows/s is read as NTSC's 30000/1001; each frame is placed at its time on that grid.
        assert src.frame_count == 40 and src.fps == pytest.approx(29.97, rel=1e-5)
        frames = list(src)
    assert [f.time for f in frames] == times.tolist()  # each row at its own time
    got = np.stack([f.blendshapes for f in frames])
    assert got.dtype == np.float32 and np.max(np.abs(got - values)) <= 1e-6
    assert all(f.image is None for f in frames)


def test_csv_writer_abort_removes_the_temp_file(tmp_path):
    writer = BlendshapeCsvWriter(tmp_path / "x.csv")
    writer.write(0.0, np.zeros(len(BLENDSHAPE_NAMES)))
    writer.abort()
    assert list(tmp_path.iterdir()) == []


def _write_llf(path: Path, rows: int, fps: int = 60) -> np.ndarray:
    rng = np.random.default_rng(2)
    values = rng.random((rows, len(LLF_HEADER) - 2)).round(6)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(LLF_HEADER)
        for r in range(rows):
            frame = 3000 + r  # a take starting mid-second, at 14:03:50 + 3000 frames
            s, ff = divmod(frame, fps)
            # The sub-frame part jitters a little from row to row, as in real takes.
            timecode = f"14:{3 + s // 60:02d}:{s % 60:02d}:{ff:02d}.{(r * 37) % 100:03d}"
            w.writerow([timecode, 61, *values[r]])
    return values


def test_live_link_face_csv_maps_pascal_case_names(tmp_path):
    path = tmp_path / "MySlate_7_iPhone.csv"
    values = _write_llf(path, 150)
    with BlendshapeCsvSource(path) as src:
        assert src.format == "live_link_face" and src.fps == 60
        frames = list(src)
    assert len(frames) == 150
    col = {name: i for i, name in enumerate(LLF_HEADER[2:])}
    for ours, theirs in [("jawOpen", "JawOpen"), ("eyeBlinkLeft", "EyeBlinkLeft"), ("mouthSmileRight", "MouthSmileRight"),
                         ("browInnerUp", "BrowInnerUp"), ("noseSneerLeft", "NoseSneerLeft")]:
        got = [f.blendshapes[BLENDSHAPE_NAMES.index(ours)] for f in frames]
        assert np.allclose(got, values[:, col[theirs]], atol=1e-6)
    assert all(f.blendshapes[0] == 0.0 for f in frames)  # no _neutral column
    # Timecode HH:MM:SS:FF.sss at 60 fps, the fraction being part of a frame; times start at 0.
    expected = np.array([(r + ((r * 37) % 100) / 1000) / 60 for r in range(150)])
    assert np.allclose([f.time for f in frames], expected - expected[0], atol=1e-9)


def test_live_link_face_rate_is_read_from_the_timecode(tmp_path):
    path = tmp_path / "take30.csv"
    _write_llf(path, 200, fps=30)
    with BlendshapeCsvSource(path) as src:
        assert src.fps == 30 and src.take.timecode_rate == 30 and src.frame_count == 200
        assert src.take.times[30] - src.take.times[0] == pytest.approx(1.0 + (30 * 37 % 100) / 1000 / 30, abs=1e-9)
    with BlendshapeCsvSource(path, fps=60) as src:  # a chosen rate: frames placed by time, twice as many
        assert src.fps == 60 and src.frame_count == 400


def test_csv_with_missing_or_unknown_columns_is_a_bad_input(tmp_path):
    partial = tmp_path / "partial.csv"
    names = [n for n in BLENDSHAPE_NAMES if n not in ("jawOpen", "mouthPucker")]
    partial.write_text(",".join(["timestamp", *names]) + "\n" + ",".join(["0"] * (len(names) + 1)) + "\n")
    with pytest.raises(BadInputError) as info:
        open_source(str(partial))
    assert "jawOpen" in str(info.value) and "mouthPucker" in str(info.value) and "\n" not in str(info.value)
    unknown = tmp_path / "other.csv"
    unknown.write_text("time,x,y\n0,1,2\n")
    with pytest.raises(BadInputError, match="no blendshape columns"):
        open_source(str(unknown))
