"""The app's output frame: View > Whole photo / Face crop and the settings panel's Frame are one saved choice, and
the live view, the recording and the virtual camera follow it."""

from __future__ import annotations

import pytest
from PyQt6.QtCore import QSettings

from tests.conftest import needs_shared


@pytest.fixture
def media(shared_dir):
    return shared_dir / "media"


@needs_shared
def test_the_view_menu_switches_the_live_output_between_photo_and_crop_and_it_is_saved(qtbot, make_window, media,
                                                                                     qsettings, tmp_path):
    window = make_window(media / "identity_hepburn_small.png")  # 225x224
    assert window.actions_by_name["frame_full"].isChecked() and window.session.frame.frame == "full"
    assert "upsampled" in window.statusBar().currentMessage()  # the tiny models' 64 px face in a 70 px face
    window.add_video_driver(media / "driver_d11_audio.mp4")
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: window.output_view.frames_shown >= 1, timeout=60000)
    assert window.output_view.image().width() == 225
    window.start_recording(tmp_path / "rec.mp4")
    assert window.outputs.recorder.size == (225, 224)  # the recording follows the view
    window.actions_by_name["frame_crop"].trigger()
    assert window.panel.frame.currentData() == "crop" and window.session.frame.frame == "crop"
    size = window.retargeter.pipeline.image_size
    qtbot.waitUntil(lambda: window.output_view.image().width() == size, timeout=60000)
    window.stop_recording()
    with qtbot.waitSignal(window.stream_stopped, timeout=20000):
        window.stop_stream()
    window.close()
    assert QSettings(qsettings.fileName(), QSettings.Format.IniFormat).value("output/frame") == "crop"
