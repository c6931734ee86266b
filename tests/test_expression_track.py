"""The expression track model: each edit changes only its frames and channels, undo/redo are exact, CSV round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from retarget.errors import RetargetError
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.config.mapping import REGIONS
from retarget.expression.track import Edit, ExpressionTrack, TrackHistory
from retarget.media.blendshape_csv import BlendshapeCsvWriter

N = 40


def make_track(path=None) -> ExpressionTrack:
    rng = np.random.default_rng(0)
    values = rng.uniform(0.05, 0.6, size=(N, 52)).astype(np.float32)
    values[7] = np.nan  # a frame without a face
    return ExpressionTrack(np.arange(N) / 30.0, values, 30.0, BLENDSHAPE_NAMES, path)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Cells whose value changed (NaN == NaN counts as unchanged)."""
    same = (before == after) | (np.isnan(before) & np.isnan(after))
    return ~same


def columns_of(spec) -> set[int]:
    if spec in REGIONS:
        return {BLENDSHAPE_NAMES.index(n) for n in REGIONS[spec]}
    return {BLENDSHAPE_NAMES.index(spec)}


EDITS = [
    Edit("scale", 10, 20, "mouth", 1.5),
    Edit("offset", 0, 5, "jawOpen", 0.2),
    Edit("offset", 30, 40, "eyes", -0.03),
    Edit("smooth", 3, 25, "brows", 2.0),
    Edit("flatten", 5, 15, "mouthSmileLeft"),
    Edit("flatten", 12, 18, "cheeks", 0.3),
    Edit("clamp", 0, 40, "jaw", 0.1, low=0.1, high=0.4),
]


@pytest.mark.parametrize("edit", EDITS, ids=lambda e: e.describe())
def test_an_edit_changes_only_its_frames_and_channels_and_undo_redo_are_exact(edit):
    history = TrackHistory(make_track())
    before = history.track.values.copy()
    history.apply(edit)
    after = history.track.values.copy()
    diff = changed(before, after)
    rows, cols = np.nonzero(diff)
    assert diff.any(), "the edit changed nothing"
    assert rows.min() >= edit.start and rows.max() < edit.stop
    assert set(cols.tolist()) <= columns_of(edit.channels)
    assert np.isnan(after[7]).all()  # no edit invents a face
    assert np.nanmin(after) >= 0.0 and np.nanmax(after) <= 1.0
    assert history.undo() == edit
    np.testing.assert_array_equal(history.track.values, before)
    assert history.redo() == edit
    np.testing.assert_array_equal(history.track.values, after)


def test_each_operation_does_what_it_says():
    track = make_track()
    history = TrackHistory(track)
    raw = track.values.copy()
    j = BLENDSHAPE_NAMES.index("jawOpen")
    history.apply(Edit("scale", 10, 20, "jawOpen", 1.5))
    np.testing.assert_allclose(track.values[10:20, j], np.clip(raw[10:20, j] * 1.5, 0, 1), rtol=1e-6)
    history.apply(Edit("flatten", 20, 30, "jawOpen"))
    np.testing.assert_allclose(track.values[20:30, j], raw[20:30, j].mean(), rtol=1e-6)
    history.apply(Edit("offset", 30, 40, "jawOpen", 2.0))
    np.testing.assert_array_equal(track.values[30:40, j], 1.0)  # kept in the blendshapes' range
    noisy_before = np.abs(np.diff(track.values[0:7, BLENDSHAPE_NAMES.index("browInnerUp")])).mean()
    history.apply(Edit("smooth", 0, 7, "brows", 3.0))
    noisy_after = np.abs(np.diff(track.values[0:7, BLENDSHAPE_NAMES.index("browInnerUp")])).mean()
    assert noisy_after < noisy_before / 2


def test_undo_redo_stack():
    history = TrackHistory(make_track())
    original = history.track.values.copy()
    first, second, third = Edit("scale", 0, 10, "mouth", 2.0), Edit("offset", 5, 15, "all", 0.1), Edit("smooth", 0, 40, "eyes", 1.0)
    states = [original]
    for edit in (first, second, third):
        history.apply(edit)
        states.append(history.track.values.copy())
    assert history.edits == [first, second, third]
    for state in reversed(states[:-1]):
        history.undo()
        np.testing.assert_array_equal(history.track.values, state)
    assert history.undo() is None and not history.can_undo
    history.redo()
    np.testing.assert_array_equal(history.track.values, states[1])
    history.apply(Edit("flatten", 0, 3, "jawOpen", 0.0))  # a new edit clears redo
    assert not history.can_redo and history.redo() is None
    assert history.edits[0] == first and len(history.edits) == 2


@pytest.mark.parametrize("edit, message", [
    (Edit("scale", 5, 5, "mouth", 2.0), "frame range 5..5"),
    (Edit("scale", 30, 50, "mouth", 2.0), "track's 40 frames"),
    (Edit("scale", 0, 5, "lips", 2.0), "unknown channel 'lips'"),
    (Edit("scale", 0, 5, "mouth", float("nan")), "finite"),
    (Edit("scale", 0, 5, "mouth", -1.0), "at least 0"),
    (Edit("smooth", 0, 5, "mouth", 0.0), "more than 0"),
    (Edit("flatten", 0, 5, "mouth", 1.5), "at most 1"),
    (Edit("clamp", 0, 5, "mouth", low=0.6, high=0.2), "above high"),
    (Edit("twist", 0, 5, "mouth", 1.0), "unknown edit 'twist'"),
])
def test_bad_edits_are_one_line_errors_and_change_nothing(edit, message):
    history = TrackHistory(make_track())
    before = history.track.values.copy()
    with pytest.raises(RetargetError, match=message) as err:
        history.apply(edit)
    assert "\n" not in str(err.value)
    np.testing.assert_array_equal(history.track.values, before)
    assert not history.can_undo


