"""File > Edit expression track...: the timeline editor in a dock of the main window, wired to its models.

- Preview: the current frame's expression, mapped exactly as the render maps it (the window's
  mapping settings through a fresh DriverAnalyzer, frame by frame from the start, so smoothing
  and relative calibration match) and generated on the identity with the window's generation
  settings through the session (RENDERING meanwhile, as its state table says), on a worker thread
  (never the UI thread). Newest frame wins: while one preview generates, only the last requested
  frame waits.
- Render video: the edited track is saved to a new CSV in a folder this app made, and the window's
  own render job (the CSV driver path, as `retarget --headless --driver X.csv`) renders it to the
  video name the user picks; the CSV is removed when that render ends.
- A blendshape track drives the published FLAME-55 adapter through its expression bridge (as the
  CSV driver does). Without a bridge, editing and saving work, preview and render say why they are
  off, and the dock offers "Calibrate expression controls..." (gui.calibration).
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QDockWidget, QFileDialog, QPushButton, QVBoxLayout, QWidget

from gui.calibration import CALIBRATE_TEXT
from gui.timeline import TimelineEditor
from retarget.errors import user_message
from retarget.expression.signals import BLENDSHAPES, signal_refusal
from retarget.expression.track import ExpressionTrack
from retarget.session.states import State

FLAME_REASON = ("A blendshape track drives the FLAME-55 Expression Adapter through an expression bridge, and none is "
                f"fitted for it yet: {CALIBRATE_TEXT} fits one (or load an adapter trained on blendshapes)")
CSV_FILTER = "Blendshape CSV (*.csv)"


def open_track_editor(window, path=None) -> "TrackDock":
    """Show the window's track dock (made on first use); with `path`, load it; with neither track nor path, ask."""
    dock = getattr(window, "track_dock", None)
    if dock is None:
        dock = TrackDock(window)
        window.track_dock = dock
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, dock)
        window.resizeDocks([dock], [300], Qt.Orientation.Vertical)  # room for the curves
    dock.show()
    dock.raise_()
    if path is not None:
        dock.load(path)
    elif dock.editor.track is None:
        dock.choose_track()
    return dock


