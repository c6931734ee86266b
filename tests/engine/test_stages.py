"""The offline stages: decode and perception threads end before the stream returns, even when its consumer stops early."""

from __future__ import annotations

import threading
import time

import numpy as np


class SlowSource:
    """A source whose frames take a while; records whether any reader was still running at close()."""

    def __init__(self, frames: int = 50, delay: float = 0.02):
        from retarget.media.sources import Frame

        self.frames = [Frame(i, i / 25, np.zeros((8, 8, 3), np.uint8)) for i in range(frames)]
        self.delay = delay
        self.readers_alive_at_close: list[str] | None = None
        self.live = False
        self.fps = 25.0

    def __iter__(self):
        for frame in self.frames:
            time.sleep(self.delay)
            yield frame

    def close(self):
        self.readers_alive_at_close = [t.name for t in threading.enumerate()
                                       if t.name in ("decode", "perception", "live-capture", "live-render") and t.is_alive()]


def test_perception_threads_end_before_the_stream_returns():
    from retarget.engine import perception_stream

    class SlowAnalyzer:
        def __call__(self, frame):
            time.sleep(0.05)
            return frame

    source = SlowSource()
    stream = perception_stream(source, SlowAnalyzer())
    next(stream)
    stream.close()  # the consumer stops early: the workers are told to stop and waited for
    source.close()
    assert source.readers_alive_at_close == []
