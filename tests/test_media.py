"""Frame sources and sinks on real media (../shared) and on small clips made here with PyAV."""

from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from retarget.errors import BadInputError
from retarget.expression.blendshapes import BLENDSHAPE_NAMES
from retarget.media.sinks import (
    BlendshapeCsvWriter,
    CallbackSink,
    PngSequenceSink,
    SideBySideSink,
    VideoSink,
    frame_rate,
    mux_audio,
    side_by_side,
    side_by_side_size,
)
from retarget.media.sources import (
    BlendshapeCsvSource,
    ImageFolderSource,
    VideoFileSource,
    WebcamSource,
    list_cameras,
    open_source,
)
from tests.conftest import needs_shared

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


# ---------------------------------------------------------------- helpers that make media with PyAV


def pattern(index: int, w: int = 64, h: int = 48) -> np.ndarray:
    """A frame whose mean brightness encodes its index (survives lossy coding) plus a gradient."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (index * 8) % 256
    img[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 2] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    return img


def write_clip(path: Path, n: int = 20, *, w: int = 64, h: int = 48, rate=25, pts=None, time_base=None,
               rotation: int | None = None, frames=None) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        if time_base is not None:
            stream.codec_context.time_base = time_base
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(n):
            image = frames[i] if frames is not None else pattern(i, w, h)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts[i] if pts is not None else i
            if time_base is not None:
                frame.time_base = time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_audio(path: Path, seconds: float = 1.0, codec: str = "aac", rate: int = 44100) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        fmt = "fltp" if codec == "aac" else "s16"
        size = stream.codec_context.frame_size or 1024
        total = int(seconds * rate)
        t = np.arange(total) / rate
        wave = np.sin(2 * np.pi * 440 * t)
        for start in range(0, total, size):
            chunk = wave[start : start + size]
            data = chunk.astype(np.float32) if fmt == "fltp" else (chunk * 10000).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(data[None, :], format=fmt, layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def probe(path: Path) -> dict:
    with av.open(str(path)) as c:
        info = {"streams": [s.type for s in c.streams]}
        if c.streams.audio:
            a = c.streams.audio[0]
            info["audio_codec"] = a.codec_context.name
            info["audio_seconds"] = float(a.duration * a.time_base)
        v = c.streams.video[0]
        info["rate"] = v.average_rate
        info["frames"] = sum(1 for _ in c.decode(v))
    return info


def index_of(image: np.ndarray) -> int:
    return int(round(float(image[..., 0].mean()) / 8))


# ---------------------------------------------------------------- real media


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


@needs_shared
def test_video_sink_copies_the_drivers_audio(shared_dir, tmp_path):
    driver = shared_dir / "media" / "driver_d11_audio.mp4"
    target = tmp_path / "out" / "result.mp4"
    with VideoFileSource(driver) as src, VideoSink(target, src.frame_rate, (256, 256), audio_from=driver) as sink:
        for frame in src:
            sink.write(frame.image[::2, ::2])
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.mp4"]  # no temp files left
    got, want = probe(target), probe(driver)
    assert got["frames"] == 225 and got["rate"] == 25
    assert got["streams"] == ["video", "audio"] and got["audio_codec"] == "aac"
    assert got["audio_seconds"] == pytest.approx(want["audio_seconds"], abs=0.05)
    # Copied, not re-encoded: the AAC payloads are the source's, byte for byte.
    with av.open(str(driver)) as a, av.open(str(target)) as b:
        src_packets = [bytes(p) for p in a.demux(audio=0) if p.size][:20]
        out_packets = [bytes(p) for p in b.demux(audio=0) if p.size][:20]
    assert src_packets == out_packets


@needs_shared
def test_video_sink_without_driver_audio_has_no_audio_stream(shared_dir, tmp_path):
    driver = shared_dir / "media" / "driver_d0.mp4"
    target = tmp_path / "silent.mp4"
    with VideoFileSource(driver, stop=10) as src, VideoSink(target, src.fps, src.size, audio_from=driver) as sink:
        for frame in src:
            sink.write(frame.image)
    info = probe(target)
    assert info["streams"] == ["video"] and info["frames"] == 10


@needs_shared
def test_audio_is_trimmed_to_a_shorter_video(shared_dir, tmp_path):
    driver = shared_dir / "media" / "driver_d11_audio.mp4"
    target = tmp_path / "short.mp4"
    with VideoSink(target, 25, (64, 64), audio_from=driver, preset="ultrafast") as sink:
        for i in range(50):
            sink.write(pattern(i, 64, 64))
    info = probe(target)
    assert info["frames"] == 50
    assert info["audio_seconds"] == pytest.approx(2.0, abs=0.05)


def test_audio_that_mp4_players_cannot_take_is_reencoded_to_aac(tmp_path):
    video = tmp_path / "video.mp4"
    with VideoSink(video, 25, (64, 48), preset="ultrafast") as sink:
        for i in range(25):
            sink.write(pattern(i))
    wav = write_audio(tmp_path / "voice.wav", seconds=2.0, codec="pcm_s16le", rate=16000)
    out = tmp_path / "with_voice.mp4"
    assert mux_audio(video, wav, out) is True
    info = probe(out)
    assert info["audio_codec"] == "aac" and info["frames"] == 25
    assert info["audio_seconds"] == pytest.approx(1.0, abs=0.05)  # trimmed to the 1 s video
    # In place, the way a resumable job adds audio after the frames are done.
    assert mux_audio(video, wav, video) is True
    assert probe(video)["streams"] == ["video", "audio"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video.mp4", "voice.wav", "with_voice.mp4"]


def test_abort_leaves_nothing_behind(tmp_path):
    target = tmp_path / "clip.mp4"
    sink = VideoSink(target, 25, (64, 48), preset="ultrafast")
    for i in range(5):
        sink.write(pattern(i))
    assert sink.partial.exists() and sink.partial.name == ".clip.partial.mp4"
    sink.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with VideoSink(target, 25, (64, 48), preset="ultrafast") as sink:
            sink.write(pattern(0))
            raise RuntimeError("generator crashed")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_audio_source_fails_before_any_file_is_made(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01" * 500)
    for audio in (tmp_path / "missing.mp4", tmp_path / "junk.mp4"):
        with pytest.raises(BadInputError) as info:
            VideoSink(tmp_path / "out.mp4", 25, (64, 48), audio_from=audio)
        assert audio.name in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4"]


def test_ntsc_rate_is_exact_and_odd_sizes_are_padded(tmp_path):
    assert frame_rate(29.97) == Fraction(30000, 1001) and frame_rate(25) == Fraction(25)
    target = tmp_path / "ntsc.mp4"
    with VideoSink(target, 29.97, (63, 47), preset="ultrafast") as sink:
        for i in range(30):
            sink.write(pattern(i, 63, 47))
    with av.open(str(target)) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)
    with VideoFileSource(target) as src:
        frames = list(src)
    assert len(frames) == 30 and src.size == (64, 48)
    assert frames[29].time == pytest.approx(29 * 1001 / 30000, abs=1e-4)
    assert [index_of(f.image) for f in frames] == list(range(30))


# ---------------------------------------------------------------- synthetic sources


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


# ---------------------------------------------------------------- bad inputs


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


def test_no_camera_is_a_bad_input():
    if list_cameras(2):
        pytest.skip("this machine has a camera")
    for spec in ("webcam:0", "/dev/video7"):
        with pytest.raises(BadInputError) as info:
            open_source(spec)
        assert "camera" in str(info.value) and spec in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(BadInputError):
        WebcamSource(3)


# ---------------------------------------------------------------- CSV


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
        assert src.frame_count == 40 and src.fps == pytest.approx(29.97, rel=1e-6)
        frames = list(src)
    assert [f.time for f in frames] == times.tolist()
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
            timecode = f"14:{3 + s // 60:02d}:{s % 60:02d}:{ff:02d}.{(r * 137) % 1000:03d}"
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
    expected = np.array([(r + ((r * 137) % 1000) / 1000) / 60 for r in range(150)])
    assert np.allclose([f.time for f in frames], expected - expected[0], atol=1e-6)


def test_live_link_face_rate_is_read_from_the_timecode(tmp_path):
    path = tmp_path / "take30.csv"
    _write_llf(path, 200, fps=30)
    with BlendshapeCsvSource(path) as src:
        assert src.fps == 30
        times = [f.time for f in src]
    assert times[30] - times[0] == pytest.approx(1.0 + (30 * 137 % 1000) / 1000 / 30, abs=1e-6)
    with BlendshapeCsvSource(path, fps=60) as src:
        assert src.fps == 60


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


# ---------------------------------------------------------------- image folders and small sinks


def test_image_folder_uses_natural_order(tmp_path):
    from PIL import Image

    for n in (10, 2, 1, 21):
        Image.fromarray(pattern(n)).save(tmp_path / f"frame{n}.png")
    (tmp_path / "notes.txt").write_text("ignored")
    with open_source(str(tmp_path)) as src:
        assert isinstance(src, ImageFolderSource) and src.frame_count == 4 and src.size == (64, 48)
        frames = list(src)
    assert [index_of(f.image) for f in frames] == [1, 2, 10, 21]
    assert [f.time for f in frames] == [0.0, 0.04, 0.08, 0.12]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BadInputError, match="no images"):
        open_source(str(empty))


def test_png_sequence_sink(tmp_path):
    from PIL import Image

    with PngSequenceSink(tmp_path / "pngs", start_index=5) as sink:
        for i in range(3):
            sink.write(pattern(i))
    names = sorted(p.name for p in (tmp_path / "pngs").iterdir())
    assert names == ["frame_000005.png", "frame_000006.png", "frame_000007.png"]
    assert np.array_equal(np.asarray(Image.open(tmp_path / "pngs" / "frame_000006.png")), pattern(1))


def test_side_by_side_and_callback_sinks(tmp_path):
    driver = np.zeros((100, 200, 3), np.uint8)
    output = np.full((50, 50, 3), 255, np.uint8)
    both = side_by_side(driver, output)
    assert both.shape == (50, 150, 3) and side_by_side_size((200, 100), (50, 50)) == (150, 50)
    assert both[:, :100].max() == 0 and both[:, 100:].min() == 255

    written = []

    class Inner:
        def write(self, rgb):
            written.append(rgb.shape)

        def close(self):
            written.append("closed")

    with SideBySideSink(Inner()) as sink:
        sink.write(driver, output)
    assert written == [(50, 150, 3), "closed"]
    calls = []
    sink = CallbackSink(lambda i, d, o: calls.append((i, d.shape, o.shape)))
    sink.write(3, driver, output)
    assert calls == [(3, (100, 200, 3), (50, 50, 3))]
