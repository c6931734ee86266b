"""Calibrate expression controls...: fit the expression bridge (blendshapes -> FLAME-55) from the app.

With the published FLAME-55 adapter and no bridge fitted yet, the controls that speak blendshapes
(region gains, the Compose dock's named sliders and presets, the track editor, CSV drivers) offer
this instead of a dead end. The dialog offers the three ways to gather data (a video of an
expressive face, 30 s from the webcam, N renders of the generator itself) and runs the fit on a
worker thread with progress and Cancel. The fit itself is a function (job, progress, cancel) ->
(bridge, path): by default `library_fit`, which calls the library's fitting entry points by name
(retarget.tools.bridge_jobs.fit_bridge_from_videos / fit_bridge_from_renders); tests pass a stand-in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QButtonGroup, QDialog, QFileDialog, QHBoxLayout, QLabel, QProgressBar, QPushButton, QRadioButton, QSpinBox,
    QVBoxLayout,
)

from gui.workers import Task
from retarget.errors import user_message
from retarget.names.kinds import VIDEO_SUFFIXES, file_patterns

CALIBRATE_TEXT = "Calibrate expression controls\u2026"
WEBCAM_SECONDS = 30
WEBCAM_FPS = 25  # frames asked of the camera for WEBCAM_SECONDS (a camera's own rate may differ a little)
DEFAULT_RENDERS = 2000
FIT_MODULE = "retarget.tools.bridge_jobs"  # the library's fitting entry points, imported by name when a fit starts


@dataclass
class CalibrationJob:
    """What to fit from: kind "videos" (files), "webcam" (camera number, WEBCAM_SECONDS) or "renders" (samples)."""

    kind: str
    videos: list[Path] = field(default_factory=list)
    camera: int = 0
    samples: int = DEFAULT_RENDERS

    def describe(self) -> str:
        if self.kind == "videos":
            return f"{len(self.videos)} video(s): " + ", ".join(p.name for p in self.videos)
        if self.kind == "webcam":
            return f"{WEBCAM_SECONDS} s from camera {self.camera}"
        return f"{self.samples} renders of the generator"


Fit = Callable[[CalibrationJob, Callable[[int, "int | None"], None], Callable[[], bool]], tuple]


def library_fit(window) -> Fit:
    """The real fit for the window's loaded models: MediaPipe + SMIRK on videos or the webcam, or renders of its own
    pipeline. The session is RENDERING meanwhile, so no stream or render shares the pipeline."""

    def fit(job: CalibrationJob, progress, cancel):
        import importlib

        jobs = importlib.import_module(FIT_MODULE)
        session = window.session
        retargeter, files = session.retargeter, session.files
        device = str(session.device)
        common = dict(models=files, exp_adapter=retargeter.adapter_path, landmarker=retargeter.landmarker_path,
                      progress=progress, cancel=cancel)

        def work():
            if job.kind == "renders":
                return jobs.fit_bridge_from_renders(job.samples, device=device, pipeline=retargeter.pipeline, **common)
            videos = job.videos if job.kind == "videos" else [f"webcam:{job.camera}"]
            return jobs.fit_bridge_from_videos(videos, smirk=retargeter.load_smirk(), device=device,
                                               max_frames=WEBCAM_SECONDS * WEBCAM_FPS if job.kind == "webcam" else None,
                                               **common)

        return session.run_exclusive(work)

    return fit


class CalibrationDialog(QDialog):
    """Choose the data, Start: the fit runs on a worker thread; the bar shows its progress; Cancel stops it."""

    finished_with = pyqtSignal(str, object)  # "done" (bridge, path) | "cancelled" (text) | "failed" (text)

    def __init__(self, fit: Fit, parent=None, cameras: list[int] | None = None):
        super().__init__(parent)
        self.setWindowTitle("Calibrate expression controls")
        self.setMinimumWidth(560)
        self.fit = fit
        self.outcome: str | None = None
        self.result = None
        self.videos: list[Path] = []
        self._cancel = threading.Event()
        self._progress = (0, None)  # (done, total), written by the worker, shown by the poll timer
        self._task: Task | None = None
        layout = QVBoxLayout(self)
        intro = QLabel("The FLAME-55 Expression Adapter takes SMIRK's FLAME values. A small map from MediaPipe's 52 "
                       "blendshapes to them (the expression bridge), fitted once for this adapter, lets the named sliders, "
                       "presets, region gains, blendshape tracks and CSV drivers work with it. Fit it from:")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.choice = QButtonGroup(self)
        self.video_radio = QRadioButton("A video of an expressive face (a few minutes is plenty; MediaPipe + SMIRK, CPU is fine)")
        self.webcam_radio = QRadioButton(f"Record {WEBCAM_SECONDS} s from the webcam (make faces!)")
        self.renders_radio = QRadioButton("Renders of the generator itself (no video, no SMIRK; a GPU helps)")
        for i, radio in enumerate((self.video_radio, self.webcam_radio, self.renders_radio)):
            self.choice.addButton(radio, i)
        self.video_button = QPushButton("Choose video...")
        self.video_label = QLabel("no video chosen")
        self.camera_spin = QSpinBox()
        self.camera_spin.setRange(0, 63)
        self.camera_spin.setValue((cameras or [0])[0])
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(50, 200000)
        self.samples_spin.setSingleStep(500)
        self.samples_spin.setValue(DEFAULT_RENDERS)
        self.samples_spin.setSuffix(" samples")
        for radio, widgets in ((self.video_radio, (self.video_button, self.video_label)),
                               (self.webcam_radio, (QLabel("camera"), self.camera_spin)),
                               (self.renders_radio, (self.samples_spin,))):
            layout.addWidget(radio)
            row = QHBoxLayout()
            row.addSpacing(24)
            for widget in widgets:
                row.addWidget(widget)
            row.addStretch(1)
            layout.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        layout.addWidget(self.status)
        layout.addWidget(self.bar)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.video_radio.setChecked(True)
        self.video_button.clicked.connect(self.choose_videos)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self._poll = QTimer(self, interval=150)
        self._poll.timeout.connect(self._show_progress)

    # ------------------------------------------------------------------ choosing
    def choose_videos(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Video(s) of an expressive face", "",
                                                f"Videos ({file_patterns(VIDEO_SUFFIXES)});;All files (*)")
        if paths:
            self.set_videos(paths)

    def set_videos(self, paths) -> None:
        self.videos = [Path(p) for p in paths]
        self.video_label.setText(", ".join(p.name for p in self.videos) or "no video chosen")
        self.video_radio.setChecked(True)

    def job(self) -> CalibrationJob | None:
        """The job the choices describe (None, with the reason shown, when a video is still to be chosen)."""
        if self.video_radio.isChecked():
            if not self.videos:
                self.status.setText("Choose a video first")
                return None
            return CalibrationJob("videos", videos=list(self.videos))
        if self.webcam_radio.isChecked():
            return CalibrationJob("webcam", camera=self.camera_spin.value())
        return CalibrationJob("renders", samples=self.samples_spin.value())

    # ------------------------------------------------------------------ running
    def start(self) -> bool:
        job = self.job()
        if job is None or self._task is not None:
            return False
        self._cancel.clear()
        self._progress = (0, None)
        for widget in (self.start_button, self.video_radio, self.webcam_radio, self.renders_radio, self.video_button,
                       self.camera_spin, self.samples_spin):
            widget.setEnabled(False)
        self.status.setText(f"Fitting from {job.describe()}...")
        self.bar.setRange(0, 0)
        self._task = Task(lambda: self.fit(job, self._progressed, self._cancel.is_set), self, "calibrate")
        self._task.succeeded.connect(lambda result: self._end("done", result))
        self._task.failed.connect(self._failed)
        self._task.start()
        self._poll.start()
        return True

    def _progressed(self, done: int, total: int | None) -> None:  # the worker thread: the poll timer shows it
        self._progress = (int(done), None if total is None else int(total))

    def _show_progress(self) -> None:
        done, total = self._progress
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        if not self._cancel.is_set():
            self.status.setText(f"Fitting... {done}" + (f" of {total}" if total else " frames"))

    @property
    def running(self) -> bool:
        return self._task is not None

    def cancel(self) -> None:
        if self._task is None:
            self.reject()
            return
        self._cancel.set()
        self.cancel_button.setEnabled(False)
        self.status.setText("Cancelling...")

    def reject(self) -> None:  # Esc or the close box while fitting: cancel, close when the worker has stopped
        if self._task is not None:
            self.cancel()
        else:
            super().reject()

    def _failed(self, err) -> None:
        from retarget.errors import JobInterrupted

        self._end("cancelled" if isinstance(err, JobInterrupted) or self._cancel.is_set() else "failed", user_message(err))

    def _end(self, outcome: str, result) -> None:
        self._poll.stop()
        self._task = None
        self.outcome, self.result = outcome, result
        self.bar.setRange(0, 1)
        self.bar.setValue(1 if outcome == "done" else 0)
        if outcome == "done":
            bridge, path = result
            self.status.setText(f"Calibrated: {path}. {_scores(bridge)}")
        else:
            self.status.setText(("Cancelled: " if outcome == "cancelled" else "Calibration failed: ") + str(result))
        self.cancel_button.setText("Close")
        self.cancel_button.setEnabled(True)
        self.finished_with.emit(outcome, result)


def _scores(bridge) -> str:
    """The fit report's held-out R^2 per FLAME group, in one line."""
    scores = bridge.group_scores()
    shown = [f"{name} R\u00b2 {s['r2']:.2f}" for name, s in scores.items() if isinstance(s.get("r2"), (int, float))]
    return ("Held-out: " + ", ".join(shown)) if shown else ""
