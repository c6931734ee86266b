"""The main window: identity + driver in, live retargeted output, recording, offline render.

The window holds widgets and Qt bridging only; models, identity, the live stream, renders and the
recording belong to one retarget.session.Session, whose state (idle, loading, ready, streaming,
rendering) is the one the buttons show. Each command lives in a mixin per concept (inputs, models,
live, recording, render, layout, status).

Threads: the UI thread only moves small things around. The session's slow halves (loading,
embedding an identity, opening a driver, stopping a stream, rendering) and closing a recording run
as Tasks (QThreads); live generation runs on the engine's own capture/render threads, whose frames
and failures reach the UI through SessionBridge's queued signals. The session never lets two jobs
use the pipeline at once, and a stream counts as stopped only once its last generate() is over.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QHBoxLayout, QLabel, QMainWindow, QMenu, QProgressBar, QPushButton, QScrollArea, QSplitter, QToolBar,
    QVBoxLayout, QWidget,
)

from gui.bridge_controls import BridgeControls
from gui.expression_composer import add_expression_composer
from gui.inputs import InputChoosing
from gui.layout import WindowLayout
from gui.face_picker import FacePicker
from gui.input_preview import InputPreview
from gui.live_controls import LiveControls
from gui.menus import build_menus
from gui.model_loading import ModelLoading
from gui.recording_controls import RecordingControls
from gui.render_controls import RenderControls
from gui.settings_panel import SettingsPanel
from gui.theme import ThemeChoice
from gui.status import NO_VALUE, NOTICE_STYLE, StatusDisplay
from gui.views import BlendshapeChart, ErrorBanner, ImageView, region_legend
from gui.workers import SessionBridge, Task
from retarget.errors import user_message
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.media.frame_source import DEFAULT_FPS
from retarget.session import Session
from retarget.session.states import State


def _has_pyvirtualcam() -> bool:
    return importlib.util.find_spec("pyvirtualcam") is not None


class MainWindow(InputChoosing, ModelLoading, LiveControls, RecordingControls, RenderControls, WindowLayout, StatusDisplay,
                 QMainWindow):
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

        self.session = Session()  # models, identity, stream, render, recording: the window only shows them
        self.bridge = SessionBridge(self.session, self)  # its events, queued to the UI thread
        self.outputs = self.session.outputs  # recording, virtual camera, run rows: fed on the render thread
        self.last_frame = None
        self.last_driven = None  # the driver frame on screen (DriverFrame): perceived at the driver's rate
        self.waiting_text: str | None = None  # what the output pane says while it waits for a frame
        self._slow_live_told = False  # a slow device's expectation is said once per window
        self._state_note: str | None = None  # why the next state change happens, for the status line
        self.error_messages: list[str] = []
        self._tasks: set[Task] = set()
        self._pending_identity: Path | None = None
        self._neutral_raw = None
        self._driver_fps = DEFAULT_FPS
        self._restart_after_load = False
        self._hub_download_offered = False  # the first-run download of `hub` opens by itself once
        self.landmark_overlay = False
        self._cameras: list[int] | None = None
        self._mapping_timer = QTimer(self, singleShot=True, interval=250)  # gain spin boxes change in bursts
        self._mapping_timer.timeout.connect(self._apply_mapping)
        self.recording_path: Path | None = None
        self.recorded_frames = 0
        self.vcam_backend: str | None = None  # pyvirtualcam backend name; None = the platform's own
        self._vcam_wanted = False
        self.download_dialog = None
        self._render_progress = None  # RenderProgress while an offline render runs
        self._render_rate = None  # its recent frame rate, for an honest ETA
        self.render_output = None  # the last finished render's file (the banner's Open / Show in folder)

        self._build_ui()
        self.actions_by_name = build_menus(self)
        self.composer = add_expression_composer(self)  # View > Compose expression: sliders for a still
        self.bridge_controls = BridgeControls(self)  # the expression bridge: gains it enables, "Calibrate..." offers
        self.face_picker = FacePicker(self)  # which face: numbered boxes on the identity and driver, click to pick
        self.input_preview = InputPreview(self)  # the identity photo and the driver's first frame, pane-sized, before Start
        view_menu = next((m for m in self.menuBar().findChildren(QMenu) if m.title() == "&View"), None)
        self.theme = ThemeChoice(self, view_menu)  # View > Theme: follow the system, light or dark; a Start that stands out
        self.panel.restore(self.store)
        self.apply_provenance()  # marking on unless the saved settings say otherwise; shown in the status bar
        if device is not None and not self.panel.select_device(device):
            self.show_error(f"--device {device} is not available here; using {self.panel.device_name()}", kind="device")
        self._restore_files()
        self._restore_layout()
        self._connect_frame_controls()  # View > Whole photo / Face crop and the panel's Frame: to the session
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
        """The window's parts, top to bottom: banners, tool bar, settings beside the panes and chart, the busy and
        render row, the status bar; then their signals."""
        central = QWidget()
        outer = QVBoxLayout(central)
        outer.setContentsMargins(6, 6, 6, 6)
        self.banner = ErrorBanner()
        self.notice = ErrorBanner(style=NOTICE_STYLE)  # results that stay until dismissed (render outcome, saved files)
        outer.addWidget(self.banner)
        outer.addWidget(self.notice)
        self._build_toolbar()
        self._build_panes()
        self._build_settings()
        outer.addWidget(self.main_splitter, 1)
        outer.addLayout(self._build_render_row())
        self._show_render_row(False)
        self._set_busy(None)
        self.setCentralWidget(central)
        self._build_status_bar()
        self._connect_controls()
        self._offer_virtual_camera()
        self.resize(1280, 760)
        self._update_buttons()

    def _build_toolbar(self) -> None:
        """Identity, driver, Start, Record, Snapshot, Render, virtual camera: the controls used most."""
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
        # A tool bar folds what does not fit into its extension menu; at 1024 px every essential control stays in view
        # (Export CSV lives in the File menu only).
        self.toolbar = QToolBar("Controls")
        self.toolbar.setObjectName("controls")
        self.toolbar.setMovable(False)
        for w in (self.identity_thumb, self.identity_button, self.driver_combo, self.refresh_button, self.video_button,
                  self.loop_check, self.start_button, self.record_button, self.snapshot_button,
                  self.render_button, self.vcam_check):
            self.toolbar.addWidget(w)
        self.addToolBar(self.toolbar)

    def _build_panes(self) -> None:
        """The driver and output panes side by side over the blendshape chart (self.centre)."""
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

    def _build_settings(self) -> None:
        """The settings panel, scrolling, left of the panes (self.main_splitter)."""
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

    def _build_render_row(self) -> QHBoxLayout:
        """The busy indicator and the offline render's progress, ETA and Cancel."""
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
        return render_row

    def _build_status_bar(self) -> None:
        """Recording, fps, device, memory and provenance, always shown on the right of the status bar."""
        self.rec_label = QLabel("")
        self.rec_label.setStyleSheet("color:#e0303a; font-weight:bold;")
        self.fps_label = QLabel("")
        self.device_label = QLabel(f"device: {NO_VALUE}")
        self.memory_label = QLabel("")
        self.provenance_label = QLabel("")
        for label in (self.rec_label, self.fps_label, self.device_label, self.memory_label, self.provenance_label):
            self.statusBar().addPermanentWidget(label)
        self._show_stats(None)

    def _connect_controls(self) -> None:
        """The buttons, the settings panel and the session's (queued) events to the window's handlers."""
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
        self.panel.options_changed.connect(self.apply_provenance)
        self.bridge.frame_ready.connect(self._on_frame_ready)
        self.bridge.driver_ready.connect(self._on_driver_ready)
        self.bridge.render_frame_ready.connect(self._render_frame_shown)
        self.bridge.failed.connect(self._on_stream_failed)
        self.bridge.progressed.connect(self._render_progressed)
        self.bridge.state_changed.connect(self._on_state_changed)

    def _offer_virtual_camera(self) -> None:
        if not _has_pyvirtualcam():
            self.vcam_check.setEnabled(False)
            self.vcam_check.setToolTip('Unavailable: pyvirtualcam is not installed (pip install -e ".[vcam]")')
        else:
            self.vcam_check.setToolTip("Send the output to a virtual camera (OBS Virtual Camera / v4l2loopback)")

    # ================================================================== what the session holds
    @property
    def retargeter(self):
        return self.session.retargeter

    @property
    def context(self):
        return self.session.identity

    @property
    def identity_path(self) -> Path | None:
        return self.session.identity_path

    @property
    def device(self):
        return self.session.device

    def _update_buttons(self) -> None:
        session = self.session
        ready = self.retargeter is not None and self.context is not None
        rendering = session.state is State.RENDERING
        streaming = session.state is State.STREAMING
        recording = self.outputs.recorder is not None
        self.start_button.setText("Stop" if streaming and not session.stopping else "Start")
        if hasattr(self, "theme"):
            self.theme.style_start_button()
        self.start_button.setEnabled((ready and not rendering and self._driver_spec() is not None) or session.live_running)
        self.record_button.setEnabled(session.live_running or recording)
        self.record_button.setChecked(recording)
        self.record_button.setText("\u25cf Stop recording" if recording else "Record")
        self.snapshot_button.setEnabled(self.last_frame is not None)
        self.export_button.setEnabled(bool(self.outputs.rows))
        self.render_button.setEnabled(ready and not rendering and not streaming)
        self.identity_button.setEnabled(self.retargeter is not None or not streaming)

    def _run(self, fn, on_success=None, on_failure=None, name: str = "task") -> Task:
        task = Task(fn, self, name)
        self._tasks.add(task)
        if on_success is not None:
            task.succeeded.connect(on_success)
        task.failed.connect(on_failure or (lambda err: self.show_error(user_message(err))))
        task.finished.connect(lambda: self._tasks.discard(task))
        task.start()
        return task

    # ================================================================== shutdown
    def closeEvent(self, event) -> None:
        self.panel.save(self.store)
        self._save_layout()
        self.store.sync()
        self._status_timer.stop()
        self.session.cancel_render()
        if self.download_dialog is not None and self.download_dialog.outcome is None:
            self.download_dialog.cancel()
        sink, stopped_at = self.session.stop_recording()
        cam = self.outputs.set_vcam(None)
        if self.session.live_running or self.session.opening:
            self.session.stop_live()  # waits for the frame in progress: closing, a short wait is expected
        if sink is not None:
            self._finish_recording_on_exit(sink, stopped_at)
        if cam is not None:
            cam.close()
        for task in list(self._tasks):
            task.wait()  # every worker ends: none may outlive the models it uses
        self.face_picker.close()
        try:
            self.session.close()
        except Exception as err:  # closing anyway: say so on stderr, never hang or crash the exit
            import sys

            print(f"retarget: closing: {user_message(err)}", file=sys.stderr)
        super().closeEvent(event)
