"""Where the live output goes besides the screen: the recording, the virtual camera, the run's blendshape rows.

Frames arrive as the generator's aligned crops and leave in the chosen frame (FrameOptions: the identity
photo with the face pasted back, or the crop), the same for the screen, the recording and the virtual camera.
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

from retarget.config.frame import FrameOptions
from retarget.face.paste import frame_output
from retarget.provenance import mark_frame


class LiveOutputs:
    """The recording sink, the virtual camera and the run's (time, blendshapes) rows of one live session."""

    def __init__(self, keep_rows: bool = True) -> None:
        self.keep_rows = keep_rows  # the run's blendshape rows, for a CSV export (the app); a CLI stream has no use for them
        self.lock = threading.Lock()
        self.recorder = None  # a TimedVideoSink while recording
        self.record_started: float | None = None
        self.record_last_frame_at: float | None = None  # when the recording last got a frame (a stalled one says so)
        self.vcam = None
        self.vcam_error: str | None = None
        self.rows: list = []
        self.frame = FrameOptions()  # the output frame; swapped whole (Session.set_frame), read once per frame
        self.placement = None  # the identity's FacePlacement (retarget.face.paste), for the full frame

    def frame_size(self, crop_size: int) -> tuple[int, int]:
        """(width, height) of the frames write() passes on now."""
        if self.frame.frame == "full" and self.placement is not None:
            height, width = self.placement.shape[:2]
            return width, height
        return crop_size, crop_size

    # ------------------------------------------------------------------ render thread
    def write(self, driven, image: np.ndarray) -> np.ndarray:
        """One generated crop to every live output in the chosen frame; returns that framed image (for the screen)."""
        frame, placement = self.frame, self.placement
        image = frame_output(image[None], placement, frame.frame, frame.colour_match)[0]
        if self.keep_rows:
            self.rows.append((driven.time, driven.blendshapes.copy() if driven.face_found else None))
        with self.lock:
            if self.recorder is not None:
                # The capture time of the driver frame this output shows: the file plays in real time.
                self.recorder.write(fit_into(image, getattr(self.recorder, "size", None)), driven.capture_time)
                self.record_last_frame_at = time.monotonic()
            if self.vcam is not None:
                try:
                    # Watermarked too (about 1 ms a 512x512 frame: docs/PROVENANCE.md), unless marking is off.
                    self.vcam.send(np.ascontiguousarray(mark_frame(fit_into(image, _camera_size(self.vcam, image)))))
                except Exception as err:  # a virtual camera that went away must not stop the stream
                    self.vcam_error = str(err) or type(err).__name__
                    self.vcam = None
        return image

    # ------------------------------------------------------------------ the caller's thread
    def start_recording(self, path: Path, size: int | tuple[int, int], video=None):
        """Open a TimedVideoSink on `path` (a file we reserved, or a new one) of `size` (a side, or (width, height)),
        encoding with `video` (retarget.config.VideoOptions); returns it."""
        from retarget.media.video_sink import TimedVideoSink

        sink = TimedVideoSink(path, (size, size) if isinstance(size, int) else tuple(size), video=video)
        with self.lock:
            self.recorder = sink
            self.record_started = time.monotonic()
            self.record_last_frame_at = None
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

    def recorded_frames(self) -> int:
        recorder = self.recorder
        return 0 if recorder is None else recorder.frames_written

    def since_last_recorded(self) -> float | None:
        """Seconds since the recording's last frame; None before its first."""
        last = self.record_last_frame_at
        return None if last is None else time.monotonic() - last

    def set_vcam(self, cam) -> object:
        """Swap the virtual camera; returns the previous one (to close)."""
        with self.lock:
            old, self.vcam = self.vcam, cam
            self.vcam_error = None
        return old


def camera_size(size: tuple[int, int]) -> tuple[int, int]:
    """A virtual camera's (width, height) for frames of `size`: even sides (YUV cameras need them; fit_into pads)."""
    return int(size[0]) + int(size[0]) % 2, int(size[1]) + int(size[1]) % 2


def _camera_size(cam, image: np.ndarray) -> tuple[int, int]:
    """A virtual camera's (width, height) (pyvirtualcam's Camera has both); the image's own when it does not say."""
    width, height = getattr(cam, "width", None), getattr(cam, "height", None)
    return (int(width), int(height)) if width and height else (image.shape[1], image.shape[0])


def fit_into(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """`image` in a (width, height) frame: as it is when it fits exactly, else scaled with its aspect kept and
    centred on black (a frame change while a recording or a virtual camera runs at the old size)."""
    import cv2

    if size is None:
        return image
    width, height = int(size[0]), int(size[1])
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - new_w) // 2, (height - new_h) // 2
    out[y0:y0 + new_h, x0:x0 + new_w] = resized
    return out
