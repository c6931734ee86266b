"""VideoSink: the driver's audio copied, no partial file left, exact frame rates, padded odd sizes."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest

from retarget.media.video_sink import VideoSink, frame_rate
from retarget.media.sources import VideoFileSource
from tests.conftest import needs_shared
from tests.media.clips import index_of, pattern, probe


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


def test_a_full_disk_while_adding_the_audio_is_a_failure_not_a_video_without_sound(tmp_path):
    """Issue #25: a write failure while muxing (disk full) used to be taken for an audio problem, and the
    (side-by-side) video reported as done. The file-size limit stands in for a full disk: the silent video
    fits, the one with sound does not."""
    import resource
    import signal

    from tests.media.clips import write_audio

    sound = write_audio(tmp_path / "sound.m4a", seconds=2.0)
    frames = [pattern(i) for i in range(3)]
    with VideoSink(tmp_path / "silent.mp4", 25, (64, 48)) as sink:
        for frame in frames:
            sink.write(frame)
    silent_size = (tmp_path / "silent.mp4").stat().st_size
    out = tmp_path / "o.mp4"
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    sink = VideoSink(out, 25, (64, 48), audio_from=sound)
    for frame in frames:
        sink.write(frame)
    resource.setrlimit(resource.RLIMIT_FSIZE, (silent_size + 512, hard))
    try:
        with pytest.raises(OSError) as caught:
            sink.close()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert caught.value.errno is not None
    assert not out.exists()  # not reported as done, no partial under the final name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["silent.mp4", "sound.m4a"]  # no temp left behind
