"""The window's layout: view modes, the output frame (whole photo or face crop), the landmark overlay, the settings
panel, full screen, and saving them (with the window's geometry and splitter positions) in the settings between runs."""

from __future__ import annotations

from retarget.config import FrameOptions
from retarget.config.frame import FRAMES
from retarget.session.live_outputs import camera_size


class WindowLayout:
    """MainWindow's layout commands and their persistence (a mixin over the window's widgets and store)."""

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
        self.set_landmark_overlay(str(self.store.value("window/landmarks", "false")).lower() in ("true", "1"))

    def _save_layout(self) -> None:
        self.store.setValue("window/geometry", self.saveGeometry())
        self.store.setValue("window/main_splitter", self.main_splitter.saveState())
        self.store.setValue("window/centre_splitter", self.centre.saveState())
        self.store.setValue("window/views_splitter", self.views.saveState())
        self.store.setValue("window/settings_visible", not self.settings_scroll.isHidden())
        self.store.setValue("window/view_mode", self.view_mode)
        self.store.setValue("window/landmarks", self.landmark_overlay)

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

    # ------------------------------------------------------------------ output frame
    def _connect_frame_controls(self) -> None:
        """The settings panel's Frame (a knob: saved with the settings) and View > Whole photo / Face crop are one
        choice; the session applies it to renders, the live screen, recordings and the virtual camera."""
        self.panel.options_changed.connect(self._apply_frame)
        self.identity_loaded.connect(lambda _path: self._frame_changed())
        self._apply_frame(announce=False)

    def set_output_frame(self, frame: str) -> None:
        """full: the identity photo with the generated face pasted back; crop: the generated square face."""
        index = self.panel.frame.findData(frame)
        if index >= 0 and index != self.panel.frame.currentIndex():
            self.panel.frame.setCurrentIndex(index)  # options_changed applies it
        else:
            self._apply_frame()

    def _apply_frame(self, announce: bool = True) -> None:
        options = self.panel.options(FrameOptions)
        changed = options != self.session.frame
        self.session.set_frame(options)  # a running stream shows the new frame from its next one
        for name in FRAMES:
            action = getattr(self, "actions_by_name", {}).get(f"frame_{name}")
            if action is not None:
                action.setChecked(name == options.frame)
        if changed and announce:
            self._frame_changed()

    def _frame_changed(self) -> None:
        """Say when the pasted face is upsampled, and reopen the virtual camera at the new frame's size."""
        note = self.session.frame_note(self.identity_path.name if self.identity_path else None)
        if note:
            self.statusBar().showMessage(note[0].upper() + note[1:], 10000)
        cam = self.outputs.vcam
        if cam is not None and self.retargeter is not None and (cam.width, cam.height) != camera_size(self.session.output_size()):
            self._open_vcam()  # replaces the open camera once the new one is ready

    def set_landmark_overlay(self, on: bool) -> None:
        """Draw the 478 face landmarks MediaPipe found over the driver pane."""
        self.landmark_overlay = bool(on)
        action = getattr(self, "actions_by_name", {}).get("landmarks")
        if action is not None:
            action.setChecked(self.landmark_overlay)
        frame = self.last_frame
        self.driver_view.set_points(frame.landmarks if (on and frame is not None) else None)

    def set_settings_visible(self, visible: bool) -> None:
        self.settings_scroll.setVisible(bool(visible))
        action = getattr(self, "actions_by_name", {}).get("settings")
        if action is not None:
            action.setChecked(bool(visible))

    def keep_previews_large(self) -> bool:
        """With a dock open, the previews keep at least half the window: the settings panel makes way (View > Settings
        brings it back). True when it was hidden now."""
        from PyQt6.QtWidgets import QDockWidget

        docks_open = frozenset(d for d in self.findChildren(QDockWidget) if d.isVisible() and not d.isFloating())
        opened = docks_open - getattr(self, "_docks_open", frozenset())
        self._docks_open = docks_open
        if opened:  # only when a dock opens: a settings panel shown again by hand stays
            self._fit_pending = True
        if not getattr(self, "_fit_pending", False):
            return False
        self._fit_pending = False
        if not docks_open or self.settings_scroll.isHidden() or self.views.width() * 2 >= self.width():
            return False
        self.set_settings_visible(False)
        self.statusBar().showMessage("Settings panel hidden to keep the previews large; View > Settings shows it", 8000)
        return True

    def set_full_screen(self, on: bool) -> None:
        self.showFullScreen() if on else self.showNormal()
