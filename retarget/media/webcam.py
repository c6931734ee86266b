"""Live cameras through OpenCV capture, and the probe that lists the ones present."""

from __future__ import annotations

import contextlib
import time

from retarget.errors import BadInputError
from retarget.media.frame_source import Frame, FrameSource


@contextlib.contextmanager
def _quiet_opencv():
    """OpenCV logs every failed backend probe to stderr; probing for cameras should be silent."""
    import cv2

    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(previous)


def _camera_label(device: int | str) -> str:
    return f"webcam:{device}" if isinstance(device, int) else str(device)


class WebcamSource(FrameSource):
    """A live camera through OpenCV capture; times come from a monotonic clock."""

    live = True

    def __init__(self, device: int | str, width: int | None = None, height: int | None = None, fps: float | None = None):
        import cv2

        if isinstance(device, str) and device.isdigit():
            device = int(device)
        self.device = device
        label = _camera_label(device)
        with _quiet_opencv():
            # A device node needs V4L2; the default backend list would also try FFmpeg, which logs loudly.
            is_node = isinstance(device, str) and device.startswith("/dev/video")
            cap = cv2.VideoCapture(device, cv2.CAP_V4L2) if is_node else cv2.VideoCapture(device)
            if not cap.isOpened():
                cap.release()
                raise BadInputError(f"no camera at {label} (it could not be opened; is one connected and free?)")
            if width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            if height:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps:
                cap.set(cv2.CAP_PROP_FPS, fps)
            self._t0 = time.monotonic()
            ok, bgr = cap.read()
        if not ok or bgr is None:
            cap.release()
            raise BadInputError(f"no camera at {label} (it opened but delivered no frame)")
        self._cap = cap
        self._pending = (time.monotonic() - self._t0, bgr)
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or fps or 30.0)
        self.size = (bgr.shape[1], bgr.shape[0])
        self._index = 0

    def __next__(self) -> Frame:
        import cv2

        if self._cap is None:
            raise StopIteration
        if self._pending is not None:
            (t, bgr), self._pending = self._pending, None
        else:
            ok, bgr = self._cap.read()
            t = time.monotonic() - self._t0
            if not ok or bgr is None:
                self.decode_error = f"{_camera_label(self.device)} stopped delivering frames"
                self.close()
                raise StopIteration
        index = self._index
        self._index += 1
        return Frame(index=index, time=t, image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def list_cameras(max_index: int = 8) -> list[int]:
    """Indices of cameras that open and deliver a frame, probed without log noise."""
    import cv2

    found = []
    with _quiet_opencv():
        for index in range(max_index):
            cap = cv2.VideoCapture(index)
            try:
                if cap.isOpened() and cap.read()[0]:
                    found.append(index)
            finally:
                cap.release()
    return found
