"""Render video's dialog: where the output goes, which time range of the driver (default: all of it), and whether a
driver|output side-by-side video is written too."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import (
    QCheckBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
    QPushButton, QWidget,
)

from retarget.config import RenderOptions, knob_fields

_RANGE_KNOBS = {f.name: f.knob for f in knob_fields(RenderOptions) if f.name in ("start", "end")}
_NO_DURATION = 24 * 3600.0  # the spin boxes' top when the driver's length is not known without decoding


def driver_duration(driver: str) -> float | None:
    """The driver's length in seconds from its header (None when unknown or unreadable: the render will say why)."""
    from retarget.errors import RetargetError
    from retarget.media.sources import open_source

    try:
        with open_source(driver) as source:
            return source.duration or None
    except (RetargetError, OSError):
        return None


def side_by_side_path(out: Path) -> Path:
    return Path(out).with_name(f"{Path(out).stem}_side_by_side{Path(out).suffix or '.mp4'}")


class RenderDialog(QDialog):
    """The driver (shown), the output file (editable, Browse...), and a side-by-side checkbox naming its file."""

    def __init__(self, driver: str, default_out: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Render video")
        form = QFormLayout(self)
        form.addRow("Driver:", QLabel(Path(driver).name))
        self.out_edit = QLineEdit(str(default_out))
        browse = QPushButton("Browse...")
        browse.clicked.connect(self._browse)
        row = QWidget()
        row_layout = QHBoxLayout(row)
        row_layout.setContentsMargins(0, 0, 0, 0)
        row_layout.addWidget(self.out_edit, 1)
        row_layout.addWidget(browse)
        form.addRow("Output:", row)
        # The range's spin boxes: their help and lower bounds are RenderOptions' --start/--end knobs.
        duration = driver_duration(driver)
        top = duration or _NO_DURATION
        self.start_box = _seconds_box(top, _RANGE_KNOBS["start"].help)
        self.end_box = _seconds_box(top, _RANGE_KNOBS["end"].help)
        self.end_box.setSpecialValueText("end of video")  # at 0: the driver's end (no --end)
        range_row = QWidget()
        range_layout = QHBoxLayout(range_row)
        range_layout.setContentsMargins(0, 0, 0, 0)
        range_layout.addWidget(QLabel("Start"))
        range_layout.addWidget(self.start_box, 1)
        range_layout.addWidget(QLabel("End"))
        range_layout.addWidget(self.end_box, 1)
        form.addRow("Time range (s):", range_row)
        if duration:
            form.addRow("", QLabel(f"the whole video: 0 to {duration:.2f} s"))
        self.side_check = QCheckBox("Also write driver | output side by side")
        self.side_label = QLabel()
        self.side_label.setStyleSheet("color:gray;")
        form.addRow(self.side_check)
        form.addRow("", self.side_label)
        self.side_check.toggled.connect(self._update_side)
        self.out_edit.textChanged.connect(self._update_side)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Render")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.setMinimumWidth(520)
        self._update_side()

    def _browse(self) -> None:
        out, _ = QFileDialog.getSaveFileName(self, "Render to", self.out_edit.text(), "MP4 video (*.mp4)")
        if out:
            self.out_edit.setText(out)

    def _update_side(self, *_) -> None:
        self.side_label.setText(str(self.side_by_side() or ""))
        self.side_label.setVisible(self.side_check.isChecked())

    def out(self) -> Path:
        return Path(self.out_edit.text().strip())

    def time_range(self) -> tuple[float, float | None]:
        """(start, end) in seconds of the driver; end None: to its end."""
        end = self.end_box.value()
        return self.start_box.value(), (end if end > 0 and end < self.end_box.maximum() else None)

    def side_by_side(self) -> Path | None:
        return side_by_side_path(self.out()) if self.side_check.isChecked() and self.out_edit.text().strip() else None


def _seconds_box(top: float, tooltip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(0.0, top)
    box.setDecimals(2)
    box.setSingleStep(0.5)
    box.setSuffix(" s")
    box.setToolTip(tooltip)
    return box
