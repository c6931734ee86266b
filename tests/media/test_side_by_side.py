"""The side-by-side sink (driver | output) and the callback sink."""

from __future__ import annotations

import numpy as np

from retarget.media.frame_sink import CallbackSink
from retarget.media.side_by_side import SideBySideSink, side_by_side, side_by_side_size


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
