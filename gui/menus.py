"""The menu bar (File, Live, View, Help): every command and its shortcut in one discoverable place.

Space toggles the stream only while the preview panes have focus (click them), so Space still
ticks a focused checkbox or opens a focused combo box; Ctrl+Return works everywhere.
"""

from __future__ import annotations

import platform

from PyQt6.QtCore import Qt
from PyQt6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PyQt6.QtWidgets import QMessageBox

from gui.diagnostics import show_diagnostics
from gui.track_dock import open_track_editor

SHORTCUTS = [
    ("Ctrl+Return", "Start / stop the live stream"),
    ("Space", "Start / stop, while the preview has focus (click it)"),
    ("Ctrl+R", "Record on / off"),
    ("Ctrl+Shift+S", "Snapshot of the output"),
    ("N", "Set neutral (relative mode), while the preview has focus"),
    ("Ctrl+O", "Open an identity photo"),
    ("Ctrl+Shift+O", "Open a driver video"),
    ("F5", "Refresh the camera list"),
    ("Ctrl+L", "Face landmarks on the driver pane"),
    ("F9", "Show / hide the settings panel"),
    ("Ctrl+E", "Compose an expression with sliders (View menu)"),
    ("F11", "Full screen"),
    ("Ctrl+Q", "Quit"),
    ("Left / Right", "Expression track: step a frame (Shift: 10), while the timeline has focus"),
    ("Space", "Expression track: play / pause, while the timeline has focus"),
    ("Ctrl+Z / Ctrl+Shift+Z", "Expression track: undo / redo an edit"),
]


def versions_text(device) -> str:
    """About box: our version, the libraries that decide the output, and where the generator runs."""
    import importlib.metadata as md

    import torch
    from PyQt6.QtCore import PYQT_VERSION_STR, QT_VERSION_STR

    def version(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    gpu = ""
    if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
        gpu = f" ({torch.cuda.get_device_name(torch.device(device))})"
    rows = [
        ("retarget", version("retarget")),
        ("device", f"{device if device is not None else 'models not loaded'}{gpu}"),
        ("Python", platform.python_version()),
        ("PyTorch", torch.__version__ + (f", CUDA {torch.version.cuda}" if torch.version.cuda else "")),
        ("diffusers", version("diffusers")),
        ("transformers", version("transformers")),
        ("MediaPipe", version("mediapipe")),
        ("PyAV", version("av")),
        ("Qt / PyQt", f"{QT_VERSION_STR} / {PYQT_VERSION_STR}"),
        ("pyvirtualcam", version("pyvirtualcam")),
    ]
    return "\n".join(f"{name}: {value}" for name, value in rows)


def _action(window, menu, text: str, slot, shortcut: str | None = None, checkable: bool = False) -> QAction:
    action = QAction(text, window)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
    action.setCheckable(checkable)
    action.triggered.connect(slot)
    menu.addAction(action)
    return action


def build_menus(window) -> dict[str, QAction]:
    """Menus for a MainWindow; returns the actions by name (tests and the window use a few)."""
    bar = window.menuBar()
    actions: dict[str, QAction] = {}

    file = bar.addMenu("&File")
    actions["open_identity"] = _action(window, file, "Open identity photo...", window._choose_identity, "Ctrl+O")
    actions["open_driver"] = _action(window, file, "Open driver video...", window._choose_video, "Ctrl+Shift+O")
    actions["render"] = _action(window, file, "Render video...", window._choose_render)
    actions["edit_track"] = _action(window, file, "Edit expression track...", lambda: open_track_editor(window))
    file.addSeparator()
    actions["models_folder"] = _action(window, file, "Choose models folder...", window.choose_models_folder)
    actions["download"] = _action(window, file, "Download the published models...", window.download_models)
    actions["record_dir"] = _action(window, file, "Save recordings in...", window.choose_record_dir)
    actions["export"] = _action(window, file, "Export blendshapes CSV...", window._choose_export)
    file.addSeparator()
    actions["quit"] = _action(window, file, "Quit", window.close, "Ctrl+Q")

    live = bar.addMenu("&Live")
    actions["start"] = _action(window, live, "Start / stop", window.toggle_stream, "Ctrl+Return")
    actions["record"] = _action(window, live, "Record", window.toggle_recording, "Ctrl+R")
    actions["snapshot"] = _action(window, live, "Snapshot", window.take_snapshot, "Ctrl+Shift+S")
    actions["neutral"] = _action(window, live, "Set neutral (N on the preview)", window.set_neutral)
    actions["cameras"] = _action(window, live, "Refresh cameras", window.refresh_cameras, "F5")

    view = bar.addMenu("&View")
    group = QActionGroup(window)
    for mode, text in (("side", "Driver | output"), ("output", "Output only"), ("blend", "Blend (output over driver)")):
        action = _action(window, view, text, lambda _=False, m=mode: window.set_view_mode(m), checkable=True)
        group.addAction(action)
        actions[f"view_{mode}"] = action
    actions["view_side"].setChecked(True)
    view.addSeparator()
    frames = QActionGroup(window)  # the output frame: the settings panel's Frame knob, also here
    for frame, text in (("full", "Whole photo (face pasted back)"), ("crop", "Face crop")):
        action = _action(window, view, text, lambda _=False, f=frame: window.set_output_frame(f), checkable=True)
        frames.addAction(action)
        actions[f"frame_{frame}"] = action
    actions["frame_full"].setChecked(True)
    view.addSeparator()
    actions["landmarks"] = _action(window, view, "Face landmarks on the driver", window.set_landmark_overlay, "Ctrl+L",
                                   checkable=True)
    actions["settings"] = _action(window, view, "Settings panel", window.set_settings_visible, "F9", checkable=True)
    actions["settings"].setChecked(True)
    actions["fullscreen"] = _action(window, view, "Full screen", window.set_full_screen, "F11", checkable=True)

    help_menu = bar.addMenu("&Help")
    actions["shortcuts"] = _action(window, help_menu, "Keyboard shortcuts",
                                   lambda: QMessageBox.information(window, "Keyboard shortcuts",
                                                                   "\n".join(f"{k}\t{t}" for k, t in SHORTCUTS)))
    actions["diagnostics"] = _action(window, help_menu, "Diagnostics (retarget doctor)…",
                                     lambda: setattr(window, "diagnostics_dialog", show_diagnostics(window)))
    actions["about"] = _action(window, help_menu, "About retarget",
                               lambda: QMessageBox.about(window, "About retarget",
                                                         "retarget: ID-consistent facial expression retargeting\n\n"
                                                         + versions_text(window.device)))

    # Keys that would otherwise steal widget keys act only while the preview panes have focus.
    for keys, slot in (("Space", window.toggle_stream), ("N", window.set_neutral)):
        QShortcut(QKeySequence(keys), window.preview, activated=slot, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
    QShortcut(QKeySequence("Ctrl+Enter"), window, activated=window.toggle_stream)
    return actions
