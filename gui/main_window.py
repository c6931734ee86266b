"""The main window: identity + driver in, live retargeted output, recording, offline render.

Threads: the UI thread only moves small things around. Model loading, identity embedding, opening
a driver, stopping a stream, closing a recording and offline renders run as Tasks (QThreads); live
generation runs on LiveSession's own capture/render threads, whose frames reach the UI through
LiveBridge's queued signal. The pipeline is never used by two streams at once: live and offline
renders exclude each other.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence, QPixmap, QShortcut
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QProgressBar, QPushButton, QScrollArea,
    QSplitter, QVBoxLayout, QWidget,
)

from gui.settings_panel import SettingsPanel
from gui.views import BlendshapeChart, ErrorBanner, ImageView, rgb_to_qimage
from gui.workers import LiveBridge, RenderProgress, Task, error_text, memory_in_use
from retarget.expression.blendshapes import BLENDSHAPE_NAMES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm")
NO_CAMERA = "No camera found"


def _has_pyvirtualcam() -> bool:
    return importlib.util.find_spec("pyvirtualcam") is not None


class MainWindow(QMainWindow):
    # Signals tests and the screenshot tool can wait on.
    models_loaded = pyqtSignal()
    identity_loaded = pyqtSignal(str)
    stream_started = pyqtSignal()
    stream_stopped = pyqtSignal(str)  # why it stopped
    recording_saved = pyqtSignal(str, int)  # path, frames
    render_finished = pyqtSignal(str)  # "done", "cancelled" or "failed"
    error_shown = pyqtSignal(str)

    def __init__(self, models: str = "hub", landmarker_path: str | Path | None = None,
                 settings: QSettings | None = None, autoload: bool = True, probe_cameras: bool = True):
        super().__init__()
        self.models_spec = models
        self.landmarker_path = Path(landmarker_path) if landmarker_path else None
        self.store = settings if settings is not None else QSettings("retarget", "retarget")
        self.setWindowTitle("retarget: facial expression retargeting")
        self.setAcceptDrops(True)  # drop an identity photo or a driver video anywhere on the window

        self.retargeter = None
        self.device = None
        self.context = None
        self.identity_path: Path | None = None
        self.session = None
        self.bridge: LiveBridge | None = None
        self.stream_state = "idle"  # idle, starting, running, stopping
        self.last_frame = None
        self.error_messages: list[str] = []
        self._tasks: set[Task] = set()
        self._pending_identity: Path | None = None
        self._retired_analyzers: list[tuple[object, int]] = []
        self._neutral_raw = None
        self._driver_fps = 25.0
        self._mapping_timer = QTimer(self, singleShot=True, interval=250)  # gain spin boxes change in bursts
        self._mapping_timer.timeout.connect(self._apply_mapping)
        # recording / run data, written from the engine's render thread
        self._sink_lock = threading.Lock()
        self._recorder = None
        self.recording_path: Path | None = None
        self.recorded_frames = 0
        self._bs_rows: list = []
        self._vcam = None
        # offline render
        self._render_task: Task | None = None
        self._render_cancel: threading.Event | None = None
        self._render_progress: RenderProgress | None = None

        self._build_ui()
        self._build_shortcuts()
        self.panel.restore(self.store)
        self._restore_files()
        self._status_timer = QTimer(self, interval=250)
        self._status_timer.timeout.connect(self._tick)
        self._status_timer.start()
        if probe_cameras:
            self._probe_cameras()
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
        outer.addWidget(self.banner)

        bar = QHBoxLayout()
        self.identity_thumb = QLabel("drop a\nphoto")
        self.identity_thumb.setFixedSize(72, 72)
        self.identity_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.identity_thumb.setStyleSheet("border:1px solid #666;")
        self.identity_button = QPushButton("Identity photo...")
        self.identity_button.setToolTip("Choose the person to render (or drop a photo on the window)")
        self.driver_combo = QComboBox()
        self.driver_combo.setMinimumWidth(200)
        self.driver_combo.setToolTip("The face whose expressions are copied: a camera or a video file")
        self.video_button = QPushButton("Video file...")
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start or stop live retargeting (Space, Ctrl+Return)")
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.setToolTip("Record the live output to an MP4 (Ctrl+R)")
        self.snapshot_button = QPushButton("Snapshot")
        self.export_button = QPushButton("Export CSV")
        self.export_button.setToolTip("Save this run's 52 mapped blendshapes per frame as CSV")
        self.render_button = QPushButton("Render video...")
        self.render_button.setToolTip("Render every frame of the driver video to a file (like retarget --headless)")
        self.vcam_check = QCheckBox("Virtual camera")
        for w in (self.identity_thumb, self.identity_button, self.driver_combo, self.video_button, self.start_button,
                  self.record_button, self.snapshot_button, self.export_button, self.render_button, self.vcam_check):
            bar.addWidget(w)
        bar.addStretch(1)
        outer.addLayout(bar)

        views = QSplitter(Qt.Orientation.Horizontal)
        self.driver_view = ImageView("Driver\n(camera or video)")
        self.output_view = ImageView("Output\n(the identity making the driver's expressions)")
        views.addWidget(self.driver_view)
        views.addWidget(self.output_view)
        self.chart = BlendshapeChart(BLENDSHAPE_NAMES)
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(views)
        centre.addWidget(self.chart)
        self.chart.setMaximumHeight(200)
        centre.setStretchFactor(0, 5)
        centre.setStretchFactor(1, 1)
        centre.setSizes([560, 140])

        self.panel = SettingsPanel()
        scroll = QScrollArea()
        scroll.setWidget(self.panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(320)
        scroll.setMaximumWidth(380)
        main = QSplitter(Qt.Orientation.Horizontal)
        main.addWidget(scroll)
        main.addWidget(centre)
        main.setStretchFactor(1, 1)
        outer.addWidget(main, 1)

        render_row = QHBoxLayout()
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)  # busy indicator while models / identity load
        self.busy.setMaximumWidth(160)
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

        self.fps_label = QLabel("in - fps | out - fps | latency - ms")
        self.device_label = QLabel("device: -")
        self.memory_label = QLabel("")
        self.rec_label = QLabel("")
        for label in (self.rec_label, self.fps_label, self.device_label, self.memory_label):
            self.statusBar().addPermanentWidget(label)

        self.identity_button.clicked.connect(self._choose_identity)
        self.video_button.clicked.connect(self._choose_video)
        self.start_button.clicked.connect(self.toggle_stream)
        self.record_button.clicked.connect(self.toggle_recording)
        self.snapshot_button.clicked.connect(self._choose_snapshot)
        self.export_button.clicked.connect(self._choose_export)
        self.render_button.clicked.connect(self._choose_render)
        self.cancel_button.clicked.connect(self.cancel_render)
        self.vcam_check.toggled.connect(self._toggle_vcam)
        self.panel.generation_changed.connect(self._apply_generation)
        self.panel.mapping_changed.connect(self._mapping_timer.start)
        self.panel.device_changed.connect(self._device_changed)
        self.panel.neutral_requested.connect(self.set_neutral)
        self.banner.dismissed.connect(lambda: None)

        if not _has_pyvirtualcam():
            self.vcam_check.setEnabled(False)
            self.vcam_check.setToolTip("Unavailable: pyvirtualcam is not installed (pip install pyvirtualcam)")
        else:
            self.vcam_check.setToolTip("Send the output to a virtual camera (OBS Virtual Camera / v4l2loopback)")
        self.resize(1280, 760)
        self._update_buttons()

    def _build_shortcuts(self) -> None:
        for keys in ("Space", "Ctrl+Return", "Ctrl+Enter"):
            QShortcut(QKeySequence(keys), self, activated=self.toggle_stream)
        QShortcut(QKeySequence("Ctrl+R"), self, activated=self.toggle_recording)
        QShortcut(QKeySequence("N"), self, activated=self.set_neutral)
        quit_action = QAction("Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)
        self.addAction(quit_action)

    def _show_render_row(self, visible: bool) -> None:
        for w in (self.render_bar, self.render_eta, self.cancel_button):
            w.setVisible(visible)

    def _set_busy(self, text: str | None) -> None:
        self.busy.setVisible(text is not None)
        self.busy_label.setText(text or "")

    def _update_buttons(self) -> None:
        ready = self.retargeter is not None and self.context is not None
        rendering = self._render_task is not None
        streaming = self.stream_state in ("running", "starting")
        self.start_button.setText("Stop" if streaming else "Start")
        self.start_button.setEnabled((ready and not rendering and self._driver_spec() is not None)
                                     or self.stream_state == "running")
        self.record_button.setEnabled(self.stream_state == "running" or self._recorder is not None)
        self.record_button.setChecked(self._recorder is not None)
        self.snapshot_button.setEnabled(self.last_frame is not None)
        self.export_button.setEnabled(bool(self._bs_rows))
        self.render_button.setEnabled(ready and not rendering and not streaming and self.stream_state != "stopping")
        self.identity_button.setEnabled(self.retargeter is not None or self.stream_state == "idle")

    # ================================================================== messages
    def show_error(self, text: str) -> None:
        """Every error lands here: a non-modal banner, the status bar, and error_messages (for tests)."""
        self.error_messages.append(text)
        self.banner.show_message(text)
        self.statusBar().showMessage(text, 10000)
        self.error_shown.emit(text)

    def _run(self, fn, on_success=None, on_failure=None, name: str = "task") -> Task:
        task = Task(fn, self, name)
        self._tasks.add(task)
        if on_success is not None:
            task.succeeded.connect(on_success)
        task.failed.connect(on_failure or (lambda err: self.show_error(error_text(err))))
        task.finished.connect(lambda: self._tasks.discard(task))
        task.start()
        return task

    # ================================================================== models
    def load_models(self) -> None:
        """Load the generator and face models on a worker thread (minutes on first use of `hub`)."""
        device_name = self.panel.device_name()
        spec, landmarker = self.models_spec, self.landmarker_path
        self._set_busy(f"Loading models ({spec}) on {device_name}...")
        self.retargeter_old, self.retargeter = self.retargeter, None
        self._update_buttons()

        def load():
            from retarget.cli import _quiet_libraries

            _quiet_libraries()
            from retarget.assets import resolve_models
            from retarget.pipeline import pick_device
            from retarget.retargeter import Retargeter

            files = resolve_models(spec, progress=lambda line: None)
            device = pick_device(device_name)
            return Retargeter(files, device=device, landmarker_path=landmarker), files

        self._run(load, self._models_ready, self._models_failed, "load-models")

    def _models_ready(self, result) -> None:
        old = getattr(self, "retargeter_old", None)
        if old is not None:
            old.close()
        self.retargeter, files = result
        self.models_description = files.description
        self.device = self.retargeter.pipeline.device
        self.device_label.setText(f"device: {self.device}")
        self._set_busy(None)
        self.statusBar().showMessage(f"Models ready: {files.description}", 5000)
        self.models_loaded.emit()
        identity = self._pending_identity or self.identity_path
        self._pending_identity = None
        self.context = None  # an identity embedded on another device or model set must be redone
        if identity is not None:
            self.load_identity(identity)
        self._update_buttons()

    def _models_failed(self, err) -> None:
        self._set_busy(None)
        self.show_error(f"Could not load the models: {error_text(err)}")
        self._update_buttons()

    def _device_changed(self, name: str) -> None:
        if self.retargeter is None:
            return  # loading now; it reads the combo when it starts, and a reload follows below if it differs
        self.stop_stream(then=self.load_models) if self.stream_state != "idle" else self.load_models()

    # ================================================================== identity
    def _choose_identity(self) -> None:
        start = str(self.identity_path.parent) if self.identity_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Identity photo", start, "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
        if path:
            self.load_identity(path)

    def load_identity(self, path) -> None:
        path = Path(path)
        if self.retargeter is None:
            self._pending_identity = path  # embedded once the models are in
            self.statusBar().showMessage(f"{path.name} will load when the models are ready", 5000)
            return
        if self.stream_state != "idle":
            # The pipeline is busy rendering: swap the identity between streams, then carry on.
            self.stop_stream(then=lambda: self._load_identity_then(path, restart=True))
            return
        self._load_identity_then(path, restart=False)

    def _load_identity_then(self, path: Path, restart: bool) -> None:
        retargeter = self.retargeter
        self._set_busy(f"Finding the face in {path.name}...")

        def embed():
            from retarget.face.image_io import load_image

            image = load_image(path)
            context = retargeter.identity_from_image(image, source=path.name)
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
            self.statusBar().showMessage(f"Identity: {path.name}", 5000)
            self._update_buttons()
            self.identity_loaded.emit(str(path))
            if restart:
                self.start_stream()

        def failed(err):
            self._set_busy(None)
            self.show_error(f"Identity {path.name}: {error_text(err)}")
            self._update_buttons()

        self._run(embed, ready, failed, "identity")

    # ================================================================== driver
    def _probe_cameras(self) -> None:
        from retarget.media.sources import list_cameras

        self._set_cameras([])
        self._run(list_cameras, self._set_cameras, lambda err: self._set_cameras([]), "cameras")

    def _set_cameras(self, cameras) -> None:
        current = self._driver_spec()
        videos = [(self.driver_combo.itemText(i), self.driver_combo.itemData(i)) for i in range(self.driver_combo.count())
                  if self.driver_combo.itemData(i) and not str(self.driver_combo.itemData(i)).startswith("webcam:")]
        self.driver_combo.clear()
        if cameras:
            for index in cameras:
                self.driver_combo.addItem(f"Camera {index}", f"webcam:{index}")
        else:
            self.driver_combo.addItem(NO_CAMERA, None)
        for text, data in videos:
            self.driver_combo.addItem(text, data)
        self._select_driver(current)
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
                                              "Videos (*.mp4 *.mov *.mkv *.m4v *.avi *.webm);;All files (*)")
        if path:
            self.add_video_driver(path)

    def add_video_driver(self, path) -> None:
        path = str(Path(path))
        if self.driver_combo.findData(path) < 0:
            self.driver_combo.addItem(f"Video: {Path(path).name}", path)
        self._select_driver(path)
        self.store.setValue("files/video", path)
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

    # ================================================================== live stream
    def toggle_stream(self) -> None:
        if self.stream_state == "running":
            self.stop_stream()
        elif self.stream_state == "idle":
            self.start_stream()

    def start_stream(self) -> None:
        if self.stream_state != "idle":
            return
        spec = self._driver_spec()
        if self.retargeter is None:
            self.show_error("The models are still loading; start again when they are ready")
            return
        if self.context is None:
            self.show_error("Choose an identity photo first (button or drop one on the window)")
            return
        if spec is None:
            self.show_error("No driver: no camera was found; choose a video file")
            return
        if self._render_task is not None:
            self.show_error("An offline render is running; cancel it or wait for it to finish")
            return
        retargeter, context, mapping = self.retargeter, self.context, self.panel.mapping_settings()
        self.stream_state = "starting"
        self._set_busy(f"Opening {spec}...")
        self._update_buttons()

        def open_driver():
            from retarget.media.sources import open_source

            source = open_source(spec)  # a busy or missing camera, or a broken video, fails here
            try:
                analyzer = retargeter.driver_analyzer(mapping, identity_neutral=context.blendshapes)
            except BaseException:
                source.close()
                raise
            return source, analyzer

        def opened(result):
            from retarget.engine import LiveSession

            self._set_busy(None)
            source, analyzer = result
            if self.stream_state != "starting" or retargeter is not self.retargeter:
                source.close()
                analyzer.close()
                return
            self._driver_fps = float(getattr(source, "fps", None) or 25.0)
            self._bs_rows = []
            self.bridge = LiveBridge(self._write_sinks)
            self.bridge.frame_ready.connect(self._on_frame_ready)
            self.bridge.failed.connect(self._on_stream_failed)
            self.session = LiveSession(retargeter.pipeline, context, analyzer, self.panel.generation_settings(), source,
                                       on_output=self.bridge.on_output, on_error=self.bridge.on_error)
            if self._neutral_raw is not None and mapping.relative:
                analyzer.set_neutral_from(self._neutral_raw)
            self.session.start()
            self.stream_state = "running"
            self.statusBar().showMessage(f"Live: {spec}", 3000)
            self._update_buttons()
            self.stream_started.emit()

        def failed(err):
            self._set_busy(None)
            self.stream_state = "idle"
            self.show_error(f"Could not start {spec}: {error_text(err)}")
            self._update_buttons()

        self._run(open_driver, opened, failed, "open-driver")

    def stop_stream(self, reason: str = "stopped", then=None) -> None:
        """Stop on a worker thread (joining the engine can take a frame's time); `then` runs on the UI thread after."""
        if self.stream_state == "starting":
            self.stream_state = "idle"  # opened() sees this and closes what it opened
            self._set_busy(None)
            self._update_buttons()
            if then:
                then()
            return
        if self.stream_state != "running":
            if then and self.stream_state == "idle":
                then()
            return
        self.stream_state = "stopping"
        session, bridge = self.session, self.bridge
        self.stop_recording()
        self._update_buttons()

        def stop():
            session.stop()
            session.analyzer.close()
            return session

        def stopped(_):
            if bridge is not None:
                bridge.frame_ready.disconnect(self._on_frame_ready)
            for analyzer, _ in self._retired_analyzers:
                analyzer.close()
            self._retired_analyzers = []
            self.session = None
            self.stream_state = "idle"
            self._update_buttons()
            self.stream_stopped.emit(reason)
            if then:
                then()

        def failed(err):
            stopped(None)
            self.show_error(f"Stopping the stream: {error_text(err)}")

        self._run(stop, stopped, failed, "stop-stream")

    def _on_frame_ready(self) -> None:
        """UI thread, once per shown frame: hand ready-made QImages to the views; nothing heavy here."""
        frame = self.bridge.take() if self.bridge is not None else None
        if frame is None:
            return
        self.last_frame = frame
        if frame.driver is not None:
            self.driver_view.set_image(frame.driver)
        self.output_view.set_image(frame.output)
        self.chart.set_values(frame.blendshapes)
        if not self.snapshot_button.isEnabled() or not self.export_button.isEnabled():
            self._update_buttons()

    def _on_stream_failed(self, err) -> None:
        if isinstance(err, StopIteration):
            return  # the end of a file, handled by _tick
        self.show_error(f"The live stream stopped: {error_text(err)}")
        self.stop_stream("failed")

    def _tick(self) -> None:
        """Four times a second: status bar, end-of-stream detection, retired analyzers."""
        session = self.session
        if session is not None and self.stream_state == "running":
            s = session.stats
            self.fps_label.setText(f"in {s.input_fps:4.1f} fps | out {s.output_fps:4.1f} fps | latency {s.latency_ms:5.0f} ms"
                                   + (f" | no face {s.frames_without_face}" if s.frames_without_face else ""))
            if session.finished.is_set() and (session.error is None or isinstance(session.error, StopIteration)):
                broken = getattr(session.source, "decode_error", None)
                if broken:
                    self.show_error(f"The driver stopped: {broken}")
                    self.stop_stream("failed")
                else:
                    self.statusBar().showMessage("The driver video ended; stream stopped", 8000)
                    self.stop_stream("ended")
            frames = self.bridge.frames if self.bridge else 0
            keep = []
            for analyzer, at in self._retired_analyzers:
                # The render thread reads session.analyzer once per frame: two frames later the old one is free.
                (analyzer.close() if frames > at + 1 else keep.append((analyzer, at)))
            self._retired_analyzers = keep
        self.memory_label.setText(memory_in_use())
        if self._recorder is not None:
            self.rec_label.setText(f"REC {self._recorder.frames_written} frames")

    # ------------------------------------------------------------------ live settings
    def _apply_generation(self) -> None:
        if self.session is not None:
            # LiveSession reads .settings every frame; a new object swaps atomically.
            self.session.settings = self.panel.generation_settings()

    def _apply_mapping(self) -> None:
        if self.session is None or self.stream_state != "running" or self.retargeter is None:
            return
        retargeter, context, mapping, session = self.retargeter, self.context, self.panel.mapping_settings(), self.session

        def make():
            return retargeter.driver_analyzer(mapping, identity_neutral=context.blendshapes)

        def swap(analyzer):
            if session is not self.session or self.stream_state != "running":
                analyzer.close()
                return
            if mapping.relative and self._neutral_raw is not None:
                analyzer.set_neutral_from(self._neutral_raw)
            old, session.analyzer = session.analyzer, analyzer
            self._retired_analyzers.append((old, self.bridge.frames if self.bridge else 0))

        self._run(make, swap, name="mapping")

    def set_neutral(self) -> None:
        if not self.panel.relative.isChecked():
            self.statusBar().showMessage("Set neutral works in relative mode: tick 'Relative' first", 5000)
            return
        frame = self.last_frame
        if self.session is None or frame is None or frame.raw_blendshapes is None:
            self.statusBar().showMessage("Set neutral needs a live driver with a face in view", 5000)
            return
        self._neutral_raw = frame.raw_blendshapes
        self.session.analyzer.set_neutral_from(frame.raw_blendshapes)
        self.statusBar().showMessage("Neutral face set from the current driver frame", 4000)

    # ================================================================== recording, snapshot, CSV, virtual camera
    def _write_sinks(self, driven, image) -> None:
        """Engine render thread: encode the recording and feed the virtual camera here, not on the UI thread."""
        self._bs_rows.append((driven.time, driven.blendshapes.copy() if driven.face_found else None))
        with self._sink_lock:
            if self._recorder is not None:
                self._recorder.write(image)
            if self._vcam is not None:
                try:
                    self._vcam.send(image)
                except Exception:  # a virtual camera that went away must not stop the stream
                    self._vcam = None

    def toggle_recording(self) -> None:
        if self._recorder is not None:
            self.stop_recording()
        else:
            self.start_recording()

    def start_recording(self, path=None) -> None:
        if self.stream_state != "running" or self.retargeter is None:
            self.statusBar().showMessage("Recording needs a running stream", 4000)
            self.record_button.setChecked(False)
            return
        if path is None:
            folder = Path(self.store.value("files/record_dir", str(Path.home())))
            path = folder / time.strftime("retarget-%Y%m%d-%H%M%S.mp4")
        path = Path(path)
        from retarget.media.sinks import VideoSink

        size = self.retargeter.pipeline.image_size
        try:
            sink = VideoSink(path, self._driver_fps, (size, size))
        except Exception as err:
            self.show_error(f"Cannot record to {path}: {error_text(err)}")
            self.record_button.setChecked(False)
            return
        with self._sink_lock:
            self._recorder = sink
        self.recording_path = path
        self.store.setValue("files/record_dir", str(path.parent))
        self.rec_label.setText("REC")
        self._update_buttons()

    def stop_recording(self) -> None:
        with self._sink_lock:
            sink, self._recorder = self._recorder, None
        self._update_buttons()
        if sink is None:
            return
        self.rec_label.setText("saving recording...")

        def close():
            sink.close()  # flushes the encoder: off the UI thread
            return sink

        def saved(sink):
            self.recorded_frames = sink.frames_written
            self.rec_label.setText("")
            self.statusBar().showMessage(f"Recorded {sink.frames_written} frames to {sink.path}", 8000)
            self.recording_saved.emit(str(sink.path), sink.frames_written)

        def failed(err):
            sink.abort()
            self.rec_label.setText("")
            self.show_error(f"Recording to {sink.path} failed: {error_text(err)}")

        self._run(close, saved, failed, "recording")

    def _choose_snapshot(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save snapshot", str(Path.home() / "snapshot.png"), "PNG (*.png)")
        if path:
            self.snapshot(path)

    def snapshot(self, path) -> bool:
        if self.last_frame is None:
            self.statusBar().showMessage("No output frame yet", 4000)
            return False
        path = Path(path).with_suffix(".png") if Path(path).suffix.lower() != ".png" else Path(path)
        if not self.last_frame.output.save(str(path), "PNG"):
            self.show_error(f"Cannot write {path}")
            return False
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return True

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export blendshapes", str(Path.home() / "blendshapes.csv"), "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path) -> Task | None:
        rows = list(self._bs_rows)
        if not rows:
            self.statusBar().showMessage("No frames in this run yet", 4000)
            return None
        path = Path(path)

        def write():
            from retarget.media.sinks import BlendshapeCsvWriter

            with BlendshapeCsvWriter(path) as writer:  # written under a temporary name, renamed when complete
                for t, values in rows:
                    writer.write(t, values)
            return len(rows)

        return self._run(write, lambda n: self.statusBar().showMessage(f"Wrote {n} rows to {path}", 6000), name="csv")

    def _toggle_vcam(self, on: bool) -> None:
        if not on:
            with self._sink_lock:
                cam, self._vcam = self._vcam, None
            if cam is not None:
                cam.close()
            return
        if self.retargeter is None:
            self.vcam_check.setChecked(False)
            return
        size, fps = self.retargeter.pipeline.image_size, self._driver_fps

        def open_cam():
            import pyvirtualcam

            return pyvirtualcam.Camera(width=size, height=size, fps=fps)

        def opened(cam):
            with self._sink_lock:
                self._vcam = cam
            self.statusBar().showMessage(f"Virtual camera: {cam.device}", 5000)

        def failed(err):
            self.vcam_check.blockSignals(True)
            self.vcam_check.setChecked(False)
            self.vcam_check.blockSignals(False)
            self.vcam_check.setEnabled(False)
            self.vcam_check.setToolTip(f"Unavailable: no virtual camera device ({error_text(err)})")
            self.show_error(f"No virtual camera: {error_text(err)}")

        self._run(open_cam, opened, failed, "vcam")

    # ================================================================== offline render
    def _choose_render(self) -> None:
        driver = self._driver_spec()
        if not driver or driver.startswith("webcam:"):
            driver, _ = QFileDialog.getOpenFileName(self, "Driver video to render", "", "Videos (*.mp4 *.mov *.mkv *.m4v *.avi *.webm)")
            if not driver:
                return
        default = Path(self.store.value("files/render_dir", str(Path(driver).parent))) / f"{Path(driver).stem}_retargeted.mp4"
        out, _ = QFileDialog.getSaveFileName(self, "Render to", str(default), "MP4 video (*.mp4)")
        if out:
            self.start_render(driver, out)

    def start_render(self, driver, out, batch_size: int = 4) -> None:
        if self.retargeter is None or self.context is None or self.identity_path is None:
            self.show_error("Load the models and an identity photo before rendering")
            return
        if self.stream_state != "idle" or self._render_task is not None:
            self.show_error("Stop the live stream (or the running render) first")
            return
        from retarget.engine import OfflineRenderer, RenderOptions, job_key, work_dir_for

        driver, out = str(driver), Path(out)
        retargeter, context, identity = self.retargeter, self.context, self.identity_path
        mapping, settings = self.panel.mapping_settings(), self.panel.generation_settings()
        cancel = threading.Event()
        progress = RenderProgress(0)
        progress.progressed.connect(self._render_progressed)

        def render():
            from retarget.media.sources import open_source

            key = job_key(identity, self.models_description)  # reads the whole photo: not on the UI thread
            with open_source(driver) as source:
                progress.total = source.frame_count or 0
            progress.progressed.emit(0, progress.total)
            renderer = OfflineRenderer(retargeter.pipeline, context,
                                       lambda: retargeter.driver_analyzer(mapping, identity_neutral=context.blendshapes),
                                       settings, key)
            # Same job as the CLI's: resume what a cancelled render of these inputs left behind.
            job = work_dir_for(out) / "job.json"
            try:
                resume = json.loads(job.read_text()) == renderer.manifest(driver, mapping)
            except (OSError, ValueError):
                resume = False
            options = RenderOptions(batch_size=batch_size, resume=resume, progress=False)
            return renderer.render(driver, out, options, cancel=cancel, on_frame=progress.on_frame)

        def done(summary):
            self._render_ended()
            self.statusBar().showMessage(
                f"Rendered {summary.frames} frames to {out} ({summary.fps:.1f} frames/s"
                + (f", {summary.frames_without_face} without a face" if summary.frames_without_face else "") + ")", 10000)
            self.render_finished.emit("done")

        def failed(err):
            from retarget.errors import JobInterrupted

            self._render_ended()
            if isinstance(err, JobInterrupted):
                self.statusBar().showMessage(f"Render cancelled: {err}".replace("run the same command with --resume",
                                                                               "render the same video to the same file"), 10000)
                self.render_finished.emit("cancelled")
            else:
                self.show_error(f"Render of {Path(driver).name} failed: {error_text(err)}")
                self.render_finished.emit("failed")

        self._render_cancel, self._render_progress = cancel, progress
        self.store.setValue("files/render_dir", str(out.parent))
        self.render_bar.setRange(0, 0)
        self.render_eta.setText("starting...")
        self._show_render_row(True)
        self.cancel_button.setEnabled(True)
        self._render_task = self._run(render, done, failed, "render")
        self._update_buttons()

    def _render_progressed(self, done: int, total: int) -> None:
        progress = self._render_progress
        if progress is None:
            return
        if total > 0:
            self.render_bar.setRange(0, total)
            self.render_bar.setValue(done)
        elapsed = time.monotonic() - progress.started
        if done > 0 and total > 0:
            eta = elapsed / done * (total - done)
            self.render_eta.setText(f"ETA {int(eta // 60)}:{int(eta % 60):02d}")

    def cancel_render(self) -> None:
        if self._render_cancel is not None:
            self._render_cancel.set()  # the renderer stops between frames, keeping what it rendered
            self.cancel_button.setEnabled(False)
            self.render_eta.setText("cancelling...")

    def render_frames_done(self) -> int:
        return self._render_progress.done if self._render_progress is not None else 0

    def _render_ended(self) -> None:
        self._render_task = None
        self._render_cancel = None
        self._show_render_row(False)
        self._update_buttons()

    # ================================================================== shutdown
    def closeEvent(self, event) -> None:
        self.panel.save(self.store)
        self.store.sync()
        self._status_timer.stop()
        if self._render_cancel is not None:
            self._render_cancel.set()
        with self._sink_lock:
            sink, self._recorder = self._recorder, None
            cam, self._vcam = self._vcam, None
        if self.session is not None:
            self.session.stop()  # closing: a short wait is expected here
            self.session.analyzer.close()
        for analyzer, _ in self._retired_analyzers:
            analyzer.close()
        if sink is not None:
            sink.close()
        if cam is not None:
            cam.close()
        for task in list(self._tasks):
            task.wait(30000)
        if self.retargeter is not None:
            self.retargeter.close()
        super().closeEvent(event)