def write_extract_style_csv(path, track: ExpressionTrack) -> None:
    writer = BlendshapeCsvWriter(path)  # what `retarget extract` writes with
    for t, row in zip(track.times, track.values):
        writer.write(float(t), None if np.isnan(row).any() else row)
    writer.close()


def test_csv_round_trip_is_byte_identical_and_an_edited_save_reads_back(tmp_path):
    source = tmp_path / "take.csv"
    write_extract_style_csv(source, make_track())
    track = ExpressionTrack.load(source)
    assert track.frame_count == N and abs(track.fps - 30.0) < 1e-9 and not track.face_found[7]
    copy = track.save(tmp_path / "copy.csv")
    assert copy.read_bytes() == source.read_bytes()

    history = TrackHistory(track)
    history.apply(Edit("scale", 10, 20, "mouth", 1.5))
    edited = track.save(tmp_path / "edited.csv")
    again = ExpressionTrack.load(edited)
    np.testing.assert_array_equal(again.values, track.values)
    np.testing.assert_array_equal(again.times, track.times)
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_saving_never_overwrites_the_source_and_refuses_bad_names(tmp_path):
    source = tmp_path / "take.csv"
    write_extract_style_csv(source, make_track())
    original = source.read_bytes()
    track = ExpressionTrack.load(source)
    TrackHistory(track).apply(Edit("scale", 0, 10, "all", 0.5))
    for target, message in ((source, "same path"), (tmp_path / "x.txt", ".csv name"), (tmp_path, ".csv name")):
        with pytest.raises(RetargetError, match=message) as err:
            track.save(target)
        assert "\n" not in str(err.value)
    assert source.read_bytes() == original


def test_live_link_face_take_loads_and_saves_as_live_link_face(tmp_path):
    from retarget.media.live_link_face import HEADER

    pascal = [n[0].upper() + n[1:] for n in BLENDSHAPE_NAMES[1:]]
    lines = ["Timecode,BlendShapeCount," + ",".join(pascal) + ",HeadYaw"]
    for i in range(5):
        lines.append(f"10:00:00:{i:02d}.000,61," + ",".join(f"{(i + k) % 10 / 10:.2f}" for k in range(51)) + ",0.1")
    take = tmp_path / "llf.csv"
    take.write_text("\n".join(lines) + "\n")
    track = ExpressionTrack.load(take)
    assert track.frame_count == 5 and track.fps == 60.0 and track.format == "live_link_face"
    assert track.values[2, BLENDSHAPE_NAMES.index("browDownLeft")] == np.float32(0.2)
    saved = track.save(tmp_path / "edited.csv")  # an LLF take saves as LLF: its timecodes and HeadYaw kept
    rows = saved.read_text().splitlines()
    assert rows[0].split(",") == list(HEADER)
    assert [r.split(",")[0] for r in rows[1:]] == [f"10:00:00:{i:02d}.000" for i in range(5)]
    assert all(r.split(",")[HEADER.index("HeadYaw")] == "0.1" for r in rows[1:])
    again = ExpressionTrack.load(saved)
    np.testing.assert_array_equal(again.values, track.values)
    np.testing.assert_array_equal(again.times, track.times)
    ours = track.save(tmp_path / "ours.csv", format="timestamp")  # our format on request
    assert ours.read_text().splitlines()[0].split(",") == ["timestamp", *BLENDSHAPE_NAMES]
    np.testing.assert_array_equal(ExpressionTrack.load(ours).values, track.values)


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("timestamp," + ",".join(BLENDSHAPE_NAMES) + "\n", "no frames"),
    ("timestamp,foo\n0,1\n", "no blendshape columns"),
])
def test_bad_track_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(RetargetError, match=message) as err:
        ExpressionTrack.load(path)
    assert "\n" not in str(err.value)
    with pytest.raises(RetargetError, match="csv"):
        ExpressionTrack.load(tmp_path / "track.json")


@pytest.mark.parametrize("smoothing", [False, True])
def test_driven_vectors_are_what_the_csv_driver_path_feeds_the_generator(tmp_path, smoothing):
    """The app's preview maps a track with driven_vectors; the render maps the saved CSV with the engine."""
    from retarget.engine.driving import DriverAnalyzer
    from retarget.engine import perception_stream
    from retarget.config.mapping import MappingSettings
    from retarget.expression.track import driven_vectors
    from retarget.media.sources import open_source

    track = make_track()
    TrackHistory(track).apply(Edit("scale", 10, 20, "mouth", 1.5))
    csv = track.save(tmp_path / "edited.csv")
    mapping = MappingSettings(smoothing=smoothing, relative=True, calibration_window=5, gains={"jaw": 1.3})
    unused = tmp_path / "face_landmarker.task"  # a CSV driver never runs the landmarker

    def analyzer():
        return DriverAnalyzer("blendshapes52", unused, mapping, identity_neutral=np.full(52, 0.1, np.float32))

    with analyzer() as a:
        previewed = driven_vectors(track, a)
    with open_source(str(csv)) as source, analyzer() as a:
        rendered = np.stack([f.expression for f in perception_stream(source, a)])
    assert previewed.shape == (N, 52)
    np.testing.assert_array_equal(previewed, rendered)
