"""Help > Diagnostics: `retarget doctor`'s report in a window, with a Copy button for support threads."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QFontDatabase, QGuiApplication
from PyQt6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout

from retarget.tools.doctor import report, run_checks


class DiagnosticsDialog(QDialog):
    def __init__(self, parent, models: str = "hub", landmarker=None):
        super().__init__(parent)
        self.setWindowTitle("Diagnostics")
        self.resize(760, 460)
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:  # file look-ups only (no download, no model load): well under a second
            self.text = report(run_checks(models, landmarker, in_app=True))
        finally:
            QApplication.restoreOverrideCursor()
        view = QPlainTextEdit(self.text, readOnly=True)
        view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.copy_button = buttons.addButton("Copy", QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The same report as `retarget doctor` (paste it into a bug report):"))
        layout.addWidget(view)
        layout.addWidget(buttons)
        self.view = view


def show_diagnostics(window) -> DiagnosticsDialog:
    dialog = DiagnosticsDialog(window, window.models_spec, window.landmarker_path)
    dialog.show()
    return dialog
