"""The main window: identity + driver in, live retargeted output, recording, offline render.

Threads: the UI thread only moves small things around. Model loading, identity embedding, opening
a driver, stopping a stream, closing a recording and offline renders run as Tasks (QThreads); live
generation runs on LiveSession's own capture/render threads, whose frames reach the UI through
LiveBridge's queued signal. The pipeline is never used by two streams at once: live and offline
renders exclude each other, and a stream counts as stopped only once its render thread has
finished its last generate() (LiveSession.stop joins it).

Messages: every error is a banner with a kind; a banner is cleared when its cause ends, and a
missing file comes with the buttons that fix it (choose it, download it, retry).
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QProgressBar, QPushButton, QScrollArea,
    QSplitter, QToolBar, QVBoxLayout, QWidget,
)

from gui.face_picker import FacePicker
from gui.live_controls import LiveControls
from gui.menus import build_menus
from gui.model_loading import ModelLoading
from gui.recording import LiveOutputs
from gui.recording_controls import RecordingControls
from gui.render_controls import RenderControls
from gui.settings_panel import SettingsPanel
from gui.views import BlendshapeChart, ErrorBanner, ImageView, region_legend, rgb_to_qimage
from gui.workers import LiveBridge, RenderProgress, Task, error_text
from retarget.expression.blendshapes import BLENDSHAPE_NAMES
from retarget.media.kinds import IMAGE_SUFFIXES, VIDEO_SUFFIXES, file_patterns, is_webcam_spec, webcam_device

NO_CAMERA = "No camera found"
NO_VALUE = "\u2013"  # an en dash: shown where there is no measurement yet
NOTICE_STYLE = "background:#1f3f66; color:white;"


def _has_pyvirtualcam() -> bool:
    return importlib.util.find_spec("pyvirtualcam") is not None


class MainWindow(ModelLoading, LiveControls, RecordingControls, RenderControls, QMainWindow):
    # Signals tests and the screenshot tool can wait on.
    models_loaded = pyqtSignal()
    identity_loaded = pyqtSignal(str)
    stream_started = pyqtSignal()
    stream_stopped = pyqtSignal(str)  # why it stopped
    recording_saved = pyqtSignal(str, int)  # path, frames
    render_finished = pyqtSignal(str)  # "done", "cancelled" or "failed"
    error_shown = pyqtSignal(str)
    cameras_changed = pyqtSignal(str)  # what changed, e.g. "Camera 1 connected"

    def __init__(self, models: str = "hub", landmarker_path: str | Path | None = None,
                 settings: QSettings | None = None, autoload: bool = True, probe_cameras: bool = True,
                 device: str | None = None, smirk_path: str | Path | None = None, lcm_lora: str | None = None):
        super().__init__()
        self.models_spec = models
        self.landmarker_path = Path(landmarker_path) if landmarker_path else None
        self.smirk_path = Path(smirk_path) if smirk_path else None
        self.lcm_lora = lcm_lora
        self.store = settings if settings is not None else QSettings("retarget", "retarget")
        self.setWindowTitle("retarget: facial expression retargeting")
        self.setAcceptDrops(True)  # drop an identity photo or a driver video anywhere on the window

        self.retargeter = None
        self.device = None
        self.models_description = ""
        self.context = None
        self.identity_path: Path | None = None
        self.session = None
        self.bridge: LiveBridge | None = None
        self.stream_state = "idle"  # idle, starting, running, stopping
        self.last_frame = None
        self.error_messages: list[str] = []
        self._tasks: set[Task] = set()
        self._pending_identity: Path | None = None
        self._neutral_raw = None
        self._driver_fps = 25.0
        self._restart_after_load = False
        self._hub_download_offered = False  # the first-run download of `hub` opens by itself once
        self.landmark_overlay = False
        self._cameras: list[int] | None = None
        self._mapping_timer = QTimer(self, singleShot=True, interval=250)  # gain spin boxes change in bursts
        self._mapping_timer.timeout.connect(self._apply_mapping)
        # recording, virtual camera, run data: written from the engine's render thread
        self.outputs = LiveOutputs()
        self.recording_path: Path | None = None
        self.recorded_frames = 0
        self.vcam_backend: str | None = None  # pyvirtualcam backend name; None = the platform's own
        self._vcam_wanted = False
        self.download_dialog = None
        # offline render
        self._render_task: Task | None = None
        self._render_cancel: threading.Event | None = None
        self._render_progress: RenderProgress | None = None

        self._build_ui()
        self.actions_by_name = build_menus(self)
        self.face_picker = FacePicker(self)  # which face: numbered boxes on the identity and driver, click to pick
        self.panel.restore(self.store)
        if device is not None and not self.panel.select_device(device):
            self.show_error(f"--device {device} is not available here; using {self.panel.device_name()}", kind="device")
        self._restore_files()
        self._restore_layout()
        self._status_timer = QTimer(self, interval=250)
        self._status_timer.timeout.connect(self._tick)
        self._status_timer.start()
        if probe_cameras:
            self.refresh_cameras()
        else:
            self._set_cameras([])
        if autoload:
            self.load_models()

    # ================================================================== UI
    def _build_ui(self) -> None:
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)
        self.banner = ErrorBanner()
        self.notice = ErrorBanner(style=NOTICE_STYLE)  # results that stay until dismissed (render outcome, saved files)
        outer.addWidget(self.banner)
        outer.addWidget(self.notice)

        self.identity_thumb = QLabel("drop a\nphoto")
        self.identity_thumb.setFixedSize(56, 56)
        self.identity_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.identity_thumb.setStyleSheet("border:1px solid #666;")
        self.identity_button = QPushButton("Identity photo...")
        self.identity_button.setToolTip("Choose the person to render (or drop a photo on the window) (Ctrl+O)")
        self.driver_combo = QComboBox()
        self.driver_combo.setMinimumContentsLength(14)
        self.driver_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.driver_combo.setToolTip("The face whose expressions are copied: a camera or a video file")
        self.refresh_button = QPushButton("\u21bb")
        self.refresh_button.setToolTip("Refresh the camera list (F5)")
        self.refresh_button.setFixedWidth(32)
        self.video_button = QPushButton("Video file...")
        self.loop_check = QCheckBox("Loop")
        self.loop_check.setToolTip("Play a video driver in a loop in live mode")
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start or stop live retargeting (Ctrl+Return, or Space on the preview)")
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the live output to a new MP4 in the recordings folder (Ctrl+R)")
        self.snapshot_button = QPushButton("Snapshot")
        self.snapshot_button.setToolTip("Save the current output as a new PNG in the recordings folder (Ctrl+Shift+S)")
        self.export_button = QPushButton("Export CSV")
        self.export_button.setToolTip("Save this run's 52 mapped blendshapes per frame as CSV")
        self.render_button = QPushButton("Render video...")
        self.render_button.setToolTip("Render every frame of the driver video to a file (like retarget --headless)")
        self.vcam_check = QCheckBox("Virtual camera")
        # A tool bar folds what does not fit into its extension menu, so the window fits a 1024 px screen.
        self.toolbar = QToolBar("Controls")
        self.toolbar.setObjectName("controls")
        self.toolbar.setMovable(False)
        for w in (self.identity_thumb, self.identity_button, self.driver_combo, self.refresh_button, self.video_button,
                  self.loop_check, self.start_button, self.record_button, self.snapshot_button, self.export_button,
                  self.render_button, self.vcam_check):
            self.toolbar.addWidget(w)
        self.addToolBar(self.toolbar)

        self.views = QSplitter(Qt.Orientation.Horizontal)
        self.driver_view = ImageView("Driver\n(camera or video)")
        self.output_view = ImageView("Output\n(the identity making the driver's expressions)")
        for view in (self.driver_view, self.output_view):
            view.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # click the preview, then Space starts/stops
        self.views.addWidget(self.driver_view)
        self.views.addWidget(self.output_view)
        self.chart = BlendshapeChart(BLENDSHAPE_NAMES)
        chart_box = QWidget()
        chart_layout = QVBoxLayout(chart_box)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addWidget(self.chart, 1)
        self.legend = region_legend()
        chart_layout.addWidget(self.legend)
        chart_box.setMaximumHeight(220)
        self.centre = QSplitter(Qt.Orientation.Vertical)
        self.centre.addWidget(self.views)
        self.centre.addWidget(chart_box)
        self.centre.setStretchFactor(0, 5)
        self.centre.setStretchFactor(1, 1)
        self.centre.setSizes([520, 140])
        self.preview = self.centre  # Space and N act while this (the panes and the chart) has focus

        self.panel = SettingsPanel()
        self.settings_scroll = QScrollArea()
        self.settings_scroll.setWidget(self.panel)
        self.settings_scroll.setWidgetResizable(True)
        self.settings_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.settings_scroll.setMinimumWidth(240)
        self.settings_scroll.setMaximumWidth(380)
        self.main_splitter = QSplitter(Qt.Orientation.Horizontal)
        self.main_splitter.addWidget(self.settings_scroll)
        self.main_splitter.addWidget(self.centre)
        self.main_splitter.setStretchFactor(1, 1)
        self.main_splitter.setCollapsible(1, False)
        outer.addWidget(self.main_splitter, 1)

        render_row = QHBoxLayout()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # busy indicator while models / identity load
        self.busy.setMaximumWidth(140)
        self.busy_label = QLabel("")
        self.render_bar = QProgressBar()
        self.render_bar.setFormat("%v / %m frames")
        self.render_eta = QLabel("")
        self.cancel_button = QPushButton("Cancel render")
        render_row.addWidget(self.busy)
        render_row.addWidget(self.busy_label, 1)
        render_row.addWidget(self.render_bar, 2)
        render_row.addWidget(self.render_eta)
        render_row.addWidget(self.cancel_button)
        outer.addLayout(render_row)
        self._show_render_row(False)
        self._set_busy(None)
        self.setCentralWidget(central)

        self.rec_label = QLabel("")
        self.rec_label.setStyleSheet("color:#e0303a; font-weight:bold;")
        self.fps_label = QLabel("")
        self.device_label = QLabel(f"device: {NO_VALUE}")
        self.memory_label = QLabel("")
        for label in (self.rec_label, self.fps_label, self.device_label, self.memory_label):
            self.statusBar().addPermanentWidget(label)
        self._show_stats(None)

        self.identity_button.clicked.connect(self._choose_identity)
        self.video_button.clicked.connect(self._choose_video)
        self.refresh_button.clicked.connect(self.refresh_cameras)
        self.start_button.clicked.connect(self.toggle_stream)
        self.record_button.clicked.connect(self.toggle_recording)
        self.snapshot_button.clicked.connect(self.take_snapshot)
        self.export_button.clicked.connect(self._choose_export)
        self.render_button.clicked.connect(self._choose_render)
        self.cancel_button.clicked.connect(self.cancel_render)
        self.vcam_check.toggled.connect(self._toggle_vcam)
        self.driver_combo.currentIndexChanged.connect(lambda _: self.banner.clear("driver"))
        self.panel.generation_changed.connect(self._apply_generation)
        self.panel.mapping_changed.connect(self._mapping_timer.start)
        self.panel.device_changed.connect(self._device_changed)
        self.panel.neutral_requested.connect(self.set_neutral)

        if not _has_pyvirtualcam():
            self.vcam_check.setEnabled(False)
            self.vcam_check.setToolTip('Unavailable: pyvirtualcam is not installed (pip install -e ".[vcam]")')
        else:
            self.vcam_check.setToolTip("Send the output to a virtual camera (OBS Virtual Camera / v4l2loopback)")
        self.resize(1280, 760)
        self._update_buttons()

    def _restore_layout(self) -> None:
        """Window geometry and splitter positions, saved with the other settings."""
        for key, restore in (("window/geometry", self.restoreGeometry), ("window/main_splitter", self.main_splitter.restoreState),
                             ("window/centre_splitter", self.centre.restoreState), ("window/views_splitter", self.views.restoreState)):
            value = self.store.value(key)
            if value is not None:
                try:
                    restore(value)
                except TypeError:  # a hand-edited settings file: keep the defaults
                    pass
        self.set_settings_visible(str(self.store.value("window/settings_visible", "true")).lower() in ("true", "1"))
        self.set_view_mode(str(self.store.value("window/view_mode", "side")))
        self.set_landmark_overlay(str(self.store.value("window/landmarks", "false")).lower() in ("true", "1"))

    def _save_layout(self) -> None:
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/main_splitter", self.main_splitter.saveState())
        self.store.setValue("window/centre_splitter", self.centre.saveState())
        self.store.setValue("window/views_splitter", self.views.saveState())
        self.store.setValue("window/settings_visible", not self.settings_scroll.isHidden())
        self.store.setValue("window/view_mode", self.view_mode)
        self.store.setValue("window/landmarks", self.landmark_overlay)

    # ------------------------------------------------------------------ view
    def set_view_mode(self, mode: str) -> None:
        """side: driver | output; output: the output alone; blend: the output at half opacity over the driver."""
        if mode not in ("side", "output", "blend"):
            mode = "side"
        self.view_mode = mode
        self.driver_view.setVisible(mode == "side")
        action = getattr(self, "actions_by_name", {}).get(f"view_{mode}")
        if action is not None:
            action.setChecked(True)
        frame = self.last_frame
        self.output_view.set_underlay(frame.driver if (mode == "blend" and frame is not None) else None)

    def set_landmark_overlay(self, on: bool) -> None:
        """Draw the 478 face landmarks MediaPipe found over the driver pane."""
        self.landmark_overlay = bool(on)
        action = getattr(self, "actions_by_name", {}).get("landmarks")
        if action is not None:
            action.setChecked(self.landmark_overlay)
        frame = self.last_frame
        self.driver_view.set_points(frame.landmarks if (on and frame is not None) else None)

    def set_settings_visible(self, visible: bool) -> None:
        self.settings_scroll.setVisible(bool(visible))
        action = getattr(self, "actions_by_name", {}).get("settings")
        if action is not None:
            action.setChecked(bool(visible))

    def set_full_screen(self, on: bool) -> None:
        self.showFullScreen() if on else self.showNormal()

    def _show_render_row(self, visible: bool) -> None:
        for w in (self.render_bar, self.render_eta, self.cancel_button):
            w.setVisible(visible)

    def _set_busy(self, text: str | None) -> None:
        self.busy.setVisible(text is not None)
        self.busy_label.setText(text or "")

    def _show_stats(self, stats) -> None:
        """Measured numbers, or a dash for each one not measured yet (no frame, or stopped)."""
        def value(v: float, fmt: str) -> str:
            return format(v, fmt) if v > 0 else NO_VALUE

        if stats is None:
            self.fps_label.setText(f"in {NO_VALUE} fps | out {NO_VALUE} fps | latency {NO_VALUE} ms")
            return
        out_fps = stats.output_fps if stats.rendered > 1 else 0.0
        latency = stats.latency_ms if stats.rendered > 0 else 0.0
        self.fps_label.setText(f"in {value(stats.input_fps, '.1f')} fps | out {value(out_fps, '.1f')} fps | "
                               f"latency {value(latency, '.0f')} ms"
                               + (f" | no face {stats.frames_without_face}" if stats.frames_without_face else ""))

    def _update_buttons(self) -> None:
        ready = self.retargeter is not None and self.context is not None
        rendering = self._render_task is not None
        streaming = self.stream_state in ("running", "starting")
        recording = self.outputs.recorder is not None
        self.start_button.setText("Stop" if streaming else "Start")
        self.start_button.setEnabled((ready and not rendering and self._driver_spec() is not None)
                                     or self.stream_state == "running")
        self.record_button.setEnabled(self.stream_state == "running" or recording)
        self.record_button.setChecked(recording)
        self.record_button.setText("\u25cf Stop recording" if recording else "Record")
        self.snapshot_button.setEnabled(self.last_frame is not None)
        self.export_button.setEnabled(bool(self.outputs.rows))
        self.render_button.setEnabled(ready and not rendering and not streaming and self.stream_state != "stopping")
        self.identity_button.setEnabled(self.retargeter is not None or self.stream_state == "idle")

    # ================================================================== messages
    def show_error(self, text: str, kind: str | None = None, actions=()) -> None:
        """Every error lands here: a non-modal banner (with fix buttons), the status bar, and error_messages (for tests)."""
        self.error_messages.append(text)
        self.banner.show_message(text, actions, kind)
        self.statusBar().showMessage(text, 10000)
        self.error_shown.emit(text)

    def show_notice(self, text: str, kind: str | None = None, actions=()) -> None:
        """A result the user should see until they dismiss it (a render's outcome, where a file was saved)."""
        self.notice.show_message(text, actions, kind)
        self.statusBar().showMessage(text, 10000)

    def _run(self, fn, on_success=None, on_failure=None, name: str = "task") -> Task:
        task = Task(fn, self, name)
        self._tasks.add(task)
        if on_success is not None:
            task.succeeded.connect(on_success)
        task.failed.connect(on_failure or (lambda err: self.show_error(error_text(err))))
        task.finished.connect(lambda: self._tasks.discard(task))
        task.start()
        return task

    # ================================================================== identity
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
        if self.stream_state != "idle":
            # The pipeline is busy rendering: swap the identity between streams, then carry on.
            self.stop_stream(then=lambda: self._load_identity_then(path, restart=True))
            return
        self._load_identity_then(path, restart=restart)

    def _load_identity_then(self, path: Path, restart: bool) -> None:
        retargeter = self.retargeter
        self._set_busy(f"Finding the face in {path.name}...")

        def embed():
            from retarget.face.image_io import load_image

            image = load_image(path)
            context = retargeter.identity_from_image(image, source=path.name, face=self.face_picker.face_for(path))
            return path, context, rgb_to_qimage(image)

        def ready(result):
            self._set_busy(None)
            if retargeter is not self.retargeter:
                return  # models were reloaded meanwhile; that reload embeds the identity again
            self.identity_path, self.context, thumb = result
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
            self.show_error(f"Identity {path.name}: {error_text(err)}", kind="identity",
                            actions=[("Choose another photo...", self._choose_identity)])
            self._update_buttons()

        self._run(embed, ready, failed, "identity")

    # ================================================================== driver
    def refresh_cameras(self) -> None:
        """List the cameras again (off the UI thread: probing opens each one); says which came or went."""
        from retarget.media.sources import list_cameras

        if self._cameras is None:
            self._set_cameras([])

        # The camera a running stream holds cannot be opened again: keep it in the list.
        busy = self._driver_spec() if self.stream_state != "idle" else None

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

    # ------------------------------------------------------------------ drag and drop
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

    # ================================================================== shutdown
    def closeEvent(self, event) -> None:
        self.panel.save(self.store)
        self._save_layout()
        self.store.sync()
        self._status_timer.stop()
        if self._render_cancel is not None:
            self._render_cancel.set()
        if self.download_dialog is not None and self.download_dialog.outcome is None:
            self.download_dialog.cancel()
        sink, stopped_at = self.outputs.take_recorder()
        cam = self.outputs.set_vcam(None)
        if self.session is not None:
            self.session.stop()  # waits for the frame in progress: closing, a short wait is expected
            self.session.analyzer.close()
        if sink is not None:
            self._finish_recording_on_exit(sink, stopped_at)
        if cam is not None:
            cam.close()
        for task in list(self._tasks):
            task.wait()  # every worker ends: none may outlive the models it uses
        self.face_picker.close()
        if self.retargeter is not None:
            self.retargeter.close()
        super().closeEvent(event)
