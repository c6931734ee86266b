"""Live recordings play in real time: each frame is written at its capture time (TimedVideoSink).

No webcam exists on the build machines: a synthetic video written here with PyAV and played
"live" (paced at its own frame rate, as LiveStream does for files) stands in for one.
"""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

from retarget.media.video_sink import TimedVideoSink


def _decoded_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(f.pts * f.time_base) for f in container.decode(video=0)]


def _duration(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return float(stream.duration * stream.time_base)


def _synthetic_video(path: Path, seconds: float = 2.0, fps: int = 25) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(int(seconds * fps)):
            image = np.full((32, 32, 3), (i * 5) % 255, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_frames_are_written_at_their_timestamps(tmp_path):
    out = tmp_path / "timed.mp4"
    sink = TimedVideoSink(out, (64, 64))
    times = [10.0, 10.5, 10.501, 11.25, 12.0]  # two frames a millisecond apart stay distinct
    for i, t in enumerate(times):
        sink.write(np.full((64, 64, 3), i * 40, np.uint8), t)
    sink.close(end_time=13.0)
    assert sink.frames_written == len(times)
    decoded = _decoded_times(out)
    assert decoded[: len(times)] == pytest.approx([0.0, 0.5, 0.501, 1.25, 2.0], abs=1e-3)
    assert decoded[-1] == pytest.approx(3.0, abs=1e-3)  # the last frame held until the stop
    assert _duration(out) == pytest.approx(3.0, abs=0.05)
    assert not list(tmp_path.glob(".*"))  # no temporary file left


def test_an_empty_recording_leaves_no_file(tmp_path):
    from retarget.errors import RetargetError

    sink = TimedVideoSink(tmp_path / "empty.mp4", (32, 32))
    with pytest.raises(RetargetError):
        sink.close()
    assert not list(tmp_path.iterdir())


class SlowPipeline:
    """A generator taking 0.3 s per frame (a slow GPU): far fewer outputs than source frames."""

    image_size = 32

    def __init__(self):
        self.calls = 0

    def generate(self, context, expressions, settings, **kwargs):
        self.calls += 1
        time.sleep(0.3)
        return np.full((len(expressions), 32, 32, 3), self.calls % 255, np.uint8)


class PassThroughAnalyzer:
    frames_without_face = 0

    def __call__(self, frame, capture_time=None):
        from retarget.engine.driving import DrivenFrame

        zeros = np.zeros(52, np.float32)
        return DrivenFrame(frame.index, frame.time, frame.image, zeros, zeros, True, capture_time)

    def close(self):
        pass


@pytest.mark.timing
def test_cli_live_recording_lasts_as_long_as_the_stream(tmp_path, capsys):
    """`--driver webcam:0 --out rec.mp4`'s path, with a slow generator: the file plays in real time."""
    from retarget.cli.live import run_live
    from retarget.session import Session
    from retarget.config.generation import GenerationSettings

    driver = _synthetic_video(tmp_path / "driver.mp4", seconds=2.0)
    out = tmp_path / "rec.mp4"
    pipeline = SlowPipeline()
    began = time.monotonic()
    session = Session.with_retargeter(SimpleNamespace(pipeline=pipeline), identity="identity")
    assert run_live(session, str(driver), out, GenerationSettings(), analyzer=PassThroughAnalyzer()) == 0
    wall = time.monotonic() - began
    frames = len(_decoded_times(out)) - 1  # the last frame is repeated once at the stop time
    assert 2 <= frames <= pipeline.calls < 50  # one written frame per generated frame, not per source frame
    duration = _duration(out)
    # The source is paced at 25 frames/s over 2 s, so the stream lasted at least ~2 s; the file lasts
    # from the first capture to the stop, so no longer than the whole call. The old writer gave
    # frames / 25 s (here about 0.3 s).
    assert 1.9 <= duration <= wall + 0.1
    times = _decoded_times(out)
    assert all(b > a for a, b in zip(times, times[1:]))
    assert f"recorded {frames} frames" in capsys.readouterr().out


def test_timed_sink_accepts_frames_from_another_thread(tmp_path):
    """The app writes from the engine's render thread and closes from a worker: one sink, two threads."""
    out = tmp_path / "threads.mp4"
    sink = TimedVideoSink(out, (32, 32), nominal_fps=25)
    start = 50.0

    def produce():
        for i in range(10):
            sink.write(np.full((32, 32, 3), i * 20, np.uint8), start + i * 0.1)

    worker = threading.Thread(target=produce)
    worker.start()
    worker.join()
    sink.close(end_time=start + 1.0)
    assert _duration(out) == pytest.approx(1.0, abs=0.05)
    assert sink.seconds == pytest.approx(1.0)
    assert Fraction(sink.TIME_BASE) == Fraction(1, 1000)
