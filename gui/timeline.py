"""The expression track editor: the timeline (gui.timeline_view) under an edit bar, and a preview pane.

The bar edits the selected frames of a channel or region through retarget.expression.track, with
undo/redo; what the preview and "Render video" run is the host's business (gui.track_dock), so
this stays a widget.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSplitter, QToolButton, QVBoxLayout, QWidget,
)

from gui.timeline_view import TimelineView
from gui.views import ImageView
from retarget.config.mapping import REGIONS
from retarget.expression.track import ALL_CHANNELS, Edit, ExpressionTrack, TrackHistory

# Per operation: the amount's label, range, step, default, and the special text shown at the minimum.
AMOUNTS = {
    "scale": ("x", (0.0, 5.0), 0.1, 1.5, None),
    "offset": ("+", (-1.0, 1.0), 0.05, 0.1, None),
    "smooth": ("sigma (frames)", (0.5, 30.0), 0.5, 2.0, None),
    "flatten": ("to", (-0.01, 1.0), 0.05, -0.01, "range mean"),
    "clamp": ("max", (0.0, 1.0), 0.05, 0.5, None),
}


class TimelineEditor(QWidget):
    """The edit bar, the timeline and the preview pane over one TrackHistory.

    Signals for the host: open_wanted, save_wanted, render_wanted (buttons), preview_wanted(frame)
    (the playhead moved or the values changed while Preview is on), edited() (after apply/undo/redo).
    """

    open_wanted = pyqtSignal()
    save_wanted = pyqtSignal()
    render_wanted = pyqtSignal()
    preview_wanted = pyqtSignal(int)
    edited = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.history: TrackHistory | None = None
        self.view = TimelineView()
        self.preview = ImageView("Preview of the current frame\n(tick Preview)")
        self.preview.setMinimumSize(140, 140)
        self.preview.setMaximumWidth(260)

        self.open_button = QPushButton("Open track...")
        self.channel_combo = QComboBox()
        self.channel_combo.addItem("all channels", ALL_CHANNELS)
        for region in REGIONS:
            self.channel_combo.addItem(f"region: {region}", region)
        self.channel_combo.setToolTip("The curves shown and edited: every channel, a region, or one blendshape")
        self.operation_combo = QComboBox()
        for op in AMOUNTS:
            self.operation_combo.addItem(op, op)
        self.amount_label = QLabel()
        self.amount = QDoubleSpinBox()
        self.amount.setDecimals(2)
        self.apply_button = QPushButton("Apply to selection")
        self.undo_action = QAction("Undo", self, shortcut=QKeySequence("Ctrl+Z"), triggered=self.undo)
        self.redo_action = QAction("Redo", self, shortcut=QKeySequence("Ctrl+Shift+Z"), triggered=self.redo)
        buttons = []
        for action in (self.undo_action, self.redo_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)  # not while typing elsewhere
            self.addAction(action)
            button = QToolButton()
            button.setDefaultAction(action)
            buttons.append(button)
        self.save_button = QPushButton("Save as...")
        self.play_button = QPushButton("Play")
        self.preview_check = QCheckBox("Preview")
        self.preview_check.setToolTip("Generate the current frame's expression on the identity (off the UI thread)")
        self.render_button = QPushButton("Render video...")
        self.render_button.setToolTip("Render a video driven by the edited track (the blendshape CSV driver path)")
        self.status = QLabel("")

        bar = QHBoxLayout()
        for w in (self.open_button, self.channel_combo, self.operation_combo, self.amount_label, self.amount, self.apply_button,
                  *buttons, self.save_button, self.play_button, self.preview_check, self.render_button):
            bar.addWidget(w)
        bar.addStretch(1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.view)
        split.addWidget(self.preview)
        split.setStretchFactor(0, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)

        self.open_button.clicked.connect(self.open_wanted)
        self.save_button.clicked.connect(self.save_wanted)
        self.render_button.clicked.connect(self.render_wanted)
        self.apply_button.clicked.connect(self.apply_current)
        self.play_button.clicked.connect(self.view.toggle_play)
        self.channel_combo.currentIndexChanged.connect(self._channels_changed)
        self.operation_combo.currentIndexChanged.connect(self._operation_changed)
        self.view.playhead_moved.connect(self._playhead_moved)
        self.view.selection_changed.connect(lambda *_: self._update())
        self.view.playing_changed.connect(lambda on: self.play_button.setText("Pause" if on else "Play"))
        self.preview_check.toggled.connect(lambda on: on and self.preview_wanted.emit(self.view.playhead))
        self._operation_changed()
        self._update()

    # ------------------------------------------------------------------ track
    @property
    def track(self) -> ExpressionTrack | None:
        return self.history.track if self.history is not None else None

    def set_track(self, track: ExpressionTrack) -> None:
        self.history = TrackHistory(track)
        while self.channel_combo.count() > 1 + len(REGIONS):
            self.channel_combo.removeItem(self.channel_combo.count() - 1)
        for name in track.names:
            self.channel_combo.addItem(name, name)
        self.view.set_track(track)
        self._channels_changed()
        self.preview.clear()
        self._update()

    def channel_spec(self) -> str:
        return self.channel_combo.currentData()

    def select_channels(self, spec: str) -> None:
        index = self.channel_combo.findData(spec)
        if index >= 0:
            self.channel_combo.setCurrentIndex(index)

    def _channels_changed(self) -> None:
        if self.track is not None:
            self.view.set_columns(self.track.channels(self.channel_spec()))

    def _operation_changed(self) -> None:
        label, (low, high), step, default, special = AMOUNTS[self.operation_combo.currentData()]
        self.amount_label.setText(label)
        self.amount.setRange(low, high)
        self.amount.setSingleStep(step)
        self.amount.setSpecialValueText(special or "")
        self.amount.setValue(default)

    def set_operation(self, operation: str, amount: float | None = None) -> None:
        self.operation_combo.setCurrentIndex(self.operation_combo.findData(operation))
        if amount is not None:
            self.amount.setValue(amount)

    def current_edit(self) -> Edit | None:
        """The edit the bar describes, over the selected frames (None without a track or a selection)."""
        if self.track is None or self.view.selection is None:
            return None
        op = self.operation_combo.currentData()
        amount: float | None = float(self.amount.value())
        a, b = self.view.selection
        if op == "flatten" and amount < 0:
            amount = None  # the special "range mean"
        if op == "clamp":
            return Edit(op, a, b, self.channel_spec(), low=0.0, high=amount)
        return Edit(op, a, b, self.channel_spec(), amount)

    # ------------------------------------------------------------------ edits
    def apply_current(self) -> None:
        edit = self.current_edit()
        if edit is None:
            self.status.setText("Select frames first: drag over the timeline")
            return
        self.apply(edit)

    def apply(self, edit: Edit) -> None:
        from retarget.errors import user_message

        try:
            self.history.apply(edit)
        except Exception as err:  # a one-line RetargetError: shown, the track is unchanged
            self.status.setText(user_message(err))
            return
        self._after_edit(f"Applied: {edit.describe()}")

    def undo(self) -> None:
        edit = self.history.undo() if self.history is not None else None
        if edit is not None:
            self._after_edit(f"Undone: {edit.describe()}")

    def redo(self) -> None:
        edit = self.history.redo() if self.history is not None else None
        if edit is not None:
            self._after_edit(f"Redone: {edit.describe()}")

    def _after_edit(self, text: str) -> None:
        self.view.update()
        self._update(text)
        self.edited.emit()
        if self.preview_check.isChecked():
            self.preview_wanted.emit(self.view.playhead)

    # ------------------------------------------------------------------ preview and status
    def _playhead_moved(self, frame: int) -> None:
        self._update()
        if self.preview_check.isChecked() and self.track is not None:
            self.preview_wanted.emit(frame)

    def set_preview(self, image, note: str = "") -> None:
        self.preview.set_image(image)
        self.preview.setToolTip(note)

    def set_preview_available(self, reason: str | None) -> None:
        """None: preview and render can run; else why not (shown as the tooltip, both disabled)."""
        for widget in (self.preview_check, self.render_button):
            widget.setEnabled(reason is None and self.track is not None)
            usual = widget.property("usual_tip") or widget.toolTip()
            widget.setProperty("usual_tip", usual)
            widget.setToolTip(reason or usual)
        if reason is not None:
            self.preview.placeholder = reason
            self.preview.update()

    def _update(self, text: str | None = None) -> None:
        track = self.track
        has = track is not None
        for w in (self.apply_button, self.save_button, self.play_button, self.amount, self.operation_combo, self.channel_combo):
            w.setEnabled(has)
        self.undo_action.setEnabled(has and self.history.can_undo)
        self.redo_action.setEnabled(has and self.history.can_redo)
        if not has:
            self.status.setText(text or "No track: open a CSV written by `retarget extract` (or a Live Link Face take)")
            return
        frame = self.view.playhead
        selection = self.view.selection
        where = f"frame {frame} / {track.frame_count - 1} ({track.times[frame]:.2f} s)"
        if not track.face_found[frame]:
            where += ", no face"
        chosen = f"; selected {selection[0]}-{selection[1] - 1}" if selection else "; drag to select frames"
        source = track.source.name if track.source is not None else "track"
        self.status.setText(f"{source}: {where}{chosen}" + (f" | {text}" if text else ""))
