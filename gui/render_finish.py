"""An offline render you can watch: its preview (the newest rendered frame), honest progress to the very end, and
the finished banner's Open and Show in folder (the desktop's own viewer and file manager, through QDesktopServices)."""

from __future__ import annotations

import time
from pathlib import Path

from PyQt6.QtCore import QUrl
from PyQt6.QtGui import QDesktopServices


def open_path(path: Path) -> bool:
    """Open `path` with the desktop's default application (the rendered video in a player)."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).resolve())))


def show_in_folder(path: Path) -> bool:
    """Open the folder that holds `path` in the desktop's file manager."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(Path(path).resolve().parent)))


def finished_actions(out: Path, side_by_side: Path | None = None) -> list[tuple[str, object]]:
    """The finished banner's buttons: Open the output (and the side-by-side video), Show in folder."""
    actions = [("Open", lambda: open_path(out))]
    if side_by_side is not None:
        actions.append(("Open side-by-side", lambda: open_path(side_by_side)))
    actions.append(("Show in folder", lambda: show_in_folder(out)))
    return actions


def clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class RenderRate:
    """Frames per second over the last frames (not since the start, which the model warm-up skews), for the ETA."""

    def __init__(self, window: int = 20) -> None:
        self.window = window
        self.marks: list[tuple[float, int]] = []
        self.started = time.monotonic()

    def eta_text(self, done: int, total: int, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        elapsed = now - self.started
        if total > 0 and done >= total:
            # Every frame is generated; the video is being encoded / assembled (with the audio): no ETA to invent.
            return f"finishing the video file\u2026 ({clock(elapsed)} so far)"
        self.marks.append((now, done))
        self.marks = self.marks[-self.window:]
        (t0, d0), (t1, d1) = self.marks[0], self.marks[-1]
        if d1 <= d0 or t1 <= t0:
            return f"first frames\u2026 {clock(elapsed)}" if done == 0 else f"{clock(elapsed)} elapsed"
        rate = (d1 - d0) / (t1 - t0)
        return f"{rate:.2f} frames/s \u00b7 ETA {clock((total - done) / rate)}" if total > 0 else f"{rate:.2f} frames/s"
