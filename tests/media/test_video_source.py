"""VideoFileSource (and open_source on video files): real media (../shared) and small clips made here."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from retarget.errors import BadInputError
from retarget.media.sources import VideoFileSource, open_source
from tests.conftest import needs_shared
from tests.media.clips import index_of, write_audio, write_clip


@needs_shared
def test_real_video_source_reports_and_decodes_every_frame(shared_dir):
    with VideoFileSource(shared_dir / "media" / "driver_d11_audio.mp4") as src:
        assert src.fps == 25.0 and src.frame_rate == Fraction(25)
        assert src.frame_count == 225 and src.size == (512, 512) and src.has_audio
        assert src.duration == pytest.approx(9.0, abs=0.05)
        frames = list(src)
    assert [f.index for f in frames] == list(range(225))
    assert np.allclose([f.time for f in frames], np.arange(225) / 25.0, atol=1e-6)
    assert frames[0].image.shape == (512, 512, 3) and frames[0].image.dtype == np.uint8
    assert src.decode_error is None


def test_frame_range_gives_exactly_those_absolute_indices(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", 30)
    with VideoFileSource(clip) as src:
        full = list(src)
    with VideoFileSource(clip, start=7, stop=19) as src:
        assert src.frame_count == 12 and src.total_frames == 30
        part = list(src)
    assert [f.index for f in part] == list(range(7, 19))
    for f in part:
        assert np.array_equal(f.image, full[f.index].image) and f.time == full[f.index].time
    with VideoFileSource(clip, start=25, stop=100) as src:
        assert [f.index for f in src] == [25, 26, 27, 28, 29]


def _marked_frame() -> np.ndarray:
    """64x32 stored frame: white band on the left edge, green strip along the top."""
    image = np.zeros((32, 64, 3), np.uint8)
    image[:, :8] = 255
    image[:4, :, 1] = 255
    return image


# (degrees counter-clockwise, hflip, vflip) -> what a player shows, as a numpy operation on the stored frame.
ORIENTATIONS = {
    (90, False, False): lambda im: np.rot90(im, 1),
    (-90, False, False): lambda im: np.rot90(im, -1),
    (180, False, False): lambda im: np.rot90(im, 2),
    (0, True, False): lambda im: im[:, ::-1],
    (0, False, True): lambda im: im[::-1],
    (90, True, False): lambda im: np.rot90(im, 1)[:, ::-1],
}


@pytest.mark.parametrize("orientation", list(ORIENTATIONS), ids=str)
def test_display_matrix_comes_out_upright(tmp_path, orientation):
    degrees, hflip, vflip = orientation
    stored = _marked_frame()
    path = tmp_path / "rot.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(degrees, hflip=hflip, vflip=vflip)
        frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    expected = ORIENTATIONS[orientation](stored)
    with VideoFileSource(path) as src:
        image = next(src).image
        assert src.size == (expected.shape[1], expected.shape[0])
    assert image.shape == expected.shape
    assert np.abs(image.astype(int) - expected).mean() < 6  # lossy coding; a wrong turn is off by ~100


def test_display_rotation_agrees_with_opencv(tmp_path):
    # OpenCV's capture auto-rotates by the same matrix: an independent reading of the convention.
    import cv2

    path = write_clip(tmp_path / "rot.mp4", 2, w=64, h=32, rotation=90, frames=[_marked_frame()] * 2)
    capture = cv2.VideoCapture(str(path))
    ok, bgr = capture.read()
    capture.release()
    with VideoFileSource(path) as src:
        assert src.rotation == 90
        image = next(src).image
    assert ok and np.array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), image)


def test_legacy_rotate_tag_is_clockwise(tmp_path):
    # FFmpeg no longer writes `rotate` tags to MP4, but Matroska keeps any tag, as old converters left them.
    stored = _marked_frame()
    path = tmp_path / "tagged.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.metadata["rotate"] = "90"
        frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
        frame.pts = 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    with VideoFileSource(path) as src:
        assert src.rotation == -90 and src.size == (32, 64)
        image = next(src).image
    assert np.abs(image.astype(int) - np.rot90(stored, -1)).mean() < 6


def test_variable_frame_rate_times_come_from_pts(tmp_path):
    ms = [0, 40, 100, 110, 300, 333, 500, 1000]
    clip = write_clip(tmp_path / "vfr.mp4", len(ms), pts=ms, time_base=Fraction(1, 1000))
    with VideoFileSource(clip) as src:
        frames = list(src)
    assert [f.index for f in frames] == list(range(len(ms)))
    assert np.allclose([f.time for f in frames], np.array(ms) / 1000, atol=1e-3)
    assert [index_of(f.image) for f in frames] == list(range(len(ms)))


def test_frame_count_is_counted_when_the_container_does_not_say(tmp_path):
    clip = write_clip(tmp_path / "clip.mkv", 17)
    with av.open(str(clip)) as c:
        assert c.streams.video[0].frames == 0  # Matroska keeps no count
    with VideoFileSource(clip) as src:
        assert src.frame_count == 17
        assert len(list(src)) == 17


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    (tmp_path / "notes.txt").write_text("this is a shopping list\nnot a video\n")
    write_audio(tmp_path / "speech.m4a", 0.5)
    return {
        "missing": (tmp_path / "nope.mp4", "does not exist"),
        "empty": (tmp_path / "empty.mp4", "is empty"),
        "random": (tmp_path / "random.mp4", "is not a video FFmpeg can read"),
        "text": (tmp_path / "notes.txt", "text file"),
        "audio-only": (tmp_path / "speech.m4a", "has no video stream"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "random", "text", "audio-only"])
def test_bad_inputs_give_one_line(tmp_path, case):
    path, phrase = _bad_inputs(tmp_path)[case]
    with pytest.raises(BadInputError) as info:
        open_source(str(path))
    message = str(info.value)
    assert "\n" not in message and phrase in message and path.name in message


@needs_shared
def test_truncated_video_without_index_is_a_bad_input(shared_dir, tmp_path):
    data = (shared_dir / "media" / "driver_d11_audio.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the index (moov) sits at the end of this file: it is gone
    with pytest.raises(BadInputError) as info:
        open_source(str(cut))
    assert "\n" not in str(info.value) and "cut.mp4" in str(info.value) and "truncated" in str(info.value)


@needs_shared
def test_truncated_video_yields_what_decodes_then_stops(shared_dir, tmp_path):
    # Remux with the index first (faststart), then cut: the head decodes, the tail is missing.
    whole = tmp_path / "faststart.mp4"
    with av.open(str(shared_dir / "media" / "driver_d11_audio.mp4")) as src, \
            av.open(str(whole), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = whole.read_bytes()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with open_source(str(cut)) as src:
        frames = list(src)
    assert 50 < len(frames) < 225
    assert [f.index for f in frames] == list(range(len(frames)))
    assert isinstance(src.decode_error, str) and "\n" not in src.decode_error
