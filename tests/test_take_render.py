"""A Live Link Face take rendered through the CLI lasts as long as the take (30 Hz rows on a 60 fps timecode,
with skipped rows and tracking lost), at its own rate or at --fps."""

from __future__ import annotations

import av
import pytest

from retarget.cli import main
from tests.conftest import needs_shared
from tests.media.llf_takes import write_llf_take

pytestmark = needs_shared


def video_timing(path) -> tuple[int, float, float]:
    """(frames, frames/s, seconds from the first frame's start to the last frame's end) of a video file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
        rate = float(stream.average_rate)
        end = (pts[-1] - pts[0]) * stream.time_base + 1 / stream.average_rate
        return len(pts), rate, float(end)


@pytest.mark.parametrize("fps", [None, 24])
def test_a_30hz_take_on_a_60fps_timecode_renders_at_its_real_length(tmp_path, shared_dir, landmarker_path,
                                                                     blendshape_models_dir, fps):
    take = write_llf_take(tmp_path / "take.csv", nominal=60, step=2, rows=40, gaps=((12, 16),), lost=(5, 6, 30))
    out = tmp_path / "out.mp4"
    extra = ["--fps", str(fps)] if fps else []
    assert main(["--headless", "--models", str(blendshape_models_dir), "--landmarker", str(landmarker_path),
                 "--steps", "1", "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"),
                 "--driver", str(take.path), "--out", str(out), "--batch-size", "8", *extra]) == 0
    frames, rate, seconds = video_timing(out)
    expected_rate = fps or 30
    assert rate == pytest.approx(expected_rate)
    assert abs(seconds - take.span) <= 1 / expected_rate  # the take's 1.33 s, not half of it
    assert frames == round(take.span * expected_rate)
