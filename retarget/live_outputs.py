"""Where the live output goes besides the screen: the recording, the virtual camera, the run's blendshape rows.

LiveOutputs.write() runs on the live stream's render thread (encoding must not load the caller's
thread); everything else runs on the caller's thread, under one lock. Recordings get new, unique
names and never replace an existing file: the name is reserved by creating the file exclusively
(retarget.outputs.reserve_new_file), and only our own placeholder is ever replaced by the finished file.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from retarget.provenance import mark_frame


class LiveOutputs:
    """The recording sink, the virtual camera and the run's (time, blendshapes) rows of one live session."""

    def __init__(self, keep_rows: bool = True) -> None:
        self.keep_rows = keep_rows  # the run's blendshape rows, for a CSV export (the app); a CLI stream has no use for them
        self.lock = threading.Lock()
        self.recorder = None  # a TimedVideoSink while recording
        self.record_started: float | None = None
        self.vcam = None
        self.vcam_error: str | None = None
        self.rows: list = []

    # ------------------------------------------------------------------ render thread
    def write(self, driven, image: np.ndarray) -> None:
        if self.keep_rows:
            self.rows.append((driven.time, driven.blendshapes.copy() if driven.face_found else None))
        with self.lock:
            if self.recorder is not None:
                # The capture time of the driver frame this output shows: the file plays in real time.
                self.recorder.write(image, driven.capture_time)
            if self.vcam is not None:
                try:
                    # Watermarked too (about 1 ms a 512x512 frame: docs/PROVENANCE.md), unless marking is off.
                    self.vcam.send(np.ascontiguousarray(mark_frame(image)))
                except Exception as err:  # a virtual camera that went away must not stop the stream
                    self.vcam_error = str(err) or type(err).__name__
                    self.vcam = None

    # ------------------------------------------------------------------ the caller's thread
    def start_recording(self, path: Path, size: int, video=None):
        """Open a TimedVideoSink on `path` (a file we reserved, or a new one), encoding with `video`
        (retarget.config.VideoOptions); returns it."""
        from retarget.media.sinks import TimedVideoSink

        sink = TimedVideoSink(path, (size, size), video=video)
        with self.lock:
            self.recorder = sink
            self.record_started = time.monotonic()
        return sink

    def take_recorder(self):
        """Stop feeding the recording; returns (sink, stop time) for closing off the UI thread."""
        with self.lock:
            sink, self.recorder = self.recorder, None
            self.record_started = None
        return sink, time.monotonic()

    def elapsed(self) -> float:
        started = self.record_started
        return 0.0 if started is None else time.monotonic() - started

    def set_vcam(self, cam) -> object:
        """Swap the virtual camera; returns the previous one (to close)."""
        with self.lock:
            old, self.vcam = self.vcam, cam
            self.vcam_error = None
        return old
