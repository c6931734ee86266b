"""Light or dark: follow the system's colour scheme (Qt's style hints, live), or a choice in View > Theme that is
saved; and a Start button that stands out from the rest of the toolbar (green Start, red Stop)."""

from __future__ import annotations

from PyQt6.QtCore import QObject, Qt
from PyQt6.QtGui import QAction, QActionGroup, QColor, QPalette
from PyQt6.QtWidgets import QApplication, QMenu

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))
START_STYLE = ("QPushButton#start_button:enabled { background:%s; color:white; font-weight:bold; "
               "border:1px solid #1b1b1b; border-radius:3px; padding:3px 14px; }")
START_COLOUR, STOP_COLOUR = "#2e7d32", "#c62828"


def dark_palette() -> QPalette:
    p = QPalette()
    base, window, text, disabled = QColor(30, 30, 34), QColor(45, 45, 50), QColor(230, 230, 230), QColor(120, 120, 125)
    for role, colour in ((QPalette.ColorRole.Window, window), (QPalette.ColorRole.WindowText, text),
                         (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, window),
                         (QPalette.ColorRole.ToolTipBase, window), (QPalette.ColorRole.ToolTipText, text),
                         (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, window),
                         (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.BrightText, QColor(255, 80, 80)),
                         (QPalette.ColorRole.Link, QColor(90, 160, 240)), (QPalette.ColorRole.Highlight, QColor(60, 120, 200)),
                         (QPalette.ColorRole.HighlightedText, QColor(255, 255, 255)),
                         (QPalette.ColorRole.PlaceholderText, disabled)):
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def system_is_dark(app: QApplication) -> bool:
    hints = app.styleHints()
    return hasattr(hints, "colorScheme") and hints.colorScheme() == Qt.ColorScheme.Dark


class ThemeChoice(QObject):
    """View > Theme (saved as window/theme) and the Start button's colours."""

    def __init__(self, window, menu: QMenu | None = None):
        super().__init__(window)
        self.window = window
        self.choice = str(window.store.value("window/theme", "system"))
        if self.choice not in dict(THEMES):
            self.choice = "system"
        self.actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        submenu = (menu or window.menuBar()).addMenu("Theme")
        for name, text in THEMES:
            action = QAction(text, window, checkable=True)
            action.triggered.connect(lambda _=False, n=name: self.set_theme(n))
            group.addAction(action)
            submenu.addAction(action)
            self.actions[name] = action
        window.start_button.setObjectName("start_button")
        app = QApplication.instance()
        if hasattr(app.styleHints(), "colorSchemeChanged"):
            app.styleHints().colorSchemeChanged.connect(lambda _: self.apply())  # the desktop switched: follow it
        self.apply()

    def dark(self) -> bool:
        return self.choice == "dark" or (self.choice == "system" and system_is_dark(QApplication.instance()))

    def set_theme(self, name: str) -> None:
        self.choice = name
        self.window.store.setValue("window/theme", name)
        self.apply()

    def apply(self) -> None:
        app = QApplication.instance()
        self.actions[self.choice].setChecked(True)
        if self.dark() or self.choice == "light":
            app.setStyle("Fusion")  # draws every control from the palette, so dark is dark everywhere
        app.setPalette(dark_palette() if self.dark() else app.style().standardPalette())
        self.style_start_button()

    def style_start_button(self) -> None:
        """Green while it starts, red while it stops: never mistaken for the toolbar's other buttons."""
        button = self.window.start_button
        colour = STOP_COLOUR if button.text() == "Stop" else START_COLOUR
        button.setStyleSheet(START_STYLE % colour)
