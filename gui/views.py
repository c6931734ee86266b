"""Small custom-painted widgets: an image view, the 52-blendshape bar chart, and an error banner."""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QImage, QPainter
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget


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
        self.placeholder = placeholder
        self.frames_shown = 0
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        if image is not None:
            self.frames_shown += 1
        self.update()

    def image(self) -> QImage | None:
        return self._image

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
        painter.drawImage(target, self._image)


class BlendshapeChart(QWidget):
    """52 vertical bars in BLENDSHAPE_NAMES order, coloured by face region; hover shows the name."""

    _REGION_COLOURS = {
        "brow": QColor(230, 160, 60), "eye": QColor(90, 170, 240), "mouth": QColor(230, 90, 110),
        "jaw": QColor(170, 110, 230), "cheek": QColor(110, 200, 130), "nose": QColor(200, 200, 110),
    }

    def __init__(self, names: list[str], parent=None):
        super().__init__(parent)
        self.names = list(names)
        self.values = np.zeros(len(self.names), np.float32)
        self._colours = [self._colour(n) for n in self.names]
        self.setMinimumHeight(90)
        self.setMouseTracking(True)
        self.setToolTip("The 52 mapped blendshapes sent to the generator (hover a bar for its name)")

    def _colour(self, name: str) -> QColor:
        for prefix, colour in self._REGION_COLOURS.items():
            if name.startswith(prefix):
                return colour
        return QColor(150, 150, 150)

    def set_values(self, values) -> None:
        self.values = np.clip(np.asarray(values, np.float32).reshape(-1)[: len(self.names)], 0.0, 1.0)
        self.update()

    def _bar_at(self, x: float) -> int:
        return int(x / max(1.0, self.width() / len(self.names)))

    def mouseMoveEvent(self, event) -> None:
        i = self._bar_at(event.position().x())
        if 0 <= i < len(self.names):
            self.setToolTip(f"{self.names[i]}: {self.values[i]:.2f}")

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(32, 32, 36))
        n = len(self.names)
        bar = self.width() / n
        height = self.height() - 4
        for i in range(n):
            h = float(self.values[i]) * height
            painter.fillRect(QRectF(i * bar + 1, self.height() - 2 - h, max(1.0, bar - 2), h), self._colours[i])


class ErrorBanner(QWidget):
    """A non-modal red strip at the top of the window: errors never block or crash the app."""

    dismissed = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setAutoFillBackground(True)
        self.setStyleSheet("background:#7a1f24; color:white;")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("Dismiss")
        close.clicked.connect(self.hide)
        close.clicked.connect(self.dismissed)
        layout.addWidget(self.label, 1)
        layout.addWidget(close)
        self.hide()

    def show_message(self, text: str) -> None:
        self.label.setText(text)
        self.show()

    def text(self) -> str:
        return self.label.text()
