"""View > Theme: follow the system, light or dark (saved), and a Start button that stands out."""

from __future__ import annotations


def test_theme_choice_is_applied_saved_and_start_stands_out(qtbot, qsettings):
    from PyQt6.QtGui import QPalette
    from PyQt6.QtWidgets import QApplication

    from gui.main_window import MainWindow
    from gui.theme import START_COLOUR, STOP_COLOUR

    window = MainWindow(models="random:tiny", settings=qsettings, autoload=False, probe_cameras=False)
    qtbot.addWidget(window)
    theme = window.theme
    assert theme.choice == "system" and theme.actions["system"].isChecked()
    app = QApplication.instance()
    try:
        theme.actions["dark"].trigger()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 100
        assert qsettings.value("window/theme") == "dark"
        theme.actions["light"].trigger()
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 150
    finally:
        theme.set_theme("system")
    assert START_COLOUR in window.start_button.styleSheet()
    assert START_COLOUR not in window.render_button.styleSheet()
    window.start_button.setText("Stop")
    theme.style_start_button()
    assert STOP_COLOUR in window.start_button.styleSheet()
    # The next window starts with the saved choice.
    qsettings.setValue("window/theme", "dark")
    again = MainWindow(models="random:tiny", settings=qsettings, autoload=False, probe_cameras=False)
    qtbot.addWidget(again)
    try:
        assert again.theme.choice == "dark" and again.theme.actions["dark"].isChecked()
    finally:
        again.theme.set_theme("system")
