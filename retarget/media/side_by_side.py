"""Driver | output frames side by side, and the sink that writes them through an inner sink."""

from __future__ import annotations

import numpy as np

from retarget.media.frame_sink import FrameSink, as_rgb


def side_by_side(driver_rgb: np.ndarray, output_rgb: np.ndarray) -> np.ndarray:
    """driver | output, the driver scaled to the output's height (aspect kept)."""
    import cv2

    driver, output = as_rgb(driver_rgb), as_rgb(output_rgb)
    h = output.shape[0]
    if driver.shape[0] != h:
        w = max(1, int(round(driver.shape[1] * h / driver.shape[0])))
        driver = cv2.resize(driver, (w, h), interpolation=cv2.INTER_AREA)
    return np.concatenate([driver, output], axis=1)


def side_by_side_size(driver_size: tuple[int, int], output_size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of side_by_side() frames, to size the sink before the first frame arrives."""
    (dw, dh), (ow, oh) = driver_size, output_size
    return max(1, int(round(dw * oh / dh))) + ow, oh


class SideBySideSink(FrameSink):
    """Feeds driver|output frames to an inner sink (usually a VideoSink)."""

    def __init__(self, inner):
        self.inner = inner

    def write(self, driver_rgb: np.ndarray, output_rgb: np.ndarray) -> None:
        self.inner.write(side_by_side(driver_rgb, output_rgb))

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()