class TrackDock(QDockWidget):
    def __init__(self, window):
        super().__init__("Expression track", window)
        self.setObjectName("expression_track")
        self.window_ = window
        self.editor = TimelineEditor()
        self.calibrate_button = QPushButton(CALIBRATE_TEXT)
        self.calibrate_button.setToolTip(FLAME_REASON)
        self.calibrate_button.clicked.connect(lambda: window.bridge_controls.open())
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.calibrate_button)
        layout.addWidget(self.editor, 1)
        self.setWidget(body)
        self._scratch = tempfile.TemporaryDirectory(prefix="retarget-track-")  # render CSVs; removed at exit
        self._render_csv: Path | None = None
        self._preview_task = None
        self._preview_wanted: int | None = None
        self._mapped: tuple[object, np.ndarray] | None = None  # (key, every frame's vector) of the last preview
        self.previews_generated = 0
        self._debounce = QTimer(self, singleShot=True, interval=120)  # scrubbing asks for many frames: take the last
        self._debounce.timeout.connect(self._start_preview)
        self.editor.open_wanted.connect(self.choose_track)
        self.editor.save_wanted.connect(self.choose_save)
        self.editor.render_wanted.connect(self.choose_render)
        self.editor.preview_wanted.connect(self.request_preview)
        self.editor.view.playhead_moved.connect(self._show_on_chart)
        window.models_loaded.connect(self.update_availability)
        window.identity_loaded.connect(lambda _: self.update_availability())
        window.render_finished.connect(self._render_ended)
        self.update_availability()

    # ------------------------------------------------------------------ files
    def choose_track(self) -> None:
        start = self.window_.store.value("files/track", "")
        path, _ = QFileDialog.getOpenFileName(self, "Expression track", str(Path(start).parent) if start else "",
                                              f"{CSV_FILTER};;All files (*)")
        if path:
            self.load(path)

    def load(self, path) -> bool:
        try:
            track = ExpressionTrack.load(path)
        except Exception as err:
            self.window_.show_error(f"Expression track: {user_message(err)}", kind="track")
            return False
        self.window_.banner.clear("track")
        self.window_.store.setValue("files/track", str(path))
        self._mapped = None
        self.editor.set_track(track)
        self.update_availability()
        self.editor.view.setFocus()
        return True

    def choose_save(self) -> None:
        track = self.editor.track
        if track is None:
            return
        base = track.source if track.source is not None else Path.home() / "track.csv"
        path, _ = QFileDialog.getSaveFileName(self, "Save the edited track as", str(base.with_name(f"{base.stem}_edited.csv")),
                                              CSV_FILTER)
        if path:
            self.save(path)

    def save(self, path) -> Path | None:
        """Write the edited track (the CSV format `retarget extract` writes); never over the file it came from."""
        try:
            saved = self.editor.track.save(path)
        except Exception as err:
            self.window_.show_error(f"Save track: {user_message(err)}", kind="track")
            return None
        self.window_.banner.clear("track")
        self.window_.show_notice(f"Saved the edited track to {saved}", kind="track-saved")
        return saved

    # ------------------------------------------------------------------ availability
    def unavailable_reason(self) -> str | None:
        window = self.window_
        if window.retargeter is None:
            return "Preview and render need the models (loading, or see the banner)"
        if signal_refusal(window.session.adapter_kind, BLENDSHAPES,  # the one rule
                          bridge_available=window.session.bridge is not None) is not None:
            return FLAME_REASON
        if window.context is None:
            return "Preview and render need an identity photo (File > Open identity photo...)"
        return None

    def update_availability(self) -> None:
        reason = self.unavailable_reason()
        self.editor.set_preview_available(reason)
        self.calibrate_button.setVisible(reason == FLAME_REASON)

    def _show_on_chart(self, frame: int) -> None:
        """The window's blendshape chart shows the playhead's frame while no live stream owns it."""
        track = self.editor.track
        if track is not None and self.window_.session.state is not State.STREAMING:
            self.window_.chart.set_values(np.nan_to_num(track.values[frame], nan=0.0))

    # ------------------------------------------------------------------ preview
    def request_preview(self, frame: int) -> None:
        reason = self.unavailable_reason()
        if reason is not None:
            self.editor.set_preview_available(reason)
            return
        self._preview_wanted = int(frame)
        if self._preview_task is None:
            self._debounce.start()

    def _start_preview(self) -> None:
        window, frame = self.window_, self._preview_wanted
        track = self.editor.track
        if frame is None or track is None or self._preview_task is not None or self.unavailable_reason() is not None:
            return
        self._preview_wanted = None
        session, retargeter, context = window.session, window.retargeter, window.context
        mapping, settings = window.panel.mapping_settings(), window.panel.generation_settings()
        key = (id(track), self.editor.history.revision, repr(asdict(mapping)), id(context), id(retargeter),
               id(getattr(retargeter, "bridge", None)))  # a new calibration maps differently
        cached = self._mapped[1] if self._mapped is not None and self._mapped[0] == key else None
        snapshot = ExpressionTrack(track.times, track.values, track.fps, track.names)  # a copy: edits may follow

        def generate():
            from retarget.expression.track import driven_vectors
            from gui.views import rgb_to_qimage

            vectors = cached
            if vectors is None:
                with retargeter.driver_analyzer(mapping, identity_neutral=context.blendshapes) as analyzer:
                    vectors = driven_vectors(snapshot, analyzer)
            # Through the session (RENDERING meanwhile: no stream or render shares the generator), seeded as this
            # frame of the video render is, on the session's identity (the one `context` keys).
            image = session.render_expressions(vectors[frame][None], settings=settings, frame_indices=[frame])[0]
            return key, vectors, frame, rgb_to_qimage(image)

        def done(result):
            self._preview_task = None
            key_, vectors, shown, image = result
            self._mapped = (key_, vectors)
            self.previews_generated += 1
            self.editor.set_preview(image, f"frame {shown}")
            self._start_preview()  # a frame asked for meanwhile

        def failed(err):
            self._preview_task = None
            self.editor.set_preview(None)
            window.show_error(f"Preview: {user_message(err)}", kind="track")

        self._preview_task = window._run(generate, done, failed, "track-preview")

    # ------------------------------------------------------------------ render
    def choose_render(self) -> None:
        track = self.editor.track
        if track is None:
            return
        stem = track.source.stem if track.source is not None else "track"
        folder = Path(self.window_.store.value("files/render_dir", str(Path.home())))
        out, _ = QFileDialog.getSaveFileName(self, "Render the edited track to", str(folder / f"{stem}_edited.mp4"),
                                             "MP4 video (*.mp4)")
        if out:
            self.render(out)

    def render(self, out) -> Path | None:
        """Save the edited track to a new CSV of ours and run the window's render job on it; returns that CSV."""
        from retarget.outputs import reserve_new_file

        track = self.editor.track
        reason = self.unavailable_reason()
        if track is None or reason is not None:
            self.window_.show_error(reason or "Open an expression track first", kind="track")
            return None
        self.editor.view.stop()
        stem = track.source.stem if track.source is not None else "track"
        csv = reserve_new_file(Path(self._scratch.name), f"{stem}_edited", ".csv")
        try:
            track.save(csv, inputs=[("the output", out)])
        except Exception as err:
            csv.unlink(missing_ok=True)
            self.window_.show_error(f"Render: {user_message(err)}", kind="track")
            return None
        if not self.window_.start_render(csv, out):  # refused (busy, no identity): the window said why
            csv.unlink(missing_ok=True)
            return None
        self._render_csv = csv
        return csv

    def _render_ended(self, _outcome: str) -> None:
        if self._render_csv is not None:
            self._render_csv.unlink(missing_ok=True)
            self._render_csv = None
