"""Background work for the window: one-shot tasks on QThreads and the bridge from the session's events.

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


class DriverFrame:
    """What the driver pane needs from one perceived driver frame, prepared on the engine's perception thread."""

    __slots__ = ("driver", "blendshapes", "raw_blendshapes", "time", "face_found", "landmarks", "face_boxes", "face_number")

    def __init__(self, driven):
        self.driver = rgb_to_qimage(driven.image) if driven.image is not None else None
        self.blendshapes = driven.blendshapes.copy()
        self.raw_blendshapes = None if driven.raw_blendshapes is None else driven.raw_blendshapes.copy()
        self.time = driven.time
        self.face_found = driven.face_found
        landmarks = getattr(driven, "landmarks", None)
        self.landmarks = None if landmarks is None else np.asarray(landmarks)[:, :2].copy()
        self.face_boxes = getattr(driven, "face_boxes", None)
        self.face_number = getattr(driven, "face_number", None)


class SessionBridge(QObject):
    """The session's events (any thread) as Qt signals (queued to the UI thread); live frames: newest wins.

    Only one frame_ready (and one driver_ready) is ever queued: if the UI has not picked up the previous
    frame yet, the new one replaces it, so a slow UI never builds a backlog of signals. Driver frames come
    at the driver's rate from the first one on, however slow generation is.
    """

    frame_ready = pyqtSignal()
    driver_ready = pyqtSignal()
    render_frame_ready = pyqtSignal()  # an offline render's newest frame (take_render), for its preview
    failed = pyqtSignal(object)  # the live stream's threads failed (opening, loading... fail in their own Task)
    state_changed = pyqtSignal(object, object)
    progressed = pyqtSignal(int, int)  # offline render: frames done, total

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: LiveFrame | None = None
        self._pending_driver: DriverFrame | None = None
        self._pending_render: tuple | None = None  # (driver QImage or None, output QImage)
        self.frames = 0
        self.driver_frames = 0
        session.on("driven", self._on_driven)
        session.on("frame", self._on_frame)
        session.on("error", self._on_error)
        session.on("state_changed", self.state_changed.emit)
        session.on("progress", self.progressed.emit)

    def _on_driven(self, driven) -> None:  # the engine's perception thread
        frame = DriverFrame(driven)
        with self._lock:
            self.driver_frames += 1
            notify = self._pending_driver is None
            self._pending_driver = frame
        if notify:
            self.driver_ready.emit()

    def take_driver(self) -> DriverFrame | None:  # UI thread
        with self._lock:
            frame, self._pending_driver = self._pending_driver, None
            return frame

    def _on_frame(self, result) -> None:  # the engine's output thread
        if result.stats is None:  # an offline render's frame: its preview (newest wins, as live)
            driven = result.driven
            driver = rgb_to_qimage(driven.image) if driven is not None and driven.image is not None else None
            with self._lock:
                notify = self._pending_render is None
                self._pending_render = (driver, rgb_to_qimage(result.image))
            if notify:
                self.render_frame_ready.emit()
            return
        frame = LiveFrame(result.driven, result.image, result.stats)
        with self._lock:
            self.frames += 1
            notify = self._pending is None
            self._pending = frame
        if notify:
            self.frame_ready.emit()

    def _on_error(self, message: str, err: BaseException, during: str) -> None:
        if during == "stream":
            self.failed.emit(err)

    def take_render(self) -> tuple | None:  # UI thread
        with self._lock:
            frame, self._pending_render = self._pending_render, None
            return frame

    def take(self) -> LiveFrame | None:  # UI thread
        with self._lock:
            frame, self._pending = self._pending, None
            return frame


class RenderProgress:
    """An offline render's progress as the UI shows it: frames done, total, and when it started (for the ETA)."""

    def __init__(self) -> None:
        self.done, self.total = 0, 0
        self.started = time.monotonic()

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, total


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
