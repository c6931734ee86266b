"""What the window tells the user: error banners and notices, the busy indicator, the live numbers.

Every error is a banner with a kind; a banner is cleared when its cause ends, and a missing file
comes with the buttons that fix it (choose it, download it, retry).
"""

from __future__ import annotations

NO_VALUE = "\u2013"  # an en dash: shown where there is no measurement yet
NOTICE_STYLE = "background:#1f3f66; color:white;"


class StatusDisplay:
    """MainWindow's messages and status bar (a mixin over the window's banner, notice and labels)."""

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

    def apply_provenance(self) -> None:
        """The settings' "Mark outputs as AI-generated" for every output of this process, and say so in the status bar."""
        from retarget import provenance
        from retarget.config import ProvenanceOptions

        provenance.configure(self.panel.options(ProvenanceOptions))
        on = provenance.marking_enabled()
        self.provenance_label.setText("AI marking: on" if on else "AI marking: OFF (research only)")
        self.provenance_label.setStyleSheet("" if on else "color:#e0303a; font-weight:bold;")
        self.provenance_label.setToolTip(
            "Every output (renders, recordings, snapshots, the virtual camera) carries an invisible watermark, "
            "AI-generated metadata and a C2PA manifest; check a file with `retarget verify FILE`" if on else
            "Outputs are NOT marked as AI-generated: research use only, where the law allows (EU AI Act Art. 50(2))")

    def show_error(self, text: str, kind: str | None = None, actions=()) -> None:
        """Every error lands here: a non-modal banner (with fix buttons), the status bar, and error_messages (for tests)."""
        self.error_messages.append(text)
        if not actions and "retarget bridge fit" in text and hasattr(self, "bridge_controls"):
            from gui.calibration import CALIBRATE_TEXT  # no dead end: the fix, one click away

            actions = [(CALIBRATE_TEXT, self.bridge_controls.open)]
        self.banner.show_message(text, actions, kind)
        self.statusBar().showMessage(text, 10000)
        self.error_shown.emit(text)

    def show_notice(self, text: str, kind: str | None = None, actions=()) -> None:
        """A result the user should see until they dismiss it (a render's outcome, where a file was saved)."""
        self.notice.show_message(text, actions, kind)
        self.statusBar().showMessage(text, 10000)
