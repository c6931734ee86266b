"""Which face, in the app: numbered boxes over the identity thumbnail and the driver pane; click one to use it.

Faces are numbered from 1, left to right, as in the CLI (retarget.face.selection). The identity
choice re-embeds the photo with `Retargeter.identity_from_image(face=N)` (a "Face" combo box also
offers the numbers); a click on a driver face makes the stream's analyzer track that face
(`DriverAnalyzer.follow_face`) from the next frame on, as `--driver-face` does after its first frame.
Boxes show only when a picture holds several faces.
"""

from __future__ import annotations

import threading
from pathlib import Path

from PyQt6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QPainter, QPen, QPixmap
from PyQt6.QtWidgets import QComboBox, QWidget

CHOSEN_COLOUR = QColor(80, 255, 140)
OTHER_COLOUR = QColor(255, 210, 60)


def fitted_rect(width: float, height: float, image_width: int, image_height: int) -> tuple[float, float, float]:
    """(x, y, scale) of an image drawn aspect-kept and centred in width x height, as ImageView and QLabel do."""
    scale = min(width / image_width, height / image_height)
    return (width - image_width * scale) / 2, (height - image_height * scale) / 2, scale


def face_at(boxes, x: float, y: float) -> int | None:
    """1-based number of the box under (x, y) image pixels (the smallest, if boxes overlap); None if none."""
    hits = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    under = [i for i, b in enumerate(boxes) if b[0] <= x <= b[2] and b[1] <= y <= b[3]]
    return None if not under else min(under, key=hits.__getitem__) + 1


def draw_faces(painter: QPainter, boxes, chosen: int | None, x0: float, y0: float, scale: float, font_px: int = 16) -> None:
    """Each box with its number; the chosen one in green."""
    font = QFont(painter.font())
    font.setBold(True)
    font.setPixelSize(font_px)
    painter.setFont(font)
    for number, (bx0, by0, bx1, by1) in enumerate(boxes, start=1):
        colour = CHOSEN_COLOUR if number == chosen else OTHER_COLOUR
        painter.setPen(QPen(colour, 2))
        rect = QRectF(x0 + bx0 * scale, y0 + by0 * scale, (bx1 - bx0) * scale, (by1 - by0) * scale)
        painter.drawRect(rect)
        painter.drawText(rect.topLeft() + QPointF(3, font.pixelSize()), str(number))


class FaceBoxesOverlay(QWidget):
    """A transparent layer over an ImageView: numbered face boxes; a click on one emits its number."""

    face_clicked = pyqtSignal(int)

    def __init__(self, view):
        super().__init__(view)
        self.view = view
        self.boxes: list = []
        self.chosen: int | None = None
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Several faces: click one to drive with it")
        view.installEventFilter(self)
        self.setGeometry(view.rect())
        self.hide()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if obj is self.view and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.view.rect())
        return False

    def set_faces(self, boxes, chosen: int | None) -> None:
        """Boxes (image pixels, numbered left to right) of the frame the view shows; shown when there are 2 or more."""
        self.boxes, self.chosen = list(boxes or []), chosen
        self.setVisible(len(self.boxes) > 1)
        self.update()

    def _mapping(self):
        image = self.view.image()
        if image is None or image.isNull():
            return None
        return fitted_rect(self.width(), self.height(), image.width(), image.height())

    def number_at(self, x: float, y: float) -> int | None:
        """The face under a point of this widget."""
        mapping = self._mapping()
        if mapping is None:
            return None
        x0, y0, scale = mapping
        return face_at(self.boxes, (x - x0) / scale, (y - y0) / scale)

    def paintEvent(self, event) -> None:
        mapping = self._mapping()
        if mapping is None or len(self.boxes) < 2:
            return
        painter = QPainter(self)
        draw_faces(painter, self.boxes, self.chosen, *mapping)

    def mousePressEvent(self, event) -> None:
        self.view.setFocus()  # as a click on the pane itself: Space and N act on the preview
        number = self.number_at(event.position().x(), event.position().y())
        if number is not None:
            self.face_clicked.emit(number)


