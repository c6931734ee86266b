"""The driver's audio into the output: trimmed to the video, re-encoded when mp4 cannot carry it, checked before any file is made."""

from __future__ import annotations

import pytest

from retarget.errors import BadInputError
from retarget.media.audio_mux import mux_audio
from retarget.media.video_sink import VideoSink
from tests.conftest import needs_shared
from tests.media.clips import pattern, probe, write_audio


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


def test_unreadable_audio_source_fails_before_any_file_is_made(tmp_path):
    (tmp_path / "junk.mp4").write_bytes(b"\x00\x01" * 500)
    for audio in (tmp_path / "missing.mp4", tmp_path / "junk.mp4"):
        with pytest.raises(BadInputError) as info:
            VideoSink(tmp_path / "out.mp4", 25, (64, 48), audio_from=audio)
        assert audio.name in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4"]
