"""The window's side of the expression bridge: which controls it enables, and "Calibrate expression controls...".

With a FLAME-55 adapter, the region gains apply only when driving goes through a fitted bridge
(settings panel: "FLAME driving from: bridge"); otherwise they stay disabled with the reason as
their tooltip. Without a bridge, the settings panel, the Compose dock, the track editor and any
error naming `retarget bridge fit` offer the calibration dialog (gui.calibration); a finished fit
is used at once (no reload): the Retargeter takes the new bridge and every dock refreshes.
"""

from __future__ import annotations

from gui.calibration import CALIBRATE_TEXT, CalibrationDialog, library_fit


class BridgeControls:
    """Created by the window; `fit` (job, progress, cancel) -> (bridge, path) is the library's unless replaced."""

    def __init__(self, window, fit=None):
        self.window = window
        self.fit = fit
        self.dialog: CalibrationDialog | None = None
        window.models_loaded.connect(self.refresh)
        window.panel.mapping_changed.connect(self.refresh)
        window.panel.calibrate_requested.connect(self.open)

    def needs_calibration(self) -> bool:
        session = self.window.session
        return session.adapter_kind == "flame55" and session.bridge is None

    def refresh(self) -> None:
        """The gains the loaded adapter can apply with the panel's expression source, and the calibrate offers."""
        window, retargeter, session = self.window, self.window.retargeter, self.window.session
        if retargeter is None:
            return
        source = window.panel.mapping_settings().expression_source
        support = dict(retargeter.control_support_for(source))
        if session.adapter_kind == "flame55":
            hint = (f"; {CALIBRATE_TEXT} fits the bridge that applies it" if session.bridge is None
                    else "; set \"FLAME driving from\" to bridge to apply it")
            support = {name: (reason + hint if reason else reason) for name, reason in support.items()}
        window.panel.set_control_support(support)
        flame = session.adapter_kind == "flame55"
        window.panel.expression_source.setEnabled(flame)  # blendshape adapters take blendshapes directly
        if not flame:
            window.panel.expression_source.setToolTip("Only for FLAME-55 adapters: this adapter takes blendshapes directly")
        window.panel.calibrate_button.setVisible(self.needs_calibration())
        compose, bridge = window.composer.panel, session.bridge
        if compose.bridge is not bridge or compose.adapter_kind != session.adapter_kind:
            compose.set_kind(session.adapter_kind, bridge)  # a new calibration: blendshape sliders
        dock = getattr(window, "track_dock", None)
        if dock is not None:
            dock.update_availability()

    def open(self) -> CalibrationDialog | None:
        """The calibration dialog for the loaded adapter (one at a time)."""
        window = self.window
        if window.retargeter is None:
            window.show_error("Load the models first, then calibrate", kind="calibrate")
            return None
        if self.dialog is not None and self.dialog.running:
            self.dialog.raise_()
            return self.dialog
        self.dialog = CalibrationDialog(self.fit or library_fit(window), parent=window, cameras=window._cameras)
        self.dialog.finished_with.connect(self._finished)
        self.dialog.show()
        return self.dialog

    def _finished(self, outcome: str, result) -> None:
        window = self.window
        if outcome != "done":
            return  # the dialog says why
        bridge, path = result
        window.session.use_bridge(bridge)  # the loaded adapter's own bridge drives it from now on
        window.banner.clear("calibrate", "bridge")
        window.show_notice(f"Expression controls calibrated: {path}", kind="calibrate")
        self.refresh()
