"""Live mode (LiveStream): the newest frame wins, memory stays bounded, unchanged expressions are not regenerated,
and stop() waits for a generate call before the source closes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from retarget.engine import LiveStream
from retarget.media.sources import Frame, FrameSource
from retarget.config.generation import GenerationSettings
from tests.engine.test_stages import SlowSource


class CountingSource(FrameSource):
    """A fast live source: frame i carries i in its pixels."""

    live = True

    def __init__(self, limit: int = 10_000):
        self.limit, self.i = limit, 0
        self.fps = 1000.0

    def __next__(self) -> Frame:
        if self.i >= self.limit:
            raise StopIteration
        time.sleep(0.001)
        frame = Frame(index=self.i, time=self.i / 1000.0, image=np.zeros((8, 8, 3), np.uint8))
        self.i += 1
        return frame


class SlowGenerator:
    def __init__(self, source: CountingSource):
        self.source = source
        self.picked: list[tuple[int, int]] = []  # (frame rendered, newest frame captured at that moment)

    def generate(self, context, expressions, settings, **kwargs):
        time.sleep(0.1)
        return np.zeros((len(expressions), 4, 4, 3), np.uint8)


class PassThroughAnalyzer:
    frames_without_face = 0

    def __init__(self, source, generator):
        self.source, self.generator = source, generator

    def __call__(self, frame, capture_time=None):
        from retarget.engine.driving import DrivenFrame

        self.generator.picked.append((frame.index, self.source.i - 1))
        return DrivenFrame(frame.index, frame.time, frame.image, np.zeros(52, np.float32), np.zeros(52, np.float32), True, capture_time)


@pytest.mark.timing
def test_live_mode_renders_the_newest_frame_with_bounded_memory():
    import tracemalloc

    source = CountingSource()
    generator = SlowGenerator(source)
    outputs = []
    session = LiveStream(generator, None, PassThroughAnalyzer(source, generator), GenerationSettings(), source,
                          on_output=lambda driven, image, stats: outputs.append((driven.index, stats.latency_ms)))
    tracemalloc.start()
    session.start()
    time.sleep(0.6)
    _, peak_early = tracemalloc.get_traced_memory()
    time.sleep(1.2)
    _, peak_late = tracemalloc.get_traced_memory()
    session.stop()
    tracemalloc.stop()
    assert len(outputs) >= 8
    assert session.stats.captured > 10 * len(outputs)  # the source ran far ahead ...
    assert session.stats.dropped > 0  # ... and old frames were dropped, not queued
    for rendered, newest in generator.picked[1:]:
        assert newest - rendered <= 2  # always (one of) the newest frames
    assert peak_late - peak_early < 2_000_000
    assert 90 <= outputs[-1][1] < 1000  # latency covers the 100 ms generation


class StillAnalyzer(PassThroughAnalyzer):
    """Expression that changes only every 10th frame."""

    def __call__(self, frame, capture_time=None):
        driven = super().__call__(frame, capture_time)
        driven.expression = np.full(52, (frame.index // 10) * 0.5, np.float32)
        return driven


def test_live_skips_generation_while_the_expression_barely_changes():
    calls = []

    class CountingGenerator(SlowGenerator):
        def generate(self, context, expressions, settings, **kwargs):
            calls.append(float(expressions[0][0]))
            return np.full((1, 4, 4, 3), len(calls), np.uint8)

    source = CountingSource(limit=40)
    generator = CountingGenerator(source)
    outputs = []
    session = LiveStream(generator, None, StillAnalyzer(source, generator), GenerationSettings(), source,
                          on_output=lambda d, image, s: outputs.append(int(image[0, 0, 0])), pace=False, min_change=0.1)
    session.start()
    assert session.wait(timeout=30)
    session.stop()
    assert session.stats.skipped > 0 and len(calls) < session.stats.rendered
    assert len(set(calls)) == len(calls)  # generated only when the expression changed


def test_live_stop_waits_for_a_slow_generate_before_closing_the_source():
    from retarget.engine import LiveStream
    from retarget.config.generation import GenerationSettings

    started = threading.Event()

    class SlowPipeline:
        def generate(self, context, expressions, settings):
            started.set()
            time.sleep(0.5)
            return np.zeros((1, 8, 8, 3), np.uint8)

    class Analyzer:
        frames_without_face = 0

        def __call__(self, frame, capture_time=None):
            from retarget.engine.driving import DrivenFrame

            return DrivenFrame(frame.index, frame.time, frame.image, np.zeros(52, np.float32), np.zeros(52, np.float32), True)

    source = SlowSource(frames=1000, delay=0.01)
    session = LiveStream(SlowPipeline(), None, Analyzer(), GenerationSettings(), source, on_output=lambda *a: None)
    session.start()
    assert started.wait(timeout=10)
    session.stop()
    assert source.readers_alive_at_close == []


class BlockingGenerator:
    """generate() blocks until released: a stand-in for a slow model on a slow machine."""

    def __init__(self):
        self.release = threading.Event()
        self.entered = threading.Event()
        self.threads: set[str] = set()
        self.calls = 0
        self.running = 0

    def generate(self, context, expressions, settings, **kwargs):
        self.threads.add(threading.current_thread().name)
        self.calls += 1
        self.running += 1
        self.entered.set()
        try:
            self.release.wait(timeout=30)
        finally:
            self.running -= 1
        return np.zeros((len(expressions), 4, 4, 3), np.uint8)


class RecordingAnalyzer(PassThroughAnalyzer):
    """Notes the thread it runs on and whether a generate() was running at that moment."""

    def __init__(self, source, generator):
        super().__init__(source, generator)
        self.threads: set[str] = set()
        self.during_generate = 0

    def __call__(self, frame, capture_time=None):
        self.threads.add(threading.current_thread().name)
        if self.generator.running:
            self.during_generate += 1
        return super().__call__(frame, capture_time)


@pytest.mark.timing
def test_perception_runs_on_its_own_thread_while_generate_blocks():
    source = CountingSource()
    generator = BlockingGenerator()
    generator.picked = []
    analyzer = RecordingAnalyzer(source, generator)
    driven_seen, outputs = [], []
    session = LiveStream(generator, None, analyzer, GenerationSettings(), source,
                          on_output=lambda d, image, s: outputs.append(d.index), on_driven=lambda d: driven_seen.append(d.index))
    session.start()
    try:
        assert generator.entered.wait(timeout=10)
        seen_when_blocked = len(driven_seen)
        deadline = time.monotonic() + 10
        while len(driven_seen) < seen_when_blocked + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        # The generator is still inside its first call: no output yet, but the driver kept being perceived and shown.
        assert generator.calls == 1 and outputs == []
        assert len(driven_seen) >= seen_when_blocked + 20
        assert analyzer.during_generate >= 20  # perception of the next frames overlapped generate()
        assert analyzer.threads.isdisjoint(generator.threads)  # on different threads
        assert driven_seen == sorted(driven_seen)  # at the driver's own pace, in order
        generator.release.set()
        deadline = time.monotonic() + 30
        while not outputs and time.monotonic() < deadline:
            time.sleep(0.01)
        assert outputs  # released: the generated frame came out (before stop, which may drop a frame in flight)
    finally:
        generator.release.set()
        session.stop()
    assert generator.running == 0  # stop() returned: no generate() of the session still runs
    assert source.i > 0


def test_output_callback_runs_off_the_generator_thread_and_the_newest_perceived_frame_is_generated():
    source = CountingSource(limit=400)
    generator = SlowGenerator(source)
    generated_from, output_threads = [], set()

    class Tracking(SlowGenerator):
        def generate(self, context, expressions, settings, **kwargs):
            generated_from.append(threading.current_thread().name)
            return super().generate(context, expressions, settings)

    generator = Tracking(source)
    session = LiveStream(generator, None, PassThroughAnalyzer(source, generator), GenerationSettings(), source,
                          on_output=lambda d, image, s: output_threads.add(threading.current_thread().name), pace=False)
    session.start()
    assert session.wait(timeout=30)
    session.stop()
    assert output_threads and output_threads.isdisjoint(generated_from)
    assert session.stats.perceived > session.stats.rendered  # perception ran ahead; generation took the newest
