"""The app with the FLAME-55 test adapter and the expression bridge: the Compose dock's blendshape sliders and
presets, the region gains and the track editor drive it through the bridge (the vectors reaching generate are
compared, not pixels); without a bridge every entry point offers "Calibrate expression controls...", whose
dialog runs the fit off the UI thread with progress and Cancel."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from retarget.errors import JobInterrupted
from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.expression.bridge import ExpressionBridge, adapter_sha256, cache_bridge_path, missing_bridge_message
from retarget.expression.mapping import ExpressionMapper
from retarget.expression.presets import builtin_preset
from retarget.media.blendshape_csv import BlendshapeCsvWriter

FRAMES = 8


def make_bridge(sha: str) -> ExpressionBridge:
    rng = np.random.default_rng(11)
    return ExpressionBridge(rng.normal(size=(52, 55)) * 0.3, rng.normal(size=55) * 0.05, sha, {"source": "test",
                            "r2": {"expression": 0.5, "eyes": 0.4, "jaw": 0.6, "all": 0.5}})


@pytest.fixture
def adapter_sha(tiny_models_dir) -> str:
    return adapter_sha256(tiny_models_dir / "exp_adapter" / "exp_adapter.bin")


@pytest.fixture
def with_bridge(adapter_sha, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own-cache"))  # other tests expect no bridge for the tiny models
    bridge = make_bridge(adapter_sha)
    path = bridge.save(cache_bridge_path(adapter_sha))
    yield bridge
    path.unlink()


@pytest.fixture
def identity(shared_dir) -> Path:
    return shared_dir / "media" / "identity_hepburn_small.png"


@pytest.fixture
def track_csv(tmp_path) -> Path:
    rng = np.random.default_rng(2)
    path = tmp_path / "take.csv"
    writer = BlendshapeCsvWriter(path)
    for i in range(FRAMES):
        writer.write(i / 25.0, None if i == 2 else rng.uniform(0.05, 0.45, 52).astype(np.float32))
    writer.close()
    return path


def spy_generate(pipeline, calls: list):
    real = pipeline.generate

    def spy(context, expressions, settings=None, noise=None, frame_indices=None, **kwargs):
        calls.append((threading.current_thread() is threading.main_thread(), frame_indices, np.array(expressions, copy=True)))
        return real(context, expressions, settings, noise, frame_indices, **kwargs)

    pipeline.generate = spy
    return real


def shown_models(qtbot, window):
    """The window once its models_loaded handlers ran (make_window returns when the session holds the models)."""
    qtbot.waitUntil(lambda: window.composer.panel.adapter_kind is not None, timeout=30000)
    return window


def render_still(qtbot, composer) -> None:
    with qtbot.waitSignal(composer.still_rendered, timeout=120000):
        composer.render_still()


def test_compose_sliders_and_the_smile_preset_reach_generate_as_bridge_of_the_values(qtbot, make_window, identity, with_bridge):
    window = make_window(identity)
    panel, composer = window.composer.panel, window.composer
    assert window.retargeter.bridge is not None and panel.bridged
    assert panel.space.kind == "blendshapes52" and set(panel.rows) == set(BLENDSHAPE_NAMES)
    assert not panel.advanced_check.isHidden() and panel.calibrate_button.isHidden()
    calls: list = []
    real = spy_generate(window.retargeter.pipeline, calls)
    try:
        panel.rows["jawOpen"].slider.setValue(600)  # a slider change
        values = panel.values()
        assert values["jawOpen"] == pytest.approx(0.6)
        render_still(qtbot, composer)
        full = np.zeros(52, np.float32)
        full[BLENDSHAPE_NAMES.index("jawOpen")] = values["jawOpen"]
        np.testing.assert_array_equal(calls[-1][2][0], with_bridge(full))
        assert not calls[-1][0]  # rendered off the UI thread

        panel.load_preset("smile")
        render_still(qtbot, composer)
        smile = builtin_preset("blendshapes52", "smile").values
        full = np.zeros(52, np.float32)
        for name, value in smile.items():
            full[BLENDSHAPE_NAMES.index(name)] = value
        np.testing.assert_array_equal(calls[-1][2][0], with_bridge(full))

        panel.advanced_check.setChecked(True)  # the raw FLAME values stay available
        assert panel.space.kind == "flame55" and "exp_00" in panel.rows
        panel.rows["jaw_open"].spin.setValue(0.3)
        render_still(qtbot, composer)
        expected = np.zeros(55, np.float32)
        expected[52] = 0.3
        np.testing.assert_array_equal(calls[-1][2][0], expected)
    finally:
        window.retargeter.pipeline.generate = real


def test_region_gains_apply_to_a_flame_adapter_in_bridge_mode(qtbot, make_window, with_bridge):
    window = shown_models(qtbot, make_window())
    panel = window.panel
    assert not panel.gains["mouth"].isEnabled()  # SMIRK driving: FLAME has no mouth control
    assert "bridge" in panel.gains["mouth"].toolTip()
    panel.expression_source.setCurrentIndex(panel.expression_source.findData("bridge"))
    assert all(box.isEnabled() for box in panel.gains.values())
    mapping = panel.mapping_settings()
    assert mapping.expression_source == "bridge" and "mouth" in mapping.gains
    # The stream's analyzer maps through the bridge with those gains (no SMIRK).
    panel.gains["mouth"].setValue(1.8)
    mapping = panel.mapping_settings()
    with window.retargeter.driver_analyzer(mapping) as analyzer:
        assert analyzer.via_bridge and analyzer.mapping.gains["mouth"] == pytest.approx(1.8)


def test_the_track_editor_previews_and_renders_through_the_bridge(qtbot, make_window, identity, with_bridge, track_csv,
                                                                  tmp_path):
    from gui.track_dock import open_track_editor

    window = make_window(identity)
    dock = open_track_editor(window, track_csv)
    editor = dock.editor
    assert dock.unavailable_reason() is None and editor.preview_check.isEnabled() and dock.calibrate_button.isHidden()
    track = editor.track
    mapping = window.panel.mapping_settings()
    mapper = ExpressionMapper(mapping, window.context.blendshapes)  # the blendshape controls, then the bridge
    expected = np.stack([with_bridge(mapper(None if np.isnan(row).any() else row, float(t)))
                         for t, row in zip(track.times, track.values)])
    calls: list = []
    real = spy_generate(window.retargeter.pipeline, calls)
    try:
        editor.view.set_playhead(4)
        editor.preview_check.setChecked(True)
        qtbot.waitUntil(lambda: dock.previews_generated >= 1 and dock._preview_task is None, timeout=60000)
        assert calls[-1][1] == [4] and not calls[-1][0]
        np.testing.assert_allclose(calls[-1][2][0], expected[4], rtol=1e-5, atol=1e-6)
        editor.preview_check.setChecked(False)
        with qtbot.waitSignal(window.render_finished, timeout=180000) as finished:
            assert dock.render(tmp_path / "edited.mp4") is not None
        assert finished.args == ["done"]
    finally:
        window.retargeter.pipeline.generate = real
    rendered = {int(i): v for _, indices, vectors in calls[1:] for i, v in zip(indices, vectors)}
    assert sorted(rendered) == list(range(FRAMES))
    np.testing.assert_allclose(np.stack([rendered[i] for i in range(FRAMES)]), expected, rtol=1e-5, atol=1e-6)


def test_without_a_bridge_every_entry_point_offers_calibration(qtbot, make_window, track_csv):
    from gui.calibration import CALIBRATE_TEXT
    from gui.track_dock import FLAME_REASON, open_track_editor

    window = shown_models(qtbot, make_window())
    assert window.retargeter.bridge is None
    button = window.panel.calibrate_button  # short beside the gains; the command's full name is its tip's first words
    assert not button.isHidden() and button.text() == "Calibrate\u2026" and button.toolTip().startswith(CALIBRATE_TEXT)
    assert CALIBRATE_TEXT in window.panel.gains["mouth"].toolTip()
    compose = window.composer.panel
    assert not compose.calibrate_button.isHidden() and compose.space.kind == "flame55" and compose.advanced_check.isHidden()
    dock = open_track_editor(window, track_csv)
    assert not dock.editor.render_button.isEnabled() and dock.editor.render_button.toolTip() == FLAME_REASON
    assert not dock.calibrate_button.isHidden() and CALIBRATE_TEXT in FLAME_REASON
    # An error naming the fit command (a CSV driver, bridge-mode driving) carries the calibrate button.
    window.show_error(missing_bridge_message("a blendshape CSV or Live Link Face driver"))
    assert CALIBRATE_TEXT in window.banner.actions
    # Each offer opens the calibration dialog.
    window.bridge_controls.fit = lambda job, progress, cancel: None
    for button in (window.panel.calibrate_button, compose.calibrate_button, dock.calibrate_button,
                   window.banner.actions[CALIBRATE_TEXT]):
        window.bridge_controls.dialog = None
        button.click()
        assert window.bridge_controls.dialog is not None and window.bridge_controls.dialog.isVisible()
        window.bridge_controls.dialog.close()


def test_the_calibration_dialog_fits_off_the_ui_thread_with_progress_then_everything_uses_the_bridge(
        qtbot, make_window, identity, adapter_sha, tmp_path):
    window = make_window(identity)
    seen = {}
    release = threading.Event()

    def stand_in(job, progress, cancel):
        seen["job"], seen["on_ui"] = job, threading.current_thread() is threading.main_thread()
        progress(3, 10)
        release.wait(30)
        progress(10, 10)
        bridge = make_bridge(adapter_sha)
        return bridge, bridge.save(tmp_path / "fitted.safetensors")

    window.bridge_controls.fit = stand_in
    dialog = window.bridge_controls.open()
    dialog.renders_radio.setChecked(True)
    dialog.samples_spin.setValue(500)
    assert dialog.start()
    qtbot.waitUntil(lambda: dialog.bar.maximum() == 10 and dialog.bar.value() == 3, timeout=10000)
    assert "3 of 10" in dialog.status.text() and not dialog.start_button.isEnabled()
    release.set()
    with qtbot.waitSignal(dialog.finished_with, timeout=30000) as finished:
        pass
    assert finished.args[0] == "done" and dialog.outcome == "done"
    assert seen["job"].kind == "renders" and seen["job"].samples == 500 and seen["on_ui"] is False
    assert "R\u00b2" in dialog.status.text()
    # Used at once: the Compose dock shows blendshape sliders, the track editor can preview, the offers are gone.
    assert window.retargeter.bridge is not None and window.composer.panel.bridged
    assert window.panel.calibrate_button.isHidden()


def test_cancel_stops_the_fit_and_nothing_changes(qtbot, make_window, tmp_path):
    window = shown_models(qtbot, make_window())
    started = threading.Event()

    def stand_in(job, progress, cancel):
        started.set()
        while not cancel():
            threading.Event().wait(0.01)
        raise JobInterrupted("calibration cancelled")

    window.bridge_controls.fit = stand_in
    dialog = window.bridge_controls.open()
    assert not dialog.start()  # the video choice needs a video first
    assert "Choose a video" in dialog.status.text()
    dialog.set_videos([tmp_path / "face.mp4"])
    assert dialog.start() and started.wait(10)
    with qtbot.waitSignal(dialog.finished_with, timeout=30000) as finished:
        dialog.cancel_button.click()
    assert finished.args[0] == "cancelled" and "cancelled" in dialog.status.text().lower()
    assert window.retargeter.bridge is None and not window.panel.calibrate_button.isHidden()
