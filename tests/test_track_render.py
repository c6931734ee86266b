"""An edited expression track rendered through the real engine (the CSV driver path, random tiny models):
only the edited frames reach the generator changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from retarget.cli import main
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.config.mapping import REGIONS
from retarget.expression.track import Edit, ExpressionTrack, TrackHistory
from retarget.pipeline import RetargetPipeline
from tests.conftest import needs_shared

pytestmark = needs_shared
FRAMES = 16
EDIT = Edit("scale", 6, 11, "mouth", 1.6)


@pytest.fixture(scope="module")
def tracks(shared_dir, landmarker_path, tmp_path_factory) -> tuple[Path, Path, ExpressionTrack, Path]:
    """The first frames of driver_d0.mp4 as `retarget extract` writes them, the same track with EDIT applied,
    and the whole extracted CSV."""
    folder = tmp_path_factory.mktemp("tracks")
    full = folder / "d0.csv"
    assert main(["extract", str(shared_dir / "media" / "driver_d0.mp4"), "--out", str(full),
                 "--landmarker", str(landmarker_path)]) == 0
    whole = ExpressionTrack.load(full)
    short = ExpressionTrack(whole.times[:FRAMES], whole.values[:FRAMES], whole.fps)
    original = short.save(folder / "original.csv")
    history = TrackHistory(ExpressionTrack.load(original))
    history.apply(EDIT)
    edited = history.track.save(folder / "edited.csv")
    return original, edited, history.track, full


def test_an_extracted_track_saves_back_byte_for_byte(tracks, tmp_path):
    full = tracks[3]
    copy = ExpressionTrack.load(full).save(tmp_path / "copy.csv")
    assert copy.read_bytes() == full.read_bytes()


def render(csv: Path, out: Path, models: Path, shared: Path, landmarker: Path, monkeypatch, *extra) -> np.ndarray:
    """Render `csv` with the CLI; returns the (frames, 52) vectors generate() received, in frame order."""
    seen: dict[int, np.ndarray] = {}
    real_generate = RetargetPipeline.generate

    def spy(self, context, expressions, settings=None, noise=None, frame_indices=None, **kwargs):
        for index, vector in zip(frame_indices, np.asarray(expressions)):
            seen[int(index)] = np.array(vector, copy=True)
        return real_generate(self, context, expressions, settings, noise, frame_indices, **kwargs)

    monkeypatch.setattr(RetargetPipeline, "generate", spy)
    assert main(["--headless", "--models", str(models), "--landmarker", str(landmarker), "--steps", "1",
                 "--identity", str(shared / "media" / "identity_hepburn_small.png"), "--driver", str(csv),
                 "--out", str(out), "--batch-size", "4", *extra]) == 0
    monkeypatch.undo()
    assert sorted(seen) == list(range(FRAMES))
    return np.stack([seen[i] for i in range(FRAMES)])


def test_scaling_a_range_changes_only_those_frames_of_the_render(tracks, blendshape_models_dir, shared_dir,
                                                                 landmarker_path, tmp_path, monkeypatch):
    original, edited, edited_track, _ = tracks
    args = (blendshape_models_dir, shared_dir, landmarker_path, monkeypatch, "--no-smoothing")
    before = render(original, tmp_path / "before", *args)
    after = render(edited, tmp_path / "after", *args)
    inside = np.zeros(FRAMES, bool)
    inside[EDIT.start:EDIT.stop] = True
    differs = (before != after).any(axis=1)
    assert differs[inside].all() and not differs[~inside].any()
    mouth = [BLENDSHAPE_NAMES.index(n) for n in REGIONS["mouth"]]
    others = [i for i in range(52) if i not in mouth]
    np.testing.assert_array_equal(before[:, others], after[:, others])
    # Without smoothing the generator gets the edited track's values themselves (clipped to 0..1 by the mapping).
    np.testing.assert_array_equal(after, np.clip(edited_track.values, 0, 1))
    # The rendered pictures: the frames outside the range are the same pixels, those inside are not (the files'
    # bytes differ anyway: each carries its own signed C2PA manifest).
    for i in range(FRAMES):
        a, b = (tmp_path / name / f"frame_{i:06d}.png" for name in ("before", "after"))
        if not a.exists():
            a, b = (sorted((tmp_path / name).glob("*.png"))[i] for name in ("before", "after"))
        assert (not np.array_equal(_pixels(a), _pixels(b))) == inside[i], i


def _pixels(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_with_smoothing_the_edit_also_reaches_later_frames_but_never_earlier_ones(tracks, blendshape_models_dir, shared_dir,
                                                                                 landmarker_path, tmp_path, monkeypatch):
    """One Euro smoothing (on by default) is causal: it carries the edit past the range's end, never before its start."""
    original, edited, _, _ = tracks
    args = (blendshape_models_dir, shared_dir, landmarker_path, monkeypatch)
    before = render(original, tmp_path / "before.mp4", *args)
    after = render(edited, tmp_path / "after.mp4", *args)
    differs = (before != after).any(axis=1)
    assert not differs[:EDIT.start].any()
    assert differs[EDIT.start:EDIT.stop].all()
    assert differs[EDIT.stop]  # the filter's state holds the edited values for a while
