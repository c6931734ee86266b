"""SourceInfo: what a render needs of a driver, read in one opening (rate, frames, size, duration, audio, kind)."""

from __future__ import annotations

from fractions import Fraction
from unittest import mock

import pytest
from PIL import Image

from retarget.errors import BadInputError
from retarget.media import sources
from retarget.media.frame_source import DEFAULT_FPS, FrameSource
from retarget.media.source_info import SourceInfo, probe_source, source_frame_rate
from tests.media.clips import pattern, write_clip


def test_a_video_is_probed_in_one_opening(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", 12, rate=Fraction(30000, 1001))
    with mock.patch.object(sources, "VideoFileSource", wraps=sources.VideoFileSource) as opened:
        info = probe_source(clip)
    assert opened.call_count == 1
    assert info.kind == "video" and info.rate == Fraction(30000, 1001) and info.frame_count == 12
    assert info.size == (64, 48) and info.has_audio is False and info.live is False
    assert info.duration == pytest.approx(12 / info.fps, abs=0.05)


def test_an_image_folder_is_timed_at_the_rate_given_else_the_default(tmp_path):
    for n in range(3):
        Image.fromarray(pattern(n)).save(tmp_path / f"f{n}.png")
    info = probe_source(tmp_path)
    assert info.kind == "images" and info.rate == Fraction(int(DEFAULT_FPS)) and info.frame_count == 3
    assert info.size == (64, 48) and info.duration == pytest.approx(3 / DEFAULT_FPS)
    assert probe_source(tmp_path, fps=12).rate == 12


def test_a_blendshape_csv_has_no_pictures(tmp_path):
    from retarget.names.blendshapes import BLENDSHAPE_NAMES

    csv = tmp_path / "take.csv"
    csv.write_text(",".join(BLENDSHAPE_NAMES) + "\n" + "\n".join(",".join(["0.1"] * 52) for _ in range(5)) + "\n")
    info = probe_source(csv, fps=10)
    assert info.kind == "blendshapes" and info.size is None and info.frame_count == 5 and info.rate == 10


def test_a_bad_driver_fails_when_probed(tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    with pytest.raises(BadInputError, match="broken.mp4"):
        probe_source(broken)


def test_the_rate_is_the_exact_one_else_the_fps_else_the_default():
    source = FrameSource()
    assert source_frame_rate(source) == Fraction(25)
    source.fps = 29.97
    assert source_frame_rate(source) == Fraction(30000, 1001)
    source.frame_rate = Fraction(24000, 1001)
    assert source_frame_rate(source) == Fraction(24000, 1001)
    assert SourceInfo.of(source, "x.mp4").fps == pytest.approx(23.976, abs=1e-3)


def test_a_video_with_audio_says_so(shared_dir):
    info = probe_source(shared_dir / "media" / "driver_d11_audio.mp4")
    assert info.has_audio and info.kind == "video" and info.frame_count and info.size
