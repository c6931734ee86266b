"""The "Compose expression" panel: a slider changes exactly its named value in what reaches the generator."""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pytest

from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.pipeline import RetargetPipeline


@pytest.fixture(autouse=True)
def _presets_in_tmp(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # never the user's presets folder


@pytest.fixture
def composer_window(make_window, shared_dir):
    """A real MainWindow on the given tiny models, identity loaded, the compose dock shown."""

    def make(models_dir):
        window = make_window(shared_dir / "media" / "identity_hepburn_small.png", models_dir=models_dir)
        window.actions_by_name["compose"].trigger()
        assert window.composer.dock.isVisible()
        return window

    return make


def _render(qtbot, window) -> np.ndarray:
    """Press Render still; return the expression batch that reached RetargetPipeline.generate."""
    with mock.patch.object(RetargetPipeline, "generate", autospec=True, side_effect=RetargetPipeline.generate) as spy, \
            qtbot.waitSignal(window.composer.still_rendered, timeout=60000):
        window.composer.panel.render_button.click()
    assert spy.call_count == 1
    fed = np.asarray(spy.call_args.args[2], dtype=np.float32)
    assert fed.shape[0] == 1
    return fed[0]


def _changed(before: np.ndarray, after: np.ndarray) -> list[int]:
    return np.flatnonzero(before != after).tolist()


def test_flame_sliders_change_exactly_their_named_value(qtbot, composer_window, tiny_models_dir):
    window = composer_window(tiny_models_dir)
    panel = window.composer.panel
    assert panel.adapter_kind == "flame55" and len(panel.rows) == 55
    base = _render(qtbot, window)
    np.testing.assert_array_equal(base, np.zeros(55, np.float32))  # no driver: neutral
    assert window.output_view.image() is not None

    row = panel.rows["jaw_open"]
    row.slider.setValue(500)
    after = _render(qtbot, window)
    assert _changed(base, after) == [52]
    assert after[52] == np.float32(row.value_at(500)) == np.float32(0.3)

    coefficient = panel.rows["exp_07"]
    coefficient.slider.setValue(750)  # -3 + 6 * 0.75
    third = _render(qtbot, window)
    assert _changed(after, third) == [7] and third[7] == np.float32(1.5)

    # eyelids are a linked pair: both move, and only they
    assert panel.sections["eyes"].linked
    panel.rows["eyelid_left"].slider.setValue(400)
    fourth = _render(qtbot, window)
    assert _changed(third, fourth) == [50, 51] and fourth[50] == fourth[51] == np.float32(0.4)
    panel.sections["eyes"].link.setChecked(False)  # per-eye control
    panel.rows["eyelid_right"].spin.setValue(0.9)
    fifth = _render(qtbot, window)
    assert _changed(fourth, fifth) == [51] and fifth[51] == np.float32(0.9)
    assert not window.error_messages


def test_blendshape_sliders_change_exactly_their_named_value(qtbot, composer_window, blendshape_models_dir):
    window = composer_window(blendshape_models_dir)
    panel = window.composer.panel
    assert panel.adapter_kind == "blendshapes52" and len(panel.rows) == 52
    base = _render(qtbot, window)
    jaw = BLENDSHAPE_NAMES.index("jawOpen")
    panel.rows["jawOpen"].slider.setValue(250)
    after = _render(qtbot, window)
    assert _changed(base, after) == [jaw] and after[jaw] == np.float32(0.25)

    left, right = BLENDSHAPE_NAMES.index("mouthSmileLeft"), BLENDSHAPE_NAMES.index("mouthSmileRight")
    panel.rows["mouthSmileLeft"].slider.setValue(800)
    linked = _render(qtbot, window)
    assert _changed(after, linked) == sorted([left, right]) and linked[left] == linked[right] == np.float32(0.8)
    # one movement in two directions is never linked
    panel.rows["jawLeft"].slider.setValue(300)
    sideways = _render(qtbot, window)
    assert _changed(linked, sideways) == [BLENDSHAPE_NAMES.index("jawLeft")]
    panel.sections["mouth"].link.setChecked(False)
    panel.rows["mouthSmileRight"].slider.setValue(100)
    one_side = _render(qtbot, window)
    assert _changed(sideways, one_side) == [right] and one_side[right] == np.float32(0.1)
    assert not window.error_messages


def test_presets_round_trip_and_the_panel_refuses_a_file_of_the_other_kind(qtbot, composer_window, tiny_models_dir, tmp_path):
    window = composer_window(tiny_models_dir)
    panel = window.composer.panel
    panel.load_preset("eyes closed")
    assert panel.values()["eyelid_left"] == panel.values()["eyelid_right"] == 1.0
    panel.rows["exp_03"].slider.setValue(333)
    panel.rows["jaw_tilt"].spin.setValue(-0.125)
    saved = panel.values()
    path = panel.save_preset("tired")
    assert json.loads(path.read_text())["kind"] == "flame55"
    panel.reset()
    assert all(v == 0.0 for v in panel.values().values())
    builtins, mine = panel.preset_names()
    assert "neutral" in builtins and list(mine) == ["tired"]
    panel.load_preset("tired")
    assert panel.values() == saved

    other = tmp_path / "bs.json"
    other.write_text(json.dumps({"kind": "blendshapes52", "values": {"jawOpen": 0.5}}))
    messages = []
    panel.message.connect(messages.append)
    assert not panel.load_file(other)
    assert "blendshapes52" in messages[-1] and "flame55" in messages[-1]
    assert panel.values() == saved


def test_coefficient_thumbnails_render_off_the_ui_thread_once_per_identity(qtbot, composer_window, tiny_models_dir):
    import threading

    window = composer_window(tiny_models_dir)
    panel, composer = window.composer.panel, window.composer
    threads = []

    def spy(self, context, expressions, *args, **kwargs):
        threads.append(threading.current_thread())
        return generate(self, context, expressions, *args, **kwargs)

    generate = RetargetPipeline.generate
    with mock.patch.object(RetargetPipeline, "generate", autospec=True, side_effect=spy) as calls:
        with qtbot.waitSignal(composer.thumbnails_ready, timeout=60000):
            panel.rows["exp_04"].thumbs.click()
        fed = np.asarray(calls.call_args.args[2])
        expected = np.zeros((2, 55), np.float32)
        expected[0, 4], expected[1, 4] = -2.0, 2.0
        np.testing.assert_array_equal(fed, expected)
        assert threads[0] is not threading.main_thread()
        assert panel.thumb_minus.pixmap() is not None and not panel.thumb_minus.pixmap().isNull()
        with qtbot.waitSignal(composer.thumbnails_ready, timeout=5000):
            panel.rows["exp_04"].thumbs.click()  # cached: no second generate
        assert calls.call_count == 1


def test_start_from_a_driver_photo_takes_its_mapped_values(qtbot, composer_window, tiny_models_dir, shared_dir):
    from retarget.face.image_io import load_image

    window = composer_window(tiny_models_dir)
    photo = shared_dir / "media" / "expression_exp1_rgba.png"
    with qtbot.waitSignal(window.composer.photo_taken, timeout=60000):
        window.composer.start_from_photo(photo)
    expected = window.retargeter.expression_from_image(load_image(photo), mapping=window.panel.mapping_settings(),
                                                       identity_neutral=window.context.blendshapes)
    np.testing.assert_array_equal(window.composer.panel.vector(), np.asarray(expected, np.float32))
    fed = _render(qtbot, window)
    np.testing.assert_array_equal(fed, np.asarray(expected, np.float32))


# ---------------------------------------------------------------- the panel alone (no models)
def test_panel_adapts_to_the_adapter_kind(qtbot, tmp_path):
    from gui.expression_panel import ExpressionPanel

    panel = ExpressionPanel(tmp_path)
    qtbot.addWidget(panel)
    assert not panel.render_button.isEnabled()  # no models yet
    panel.set_kind("blendshapes51")
    assert "_neutral" not in panel.rows and len(panel.rows) == 51
    panel.rows["jawOpen"].slider.setValue(500)
    vector = panel.vector()
    assert vector.shape == (51,) and np.flatnonzero(vector).tolist() == [BLENDSHAPE_NAMES.index("jawOpen") - 1]
    panel.set_kind("blendshapes52")  # same names: the values stay
    assert panel.values()["jawOpen"] == 0.5 and "_neutral" in panel.rows
    panel.set_kind("flame55")
    assert len(panel.rows) == 55 and all(v == 0.0 for v in panel.values().values())
    assert [name for name, row in panel.rows.items() if row.thumbs is not None] == [f"exp_{i:02d}" for i in range(50)]


def test_save_as_asks_before_replacing_a_preset(qtbot, tmp_path):
    from PyQt6.QtWidgets import QInputDialog, QMessageBox

    from gui.expression_panel import ExpressionPanel

    panel = ExpressionPanel(tmp_path)
    qtbot.addWidget(panel)
    panel.set_kind("flame55")
    panel.rows["jaw_open"].slider.setValue(500)
    with mock.patch.object(QInputDialog, "getText", return_value=("mine", True)):
        panel._ask_save_preset()
        path = tmp_path / "mine.json"
        assert json.loads(path.read_text()) == {"kind": "flame55", "values": {"jaw_open": 0.3}}
        panel.rows["jaw_open"].slider.setValue(0)
        with mock.patch.object(QMessageBox, "question", return_value=QMessageBox.StandardButton.No) as asked:
            panel._ask_save_preset()
        assert asked.call_count == 1 and json.loads(path.read_text())["values"] == {"jaw_open": 0.3}
        with mock.patch.object(QMessageBox, "question", return_value=QMessageBox.StandardButton.Yes):
            panel._ask_save_preset()
        assert json.loads(path.read_text())["values"] == {}
