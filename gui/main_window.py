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
import json
import threading
import time
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLabel, QMainWindow, QProgressBar, QPushButton, QScrollArea,
    QSplitter, QToolBar, QVBoxLayout, QWidget,
)

from gui.menus import build_menus
from gui.recording import LiveOutputs, default_record_dir, elapsed_text, reserve_new_file
from gui.settings_panel import SettingsPanel
from gui.views import BlendshapeChart, ErrorBanner, ImageView, region_legend, rgb_to_qimage
from gui.workers import LiveBridge, RenderProgress, Task, error_text, memory_in_use
from retarget.expression.blendshapes import BLENDSHAPE_NAMES

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v", ".avi", ".webm")
NO_CAMERA = "No camera found"
NO_VALUE = "\u2013"  # an en dash: shown where there is no measurement yet
NOTICE_STYLE = "background:#1f3f66; color:white;"


class MissingFile(Exception):
    """A load failure that a file or folder fixes: kind is "models", "landmarker" or "smirk"."""

    def __init__(self, kind: str, error: BaseException):
        super().__init__(str(error))
        self.kind, self.error = kind, error


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
        self._retired_analyzers: list[tuple[object, int]] = []
        self._neutral_raw = None
        self._driver_fps = 25.0
        self._restart_after_load = False
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

    def _save_layout(self) -> None:
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/main_splitter", self.main_splitter.saveState())
        self.store.setValue("window/centre_splitter", self.centre.saveState())
        self.store.setValue("window/views_splitter", self.views.saveState())
        self.store.setValue("window/settings_visible", not self.settings_scroll.isHidden())
        self.store.setValue("window/view_mode", self.view_mode)

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

    # ================================================================== models
    def load_models(self) -> None:
        """Load the generator and face models on a worker thread (minutes on first use of `hub`)."""
        device_name = self.panel.device_name()
        spec, landmarker, smirk, lcm = self.models_spec, self.landmarker_path, self.smirk_path, self.lcm_lora
        self._set_busy(f"Loading models ({spec}) on {device_name}...")
        self.retargeter_old, self.retargeter = self.retargeter, None
        self._update_buttons()

        def load():
            from retarget.cli import _quiet_libraries

            _quiet_libraries()
            from retarget.assets import resolve_models
            from retarget.errors import MissingWeightsError
            from retarget.face.landmarker import find_landmarker_model
            from retarget.pipeline import pick_device
            from retarget.retargeter import Retargeter

            # One step per file kind, so a failure says which file is missing and the banner offers its fix.
            try:
                files = resolve_models(spec, progress=lambda line: None)
            except MissingWeightsError as err:
                raise MissingFile("models", err) from None
            try:
                landmarker_file = find_landmarker_model(landmarker or files.landmarker)
            except MissingWeightsError as err:
                raise MissingFile("landmarker", err) from None
            device = pick_device(device_name)
            try:
                retargeter = Retargeter(files, device=device, landmarker_path=landmarker_file, smirk_path=smirk)
            except MissingWeightsError as err:
                raise MissingFile("smirk" if "SMIRK" in str(err) else "models", err) from None
            if lcm:
                retargeter.pipeline.load_lcm_lora(lcm)
            return retargeter, files

        self._run(load, self._models_ready, self._models_failed, "load-models")

    def _models_ready(self, result) -> None:
        old = getattr(self, "retargeter_old", None)
        if old is not None:
            old.close()
        self.retargeter, files = result
        self.models_description = files.description
        self.device = self.retargeter.pipeline.device
        self.device_label.setText(f"device: {self.device}")
        self.panel.set_lcm_available(bool(getattr(self.retargeter.pipeline, "has_lcm", False)))
        self._set_busy(None)
        self.banner.clear("models", "landmarker", "smirk", "download")
        self.statusBar().showMessage(f"Models ready: {files.description}", 5000)
        self.models_loaded.emit()
        identity = self._pending_identity or self.identity_path
        self._pending_identity = None
        self.context = None  # an identity embedded on another device or model set must be redone
        restart, self._restart_after_load = self._restart_after_load, False
        if identity is not None:
            self.load_identity(identity, restart=restart)
        if self._vcam_wanted:
            self._open_vcam()
        self._update_buttons()

    def _models_failed(self, err) -> None:
        self._set_busy(None)
        self._restart_after_load = False
        kind = err.kind if isinstance(err, MissingFile) else None
        text = f"Could not load the models: {error_text(err.error if isinstance(err, MissingFile) else err)}"
        retry = ("Retry", self.load_models)
        actions = {
            "models": [("Choose models folder...", self.choose_models_folder), ("Download...", self.download_models), retry],
            "landmarker": [("Choose file...", self.choose_landmarker), ("Download", self.download_landmarker), retry],
            "smirk": [("Choose file...", self.choose_smirk), retry],
        }.get(kind, [retry])
        self.show_error(text, kind=kind or "load", actions=actions)
        self._update_buttons()

    def choose_models_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder (from `retarget download --to DIR`)",
                                                  str(self.store.value("files/models_dir", "")))
        if folder:
            self.set_models(folder)

    def set_models(self, spec: str) -> None:
        """Use another model set (a folder, hub, random:tiny) and load it."""
        self.models_spec = str(spec)
        self.store.setValue("files/models_dir", str(spec))
        self._reload_models()

    def choose_landmarker(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "MediaPipe face landmarker", "", "MediaPipe task (*.task);;All files (*)")
        if path:
            self.landmarker_path = Path(path)
            self._reload_models()

    def choose_smirk(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "SMIRK encoder (SMIRK_em1.pt)", "", "PyTorch checkpoint (*.pt);;All files (*)")
        if path:
            self.smirk_path = Path(path)
            self._reload_models()

    def _reload_models(self) -> None:
        if self.stream_state != "idle":
            self._restart_after_load = self.stream_state == "running"
            self.stop_stream(then=self.load_models)
        else:
            self.load_models()

    def download_models(self, to: str | Path | None = None) -> None:
        """`retarget download` in a dialog (per-file progress, Cancel); loads the folder when it is complete."""
        from gui.downloads import DownloadDialog, models_download
        from retarget.assets import ARC2FACE_FILES, BASE_FILES

        if to is None:
            to = QFileDialog.getExistingDirectory(self, "Download the models into this folder", str(Path.home()))
            if not to:
                return
        to = Path(to)
        dialog = DownloadDialog(f"Downloading the models into {to}", models_download(to),
                                total_files=len(ARC2FACE_FILES) + len(BASE_FILES) + 1, parent=self)
        dialog.finished_with.connect(lambda outcome, result: self._download_ended(outcome, result, lambda: self.set_models(to)))
        self.download_dialog = dialog
        dialog.show()
        dialog.start()

    def download_landmarker(self) -> None:
        from gui.downloads import DownloadDialog

        def fetch(counter):
            from retarget.face.landmarker import find_landmarker_model

            counter.begin("face_landmarker.task (MediaPipe)", None)
            return find_landmarker_model(download=True)

        def use(path):
            self.landmarker_path = Path(path)
            self._reload_models()

        dialog = DownloadDialog("Downloading the MediaPipe face landmarker", fetch, parent=self)
        dialog.finished_with.connect(lambda outcome, result: self._download_ended(outcome, result, lambda: use(result)))
        self.download_dialog = dialog
        dialog.show()
        dialog.start()

    def _download_ended(self, outcome: str, result, then) -> None:
        if outcome == "done":
            self.banner.clear("download")
            then()
        elif outcome == "cancelled":
            self.show_notice(str(result), kind="download")
        else:
            self.show_error(f"Download failed: {result}", kind="download", actions=[("Retry download", self.download_models)])

    def _device_changed(self, name: str) -> None:
        if self.retargeter is None:
            return  # loading now; it reads the combo when it starts, and a reload follows below if it differs
        self._reload_models()  # a running stream restarts on the new device once the models are in

    # ================================================================== identity
    def _choose_identity(self) -> None:
        start = str(self.identity_path.parent) if self.identity_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Identity photo", start, "Images (*.png *.jpg *.jpeg *.webp *.bmp)")
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
            if busy and busy.startswith("webcam:"):
                found = sorted(set(found) | {int(busy.split(":", 1)[1])})
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
                  if self.driver_combo.itemData(i) and not str(self.driver_combo.itemData(i)).startswith("webcam:")]
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
                                              "Videos (*.mp4 *.mov *.mkv *.m4v *.avi *.webm);;All files (*)")
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
            self.show_error("The models are still loading; start again when they are ready", kind="models-loading")
            return
        if self.context is None:
            self.show_error("Choose an identity photo first (button or drop one on the window)", kind="identity",
                            actions=[("Choose photo...", self._choose_identity)])
            return
        if spec is None:
            self.show_error("No driver: no camera was found; choose a video file", kind="driver",
                            actions=[("Video file...", self._choose_video), ("Refresh cameras", self.refresh_cameras)])
            return
        if self._render_task is not None:
            self.show_error("An offline render is running; cancel it or wait for it to finish", kind="render-running",
                            actions=[("Cancel render", self.cancel_render)])
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
            self.outputs.rows = []
            self.bridge = LiveBridge(self.outputs.write)
            self.bridge.frame_ready.connect(self._on_frame_ready)
            self.bridge.failed.connect(self._on_stream_failed)
            self.session = LiveSession(retargeter.pipeline, context, analyzer, self.panel.generation_settings(), source,
                                       on_output=self.bridge.on_output, on_error=self.bridge.on_error)
            if self._neutral_raw is not None and mapping.relative:
                analyzer.set_neutral_from(self._neutral_raw)
            self.session.start()
            self.stream_state = "running"
            self.banner.clear("stream", "identity", "driver", "models-loading", "render-running")
            self.statusBar().showMessage(f"Live: {spec}", 3000)
            self._update_buttons()
            self.stream_started.emit()

        def failed(err):
            self._set_busy(None)
            self.stream_state = "idle"
            self.show_error(f"Could not start {spec}: {error_text(err)}", kind="stream",
                            actions=[("Retry", self.start_stream), ("Refresh cameras", self.refresh_cameras)])
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
            session.stop()  # returns once the render thread's last generate() is over: the pipeline is free
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
            self._show_stats(None)  # no numbers frozen from the last stream
            self._update_buttons()
            self.stream_stopped.emit(reason)
            if then:
                then()

        def failed(err):
            stopped(None)
            self.show_error(f"Stopping the stream: {error_text(err)}", kind="stream")

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
        if self.view_mode == "blend":
            self.output_view.set_underlay(frame.driver)
        self.chart.set_values(frame.blendshapes)
        if not self.snapshot_button.isEnabled() or not self.export_button.isEnabled():
            self._update_buttons()

    def _on_stream_failed(self, err) -> None:
        if isinstance(err, StopIteration):
            return  # the end of a file, handled by _tick
        self.show_error(f"The live stream stopped: {error_text(err)}", kind="stream", actions=[("Restart", self.start_stream)])
        self.stop_stream("failed")

    def _tick(self) -> None:
        """Four times a second: status bar, end-of-stream detection, retired analyzers."""
        session = self.session
        if session is not None and self.stream_state == "running":
            self._show_stats(session.stats)
            if session.finished.is_set() and (session.error is None or isinstance(session.error, StopIteration)):
                broken = getattr(session.source, "decode_error", None)
                if broken:
                    self.show_error(f"The driver stopped: {broken}", kind="stream")
                    self.stop_stream("failed")
                elif self.loop_check.isChecked() and not getattr(session.source, "live", False):
                    self.statusBar().showMessage("The driver video ended; playing it again (Loop)", 3000)
                    self.stop_stream("ended", then=self.start_stream)
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
        if self.outputs.recorder is not None:
            name = self.recording_path.name if self.recording_path else ""
            self.rec_label.setText(f"\u25cf REC {elapsed_text(self.outputs.elapsed())}  {name}")
        if self.outputs.vcam_error:
            error, self.outputs.vcam_error = self.outputs.vcam_error, None
            self._set_vcam_checked(False)
            self.show_error(f"The virtual camera stopped: {error}", kind="vcam")

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
    def record_dir(self) -> Path:
        return Path(str(self.store.value("files/record_dir", "") or default_record_dir()))

    def choose_record_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save recordings and snapshots in", str(self.record_dir()))
        if folder:
            self.store.setValue("files/record_dir", folder)
            self.statusBar().showMessage(f"Recordings and snapshots go to {folder}", 6000)

    def toggle_recording(self) -> None:
        if self.outputs.recorder is not None:
            self.stop_recording()
        else:
            self.start_recording()

    def start_recording(self, path=None) -> None:
        """Record to a new file in the recordings folder (or to `path`, which must not exist yet)."""
        if self.stream_state != "running" or self.retargeter is None:
            self.statusBar().showMessage("Recording needs a running stream", 4000)
            self.record_button.setChecked(False)
            return
        try:
            if path is None:
                path = reserve_new_file(self.record_dir(), time.strftime("retarget-%Y%m%d-%H%M%S"), ".mp4")
            else:
                path = Path(path)
                # Exclusive create: an existing file is never replaced, only our own placeholder.
                path.parent.mkdir(parents=True, exist_ok=True)
                path.open("x").close()
        except FileExistsError:
            self.show_error(f"Not recording: {path} already exists (recordings never replace a file)", kind="recording")
            self.record_button.setChecked(False)
            return
        except OSError as err:
            self.show_error(f"Cannot record in {self.record_dir()}: {error_text(err)}", kind="recording",
                            actions=[("Save recordings in...", self.choose_record_dir)])
            self.record_button.setChecked(False)
            return
        try:
            self.outputs.start_recording(path, self.retargeter.pipeline.image_size)
        except Exception as err:
            path.unlink(missing_ok=True)  # our empty placeholder
            self.show_error(f"Cannot record to {path}: {error_text(err)}", kind="recording")
            self.record_button.setChecked(False)
            return
        self.recording_path = path
        self.banner.clear("recording")
        self.rec_label.setText(f"\u25cf REC 0:00  {path.name}")
        self.rec_label.setToolTip(f"Recording to {path}")
        self.statusBar().showMessage(f"Recording to {path}", 5000)
        self._update_buttons()

    def stop_recording(self) -> None:
        sink, stopped_at = self.outputs.take_recorder()
        self._update_buttons()
        if sink is None:
            return
        self.rec_label.setText("saving recording...")

        def close():
            sink.close(end_time=stopped_at)  # flushes the encoder: off the UI thread
            return sink

        def saved(sink):
            self.recorded_frames = sink.frames_written
            self.rec_label.setText("")
            self.show_notice(f"Recorded {sink.frames_written} frames ({elapsed_text(sink.seconds)}) to {sink.path}",
                             kind="saved")
            self.recording_saved.emit(str(sink.path), sink.frames_written)

        def failed(err):
            sink.abort()
            if sink.path.is_file() and sink.path.stat().st_size == 0:
                sink.path.unlink()  # the empty placeholder we reserved, nothing else
            self.rec_label.setText("")
            self.show_error(f"Recording to {sink.path} failed: {error_text(err)}", kind="recording")

        self._run(close, saved, failed, "recording")

    def take_snapshot(self) -> Path | None:
        """The current output as a new PNG in the recordings folder (never replacing a file)."""
        if self.last_frame is None:
            self.statusBar().showMessage("No output frame yet", 4000)
            return None
        try:
            path = reserve_new_file(self.record_dir(), time.strftime("retarget-snapshot-%Y%m%d-%H%M%S"), ".png")
        except OSError as err:
            self.show_error(f"Cannot save a snapshot in {self.record_dir()}: {error_text(err)}", kind="snapshot",
                            actions=[("Save recordings in...", self.choose_record_dir)])
            return None
        return path if self._save_output(path) else None

    def snapshot(self, path) -> bool:
        """The current output to `path` (.png), which must not exist yet."""
        if self.last_frame is None:
            self.statusBar().showMessage("No output frame yet", 4000)
            return False
        path = Path(path).with_suffix(".png") if Path(path).suffix.lower() != ".png" else Path(path)
        try:
            path.open("x").close()
        except FileExistsError:
            self.show_error(f"Not saved: {path} already exists (snapshots never replace a file)", kind="snapshot")
            return False
        except OSError as err:
            self.show_error(f"Cannot write {path}: {error_text(err)}", kind="snapshot")
            return False
        return self._save_output(path)

    def _save_output(self, path: Path) -> bool:
        if not self.last_frame.output.save(str(path), "PNG"):
            path.unlink(missing_ok=True)  # our empty placeholder
            self.show_error(f"Cannot write {path}", kind="snapshot")
            return False
        self.show_notice(f"Saved snapshot {path}", kind="saved")
        return True

    def _choose_export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export blendshapes", str(self.record_dir() / "blendshapes.csv"), "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path) -> Task | None:
        rows = list(self.outputs.rows)
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

    def _set_vcam_checked(self, on: bool) -> None:
        self.vcam_check.blockSignals(True)
        self.vcam_check.setChecked(on)
        self.vcam_check.blockSignals(False)
        self._vcam_wanted = on

    def _toggle_vcam(self, on: bool) -> None:
        self._vcam_wanted = on
        if not on:
            cam = self.outputs.set_vcam(None)
            if cam is not None:
                cam.close()
            return
        if self.retargeter is None:
            # Ticked while the models load: it stays ticked and opens once they are in.
            self.statusBar().showMessage("The virtual camera starts when the models are ready", 5000)
            return
        self._open_vcam()

    def _open_vcam(self) -> None:
        size, fps, backend = self.retargeter.pipeline.image_size, max(self._driver_fps, 30.0), self.vcam_backend

        def open_cam():
            import pyvirtualcam

            return pyvirtualcam.Camera(width=size, height=size, fps=fps, backend=backend)

        def opened(cam):
            if not self._vcam_wanted:
                cam.close()  # unticked while it opened
                return
            old = self.outputs.set_vcam(cam)
            if old is not None:
                old.close()
            self.banner.clear("vcam")
            self.statusBar().showMessage(f"Virtual camera: {cam.device}", 5000)

        def failed(err):
            self._set_vcam_checked(False)
            self.show_error(f"No virtual camera: {error_text(err)}. On Linux load v4l2loopback "
                            "(sudo modprobe v4l2loopback devices=1); on Windows/macOS install OBS and start its Virtual Camera once",
                            kind="vcam", actions=[("Try again", lambda: self.vcam_check.setChecked(True))])

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
            self.show_error("Load the models and an identity photo before rendering", kind="identity")
            return
        if self.stream_state != "idle" or self._render_task is not None:
            self.show_error("Stop the live stream (or the running render) first", kind="render-busy")
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
            # The outcome stays on screen until dismissed: a render can take hours and finish unattended.
            self.show_notice(
                f"Rendered {summary.frames} frames to {out} ({summary.fps:.1f} frames/s"
                + (f", {summary.frames_without_face} without a face" if summary.frames_without_face else "") + ")",
                kind="render")
            self.render_finished.emit("done")

        def failed(err):
            from retarget.errors import JobInterrupted

            done_frames = progress.done
            self._render_ended()
            if isinstance(err, JobInterrupted):
                self.show_notice(f"Render of {Path(driver).name} cancelled after {done_frames} frames; "
                                 f"render the same video to {out.name} to continue", kind="render")
                self.render_finished.emit("cancelled")
            else:
                self.show_error(f"Render of {Path(driver).name} failed: {error_text(err)}", kind="render")
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
        self.banner.clear("render-running", "render-busy")
        self._update_buttons()

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
        for analyzer, _ in self._retired_analyzers:
            analyzer.close()
        if sink is not None:
            sink.close(end_time=stopped_at)
        if cam is not None:
            cam.close()
        for task in list(self._tasks):
            task.wait()  # every worker ends: none may outlive the models it uses
        if self.retargeter is not None:
            self.retargeter.close()
        super().closeEvent(event)
