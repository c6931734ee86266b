"""The "Compose expression" panel: a slider per named control, grouped by region, with presets.

It holds the named values (retarget.expression.named) and says what the user asked for through
signals; the window renders (gui.expression_composer). Sliders are views of the values: a value
outside a slider's range (a driver photo's, say) is kept exactly, the slider just sits at its end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QPixmap
from PyQt6.QtWidgets import (
    QCheckBox, QDoubleSpinBox, QFileDialog, QGridLayout, QHBoxLayout, QInputDialog, QLabel, QMenu, QMessageBox,
    QPushButton, QScrollArea, QSlider, QToolButton, QVBoxLayout, QWidget,
)

from retarget.errors import OutputError, RetargetError
from retarget.expression.named import BLENDSHAPES, FLAME, space_for
from retarget.expression.presets import (
    BUILTIN_PRESETS, ComposedExpression, builtin_preset, read_expression, save_preset, user_presets, user_presets_dir,
    write_expression,
)

SLIDER_STEPS = 1000
THUMBNAIL_K = 2.0  # coefficient thumbnails show the identity at -k and +k
THUMBNAIL_SIZE = 96
REGION_TITLES = {"brows": "Brows", "eyes": "Eyes", "mouth": "Mouth", "jaw": "Jaw", "cheeks": "Cheeks", "nose": "Nose",
                 "other": "Other", "expression": "Expression coefficients (global)"}


class Section(QWidget):
    """A collapsible group: a header button with an arrow, an optional "Link L/R" box, the rows."""

    def __init__(self, title: str, linkable: bool, expanded: bool = True):
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        header = QHBoxLayout()
        self.toggle = QToolButton(text=title, checkable=True, checked=expanded)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        header.addWidget(self.toggle)
        header.addStretch(1)
        self.link = QCheckBox("Link L/R") if linkable else None
        if self.link is not None:
            self.link.setChecked(True)
            self.link.setToolTip("Move the left and right control of a pair together; untick for each side on its own")
            header.addWidget(self.link)
        layout.addLayout(header)
        self.body = QWidget()
        self.grid = QGridLayout(self.body)
        self.grid.setContentsMargins(12, 0, 0, 0)
        layout.addWidget(self.body)
        self.toggle.toggled.connect(self._expand)
        self._expand(expanded)

    def _expand(self, on: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)

    @property
    def linked(self) -> bool:
        return self.link is not None and self.link.isChecked()


class ControlRow:
    """One control's slider and spin box (and, for a FLAME coefficient, its thumbnail button)."""

    def __init__(self, control, section: Section, row: int, thumbnail_button: bool):
        self.control, self.section = control, section
        self.label = QLabel(control.name)
        self.label.setToolTip(control.help)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, SLIDER_STEPS)
        self.slider.setToolTip(f"{control.name}: {control.low:g} to {control.high:g}. {control.help}")
        self.spin = QDoubleSpinBox()
        self.spin.setDecimals(3)
        self.spin.setRange(control.low, control.high)
        self.spin.setSingleStep((control.high - control.low) / 100)
        self.spin.setFixedWidth(76)
        section.grid.addWidget(self.label, row, 0)
        section.grid.addWidget(self.slider, row, 1)
        section.grid.addWidget(self.spin, row, 2)
        self.thumbs = None
        if thumbnail_button:
            self.thumbs = QToolButton(text="\u00b1")
            self.thumbs.setToolTip(f"Render the identity at -{THUMBNAIL_K:g} and +{THUMBNAIL_K:g} of {control.name} "
                                   "(everything else neutral) to see what it does")
            section.grid.addWidget(self.thumbs, row, 3)

    def value_at(self, position: int) -> float:
        c = self.control
        return c.low + (c.high - c.low) * position / SLIDER_STEPS

    def show(self, value: float) -> None:
        """Put the widgets at `value` without emitting anything."""
        c = self.control
        position = round((min(max(value, c.low), c.high) - c.low) / (c.high - c.low) * SLIDER_STEPS)
        for widget, v in ((self.slider, position), (self.spin, value)):
            widget.blockSignals(True)
            widget.setValue(v)
            widget.blockSignals(False)


