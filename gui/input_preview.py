"""Inputs you can see: before Start, the output pane shows the identity photo (its faces numbered and clickable when
it holds several) and the driver pane shows a video driver's first frame, each at the pane's size, not as a
toolbar thumbnail. Previews are not frames of a stream (ImageView.set_image(count=False)); Start clears them."""

from __future__ import annotations

from PyQt6.QtCore import QObject

from gui.face_picker import FaceBoxesOverlay
from gui.views import rgb_to_qimage
from gui.workers import Task
from retarget.names.kinds import is_webcam_spec
from retarget.session.states import State


class InputPreview(QObject):
    """Shows the identity photo and the chosen video driver's first frame in the panes while nothing runs."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.identity_image = None  # QImage of the identity photo
        self.driver_image = None  # QImage of the driver's first frame
        self.driver_spec: str | None = None
        self._task: Task | None = None
        self.identity_overlay = FaceBoxesOverlay(window.output_view)
        self.identity_overlay.setToolTip("The identity photo holds several faces: click one to render it")
        self.identity_overlay.face_clicked.connect(self._face_clicked)
        window.identity_loaded.connect(self._identity_loaded)
        window.face_picker.identity_faces_listed.connect(lambda _: self._show_identity())
        window.driver_combo.currentIndexChanged.connect(lambda _: self.preview_driver())
        window.stream_started.connect(self.identity_overlay.hide)

    def idle(self) -> bool:
        """No stream or render is showing its frames: a new input replaces what the panes hold (nothing stale)."""
        return self.window.session.state not in (State.STREAMING, State.RENDERING)

    # ------------------------------------------------------------------ identity
    def _identity_loaded(self, path: str) -> None:
        image = self.window.session.identity_image
        self.identity_image = rgb_to_qimage(image) if image is not None else None
        self._show_identity()

    def _show_identity(self) -> None:
        w = self.window
        if self.identity_image is None or not self.idle():
            return
        w.output_view.set_image(self.identity_image, count=False)
        picker = w.face_picker
        boxes = picker.identity_boxes
        self.identity_overlay.set_faces(boxes, picker.identity_face or picker._used)

    def _face_clicked(self, number: int) -> None:
        self.window.face_picker.choose_identity_face(number)

    # ------------------------------------------------------------------ driver
    def preview_driver(self) -> None:
        """Read the chosen video driver's first frame off the UI thread and show it in the driver pane."""
        w = self.window
        spec = w._driver_spec()
        self.driver_spec = spec
        if spec is None or is_webcam_spec(spec) or not self.idle():
            return

        def first_frame():
            from retarget.media.sources import open_source

            with open_source(spec) as source:
                return rgb_to_qimage(next(iter(source)).image)

        def shown(image):
            if spec == self.driver_spec and self.idle():
                self.driver_image = image
                w.driver_view.set_image(image, count=False)

        w._run(first_frame, shown, lambda err: None, "driver-preview")  # a broken video says so at Start
