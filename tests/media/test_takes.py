"""Blendshape CSV takes keep real time: each row at its own time, frames placed by time, duration in == duration out."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.expression.track import ExpressionTrack
from retarget.media.blendshape_csv import BlendshapeCsvSource, read_take
from retarget.media.live_link_face import ARKIT_COLUMNS, HEADER
from retarget.media.timecode import format_timecode, parse_timecode, timecode_seconds
from tests.media.llf_takes import write_llf_take

# Real takes: 30 Hz rows on a 60 fps timecode with skipped rows and tracking lost; 60 Hz; 24/25/30 fps
# timecodes; drop-frame 29.97 across a dropped minute; drop-frame 59.94 with 30 Hz rows.
SHAPES = {
    "30Hz-on-60fps": dict(nominal=60, step=2, rows=200, gaps=((50, 56), (120, 121)), lost=(10, 11, 12, 100)),
    "60Hz": dict(nominal=60, step=1, rows=240, gaps=((30, 33),), lost=(5,)),
    "24fps": dict(nominal=24, rows=100, lost=(40,)),
    "25fps": dict(nominal=25, rows=100, gaps=((60, 62),)),
    "30fps": dict(nominal=30, rows=100),
    "29.97-drop-frame": dict(nominal=30, drop=True, rows=120, start=10 * 3600 + 3 * 60 + 58.5, lost=(70,)),
    "59.94-drop-frame-30Hz": dict(nominal=60, drop=True, step=2, rows=120, start=7 * 3600 + 59.2, gaps=((20, 25),)),
}
# MediaPipe's index of each ARKit column (TongueOut has none).
OURS = [BLENDSHAPE_NAMES.index(n[0].lower() + n[1:]) if n != "TongueOut" else None for n in ARKIT_COLUMNS]


def as_ours(arkit_row: np.ndarray) -> np.ndarray:
    row = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
    for column, index in enumerate(OURS):
        if index is not None:
            row[index] = arkit_row[column]
    return row


@pytest.mark.parametrize("shape", SHAPES)
def test_each_row_is_read_at_its_own_time(tmp_path, shape):
    take = write_llf_take(tmp_path / "take.csv", **SHAPES[shape])
    read = read_take(take.path)
    assert read.format == "live_link_face" and read.timecodes == take.timecodes
    assert float(read.rate) == pytest.approx(take.row_rate, rel=1e-9)
    np.testing.assert_allclose(read.times, take.times, atol=1e-4)  # the timecode's sub-frame has 3 decimals
    lost = np.isnan(take.values).all(axis=1)
    np.testing.assert_array_equal(~read.face_found, lost)
    assert read.duration == pytest.approx(take.span, abs=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
def test_the_output_lasts_as_long_as_the_take_with_frames_placed_by_time(tmp_path, shape):
    take = write_llf_take(tmp_path / "take.csv", **SHAPES[shape])
    with BlendshapeCsvSource(take.path) as source:
        frames = list(source)
        fps = source.fps
    assert fps == pytest.approx(take.row_rate, rel=1e-9)  # the rows' real rate, not the timecode's
    assert len(frames) == source.frame_count
    assert abs(len(frames) / fps - take.span) <= 1 / fps  # duration in == duration out, within one frame
    previous = -1
    for frame in frames:  # frame k shows the last row at (or within half a frame after) k / fps
        row = np.searchsorted(take.times, frame.index / fps + 0.5 / fps, side="right") - 1
        # at the row's own time where it first shows, else (held over a gap) at the frame's time
        assert frame.time == pytest.approx(take.times[row] if row != previous else frame.index / fps, abs=1e-4)
        previous = row
        if np.isnan(take.values[row]).all():
            assert frame.blendshapes is None
        else:
            np.testing.assert_allclose(frame.blendshapes, as_ours(take.values[row]), atol=1e-6)


@pytest.mark.parametrize("fps", [24, 25, 50])
def test_a_chosen_rate_places_frames_by_time(tmp_path, fps):
    take = write_llf_take(tmp_path / "take.csv", **SHAPES["30Hz-on-60fps"])
    with BlendshapeCsvSource(take.path, fps=fps) as source:
        assert source.fps == fps and source.frame_count == round(take.span * fps)
        frames = list(source)
    assert abs(len(frames) / fps - take.span) <= 1 / fps
    shown = [f for f in frames if f.blendshapes is not None]
    for frame in shown[::7]:
        row = np.searchsorted(take.times, frame.index / fps + 0.5 / fps, side="right") - 1
        np.testing.assert_allclose(frame.blendshapes, as_ours(take.values[row]), atol=1e-6)


@pytest.mark.parametrize("shape", ["30Hz-on-60fps", "29.97-drop-frame", "24fps"])
def test_the_track_editor_keeps_timing_and_columns(tmp_path, shape):
    take = write_llf_take(tmp_path / "take.csv", **SHAPES[shape])
    track = ExpressionTrack.load(take.path)
    assert track.frame_count == len(take.times) and track.fps == pytest.approx(take.row_rate, rel=1e-9)
    np.testing.assert_allclose(track.times, take.times, atol=1e-4)
    saved = track.save(tmp_path / "saved.csv")
    with open(saved, newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == HEADER  # Timecode, BlendShapeCount, the ARKit curves in LLF's order, rotations
    before, after = read_take(take.path), read_take(saved)
    assert after.timecodes == before.timecodes  # verbatim
    np.testing.assert_array_equal(after.times, before.times)
    np.testing.assert_array_equal(after.values, before.values)
    assert after.extra == before.extra  # TongueOut and the 9 rotations, cell for cell
    assert after.rate == before.rate
    again = ExpressionTrack.load(saved)
    np.testing.assert_array_equal(again.times, track.times)
    assert again.fps == track.fps


@pytest.mark.parametrize("nominal, drop", [(24, False), (25, False), (30, False), (60, False), (30, True), (60, True)])
def test_timecodes_format_and_parse_back_to_the_same_time(nominal, drop):
    real = nominal * 1000 / 1001 if drop else nominal
    for frame in (0, 1, 1799, 1800, 1801, 17982, 17983, 107892, 1_999_999):  # up to 23 h (timecodes wrap at 24 h)
        seconds = frame / real
        text = format_timecode(seconds, nominal, drop)
        code = parse_timecode(text)
        assert code is not None and code.drop == drop and (";" in text) == drop
        assert timecode_seconds(code, nominal) == pytest.approx(seconds, abs=1e-6)
    if drop:  # frame numbers 0 and 1 (0-3 at 59.94) do not exist at the start of a minute that is not a tenth
        skipped = nominal // 15
        assert format_timecode((60 * nominal - 1) / real, nominal, drop, 0) == f"00:00:59;{nominal - 1:02d}"
        assert format_timecode(60 * nominal / real, nominal, drop, 0) == f"00:01:00;{skipped:02d}"
        # ... and minute 10 keeps them: 10 minutes hold 600 x nominal - 9 x skipped frames.
        assert format_timecode((600 * nominal - 9 * skipped) / real, nominal, drop, 0) == "00:10:00;00"
