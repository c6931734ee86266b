"""Small custom-painted widgets: an image view, the 52-blendshape bar chart, and an error banner."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter, QPolygonF
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

REGION_COLOURS = {
    "brow": QColor(230, 160, 60), "eye": QColor(90, 170, 240), "mouth": QColor(230, 90, 110),
    "jaw": QColor(170, 110, 230), "cheek": QColor(110, 200, 130), "nose": QColor(200, 200, 110),
}
OTHER_COLOUR = QColor(150, 150, 150)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """RGB uint8 HxWx3 -> a QImage that owns its pixels (safe to build on any thread, unlike QPixmap)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    # copy(): the QImage must not keep pointing into the numpy buffer once it is freed.
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class ImageView(QWidget):
    """Shows the latest frame scaled to fit (aspect kept); painting only, so setting a frame is cheap."""

    def __init__(self, placeholder: str = "", parent=None):
        super().__init__(parent)
        self._image: QImage | None = None
        self._under: QImage | None = None  # blend mode: drawn first, the image at half opacity over it
        self._points: np.ndarray | None = None  # face landmarks (x, y in image pixels) drawn over the image
        self.placeholder = placeholder
        self.frames_shown = 0
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None, count: bool = True) -> None:
        """count=False: an input preview (the identity photo, a driver's first frame), not a frame of a stream."""
        self._image = image
        if image is not None and count:
            self.frames_shown += 1
        self.update()

    def image(self) -> QImage | None:
        return self._image

    def set_underlay(self, image: QImage | None) -> None:
        """Blend view: `image` (the driver) under the output at half opacity; None for the output alone."""
        self._under = image
        self.update()

    def set_points(self, points: np.ndarray | None) -> None:
        """Landmarks to draw over the image (the driver pane's overlay); None for none."""
        self._points = points
        self.update()

    def clear(self) -> None:
        self._image, self._under = None, None
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 28))
        if self._image is None or self._image.isNull():
            painter.setPen(QColor(150, 150, 160))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = iw * scale, ih * scale
        target = QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)
        # Smooth scaling only when shrinking a large frame; small (64 px test) frames stay crisp and cheap.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 1.0)
        if self._under is not None and not self._under.isNull():
            painter.drawImage(target, self._under)
            painter.setOpacity(0.5)
        painter.drawImage(target, self._image)
        if self._points is not None and len(self._points):
            painter.setOpacity(1.0)
            painter.setPen(QColor(80, 255, 140))
            xs = target.x() + self._points[:, 0] * scale
            ys = target.y() + self._points[:, 1] * scale
            painter.drawPoints(QPolygonF([QPointF(float(x), float(y)) for x, y in zip(xs, ys)]))


class BlendshapeChart(QWidget):
    """52 vertical bars in BLENDSHAPE_NAMES order, coloured by face region; hover shows the name."""

    def __init__(self, names: list[str], parent=None):
        super().__init__(parent)
        self.names = list(names)
        self.values = np.zeros(len(self.names), np.float32)
        self._colours = [self._colour(n) for n in self.names]
        self.setMinimumHeight(90)
        self.setMouseTracking(True)
        self.setToolTip("The 52 mapped blendshapes sent to the generator (hover a bar for its name)")

    def _colour(self, name: str) -> QColor:
        for prefix, colour in REGION_COLOURS.items():
            if name.startswith(prefix):
                return colour
        return OTHER_COLOUR

    def set_values(self, values) -> None:
        self.values = np.clip(np.asarray(values, np.float32).reshape(-1)[: len(self.names)], 0.0, 1.0)
        self.update()

    def _bar_at(self, x: float) -> int:
        return int(x / max(1.0, self.width() / len(self.names)))

    def label_at(self, x: float) -> str:
        """What hovering at x shows: the blendshape's name and current value."""
        i = self._bar_at(x)
        return f"{self.names[i]}: {self.values[i]:.2f}" if 0 <= i < len(self.names) else ""

    def mouseMoveEvent(self, event) -> None:
        from PyQt6.QtWidgets import QToolTip

        text = self.label_at(event.position().x())
        if text:
            self.setToolTip(text)
            QToolTip.showText(event.globalPosition().toPoint(), text, self)  # follows the pointer, bar to bar

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(32, 32, 36))
        n = len(self.names)
        bar = self.width() / n
        height = self.height() - 4
        for i in range(n):
            h = float(self.values[i]) * height
            painter.fillRect(QRectF(i * bar + 1, self.height() - 2 - h, max(1.0, bar - 2), h), self._colours[i])


def region_legend() -> QLabel:
    """The chart's colours, named: one coloured square per face region."""
    parts = [f'<span style="color:{c.name()}">&#9632;</span> {name}' for name, c in REGION_COLOURS.items()]
    parts.append(f'<span style="color:{OTHER_COLOUR.name()}">&#9632;</span> other')
    label = QLabel("&nbsp;&nbsp;".join(parts))
    label.setToolTip("Blendshape chart colours by face region; hover a bar for its name and value")
    return label


class ErrorBanner(QWidget):
    """A non-modal strip at the top of the window: errors never block or crash the app.

    A message can carry fix buttons (label, callback) and a kind: clear(kind) hides it when the
    condition it reported has ended, so a banner never outlives its cause.
    """

    dismissed = pyqtSignal()

    def __init__(self, parent=None, style: str = "background:#7a1f24; color:white;"):
        super().__init__(parent)
        self.setAutoFillBackground(True)
        self.setStyleSheet(style)
        self.kind: str | None = None
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.actions: dict[str, QPushButton] = {}
        close = QPushButton("Dismiss")
        close.clicked.connect(self._dismiss)
        self._layout.addWidget(self.label, 1)
        self._layout.addWidget(close)
        self.hide()

    def show_message(self, text: str, actions=(), kind: str | None = None) -> None:
        for button in self.actions.values():
            self._layout.removeWidget(button)
            button.deleteLater()
        self.actions = {}
        for i, (label, callback) in enumerate(actions):
            button = QPushButton(label)
            button.clicked.connect(callback)
            self._layout.insertWidget(1 + i, button)
            self.actions[label] = button
        self.kind = kind
        self.label.setText(text)
        self.show()

    def clear(self, *kinds: str) -> None:
        """Hide the banner if it shows a message of one of these kinds."""
        if self.isVisible() and self.kind in kinds:
            self._dismiss()

    def _dismiss(self) -> None:
        self.hide()
        self.kind = None
        self.dismissed.emit()

    def text(self) -> str:
        return self.label.text() if self.isVisible() else ""
