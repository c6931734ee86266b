"""The timeline: a track's curves over its frames, the playhead and the selected range (mouse and keys).

Click moves the playhead, drag selects frames; while it has focus Left/Right step a frame (Shift
for 10), Home/End jump, Space plays/pauses at the track's frame rate, so the preview's own Space
keeps its meaning.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QColor, QPainter, QPainterPath, QPen
from PyQt6.QtWidgets import QWidget

from gui.views import OTHER_COLOUR, REGION_COLOURS
from retarget.expression.track import ExpressionTrack


def channel_colour(name: str) -> QColor:
    return next((c for prefix, c in REGION_COLOURS.items() if name.startswith(prefix)), OTHER_COLOUR)


class TimelineView(QWidget):
    """Curves of the selected channels over the track's frames, the playhead and the selected range."""

    playhead_moved = pyqtSignal(int)
    selection_changed = pyqtSignal(int, int)  # [start, stop); (0, 0): none
    playing_changed = pyqtSignal(bool)

    LEFT, BOTTOM, TOP = 34, 18, 6

    def __init__(self, parent=None):
        super().__init__(parent)
        self.track: ExpressionTrack | None = None
        self.columns: np.ndarray = np.arange(0)
        self.playhead = 0
        self.selection: tuple[int, int] | None = None
        self._anchor: int | None = None
        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._advance)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)  # hovering names the curves under the pointer
        self.setMinimumHeight(140)
        self.setToolTip("Click: move the playhead; drag: select frames. With focus: Left/Right step (Shift: 10), "
                        "Home/End, Space plays/pauses")

    # ------------------------------------------------------------------ state
    def set_track(self, track: ExpressionTrack | None) -> None:
        self.stop()
        self.track = track
        self.playhead, self.selection = 0, None
        self.selection_changed.emit(0, 0)
        self.playhead_moved.emit(0)
        self.update()

    def set_columns(self, columns) -> None:
        self.columns = np.asarray(columns, dtype=int)
        self.update()

    def frame_count(self) -> int:
        return self.track.frame_count if self.track is not None else 0

    def set_playhead(self, frame: int) -> None:
        n = self.frame_count()
        frame = int(min(max(frame, 0), max(n - 1, 0)))
        if frame != self.playhead:
            self.playhead = frame
            self.playhead_moved.emit(frame)
        self.update()

    def set_selection(self, start: int, stop: int) -> None:
        n = self.frame_count()
        start, stop = max(0, min(start, n)), max(0, min(stop, n))
        self.selection = (start, stop) if stop > start else None
        self.selection_changed.emit(*(self.selection or (0, 0)))
        self.update()

    # ------------------------------------------------------------------ playback
    @property
    def playing(self) -> bool:
        return self.play_timer.isActive()

    def toggle_play(self) -> None:
        self.stop() if self.playing else self.play()

    def play(self) -> None:
        if self.track is None or self.frame_count() < 2:
            return
        if self.playhead >= self.frame_count() - 1:
            self.set_playhead(0)
        self.play_timer.start(max(1, int(round(1000.0 / max(self.track.fps, 1.0)))))
        self.playing_changed.emit(True)

    def stop(self) -> None:
        if self.play_timer.isActive():
            self.play_timer.stop()
            self.playing_changed.emit(False)

    def _advance(self) -> None:
        if self.playhead >= self.frame_count() - 1:
            self.stop()
        else:
            self.set_playhead(self.playhead + 1)

    # ------------------------------------------------------------------ geometry
    def _plot(self) -> QRectF:
        return QRectF(self.LEFT, self.TOP, max(1, self.width() - self.LEFT - 6), max(1, self.height() - self.TOP - self.BOTTOM))

    def frame_x(self, frame: float) -> float:
        plot = self._plot()
        return plot.left() + (frame + 0.5) * plot.width() / max(self.frame_count(), 1)

    def frame_at(self, x: float) -> int:
        plot = self._plot()
        n = self.frame_count()
        return int(min(max((x - plot.left()) / plot.width() * n, 0), max(n - 1, 0)))

    # ------------------------------------------------------------------ input
    def mousePressEvent(self, event) -> None:
        if self.track is None or event.button() != Qt.MouseButton.LeftButton:
            return
        self.setFocus()
        frame = self.frame_at(event.position().x())
        self._anchor = frame
        self.set_playhead(frame)

    def label_at(self, x: float, y: float | None = None) -> str:
        """What hovering shows: the frame, its time, and the shown channels nearest the pointer's height."""
        if self.track is None or not len(self.columns):
            return ""
        frame = self.frame_at(x)
        values = self.track.values[frame, self.columns]
        if not np.isfinite(values).all():
            return f"frame {frame}: no face"
        plot = self._plot()
        level = 0.5 if y is None else (plot.bottom() - y) / plot.height()
        nearest = np.argsort(np.abs(values - level))[:3]
        names = ", ".join(f"{self.track.names[self.columns[i]]} {values[i]:.2f}" for i in nearest)
        return f"frame {frame} ({self.track.times[frame]:.2f} s): {names}"

    def mouseMoveEvent(self, event) -> None:
        if self.track is None:
            return
        if self._anchor is None:
            from PyQt6.QtWidgets import QToolTip

            text = self.label_at(event.position().x(), event.position().y())
            if text:
                QToolTip.showText(event.globalPosition().toPoint(), text, self)
            return
        frame = self.frame_at(event.position().x())
        self.set_selection(min(self._anchor, frame), max(self._anchor, frame) + 1)
        self.set_playhead(frame)

    def mouseReleaseEvent(self, event) -> None:
        self._anchor = None

    def keyPressEvent(self, event) -> None:
        key = event.key()
        step = 10 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 1
        if key == Qt.Key.Key_Left:
            self.set_playhead(self.playhead - step)
        elif key == Qt.Key.Key_Right:
            self.set_playhead(self.playhead + step)
        elif key == Qt.Key.Key_Home:
            self.set_playhead(0)
        elif key == Qt.Key.Key_End:
            self.set_playhead(self.frame_count() - 1)
        elif key == Qt.Key.Key_Space:
            self.toggle_play()
        else:
            super().keyPressEvent(event)
            return
        event.accept()

    # ------------------------------------------------------------------ painting
    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(32, 32, 36))
        plot = self._plot()
        painter.setPen(QColor(70, 70, 78))
        for level in (0.0, 0.5, 1.0):
            y = plot.bottom() - level * plot.height()
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            painter.setPen(QColor(150, 150, 160))
            painter.drawText(QRectF(0, y - 8, self.LEFT - 4, 16), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, f"{level:g}")
            painter.setPen(QColor(70, 70, 78))
        if self.track is None:
            painter.setPen(QColor(150, 150, 160))
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "Open an expression track (a CSV from `retarget extract` or Live Link Face)")
            return
        n = self.frame_count()
        per_frame = plot.width() / n
        missing = ~self.track.face_found
        for i in np.nonzero(missing)[0]:  # frames without a face: the render holds the last expression there
            painter.fillRect(QRectF(plot.left() + i * per_frame, plot.top(), max(per_frame, 1.0), plot.height()), QColor(60, 45, 45))
        if self.selection is not None:
            a, b = self.selection
            painter.fillRect(QRectF(plot.left() + a * per_frame, plot.top(), (b - a) * per_frame, plot.height()), QColor(70, 90, 130, 120))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        xs = [self.frame_x(i) for i in range(n)]
        for column in self.columns:
            values = self.track.values[:, column]
            path, drawing = QPainterPath(), False
            for x, v in zip(xs, values.tolist()):
                if not np.isfinite(v):
                    drawing = False
                    continue
                point = QPointF(x, plot.bottom() - min(max(v, 0.0), 1.0) * plot.height())
                path.lineTo(point) if drawing else path.moveTo(point)
                drawing = True
            painter.setPen(QPen(channel_colour(self.track.names[column]), 1.4))
            painter.drawPath(path)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(QColor(150, 150, 160))
        tick = max(1, int(round(n / 8 / 5.0)) * 5)
        for i in range(0, n, tick):
            painter.drawText(QRectF(self.frame_x(i) - 30, plot.bottom() + 2, 60, self.BOTTOM - 2), Qt.AlignmentFlag.AlignHCenter, str(i))
        x = self.frame_x(self.playhead)
        painter.setPen(QPen(QColor(255, 255, 255), 1.5))
        painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        if self.hasFocus():
            painter.setPen(QColor(110, 150, 220))
            painter.drawRect(self.rect().adjusted(0, 0, -1, -1))
