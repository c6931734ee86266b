"""The settings form and its saved settings, both generated from retarget.config's knob fields."""

from __future__ import annotations

from PyQt6.QtCore import QSettings
from PyQt6.QtWidgets import QCheckBox, QComboBox

from retarget.config import APP_FORM_KNOBS, GenerationSettings, RenderOptions, VideoOptions
from retarget.config.store import app_fields

# Settings as the app saved them before the form was generated from the fields (the `device` key is now model/device).
OLD_INI = """[General]
device=cpu

[gen]
preset=custom
steps=7
cfg=2.5
use_reference=false
ref_scale=0.5
exp_scale=1.5
seed=42

[map]
gain_jaw=0.5
gain_mouth=2
smoothing=false
relative=true
mirror=true
"""


def _panel(qtbot):
    from gui.settings_panel import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    return panel


def test_every_labelled_knob_has_a_widget_with_its_range_default_and_tooltip(qtbot):
    panel = _panel(qtbot)
    for field in app_fields(*APP_FORM_KNOBS):
        widget = panel.widgets[field.name]
        assert getattr(panel, field.name) is widget
        k = field.knob
        if field.type is dict:
            assert tuple(widget) == k.keys and all(box.value() == k.item_default for box in widget.values())
            continue
        if isinstance(widget, QCheckBox):
            assert widget.isChecked() == field.default and widget.text() == k.label
        elif isinstance(widget, QComboBox):
            assert widget.count() >= 1
        else:
            assert (widget.minimum(), widget.maximum()) == tuple(k.gui_range or (k.low, k.high))
            assert widget.value() == field.default
        assert widget.toolTip() == (k.tooltip or k.help)
    assert (panel.crf.minimum(), panel.crf.maximum(), panel.crf.value()) == (0, 51, 18)
    assert panel.generation_settings() == GenerationSettings()


def test_crf_is_in_the_form_saved_and_in_the_render_options(qtbot, qsettings):
    panel = _panel(qtbot)
    panel.crf.setValue(30)
    assert panel.options(VideoOptions) == VideoOptions(crf=30)
    assert panel.options(RenderOptions, batch_size=2).video.crf == 30  # what the window's Render video job gets
    panel.save(qsettings)
    assert int(qsettings.value("video/crf")) == 30
    again = _panel(qtbot)
    again.restore(qsettings)
    assert again.crf.value() == 30


def test_old_keys_carry_over_and_are_saved_under_the_new_ones(qtbot, tmp_path):
    path = tmp_path / "old.ini"
    path.write_text(OLD_INI)
    store = QSettings(str(path), QSettings.Format.IniFormat)
    panel = _panel(qtbot)
    if panel.device.findData("cpu") < 0:
        panel.device.addItem("cpu", "cpu")
    panel.device.setCurrentIndex(panel.device.findData("auto"))
    panel.restore(store)
    assert panel.preset.currentData() == "custom" and panel.steps.value() == 7 and panel.cfg.value() == 2.5
    settings = panel.generation_settings()
    assert (settings.use_reference, settings.ref_scale, settings.exp_scale, settings.seed) == (False, 0.5, 1.5, 42)
    assert not panel.ref_scale.isEnabled()
    mapping = panel.mapping_settings()
    assert (mapping.smoothing, mapping.relative, mapping.mirror) == (False, True, True)
    assert panel.gains["jaw"].value() == 0.5 and panel.gains["mouth"].value() == 2.0 and panel.gains["brows"].value() == 1.0
    assert panel.device_name() == "cpu"  # from the old top-level key
    assert panel.crf.value() == 18  # a knob the old file does not have keeps its default
    panel.save(store)
    store.sync()
    assert store.value("model/device") == "cpu" and int(store.value("gen/steps")) == 7


def test_hand_edited_bad_values_keep_the_defaults(qtbot, tmp_path):
    path = tmp_path / "bad.ini"
    path.write_text("[gen]\nsteps=many\ncfg=nan\nseed=-3\n\n[video]\ncrf=99\n\n[map]\ngain_jaw=x\nmirror=perhaps\n")
    panel = _panel(qtbot)
    panel.restore(QSettings(str(path), QSettings.Format.IniFormat))
    assert (panel.steps.value(), panel.cfg.value(), panel.seed.value(), panel.crf.value()) == (25, 3.0, 0, 18)
    assert panel.gains["jaw"].value() == 1.0 and not panel.mirror.isChecked()
