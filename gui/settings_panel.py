"""The controls panel: generation (quality preset, steps, CFG, adapters, seed), mapping and device."""

from __future__ import annotations

from PyQt6.QtCore import QSettings, Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QPushButton, QSpinBox, QVBoxLayout, QWidget,
)

from retarget.expression.flame import control_support
from retarget.expression.mapping import FLAME_ONLY_GAINS, MappingSettings
from retarget.expression.mapping import REGIONS as MAPPING_REGIONS
from retarget.settings import PAPER_CFG, PAPER_EXP_SCALE, PAPER_REF_SCALE, PAPER_STEPS, GenerationSettings
from retarget.settings import PRESETS as LIBRARY_PRESETS

# name, label (what it trades), steps, cfg: the library's presets that need no extra weights
PRESETS = [
    (p.name, f"{p.name.capitalize()}: {p.steps} steps, CFG {p.cfg:g} ({p.trade})", p.steps, p.cfg)
    for p in LIBRARY_PRESETS.values()
    if p.sampler == "dpmsolver++"
] + [("custom", "Custom", None, None)]
# Offered only while an LCM-LoRA is loaded (retarget --lcm-lora SRC): the LCM sampler, not DPM-Solver++.
_LCM = LIBRARY_PRESETS["lcm"]
LCM_PRESET = ("lcm", f"Fast live (LCM): {_LCM.steps} steps, guidance {_LCM.cfg:g} ({_LCM.trade})", _LCM.steps, _LCM.cfg)
# The library's own gain names: every blendshape region, then the FLAME-only ones.
GAINS = (*MAPPING_REGIONS, *FLAME_ONLY_GAINS)


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
    """Emits generation_changed / mapping_changed / device_changed; the window applies them live."""

    generation_changed = pyqtSignal()
    mapping_changed = pyqtSignal()
    device_changed = pyqtSignal(str)
    neutral_requested = pyqtSignal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._applying_preset = False
        layout = QVBoxLayout(self)

        gen = QGroupBox("Generation")
        form = QFormLayout(gen)
        self.preset = QComboBox()
        for name, label, _, _ in PRESETS:
            self.preset.addItem(label, name)
            self.preset.setItemData(self.preset.count() - 1, label, Qt.ItemDataRole.ToolTipRole)
        # Long labels say what each preset trades; the closed combo shows their start, the list all of it.
        self.preset.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset.setMinimumContentsLength(16)
        self.preset.view().setMinimumWidth(520)
        self.preset.setToolTip("Quality presets: fewer sampling steps are faster but less detailed")
        self.steps = QSpinBox()
        self.steps.setRange(1, 100)
        self.steps.setValue(PAPER_STEPS)
        self.cfg = _double(1.0, 15.0, 0.5, PAPER_CFG, 1)
        self.cfg.setToolTip("Classifier-free guidance; 1.0 turns it off (one UNet pass per step, faster)")
        self.use_reference = QCheckBox("Reference Adapter")
        self.use_reference.setChecked(True)
        self.use_reference.setToolTip("Keeps the identity's appearance (hair, skin) close to the photo")
        self.ref_scale = _double(0.0, 2.0, 0.05, PAPER_REF_SCALE)
        self.exp_scale = _double(0.0, 3.0, 0.05, PAPER_EXP_SCALE)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        form.addRow("Preset", self.preset)
        form.addRow("Steps", self.steps)
        form.addRow("CFG", self.cfg)
        form.addRow(self.use_reference, self.ref_scale)
        form.addRow("Expression scale", self.exp_scale)
        form.addRow("Seed", self.seed)
        layout.addWidget(gen)

        mapping = QGroupBox("Expression mapping")
        mform = QFormLayout(mapping)
        self.gains = {}
        self._gain_tips = {}
        for region in GAINS:
            box = _double(0.0, 3.0, 0.1, 1.0)
            self._gain_tips[region] = (f"Gain on the {region} blendshapes (1 = as the driver does it)" if region in MAPPING_REGIONS
                                       else f"Gain on FLAME's {region} coefficients (1 = as the driver does it)")
            self.gains[region] = box
            mform.addRow(f"{region.capitalize()} gain", box)
        self.set_control_support(control_support(None))
        self.smoothing = QCheckBox("Smoothing (One Euro)")
        self.smoothing.setChecked(True)
        self.relative = QCheckBox("Relative to the driver's neutral face")
        self.relative.setToolTip("Transfers the driver's change from its neutral face onto the identity's own expression")
        self.set_neutral = QPushButton("Set neutral (N)")
        self.set_neutral.setToolTip("Relative mode: the driver's current face becomes its neutral")
        self.set_neutral.setEnabled(False)
        self.mirror = QCheckBox("Mirror (swap left and right)")
        mform.addRow(self.smoothing)
        mform.addRow(self.relative)
        mform.addRow(self.set_neutral)
        mform.addRow(self.mirror)
        layout.addWidget(mapping)

        dev = QGroupBox("Device")
        dform = QFormLayout(dev)
        self.device = QComboBox()
        for name in available_devices():
            self.device.addItem(name, name)
        self.device.setToolTip("Where the generator runs; changing it reloads the models")
        dform.addRow("Run on", self.device)
        layout.addWidget(dev)
        layout.addStretch(1)

        self.preset.currentIndexChanged.connect(self._preset_chosen)
        for box in (self.steps, self.cfg):
            box.valueChanged.connect(self._steps_or_cfg_edited)
        for box in (self.ref_scale, self.exp_scale, self.seed):
            box.valueChanged.connect(self.generation_changed)
        self.use_reference.toggled.connect(self.generation_changed)
        self.use_reference.toggled.connect(self.ref_scale.setEnabled)
        for box in self.gains.values():
            box.valueChanged.connect(self.mapping_changed)
        for check in (self.smoothing, self.relative, self.mirror):
            check.toggled.connect(self.mapping_changed)
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

    def _steps_or_cfg_edited(self) -> None:
        if self._applying_preset:
            return
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
    def generation_settings(self) -> GenerationSettings:
        return GenerationSettings(
            steps=self.steps.value(), cfg=self.cfg.value(), ref_scale=self.ref_scale.value(),
            exp_scale=self.exp_scale.value(), use_reference=self.use_reference.isChecked(), seed=self.seed.value(),
            sampler=LIBRARY_PRESETS["lcm"].sampler if self.preset.currentData() == LCM_PRESET[0] else "dpmsolver++",
        )

    def mapping_settings(self) -> MappingSettings:
        return MappingSettings(
            smoothing=self.smoothing.isChecked(), relative=self.relative.isChecked(), mirror=self.mirror.isChecked(),
            gains={region: box.value() for region, box in self.gains.items() if box.isEnabled()},
        )

    def set_control_support(self, support: dict) -> None:
        """Disable the gains the loaded adapter cannot apply, with the reason as the tooltip (never ignored silently)."""
        for region, box in self.gains.items():
            reason = support.get(f"gain.{region}")
            box.setEnabled(reason is None)
            box.setToolTip(self._gain_tips[region] if reason is None else f"Not available: {reason}")

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
        store.setValue("gen/preset", self.preset.currentData())
        store.setValue("gen/steps", self.steps.value())
        store.setValue("gen/cfg", self.cfg.value())
        store.setValue("gen/use_reference", self.use_reference.isChecked())
        store.setValue("gen/ref_scale", self.ref_scale.value())
        store.setValue("gen/exp_scale", self.exp_scale.value())
        store.setValue("gen/seed", self.seed.value())
        for region, box in self.gains.items():
            store.setValue(f"map/gain_{region}", box.value())
        store.setValue("map/smoothing", self.smoothing.isChecked())
        store.setValue("map/relative", self.relative.isChecked())
        store.setValue("map/mirror", self.mirror.isChecked())
        store.setValue("device", self.device_name())

    def restore(self, store: QSettings) -> None:
        """Apply stored values; bad or missing ones keep the defaults (settings files get hand-edited)."""

        def get(key, kind, default):
            try:
                value = store.value(key, default)
                if kind is bool:
                    return value if isinstance(value, bool) else str(value).lower() in ("true", "1")
                return kind(value)
            except (TypeError, ValueError):
                return default

        self.blockSignals(True)
        try:
            self.set_preset(get("gen/preset", str, "quality"), apply=False)
            self._applying_preset = True
            self.steps.setValue(get("gen/steps", int, self.steps.value()))
            self.cfg.setValue(get("gen/cfg", float, self.cfg.value()))
            self._applying_preset = False
            self.use_reference.setChecked(get("gen/use_reference", bool, True))
            self.ref_scale.setValue(get("gen/ref_scale", float, self.ref_scale.value()))
            self.exp_scale.setValue(get("gen/exp_scale", float, self.exp_scale.value()))
            self.seed.setValue(get("gen/seed", int, 0))
            for region, box in self.gains.items():
                box.setValue(get(f"map/gain_{region}", float, 1.0))
            self.smoothing.setChecked(get("map/smoothing", bool, True))
            self.relative.setChecked(get("map/relative", bool, False))
            self.mirror.setChecked(get("map/mirror", bool, False))
            index = self.device.findData(get("device", str, "auto"))
            self.device.setCurrentIndex(max(index, 0))
        finally:
            self.blockSignals(False)
