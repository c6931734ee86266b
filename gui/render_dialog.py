"""Render video's dialog: where the output goes, and whether a driver|output side-by-side video is written too."""

from __future__ import annotations

from pathlib import Path

from PyQt6.QtWidgets import (
    QCheckBox, QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget,
)


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

    def side_by_side(self) -> Path | None:
        return side_by_side_path(self.out()) if self.side_check.isChecked() and self.out_edit.text().strip() else None
