"""Variable frame rate: a driver's frame times are read from its packets and kept in the output's timestamps."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from retarget.media.video_sink import VideoSink
from retarget.media.video_sink import StampedVideoSink
from retarget.media.video_source import variable_frame_times

TIMES = [0.0, 0.1, 0.15, 0.2, 0.45, 0.5, 0.9, 1.0]  # irregular, like a phone recording that dropped frames
LAST = 0.05


def write_vfr(path, times=TIMES, size=(64, 64), last=LAST):
    """A variable-frame-rate MP4 made with PyAV: frame i at times[i] (a 1/1000 clock), the last lasting `last`."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=20)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.codec_context.max_b_frames = 0
        packets = []
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), 30 * i, np.uint8), format="rgb24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            packets += stream.encode(frame)
        packets += stream.encode()
        packets[-1].duration = round(last * 1000)
        for packet in packets:
            container.mux(packet)
    return path


def packet_times(path) -> tuple[list[float], float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = sorted((p.pts, p.duration) for p in container.demux(stream) if p.pts is not None)
        first = packets[0][0]
        return [float((p - first) * stream.time_base) for p, _ in packets], float(packets[-1][1] * stream.time_base)


def test_frame_times_of_a_vfr_file_are_read_and_a_constant_rate_gives_none(tmp_path):
    vfr = write_vfr(tmp_path / "vfr.mp4")
    times, last = variable_frame_times(vfr, len(TIMES))
    assert times == pytest.approx(TIMES, abs=1e-9) and last == pytest.approx(LAST)
    assert variable_frame_times(vfr, len(TIMES) + 1) is None  # packets that do not match the frames: no guess
    constant = tmp_path / "cfr.mp4"
    with VideoSink(constant, Fraction(30000, 1001), (64, 64)) as sink:
        for i in range(6):
            sink.write(np.full((64, 64, 3), i, np.uint8))
    assert variable_frame_times(constant, 6) is None


def test_the_stamped_sink_writes_each_frame_at_its_time(tmp_path):
    out = tmp_path / "out.mp4"
    with StampedVideoSink(out, TIMES, (64, 64), LAST) as sink:
        for i in range(len(TIMES)):
            sink.write(np.full((64, 64, 3), 20 * i, np.uint8))
    times, last = packet_times(out)
    assert times == pytest.approx(TIMES, abs=1e-4) and last == pytest.approx(LAST, abs=1e-4)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(TIMES[-1] + LAST, abs=1e-3)
