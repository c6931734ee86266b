"""Live puppeteering: a capture thread keeps only the newest frame (latest-frame-wins); a worker
renders it and reports input fps, output fps and capture-to-output latency."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from retarget.driving import DriverAnalyzer, DrivenFrame
from retarget.engine.stages import join_all
from retarget.media.sources import FrameSource
from retarget.settings import GenerationSettings


@dataclass
class LiveStats:
    input_fps: float = 0.0
    output_fps: float = 0.0
    latency_ms: float = 0.0
    captured: int = 0
    rendered: int = 0
    dropped: int = 0
    skipped: int = 0
    frames_without_face: int = 0


class _Rate:
    """Frames per second over a sliding window of recent events."""

    def __init__(self, window: float = 2.0):
        self.window = window
        self.times: list[float] = []

    def tick(self, now: float) -> float:
        self.times.append(now)
        while self.times and now - self.times[0] > self.window:
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
class LiveSession:
    """Live puppeteering: newest driver frame -> perception -> generator -> on_output(driven, image, stats)."""

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
    stats: LiveStats = field(default_factory=LiveStats)

    def __post_init__(self) -> None:
        self._slot = LatestFrameSlot()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._in_rate, self._out_rate = _Rate(), _Rate()
        self.error: BaseException | None = None
        self.finished = threading.Event()

    def start(self) -> "LiveSession":
        self._threads = [
            threading.Thread(target=self._capture, daemon=True, name="live-capture"),
            threading.Thread(target=self._render, daemon=True, name="live-render"),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for both threads to end: when this returns, no generate() of this session is
        running, so the pipeline is free for the next stream, and the source is closed under no reader.
        The threads check the stop flag between frames, so this waits at most one generate()."""
        self._stop.set()
        self._slot.close()
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

    def _capture(self) -> None:
        pace = self.pace if self.pace is not None else not getattr(self.source, "live", False)
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
                self._slot.put((frame, now))
                self.stats.dropped = self._slot.dropped
        except BaseException as err:  # e.g. a camera unplugged mid-stream
            self._fail(err)
        finally:
            self._slot.close()

    def _render(self) -> None:
        last_image, last_expression = None, None
        try:
            while not self._stop.is_set():
                item = self._slot.take(timeout=0.5)
                if item is None:
                    if self._slot._closed:
                        break
                    continue
                frame, captured_at = item
                driven = self.analyzer(frame, capture_time=captured_at)
                if last_image is not None and np.abs(driven.expression - last_expression).mean() < self.min_change:
                    image = last_image  # the face barely moved: show the last output again
                    self.stats.skipped += 1
                else:
                    image = self.pipeline.generate(self.context, driven.expression[None], self.settings)[0]
                    last_image, last_expression = image, driven.expression
                now = time.monotonic()
                self.stats.rendered += 1
                self.stats.output_fps = self._out_rate.tick(now)
                self.stats.latency_ms = (now - captured_at) * 1000.0
                self.stats.frames_without_face = self.analyzer.frames_without_face
                self.on_output(driven, image, self.stats)
        except BaseException as err:
            self._fail(err)
        finally:
            self.finished.set()
