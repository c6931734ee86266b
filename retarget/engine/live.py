"""Live puppeteering as four stages on their own threads, latest-frame-wins between them:

  capture -> perception -> generation -> output (display / encode)

Each hand-over is a LatestFrameSlot: a stage that falls behind gets the newest item, never a backlog.
Perception runs at the driver's own rate (on_driven sees every frame it perceives, from the first one,
however slow the generator is) and perceives frame n+1 while frame n generates; the output stage runs
the caller's on_output (the recording's encoder, the virtual camera) off the generator's thread.
Stats: input fps, perceived frames, output fps and capture-to-output latency.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from retarget.engine.driving import DriverAnalyzer, DrivenFrame
from retarget.engine.stages import join_all
from retarget.media.sources import FrameSource
from retarget.config.generation import GenerationSettings


@dataclass
class LiveStats:
    input_fps: float = 0.0
    output_fps: float = 0.0
    latency_ms: float = 0.0
    captured: int = 0
    perceived: int = 0
    rendered: int = 0
    dropped: int = 0
    skipped: int = 0
    frames_without_face: int = 0
    started_at: float = 0.0  # time.monotonic() at start(): how long the first frame has been awaited
    first_output_at: float | None = None

    @property
    def waiting_s(self) -> float:
        """Seconds since start without an output (0 once the first frame is out)."""
        return 0.0 if self.first_output_at is not None or not self.started_at else time.monotonic() - self.started_at


class _Rate:
    """Frames per second over a sliding window of recent events."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: list[float] = []

    def tick(self, now: float) -> float:
        self.times.append(now)
        # Keep the last two events however far apart: a slow output (1 frame in 40 s) still has a rate.
        while len(self.times) > 2 and now - self.times[0] > self.window:
            self.times.pop(0)
        span = self.times[-1] - self.times[0]
        return (len(self.times) - 1) / span if span > 0 else 0.0


class LatestFrameSlot:
    """Holds at most one frame: a new one replaces the one not yet taken (counted as dropped)."""

    def __init__(self) -> None:
        self._frame = None
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = item
            self._cond.notify()

    def take(self, timeout: float | None = None):
        """The newest item, or None when closed and empty (or on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._frame is not None or self._closed, timeout=timeout)
            item, self._frame = self._frame, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


@dataclass
class LiveStream:
    """Live puppeteering: newest driver frame -> perception (on_driven) -> generator -> on_output(driven, image, stats)."""

    pipeline: object
    context: object
    analyzer: DriverAnalyzer
    settings: GenerationSettings
    source: FrameSource
    on_output: Callable[[DrivenFrame, np.ndarray, LiveStats], None]
    on_error: Callable[[BaseException], None] | None = None
    # A file played "live" is paced at its own frame rate, like a camera.
    pace: bool | None = None
    # Fast live preset: no new generation while the expression moved less than this
    # (mean absolute change of the expression vector since the last generated frame); 0 = always generate.
    min_change: float = 0.0
    # Every perceived driver frame, on the perception thread, at the driver's rate (the app's driver pane).
    on_driven: Callable[[DrivenFrame], None] | None = None
    stats: LiveStats = field(default_factory=LiveStats)

    def __post_init__(self) -> None:
        self._captured, self._perceived, self._generated = LatestFrameSlot(), LatestFrameSlot(), LatestFrameSlot()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_rate, self._out_rate = _Rate(), _Rate()
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def start(self) -> "LiveStream":
        self.stats.started_at = time.monotonic()
        self._threads = [
            threading.Thread(target=self._capture, daemon=True, name="live-capture"),
            threading.Thread(target=self._perceive, daemon=True, name="live-perception"),
            threading.Thread(target=self._generate, daemon=True, name="live-generate"),
            threading.Thread(target=self._output, daemon=True, name="live-output"),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for every stage to end: when this returns, no generate() of this session is
        running, so the pipeline is free for the next stream, and the source is closed under no reader.
        The stages check the stop flag between frames, so this waits at most one generate()."""
        self._stop.set()
        for slot in (self._captured, self._perceived, self._generated):
            slot.close()
        # Every worker ends before the source closes under it (a slow generate is waited for).
        join_all([t for t in self._threads if t is not threading.current_thread()])
        self.source.close()

    def wait(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)

    def _fail(self, err: BaseException) -> None:
        if self.error is None:
            self.error = err
            if self.on_error is not None:
                self.on_error(err)

    def _items(self, slot: LatestFrameSlot):
        """The newest items of an upstream slot until it is closed and empty, or the session stops."""
        while not self._stop.is_set():
            item = slot.take(timeout=0.5)
            if item is not None:
                yield item
            elif slot.closed:
                return

    def _capture(self) -> None:
        pace = self.pace if self.pace is not None else not self.source.live
        began = time.monotonic()
        try:
            for frame in self.source:
                if self._stop.is_set():
                    break
                if pace:
                    delay = began + frame.time - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                now = time.monotonic()
                self.stats.captured += 1
                self.stats.input_fps = self._in_rate.tick(now)
                self._captured.put((frame, now))
                self.stats.dropped = self._captured.dropped + self._perceived.dropped + self._generated.dropped
        except BaseException as err:  # e.g. a camera unplugged mid-stream
            self._fail(err)
        finally:
            self._captured.close()

    def _perceive(self) -> None:
        try:
            for frame, captured_at in self._items(self._captured):
                driven = self.analyzer(frame, capture_time=captured_at)
                self.stats.perceived += 1
                self.stats.frames_without_face = self.analyzer.frames_without_face
                if self.on_driven is not None:
                    self.on_driven(driven)
                self._perceived.put((driven, captured_at))
        except BaseException as err:
            self._fail(err)
            self._stop.set()  # nothing upstream is worth capturing any more
        finally:
            self._perceived.close()

    def _generate(self) -> None:
        last_image, last_expression = None, None
        try:
            for driven, captured_at in self._items(self._perceived):
                if last_image is not None and np.abs(driven.expression - last_expression).mean() < self.min_change:
                    image = last_image  # the face barely moved: show the last output again
                    self.stats.skipped += 1
                else:
                    image = self.pipeline.generate(self.context, driven.expression[None], self.settings)[0]
                    last_image, last_expression = image, driven.expression
                self._generated.put((driven, image, captured_at))
        except BaseException as err:
            self._fail(err)
            self._stop.set()
        finally:
            self._generated.close()

    def _output(self) -> None:
        """Stats, then the caller's on_output (display, recording encoder, virtual camera), off the generator's thread."""
        try:
            for driven, image, captured_at in self._items(self._generated):
                now = time.monotonic()
                if self.stats.first_output_at is None:
                    self.stats.first_output_at = now
                self.stats.rendered += 1
                self.stats.output_fps = self._out_rate.tick(now)
                self.stats.latency_ms = (now - captured_at) * 1000.0
                self.on_output(driven, image, self.stats)
        except BaseException as err:
            self._fail(err)
            self._stop.set()
        finally:
            self.finished.set()
