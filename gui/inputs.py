"""The window's inputs: the identity photo (chosen, dropped, embedded through the session off the UI thread),
the driver (cameras probed off the UI thread, video files chosen or dropped), and restoring the last ones."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import QFileDialog

from gui.views import rgb_to_qimage
from retarget.errors import user_message
from retarget.names.kinds import IMAGE_SUFFIXES, VIDEO_SUFFIXES, file_patterns, is_webcam_spec, webcam_device
from retarget.session.states import State

NO_CAMERA = "No camera found"


class InputChoosing:
    """MainWindow's identity and driver commands, drag and drop (a mixin over the window's session and widgets)."""

    def _choose_identity(self) -> None:
        start = str(self.identity_path.parent) if self.identity_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Identity photo", start, f"Images ({file_patterns(IMAGE_SUFFIXES)})")
        if path:
            self.load_identity(path)

    def load_identity(self, path, restart: bool = False) -> None:
        """Embed the identity off the UI thread; restart: start the stream once it is in."""
        path = Path(path)
        if self.retargeter is None:
            self._pending_identity = path  # embedded once the models are in
            self.statusBar().showMessage(f"{path.name} will load when the models are ready", 5000)
            return
        if self.session.state is State.STREAMING:
            # The pipeline is busy rendering: swap the identity between streams, then carry on.
            self.stop_stream(then=lambda: self._load_identity_then(path, restart=True))
            return
        self._load_identity_then(path, restart=restart)

    def _load_identity_then(self, path: Path, restart: bool) -> None:
        retargeter = self.retargeter
        self._set_busy(f"Finding the face in {path.name}...")
        self.show_waiting("Preparing the identity\u2026")

        def embed():
            from retarget.face.image_io import load_image

            image = load_image(path)
            context = self.session.set_identity(path, image=image, source=path.name, face=self.face_picker.face_for(path))
            return context, rgb_to_qimage(image)

        def ready(result):
            self._set_busy(None)
            self.show_waiting(None)
            context, thumb = result
            if context is None or retargeter is not self.retargeter:
                return  # models were reloaded meanwhile; that reload embeds the identity again
            self.identity_thumb.setPixmap(QPixmap.fromImage(thumb).scaled(
                self.identity_thumb.size(), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
            self.identity_thumb.setToolTip(str(path))
            self.store.setValue("files/identity", str(path))
            self.banner.clear("identity")
            self.statusBar().showMessage(f"Identity: {path.name}", 5000)
            self._update_buttons()
            self.identity_loaded.emit(str(path))
            if restart:
                self.start_stream()

        def failed(err):
            self._set_busy(None)
            self.show_waiting(None)
            self.show_error(f"Identity {path.name}: {user_message(err)}", kind="identity",
                            actions=[("Choose another photo...", self._choose_identity)])
            self._update_buttons()

        self._run(embed, ready, failed, "identity")

    def refresh_cameras(self) -> None:
        """List the cameras again (off the UI thread: probing opens each one); says which came or went."""
        from retarget.media.sources import list_cameras

        if self._cameras is None:
            self._set_cameras([])

        # The camera a running stream holds cannot be opened again: keep it in the list.
        busy = self._driver_spec() if self.session.state is State.STREAMING else None

        def probe():
            found = list_cameras()
            if busy and isinstance(webcam_device(busy), int):
                found = sorted(set(found) | {webcam_device(busy)})
            return found

        self._run(probe, self._set_cameras, lambda err: self._set_cameras([]), "cameras")

    def _set_cameras(self, cameras) -> None:
        previous, self._cameras = self._cameras, list(cameras)
        if previous is not None:
            changes = [f"Camera {i} connected" for i in cameras if i not in previous]
            changes += [f"Camera {i} disconnected" for i in previous if i not in cameras]
            if changes:
                self.statusBar().showMessage("; ".join(changes), 8000)
                self.cameras_changed.emit("; ".join(changes))
        current = self._driver_spec()
        videos = [(self.driver_combo.itemText(i), self.driver_combo.itemData(i)) for i in range(self.driver_combo.count())
                  if self.driver_combo.itemData(i) and not is_webcam_spec(self.driver_combo.itemData(i))]
        self.driver_combo.blockSignals(True)
        self.driver_combo.clear()
        if cameras:
            for index in cameras:
                self.driver_combo.addItem(f"Camera {index}", f"webcam:{index}")
        else:
            self.driver_combo.addItem(NO_CAMERA, None)
        for text, data in videos:
            self.driver_combo.addItem(text, data)
        self._select_driver(current)
        self.driver_combo.blockSignals(False)
        self._update_buttons()

    def _select_driver(self, spec) -> None:
        index = self.driver_combo.findData(spec) if spec else -1
        if index < 0:  # prefer something usable over "no camera found"
            index = next((i for i in range(self.driver_combo.count()) if self.driver_combo.itemData(i)), 0)
        self.driver_combo.setCurrentIndex(index)

    def _driver_spec(self) -> str | None:
        return self.driver_combo.currentData()

    def _choose_video(self) -> None:
        last = self.store.value("files/video", "")
        path, _ = QFileDialog.getOpenFileName(self, "Driver video", str(Path(last).parent) if last else "",
                                              f"Videos ({file_patterns(VIDEO_SUFFIXES)});;All files (*)")
        if path:
            self.add_video_driver(path)

    def add_video_driver(self, path) -> None:
        path = str(Path(path))
        if self.driver_combo.findData(path) < 0:
            self.driver_combo.addItem(f"Video: {Path(path).name}", path)
        self._select_driver(path)
        self.store.setValue("files/video", path)
        self.banner.clear("driver")
        self._update_buttons()

    def _restore_files(self) -> None:
        video = self.store.value("files/video", "")
        if video and Path(video).is_file():
            self.driver_combo.addItem(f"Video: {Path(video).name}", str(video))
        identity = self.store.value("files/identity", "")
        if identity and Path(identity).is_file():
            self._pending_identity = Path(identity)

    def dragEnterEvent(self, event) -> None:
        if any(Path(u.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        for url in event.mimeData().urls():
            path = Path(url.toLocalFile())
            if path.suffix.lower() in IMAGE_SUFFIXES:
                self.load_identity(path)
            elif path.suffix.lower() in VIDEO_SUFFIXES:
                self.add_video_driver(path)
        event.acceptProposedAction()
