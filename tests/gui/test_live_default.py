"""The window's live preset once models load on a GPU (a stand-in device report: no GPU here): the device's default
for a first run, a saved preset respected, and Render video keeping the paper's settings."""

from __future__ import annotations

import pytest
import torch

from gui.main_window import MainWindow
from retarget.engine import JobSummary


@pytest.fixture
def on_cuda(monkeypatch):
    """The loaded models report a CUDA device (what MainWindow.device reads from the pipeline)."""
    monkeypatch.setattr(MainWindow, "device", property(lambda self: torch.device("cuda", 0)))


def _models_ready_again(window, lcm=False, monkeypatch=None):
    if lcm:
        monkeypatch.setattr(window.retargeter.pipeline, "has_lcm", True)
    window._models_ready(window.retargeter)


def test_a_first_run_on_a_gpu_selects_balanced(make_window, on_cuda):
    window = make_window()  # its fixture selects "fast" by code: not the user's choice
    _models_ready_again(window)
    assert window.panel.preset.currentData() == "balanced"
    assert window.panel.generation_settings().steps == 12
    assert window.panel.render_generation_settings().steps == 25  # offline renders: the paper's settings


def test_a_first_run_on_a_gpu_with_the_lcm_lora_selects_lcm(make_window, on_cuda, monkeypatch):
    window = make_window()
    _models_ready_again(window, lcm=True, monkeypatch=monkeypatch)
    assert window.panel.preset.currentData() == "lcm"


def test_a_saved_preset_is_respected_on_a_gpu(qtbot, qsettings, tiny_models_dir, landmarker_path, on_cuda):
    qsettings.setValue("gen/preset", "quality")
    qsettings.setValue("gen/steps", 25)
    window = MainWindow(models=str(tiny_models_dir), landmarker_path=landmarker_path, settings=qsettings,
                        probe_cameras=False)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.retargeter is not None or bool(window.error_messages), timeout=180000)
    assert window.panel.preset.currentData() == "quality"


def test_the_users_own_pick_is_respected(make_window, on_cuda):
    window = make_window()
    window.panel.preset.setCurrentIndex(window.panel.preset.findData("quality"))
    window.panel.preset.activated.emit(window.panel.preset.currentIndex())  # what a click in the list sends
    _models_ready_again(window)
    assert window.panel.preset.currentData() == "quality"


def test_on_a_cpu_the_preset_is_left_as_it_is(make_window):
    window = make_window()
    assert str(window.device) == "cpu"
    before = window.panel.preset.currentData()  # the fixture's own pick ("fast", then 2 steps: custom)
    _models_ready_again(window)
    assert window.panel.preset.currentData() == before
    assert not window.panel.preset_automatic


def test_render_video_uses_the_papers_settings_under_the_automatic_live_preset(make_window, shared_dir, on_cuda,
                                                                             tmp_path, monkeypatch, qtbot):
    window = make_window(shared_dir / "media" / "identity_hepburn_small.png")
    _models_ready_again(window)
    assert window.panel.preset.currentData() == "balanced"
    jobs = []

    def stand_in_begin_render(drivers, out, *, settings, **_):
        jobs.append(settings)
        return lambda: [JobSummary(driver=str(drivers[0]), output=str(out), frames=1, rendered=1, seconds=1.0)]

    monkeypatch.setattr(window.session, "begin_render", stand_in_begin_render)
    with qtbot.waitSignal(window.render_finished, timeout=60000):
        assert window.start_render(shared_dir / "media" / "driver_d0.mp4", tmp_path / "o.mp4")
    assert [(s.steps, s.cfg) for s in jobs] == [(25, 3.0)]


def test_a_saved_lcm_preset_comes_back_once_the_lcm_lora_is_loaded(qtbot, qsettings, tiny_models_dir, landmarker_path,
                                                                   on_cuda, monkeypatch):
    qsettings.setValue("gen/preset", "lcm")
    window = MainWindow(models=str(tiny_models_dir), landmarker_path=landmarker_path, settings=qsettings,
                        probe_cameras=False)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.retargeter is not None or bool(window.error_messages), timeout=180000)
    assert window.panel.preset.currentData() == "quality"  # the tiny models have no LCM-LoRA: not offered
    _models_ready_again(window, lcm=True, monkeypatch=monkeypatch)
    assert window.panel.preset.currentData() == "lcm"