class ExpressionPanel(QWidget):
    """Named values for the loaded adapter kind; emits what to do, the window does it."""

    values_changed = pyqtSignal()
    render_requested = pyqtSignal()
    photo_requested = pyqtSignal()
    save_requested = pyqtSignal()  # save the rendered still
    thumbnails_requested = pyqtSignal(int)  # a FLAME coefficient's index
    calibrate_requested = pyqtSignal()  # a FLAME adapter without an expression bridge: fit one
    message = pyqtSignal(str)  # one line for the status bar (errors included)

    def __init__(self, presets_dir: Path | None = None, parent=None):
        super().__init__(parent)
        self.presets_dir = Path(presets_dir) if presets_dir is not None else user_presets_dir()
        self.adapter_kind: str | None = None
        self.bridge = None  # a FLAME-55 adapter's ExpressionBridge: the blendshape sliders drive through it
        self.space = None
        self._values: dict[str, float] = {}
        self.rows: dict[str, ControlRow] = {}
        self.sections: dict[str, Section] = {}
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.kind_label = QLabel("Load the models to compose an expression")
        self.kind_label.setWordWrap(True)
        outer.addWidget(self.kind_label)
        from gui.calibration import CALIBRATE_TEXT

        self.calibrate_button = QPushButton(CALIBRATE_TEXT)
        self.calibrate_button.setToolTip("Fit the expression bridge once for this FLAME-55 adapter: then the 52 named "
                                         "blendshape sliders and presets (smile, surprise...) drive it")
        self.calibrate_button.clicked.connect(self.calibrate_requested)
        self.advanced_check = QCheckBox("Advanced (FLAME): set the adapter's 55 FLAME values directly")
        self.advanced_check.setToolTip("Off: the 52 named blendshapes, through the expression bridge. On: the raw FLAME "
                                       "coefficients, eyelids and jaw the adapter takes")
        self.advanced_check.toggled.connect(lambda _: self.set_kind(self.adapter_kind, self.bridge))
        outer.addWidget(self.calibrate_button)
        outer.addWidget(self.advanced_check)
        buttons = QHBoxLayout()
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Every control back to neutral (0)")
        self.photo_button = QPushButton("From driver photo...")
        self.photo_button.setToolTip("Start from the values a driver photo gives (the settings panel's gains apply)")
        self.presets_button = QToolButton(text="Presets")
        self.presets_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.presets_menu = QMenu(self)
        self.presets_menu.aboutToShow.connect(self._fill_presets_menu)
        self.presets_button.setMenu(self.presets_menu)
        self.render_button = QPushButton("Render still")
        self.render_button.setToolTip("Render the identity with this expression (Settings panel: steps, seed...)")
        self.save_button = QPushButton("Save still...")
        self.save_button.setToolTip("Save the last rendered still as a PNG")
        self.save_button.setEnabled(False)
        for w in (self.reset_button, self.photo_button, self.presets_button):
            buttons.addWidget(w)
        outer.addLayout(buttons)
        actions = QHBoxLayout()
        for w in (self.render_button, self.save_button):
            actions.addWidget(w)
        outer.addLayout(actions)
        thumbs = QHBoxLayout()
        self.thumb_caption = QLabel("")
        self.thumb_caption.setWordWrap(True)
        self.thumb_minus, self.thumb_plus = QLabel(), QLabel()
        for label in (self.thumb_minus, self.thumb_plus):
            label.setFixedSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE)
            label.setStyleSheet("border:1px solid #666;")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        thumbs.addWidget(self.thumb_caption, 1)
        thumbs.addWidget(self.thumb_minus)
        thumbs.addWidget(self.thumb_plus)
        self.thumbs_box = QWidget()
        self.thumbs_box.setLayout(thumbs)
        self.thumbs_box.setVisible(False)
        outer.addWidget(self.thumbs_box)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(self.scroll, 1)
        self.reset_button.clicked.connect(self.reset)
        self.photo_button.clicked.connect(self.photo_requested)
        self.render_button.clicked.connect(self.render_requested)
        self.save_button.clicked.connect(self.save_requested)
        self.set_kind(None)

    # ------------------------------------------------------------------ building
    @property
    def bridged(self) -> bool:
        """Blendshape sliders on a FLAME-55 adapter, through its expression bridge."""
        return self.adapter_kind == FLAME and self.bridge is not None and not self.advanced_check.isChecked()

    @property
    def values_kind(self) -> str | None:
        """The adapter kind the sliders' values are for (blendshapes52 when bridged)."""
        return BLENDSHAPES if self.bridged else self.adapter_kind

    def set_kind(self, adapter_kind: str | None, bridge=None) -> None:
        """Controls for the loaded adapter (RetargetPipeline.expression_kind); values are kept when the space stays.

        bridge: a FLAME-55 adapter's ExpressionBridge: the named blendshape sliders and presets then drive it
        (the raw FLAME values stay under "Advanced (FLAME)"); without one, the panel offers calibration."""
        old_space = self.space
        self.adapter_kind = adapter_kind
        self.bridge = bridge if adapter_kind == FLAME else None
        self.calibrate_button.setVisible(adapter_kind == FLAME and self.bridge is None)
        self.advanced_check.setVisible(self.bridge is not None)
        self.space = space_for(self.values_kind) if adapter_kind else None
        for w in (self.reset_button, self.photo_button, self.presets_button, self.render_button):
            w.setEnabled(self.space is not None)
        if self.space is None:
            self.kind_label.setText("Load the models to compose an expression" if adapter_kind is None
                                    else "These models have no Expression Adapter")
            self.scroll.setWidget(QWidget())
            self.rows, self.sections, self._values = {}, {}, {}
            return
        if self.space is not old_space:
            self._values = {name: 0.0 for name in self.space.names}
            self.thumbs_box.setVisible(False)
        self._build_rows()
        self.kind_label.setText(
            "Published FLAME-55 adapter: 2 eyelid and 3 jaw values by name, and 50 global expression coefficients "
            "(\u00b1 renders what one does)" if self.space.kind == FLAME else
            "FLAME-55 adapter through the expression bridge: the 52 MediaPipe blendshapes by region" if self.bridged else
            f"Blendshape adapter ({adapter_kind}): the {len(self.rows)} MediaPipe blendshapes by region")

    def _build_rows(self) -> None:
        content = QWidget()
        layout = QVBoxLayout(content)
        layout.setContentsMargins(0, 0, 0, 0)
        self.rows, self.sections = {}, {}
        for region, controls in self.space.by_region().items():
            if self.adapter_kind == "blendshapes51":
                controls = [c for c in controls if c.name != "_neutral"]  # this adapter does not take it
            if not controls:
                continue
            linkable = any(c.partner for c in controls)
            section = Section(f"{REGION_TITLES.get(region, region)} ({len(controls)})", linkable,
                              expanded=region not in ("expression", "other"))
            self.sections[region] = section
            for i, control in enumerate(controls):
                row = ControlRow(control, section, i, thumbnail_button=region == "expression")
                self.rows[control.name] = row
                row.show(self._values[control.name])
                row.slider.valueChanged.connect(lambda pos, r=row: self._slider_moved(r, pos))
                row.spin.valueChanged.connect(lambda value, r=row: self._edited(r, value))
                if row.thumbs is not None:
                    row.thumbs.clicked.connect(lambda _=False, index=control.index: self.thumbnails_requested.emit(index))
            layout.addWidget(section)
        layout.addStretch(1)
        self.scroll.setWidget(content)

    # ------------------------------------------------------------------ values
    def _slider_moved(self, row: ControlRow, position: int) -> None:
        self._edited(row, row.value_at(position))

    def _edited(self, row: ControlRow, value: float) -> None:
        """One control changed by hand: it, and its partner when its section links left and right."""
        names = [row.control.name]
        if row.section.linked and row.control.partner in self.rows:
            names.append(row.control.partner)
        for name in names:
            self._values[name] = float(value)
            self.rows[name].show(float(value))
        self.values_changed.emit()

    def values(self) -> dict[str, float]:
        return dict(self._values)

    def set_values(self, values: dict[str, float]) -> None:
        """Every control from `values` (names left out go to neutral)."""
        self._values = {name: float(values.get(name, 0.0)) for name in self.space.names}
        for name, row in self.rows.items():
            row.show(self._values[name])
        self.values_changed.emit()

    def reset(self) -> None:
        self.set_values({})

    def composed(self) -> ComposedExpression:
        return ComposedExpression(self.space.kind, self.values())

    def vector(self) -> np.ndarray:
        """What the loaded adapter gets for these values (bridged: the bridge of the 52 blendshapes)."""
        if self.bridged:
            return self.bridge(self.space.full_vector(self._values))
        return self.space.vector_for(self.adapter_kind, self._values)

    def take_adapter_vector(self, vector) -> int:
        """Set every control from the adapter's own vector (a driver photo's; bridged: its 52 mapped blendshapes);
        returns how many lie outside the sliders."""
        values = self.space.values_from_adapter(self.values_kind, vector)
        self.set_values(values)
        return sum(not (self.space.control(n).low <= v <= self.space.control(n).high) for n, v in values.items())

    # ------------------------------------------------------------------ thumbnails
    def show_thumbnails(self, index: int, minus, plus) -> None:
        """QImages of the identity at -k and +k of coefficient `index`."""
        name = self.space.controls[index].name
        self.thumb_caption.setText(f"{name} at -{THUMBNAIL_K:g} (left) and +{THUMBNAIL_K:g} (right), everything else neutral")
        for label, image in ((self.thumb_minus, minus), (self.thumb_plus, plus)):
            label.setPixmap(QPixmap.fromImage(image).scaled(THUMBNAIL_SIZE, THUMBNAIL_SIZE, Qt.AspectRatioMode.KeepAspectRatio,
                                                            Qt.TransformationMode.SmoothTransformation))
        self.thumbs_box.setVisible(True)

    # ------------------------------------------------------------------ presets
    def preset_names(self) -> tuple[list[str], dict[str, Path]]:
        """(built-in names, {user preset name: file}) for the loaded kind; unreadable files are reported."""
        found, problems = user_presets(self.presets_dir, self.space.kind)
        for problem in problems:
            self.message.emit(f"Preset skipped: {problem}")
        return list(BUILTIN_PRESETS[self.space.kind]), found

    def load_preset(self, name: str) -> None:
        builtins, mine = self.preset_names()
        if name in mine:
            self.load_file(mine[name])
        else:
            self.set_values(builtin_preset(self.space.kind, name).values)
            self.message.emit(f"Preset: {name}")

    def load_file(self, path) -> bool:
        try:
            expression = read_expression(path)
            expression.space.check_adapter(self.values_kind, str(path))
        except RetargetError as err:
            self.message.emit(str(err))
            return False
        self.set_values(expression.values)
        self.message.emit(f"Loaded {path}")
        return True

    def save_preset(self, name: str, replace: bool = False) -> Path:
        """Save the values as the user's preset `name` (OutputError when it exists and replace is False)."""
        return save_preset(self.presets_dir, name, self.composed(), replace=replace)

    def _fill_presets_menu(self) -> None:
        menu = self.presets_menu
        menu.clear()
        if self.space is None:
            return
        builtins, mine = self.preset_names()
        for name in builtins:
            menu.addAction(name, lambda n=name: self.load_preset(n))
        if mine:
            menu.addSeparator()
            for name in mine:
                menu.addAction(name, lambda n=name: self.load_preset(n))
        menu.addSeparator()
        menu.addAction("Save as preset...", self._ask_save_preset)
        menu.addAction("Load from file...", self._ask_load_file)
        menu.addAction("Save to file...", self._ask_save_file)

    def _ask_save_preset(self) -> None:
        name, ok = QInputDialog.getText(self, "Save preset", f"Name (saved in {self.presets_dir}):")
        if not ok or not name.strip():
            return
        try:
            try:
                path = self.save_preset(name)
            except OutputError:
                answer = QMessageBox.question(self, "Replace preset?", f"A preset named '{name.strip()}' exists. Replace it?")
                if answer != QMessageBox.StandardButton.Yes:
                    return
                path = self.save_preset(name, replace=True)
        except (RetargetError, OSError) as err:
            self.message.emit(f"Preset not saved: {err}")
            return
        self.message.emit(f"Saved preset {path}")

    def _ask_load_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load expression", str(self.presets_dir), "Expression (*.json)")
        if path:
            self.load_file(path)

    def _ask_save_file(self) -> None:
        # The dialog asks before replacing an existing file, so the write may replace it.
        path, _ = QFileDialog.getSaveFileName(self, "Save expression", str(self.presets_dir / "expression.json"),
                                              "Expression (*.json)")
        if not path:
            return
        try:
            write_expression(path, self.composed(), replace=True)
        except (RetargetError, OSError) as err:
            self.message.emit(f"Not saved: {err}")
            return
        self.message.emit(f"Saved {path}")
