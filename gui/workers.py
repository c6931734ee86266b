"""Background work for the window: one-shot tasks on QThreads and the bridge from the live engine's threads.

Everything slow (model loading, identity embedding, opening a camera, stopping a stream, closing a
recording, offline rendering) runs off the UI thread; results come back through Qt signals, which
are queued across threads, so slots always run on the UI thread.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from typing import Callable

import numpy as np
from PyQt6.QtCore import QObject, QThread, pyqtSignal

from gui.views import rgb_to_qimage


def error_text(err: BaseException) -> str:
    """One line for the user: our own errors already are; anything else gets its type name."""
    from retarget.errors import RetargetError, explain, first_line

    if isinstance(err, RetargetError):
        return str(err)
    expected = explain(err)  # the same messages as the CLI's for expected kinds of failure
    if expected is not None:
        return expected
    first = first_line(err)
    return first if first == type(err).__name__ else f"{type(err).__name__}: {first}"


class Task(QThread):
    """Runs fn() once on its own thread; emits succeeded(result) or failed(exception)."""

    succeeded = pyqtSignal(object)
    failed = pyqtSignal(object)

    def __init__(self, fn: Callable, parent=None, name: str = "task"):
        super().__init__(parent)
        self.fn = fn
        self.setObjectName(name)

    def run(self) -> None:
        try:
            result = self.fn()
        except BaseException as err:  # handed to the UI, which shows it as a message
            if os.environ.get("RETARGET_DEBUG"):
                import traceback

                traceback.print_exc()
            self.failed.emit(err)
        else:
            self.succeeded.emit(result)


class LiveFrame:
    """What the UI needs from one rendered frame, prepared on the engine's render thread."""

    __slots__ = ("driver", "output", "output_rgb", "blendshapes", "raw_blendshapes", "stats", "time", "face_found", "landmarks",
                 "face_boxes", "face_number")

    def __init__(self, driven, image, stats):
        self.driver = rgb_to_qimage(driven.image) if driven.image is not None else None
        self.output = rgb_to_qimage(image)
        self.output_rgb = image
        self.blendshapes = driven.blendshapes.copy()
        self.raw_blendshapes = None if driven.raw_blendshapes is None else driven.raw_blendshapes.copy()
        self.stats = replace(stats)  # a snapshot: the engine keeps mutating its own
        self.time = driven.time
        self.face_found = driven.face_found
        landmarks = getattr(driven, "landmarks", None)
        self.landmarks = None if landmarks is None else np.asarray(landmarks)[:, :2].copy()  # x, y pixels for the overlay
        self.face_boxes = getattr(driven, "face_boxes", None)  # every face, left to right (the face picker's boxes)
        self.face_number = getattr(driven, "face_number", None)  # the one driving (1-based)


class LiveBridge(QObject):
    """Receives LiveSession callbacks (engine threads) and signals the UI, newest frame wins.

    Only one frame_ready is ever queued: if the UI has not picked up the previous frame yet, the new
    one replaces it, so a slow UI never builds a backlog of signals.
    """

    frame_ready = pyqtSignal()
    failed = pyqtSignal(object)

    def __init__(self, extra_sinks: Callable[[object, object], None] | None = None):
        super().__init__()
        self._lock = threading.Lock()
        self._pending: LiveFrame | None = None
        self.extra_sinks = extra_sinks  # recording, CSV rows, virtual camera: run here, off the UI thread
        self.frames = 0

    def on_output(self, driven, image, stats) -> None:  # engine render thread
        frame = LiveFrame(driven, image, stats)
        if self.extra_sinks is not None:
            self.extra_sinks(driven, image)
        with self._lock:
            self.frames += 1
            notify = self._pending is None
            self._pending = frame
        if notify:
            self.frame_ready.emit()

    def on_error(self, err: BaseException) -> None:  # engine thread
        self.failed.emit(err)

    def take(self) -> LiveFrame | None:  # UI thread
        with self._lock:
            frame, self._pending = self._pending, None
            return frame


class RenderProgress(QObject):
    """Offline render progress, counted in on_frame (render thread) and signalled to the UI."""

    progressed = pyqtSignal(int, int)  # frames done, total

    def __init__(self, total: int):
        super().__init__()
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def on_frame(self, driven, image) -> None:
        self.done += 1
        self.progressed.emit(self.done, self.total)


def memory_in_use() -> str:
    """Process RSS (psutil, else the resource module's peak) and CUDA memory when a GPU is in use."""
    text = ""
    try:
        import psutil

        text = f"RAM {psutil.Process().memory_info().rss / 2**20:.0f} MiB"
    except ImportError:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # ru_maxrss is KiB on Linux, bytes on macOS
        mib = peak / 2**20 if sys.platform == "darwin" else peak / 1024
        text = f"RAM peak {mib:.0f} MiB"
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            text += f", CUDA {torch.cuda.memory_allocated() / 2**20:.0f} MiB"
    except Exception:  # memory display must never break the status bar
        pass
    return text
