"""`retarget --headless --driver webcam:N --out rec.mp4`: the live stream without a window."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from retarget.config.render import LiveOptions, VideoOptions
from retarget.errors import BadInputError, RetargetError
from retarget.media.kinds import OUTPUT_VIDEO_SUFFIXES


def run_live(retargeter, context, analyzer, settings, driver: str, out: Path, live: LiveOptions | None = None,
             video: VideoOptions | None = None) -> int:
    """Webcam without a window: render the newest frame continuously and record it until Ctrl-C.

    The recording is written with each frame's capture time (TimedVideoSink), so it plays in real
    time however fast the generator is.
    """
    from retarget.engine import LiveSession
    from retarget.media.sinks import TimedVideoSink
    from retarget.media.sources import open_source

    if out.suffix.lower() not in OUTPUT_VIDEO_SUFFIXES:
        raise BadInputError(f"--out {out}: live recording writes a video (.mp4)")
    size = retargeter.pipeline.image_size
    sink = TimedVideoSink(out, (size, size), video=video)  # before the camera: a sink that cannot open leaves no camera open
    try:
        source = open_source(driver)
    except BaseException:
        sink.abort()
        raise
    session = LiveSession(retargeter.pipeline, context, analyzer, settings, source,
                          on_output=lambda driven, image, stats: sink.write(image, driven.capture_time),
                          min_change=(live or LiveOptions()).min_change)
    session.start()
    try:
        while not session.wait(timeout=1.0):
            s = session.stats
            print(f"\rin {s.input_fps:5.1f} fps  out {s.output_fps:5.1f} fps  latency {s.latency_ms:6.0f} ms", end="", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stopped_at = time.monotonic()
        session.stop()
        print(file=sys.stderr)
    if session.error is not None and not isinstance(session.error, StopIteration):
        sink.abort()
        raise session.error if isinstance(session.error, RetargetError) else RetargetError(f"live stream stopped: {session.error}")
    if sink.frames_written == 0:
        sink.abort()
        raise RetargetError(f"no frame was rendered before the stream stopped, so {out} was not written")
    sink.close(end_time=stopped_at)
    print(f"recorded {sink.frames_written} frames ({sink.seconds:.1f} s) to {out}")
    return 0
