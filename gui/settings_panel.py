"""The settings panel: a form generated from the knob dataclasses of retarget.config (generation, mapping,
device, output video), and their saved settings."""

from __future__ import annotations

import dataclasses

from PyQt6.QtCore import QSettings, Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QPushButton, QSpinBox,
    QVBoxLayout, QWidget,
)

from retarget.config import APP_FORM_KNOBS, GenerationSettings, KnobField, MappingSettings, knob_fields
from retarget.config import PRESETS as LIBRARY_PRESETS
from retarget.config.store import app_fields, read_value, write_value
from retarget.expression.flame import control_support

# name, label (what it trades), steps, cfg: the library's presets that need no extra weights
PRESETS = [
    (p.name, f"{p.name.capitalize()}: {p.steps} steps, CFG {p.cfg:g} ({p.trade})", p.steps, p.cfg)
    for p in LIBRARY_PRESETS.values()
    if p.sampler == "dpmsolver++"
] + [("custom", "Custom", None, None)]
# Offered only while an LCM-LoRA is loaded (retarget --lcm-lora SRC): the LCM sampler, not DPM-Solver++.
_LCM = LIBRARY_PRESETS["lcm"]
LCM_PRESET = ("lcm", f"Fast live (LCM): {_LCM.steps} steps, guidance {_LCM.cfg:g} ({_LCM.trade})", _LCM.steps, _LCM.cfg)
_GAIN_FIELD = next(f for f in knob_fields(MappingSettings) if f.name == "gains")
# The library's own gain names: every blendshape region, then the FLAME-only ones.
GAINS = _GAIN_FIELD.knob.keys


