"""`retarget --headless --driver webcam:N --out rec.mp4`: the live stream without a window."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from retarget.config.render import VideoOptions
from retarget.errors import BadInputError, RetargetError
from retarget.names.kinds import OUTPUT_VIDEO_SUFFIXES


def run_live(session, driver: str, out: Path, settings, mapping=None, neutral=None, min_change: float = 0.0,
             analyzer=None, video: VideoOptions | None = None, face: int | None = None) -> int:
    """Webcam without a window: the session renders the newest frame continuously and records it until Ctrl-C.

    The recording is written with each frame's capture time (TimedVideoSink), so it plays in real
    time however fast the generator is. `analyzer` replaces the one the session would build (tests).
    """
    if out.suffix.lower() not in OUTPUT_VIDEO_SUFFIXES:
        raise BadInputError(f"--out {out}: live recording writes a video (.mp4)")
    sink = session.start_recording(out, video=video)  # before the camera: a sink that cannot open leaves no camera open
    try:
        session.start_live(driver, settings=settings, mapping=mapping, analyzer=analyzer, neutral_raw=neutral,
                           min_change=min_change, face=face)
    except BaseException:
        session.stop_recording()
        sink.abort()
        raise
    stream = session.stream
    try:
        while not stream.wait(timeout=1.0):
            s = stream.stats
            print(f"\rin {s.input_fps:5.1f} fps  out {s.output_fps:5.1f} fps  latency {s.latency_ms:6.0f} ms", end="", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stopped_at = time.monotonic()
        session.stop_live()  # the frame in progress still lands in the recording
        session.stop_recording()
        print(file=sys.stderr)
    if stream.error is not None and not isinstance(stream.error, StopIteration):
        sink.abort()
        raise stream.error if isinstance(stream.error, RetargetError) else RetargetError(f"live stream stopped: {stream.error}")
    if sink.frames_written == 0:
        sink.abort()
        raise RetargetError(f"no frame was rendered before the stream stopped, so {out} was not written")
    sink.close(end_time=stopped_at)
    print(f"recorded {sink.frames_written} frames ({sink.seconds:.1f} s) to {out}")
    return 0