class FacePicker(QObject):
    """The window's face choices: the identity photo's (re-embedded on change) and the live driver's (tracked)."""

    identity_faces_listed = pyqtSignal(int)  # how many faces the identity photo holds

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.identity_path: Path | None = None
        self.identity_boxes: list = []
        self.identity_face: int | None = None  # None: the largest (the default)
        self._identity_thumb: QPixmap | None = None  # the photo, full size, for the thumbnail with boxes
        self._used: int | None = None  # the face the identity was embedded with (numbered here)
        self.driver_box = None  # the driver face the user clicked (image pixels), kept for a restarted stream
        self.driver_spec: str | None = None  # the driver it was clicked on
        self._lock = threading.Lock()  # one MediaPipe graph, used by one task at a time
        self._landmarker = None

        self.combo = QComboBox()
        self.combo.setToolTip("The identity photo holds several faces: which one to render (numbered left to right)")
        self.combo.currentIndexChanged.connect(self._combo_changed)
        toolbar = window.toolbar
        after = next(a for a in toolbar.actions() if toolbar.widgetForAction(a) is window.identity_button)
        following = toolbar.actions()[toolbar.actions().index(after) + 1]
        self.combo_action = toolbar.insertWidget(following, self.combo)
        self.combo_action.setVisible(False)

        window.identity_thumb.installEventFilter(self)
        window.identity_loaded.connect(self._identity_loaded)
        self.driver_overlay = FaceBoxesOverlay(window.driver_view)
        self.driver_overlay.face_clicked.connect(self.choose_driver_face)
        window.stream_started.connect(self._stream_started)
        window.driver_combo.currentIndexChanged.connect(self._driver_changed)

    # ------------------------------------------------------------------ identity
    def face_for(self, path) -> int | None:
        """The face to embed for this photo: the user's choice if it is this photo's, else None (the largest)."""
        return self.identity_face if self.identity_path is not None and Path(path) == self.identity_path else None

    def choose_identity_face(self, number: int) -> None:
        """Use face `number` of the current identity photo: embeds it again (as --identity-face)."""
        if self.identity_path is None or not 1 <= number <= len(self.identity_boxes) or number == self.identity_face:
            return
        self.identity_face = number
        self._show_identity()
        self.window.load_identity(self.identity_path)

    def _identity_loaded(self, path: str) -> None:
        path = Path(path)
        if path == self.identity_path and self.identity_face is not None and self.identity_boxes:
            self._show_identity()  # the same photo with another face: its faces are known; the thumbnail is redrawn
            return
        if path != self.identity_path:
            self.identity_path, self.identity_face, self.identity_boxes = path, None, []
        retargeter = self.window.retargeter

        def list_faces():
            from retarget.face.image_io import load_image
            from retarget.face.landmarker import FaceLandmarker
            from retarget.face.selection import numbered

            image = load_image(path)
            with self._lock:
                if self._landmarker is None:
                    self._landmarker = FaceLandmarker(retargeter.landmarker_path, mode="image")
                faces = numbered(self._landmarker.detect_all(image))
            return [face.box for face in faces], retargeter.identity_box, image

        def listed(result):
            boxes, used_box, image = result
            if path != self.identity_path:
                return  # another photo came in meanwhile
            from retarget.face.selection import nearest
            from gui.views import rgb_to_qimage

            self.identity_boxes = boxes
            if self.identity_face is None and used_box is not None and boxes:
                used = nearest(boxes, used_box, max_distance=None) + 1  # the largest, as numbered here
            else:
                used = self.identity_face
            self._identity_thumb = QPixmap.fromImage(rgb_to_qimage(image))
            self._used = used
            self._show_identity()
            self.identity_faces_listed.emit(len(boxes))

        self.window._run(list_faces, listed, lambda err: None, "identity-faces")

    def _show_identity(self) -> None:
        boxes, used = self.identity_boxes, self.identity_face or self._used
        self.combo.blockSignals(True)
        self.combo.clear()
        for number in range(1, len(boxes) + 1):
            self.combo.addItem(f"Face {number}" + (" (largest)" if self.identity_face is None and number == used else ""), number)
        if used is not None:
            self.combo.setCurrentIndex(used - 1)
        self.combo.blockSignals(False)
        self.combo_action.setVisible(len(boxes) > 1)
        thumb = self.window.identity_thumb
        if self._identity_thumb is None:
            return
        pixmap = self._identity_thumb.scaled(thumb.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                             Qt.TransformationMode.SmoothTransformation)
        if len(boxes) > 1:
            painter = QPainter(pixmap)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            draw_faces(painter, boxes, used, 0, 0, pixmap.width() / self._identity_thumb.width(), font_px=11)
            painter.end()
            thumb.setToolTip(f"{self.identity_path}\n{len(boxes)} faces: click one (or use the Face list) to render it")
        thumb.setPixmap(pixmap)

    def _combo_changed(self, index: int) -> None:
        if index >= 0:
            self.choose_identity_face(self.combo.itemData(index))

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        thumb = self.window.identity_thumb
        if obj is thumb and event.type() == QEvent.Type.MouseButtonPress and len(self.identity_boxes) > 1 \
                and self._identity_thumb is not None:
            x0, y0, scale = fitted_rect(thumb.width(), thumb.height(), self._identity_thumb.width(), self._identity_thumb.height())
            number = face_at(self.identity_boxes, (event.position().x() - x0) / scale, (event.position().y() - y0) / scale)
            if number is not None:
                self.choose_identity_face(number)
                return True
        return False

    # ------------------------------------------------------------------ driver
    def choose_driver_face(self, number: int) -> None:
        """Drive with face `number` of the frame on screen, tracked from the next frame on."""
        frame = self.window.last_driven or self.window.last_frame  # the driver frame on screen
        boxes = getattr(frame, "face_boxes", None) or []
        if not 1 <= number <= len(boxes):
            return
        self.driver_box, self.driver_spec = boxes[number - 1], self.window._driver_spec()
        session = self.window.session
        if session is not None:
            session.analyzer.follow_face(self.driver_box)
        self.driver_overlay.set_faces(boxes, number)
        self.window.statusBar().showMessage(f"Driving with face {number} (tracked from frame to frame)", 4000)

    def render_choice(self, identity, driver) -> tuple[dict, tuple | None]:
        """(job key entries, box to follow) for an offline render: the chosen faces, as --identity-face and a
        driver face tracked from the box clicked on this driver (taken up nearest that box from its first frame)."""
        key = {}
        if self.face_for(identity) is not None:
            key["identity_face"] = self.face_for(identity)
        box = self.driver_box if self.driver_spec is not None and str(driver) == str(self.driver_spec) else None
        if box is not None:
            key["driver_face_box"] = [round(float(v), 1) for v in box]
        return key, box

    def _stream_started(self) -> None:
        bridge, session = self.window.bridge, self.window.session
        if bridge is not None:
            bridge.driver_ready.connect(self._frame_shown)  # after the window's own slot: last_driven is this frame
        if session is not None and self.driver_box is not None:
            session.analyzer.follow_face(self.driver_box)  # a looped or restarted stream keeps the chosen face

    def _driver_changed(self, _index) -> None:
        self.driver_box = None  # another driver: its largest face until one is clicked
        self.driver_overlay.set_faces(None, None)

    def _frame_shown(self) -> None:
        frame = self.window.last_driven
        if frame is not None:
            self.driver_overlay.set_faces(getattr(frame, "face_boxes", None), getattr(frame, "face_number", None))

    def close(self) -> None:
        with self._lock:
            if self._landmarker is not None:
                self._landmarker.close()
                self._landmarker = None