def available_devices() -> list[str]:
    import torch

    devices = ["auto", "cpu"]
    if torch.cuda.is_available():
        devices += ["cuda"] + [f"cuda:{i}" for i in range(1, torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _double(lo: float, hi: float, step: float, value: float, decimals: int = 2) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    box.setValue(value)
    return box


class SettingsPanel(QWidget):
    """The knobs with an app label (retarget.config), one group per dataclass; emits generation_changed /
    mapping_changed / device_changed / options_changed, which the window applies live.

    Widgets, ranges, defaults, labels, tooltips and the saved-settings keys all come from the fields: a
    knob given a label appears here (and in saved settings) with no code in this module. Each widget is
    also an attribute named like its field (panel.steps, panel.gains["jaw"], panel.crf).
    """

    generation_changed = pyqtSignal()
    mapping_changed = pyqtSignal()
    device_changed = pyqtSignal(str)
    neutral_requested = pyqtSignal()
    options_changed = pyqtSignal()  # a knob of the other groups (e.g. the output video's quality)
    calibrate_requested = pyqtSignal()  # a FLAME-55 adapter without an expression bridge (gui.bridge_controls)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._applying_preset = False
        # Whether the user picked the preset (here or in saved settings), and whether the one shown was picked for
        # them by device (gui.model_loading: a GPU's live default), which offline renders do not follow.
        self.preset_chosen = False
        self.preset_automatic = False
        self.saved_preset: str | None = None
        self.fields = app_fields(*APP_FORM_KNOBS)
        self.widgets: dict = {}
        for field in self.fields:
            self.widgets[field.name] = self._make_widget(field)
            setattr(self, field.name, self.widgets[field.name])
        self.set_neutral = QPushButton("Set neutral")
        self.set_neutral.setToolTip("Relative mode: the driver's current face becomes its neutral (N)")
        self.set_neutral.setEnabled(False)
        from gui.calibration import CALIBRATE_TEXT

        self.calibrate_button = QPushButton("Calibrate\u2026")  # short, beside the gains it enables; the full name is in its tip
        self.calibrate_button.setToolTip(f"{CALIBRATE_TEXT}: fit the expression bridge for this FLAME-55 adapter once; then "
                                         "every region gain applies (FLAME driving from: bridge), and CSVs and tracks drive it")
        self.calibrate_button.setVisible(False)
        self.calibrate_button.clicked.connect(self.calibrate_requested)

        layout = QVBoxLayout(self)
        forms: dict[str, QFormLayout] = {}
        # A check box that enables another knob shares that knob's row, at that knob's place.
        switches = {f.knob.gui_pair: f.name for f in self.fields if f.knob.gui_pair}
        besides = {f.knob.gui_beside: f.name for f in self.fields if f.knob.gui_beside}
        for field in self.fields:
            if field.knob.gui_pair or field.knob.gui_beside:
                continue
            title = _SHARED_GROUPS.get(field.owner.TITLE, field.owner.TITLE)
            if title not in forms:
                box = QGroupBox(title)
                forms[title] = QFormLayout(box)
                layout.addWidget(box)
            form, widget = forms[title], self.widgets[field.name]
            if field.type is dict:
                # 7 gains in 4 rows, the Calibrate command in the free cell beside the last one (where the disabled
                # gains are): the panel fits 1280x760 unscrolled
                form.addRow(_two_columns(field, widget, self.calibrate_button if field.name == "gains" else None))
            elif field.name in switches:
                form.addRow(self.widgets[switches[field.name]], widget)
            elif field.name == "relative":
                form.addRow(widget, self.set_neutral)  # relative mode's own command, beside its switch
            elif field.type is bool:
                form.addRow(widget)
            elif field.name in besides:  # two small knobs on one row: the panel fits 1280x760 unscrolled
                other = next(f for f in self.fields if f.name == besides[field.name])
                parts = [widget] if other.type is bool else [widget, _label_for(other.knob.label, self.widgets[other.name])]
                form.addRow(field.knob.label, _side_by_side(*parts, self.widgets[other.name]))
            else:
                form.addRow(field.knob.label, widget)
        layout.addStretch(1)
        self.set_control_support(control_support(None))
        self._connect()

    def _make_widget(self, field: KnobField):
        k = field.knob
        tooltip = k.tooltip if isinstance(k.tooltip, str) else k.help
        if field.name == "preset":
            widget = QComboBox()
            for name, label, _, _ in PRESETS:
                widget.addItem(label, name)
                widget.setItemData(widget.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
            # Long labels say what each preset trades; the closed combo shows their start, the list all of it.
            widget.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            widget.setMinimumContentsLength(16)
            widget.view().setMinimumWidth(520)
        elif field.type is dict:
            low, high = k.gui_range or (k.low, k.high)
            return {name: _double(low, high, k.step or 0.1, k.item_default, k.decimals) for name in k.keys}
        elif field.type is bool:
            widget = QCheckBox(k.label)
            widget.setChecked(bool(field.default))
        elif k.choices is not None or field.name == "device":
            widget = QComboBox()
            for name in (available_devices() if field.name == "device" else k.choices):
                widget.addItem(str(name), name)
            widget.setCurrentIndex(max(widget.findData(field.default), 0))
        elif field.type is int:
            widget = QSpinBox()
            low, high = k.gui_range or (k.low, k.high)
            widget.setRange(int(low), int(high))
            widget.setValue(int(field.default))
        else:
            low, high = k.gui_range or (k.low, k.high)
            widget = _double(low, high, k.step or 0.1, field.default, k.decimals)
        widget.setToolTip(tooltip)
        return widget

    def _connect(self) -> None:
        self.preset.currentIndexChanged.connect(self._preset_chosen)
        self.preset.activated.connect(self._user_chose_preset)  # the user's own pick (never a programmatic one)
        for field in self.fields:
            if field.name in ("preset", "steps", "cfg", "device"):
                continue
            signal = {GenerationSettings: self.generation_changed, MappingSettings: self.mapping_changed}.get(
                field.owner, self.options_changed)
            widget = self.widgets[field.name]
            for one in (widget.values() if field.type is dict else (widget,)):
                _changed(one).connect(signal)
            if field.knob.gui_pair:
                widget.toggled.connect(self.widgets[field.knob.gui_pair].setEnabled)
        for box in (self.steps, self.cfg):
            box.valueChanged.connect(self._steps_or_cfg_edited)
        self.relative.toggled.connect(self.set_neutral.setEnabled)
        self.set_neutral.clicked.connect(self.neutral_requested)
        self.device.currentIndexChanged.connect(lambda _: self.device_changed.emit(self.device_name()))

    # ------------------------------------------------------------------ presets
    def set_lcm_available(self, available: bool) -> None:
        """Offer "Fast live (LCM)" only while the loaded pipeline has the LCM-LoRA."""
        index = self.preset.findData(LCM_PRESET[0])
        if available and index < 0:
            self.preset.insertItem(len(PRESETS) - 1, LCM_PRESET[1], LCM_PRESET[0])
            self.preset.setItemData(len(PRESETS) - 1, LCM_PRESET[1], Qt.ItemDataRole.ToolTipRole)
        elif not available and index >= 0:
            if self.preset.currentIndex() == index:
                self.set_preset("fast")
            self.preset.removeItem(index)

    def _preset_chosen(self) -> None:
        name = self.preset.currentData()
        for key, _, steps, cfg in PRESETS + [LCM_PRESET]:
            if key == name and steps is not None:
                self._applying_preset = True  # one change signal, not "custom" half-way
                self.steps.setValue(steps)
                self.cfg.setValue(cfg)
                self._applying_preset = False
        self.generation_changed.emit()

    def _user_chose_preset(self, *_) -> None:
        self.preset_chosen, self.preset_automatic = True, False

    def set_automatic_preset(self, name: str) -> None:
        """Select the device's live default for a user who has not chosen a preset."""
        self.set_preset(name)
        self.preset_automatic = self.preset.currentData() == name

    def _steps_or_cfg_edited(self) -> None:
        if self._applying_preset:
            return
        if self.steps.hasFocus() or self.cfg.hasFocus():
            self._user_chose_preset()  # the user's own steps/CFG: a choice the device default leaves alone
        # Editing steps/CFG leaves the LCM sampler's preset for a DPM-Solver++ one (or custom).
        match = next((k for k, _, s, c in PRESETS if s == self.steps.value() and c == self.cfg.value()), "custom")
        self.set_preset(match, apply=False)
        self.generation_changed.emit()

    def set_preset(self, name: str, apply: bool = True) -> None:
        index = self.preset.findData(name)
        if index < 0:
            return
        if apply:
            self.preset.setCurrentIndex(index)
        else:
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(index)
            self.preset.blockSignals(False)

    # ------------------------------------------------------------------ values
    def value(self, field: KnobField):
        """The widget's value as the field holds it (a dict knob: the enabled names only)."""
        widget = self.widgets[field.name]
        if field.type is dict:
            return {name: box.value() for name, box in widget.items() if box.isEnabled()}
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):
            return widget.currentData()
        return widget.value()

    def options(self, cls, **overrides):
        """An instance of a knob dataclass with the form's values for its knobs (defaults for the rest)."""
        values = {f.name: self.value(f) for f in self.fields if f.owner is cls}
        for field in dataclasses.fields(cls):  # a knob dataclass inside (RenderOptions.video) is filled too
            if field.default_factory in APP_FORM_KNOBS:
                values[field.name] = self.options(field.default_factory)
        return cls(**{**values, **overrides})

    def generation_settings(self) -> GenerationSettings:
        lcm = self.preset.currentData() == LCM_PRESET[0]
        return self.options(GenerationSettings, sampler=LIBRARY_PRESETS["lcm"].sampler if lcm else "dpmsolver++")

    def render_generation_settings(self) -> GenerationSettings:
        """Offline renders: the paper's settings while the preset is only the device's live default, else the form's."""
        from retarget.config import preset_settings

        settings = self.generation_settings()
        return preset_settings("quality", settings) if self.preset_automatic else settings

    def mapping_settings(self) -> MappingSettings:
        return self.options(MappingSettings)

    def set_control_support(self, support: dict) -> None:
        """Disable the gains the loaded adapter cannot apply, with the reason as the tooltip (never ignored silently)."""
        for region, box in self.gains.items():
            reason = support.get(f"gain.{region}")
            box.setEnabled(reason is None)
            box.setToolTip(_GAIN_FIELD.knob.tooltip(region) if reason is None else f"Not available: {reason}")

    def device_name(self) -> str:
        return self.device.currentData() or "auto"

    def select_device(self, name: str) -> bool:
        """Select a device without a device_changed signal (the --device option); False when it is not offered here."""
        index = self.device.findData(name)
        if index >= 0:
            self.device.blockSignals(True)
            self.device.setCurrentIndex(index)
            self.device.blockSignals(False)
        return index >= 0

    # ------------------------------------------------------------------ persistence
    def save(self, store: QSettings) -> None:
        for field in self.fields:
            value = ({n: box.value() for n, box in self.gains.items()} if field.type is dict  # disabled gains too
                     else self.device_name() if field.name == "device" else self.value(field))
            write_value(store, field, value)

    def restore(self, store: QSettings) -> None:
        """Apply stored values (old keys migrate); bad or missing ones keep the defaults (settings files get hand-edited)."""
        self.blockSignals(True)
        self._applying_preset = True  # the stored steps/CFG and preset, not "custom" half-way
        try:
            for field in self.fields:
                widget = self.widgets[field.name]
                if field.name == "preset":  # first: its steps/CFG are then overwritten by the stored ones
                    self.preset_chosen = any(store.contains(key) for key in (field.store_key, *field.knob.old_keys))
                    self.saved_preset = read_value(store, field, None, check=False) if self.preset_chosen else None
                    self.set_preset(read_value(store, field, "quality", check=False), apply=False)
                elif field.type is dict:
                    stored = read_value(store, field, {name: field.knob.item_default for name in widget})
                    for name, box in widget.items():
                        box.setValue(stored[name])
                elif isinstance(widget, QCheckBox):
                    widget.setChecked(read_value(store, field, field.default))
                elif isinstance(widget, QComboBox):
                    widget.setCurrentIndex(max(widget.findData(read_value(store, field, field.default)), 0))
                else:
                    widget.setValue(read_value(store, field, field.default))
        finally:
            self._applying_preset = False
            self.blockSignals(False)


# Groups of one or two knobs share one box: four group frames cost the panel its fit at 1280x760.
_SHARED_GROUPS = {title: "Device and output" for title in ("Device", "Output video", "Output frame", "Provenance")}


def _label_for(text: str, widget: QWidget) -> QLabel:
    label = QLabel(text)
    label.setBuddy(widget)
    return label


def _side_by_side(*widgets: QWidget) -> QWidget:
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    for widget in widgets:
        layout.addWidget(widget)
    return row


def _two_columns(field: KnobField, boxes: dict, after: QWidget | None = None) -> QWidget:
    """A dict knob's spin boxes as label/box pairs in two columns; `after` takes the next free pair of cells."""
    grid_box = QWidget()
    grid = QGridLayout(grid_box)
    grid.setContentsMargins(0, 0, 0, 0)
    for i, (name, box) in enumerate(boxes.items()):
        row, col = divmod(i, 2)
        grid.addWidget(_label_for(field.knob.label.format(name.capitalize()), box), row, col * 2)
        grid.addWidget(box, row, col * 2 + 1)
    if after is not None:
        row, col = divmod(len(boxes), 2)
        grid.addWidget(after, row, col * 2, 1, 2)
    grid.setColumnStretch(1, 1)
    grid.setColumnStretch(3, 1)
    return grid_box


def _changed(widget):
    """The signal a widget sends when the user changes its value."""
    if isinstance(widget, QCheckBox):
        return widget.toggled
    if isinstance(widget, QComboBox):
        return widget.currentIndexChanged
    return widget.valueChanged
