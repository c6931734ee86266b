"""The live first minute in the real window (tiny random models): the driver pane shows frames while the generator
has produced none, the output pane says what it waits for, a recording with no frame warns and makes no file,
and a video that ends says so."""

from __future__ import annotations

import threading
from unittest import mock

import pytest


@pytest.fixture
def media(shared_dir):
    return shared_dir / "media"


class BlockedGenerator:
    """Wraps the pipeline's generate: every call waits until `release` is set (a stand-in for a slow device)."""

    def __init__(self, pipeline):
        self.real = pipeline.generate
        self.release = threading.Event()
        self.calls = 0
        self.threads: set[str] = set()

    def __call__(self, *args, **kwargs):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        self.release.wait(timeout=60)
        return self.real(*args, **kwargs)


def _stop(qtbot, window):
    with qtbot.waitSignal(window.stream_stopped, timeout=30000):
        window.stop_stream()


def test_driver_pane_shows_frames_while_the_generator_blocks_and_the_waiting_message_clears(qtbot, make_window, media):
    window = make_window(media / "identity_hepburn_small.png")
    window.add_video_driver(media / "driver_d11_audio.mp4")
    blocked = BlockedGenerator(window.retargeter.pipeline)
    with mock.patch.object(window.retargeter.pipeline, "generate", side_effect=blocked):
        try:
            with qtbot.waitSignal(window.stream_started, timeout=20000):
                window.start_stream()
            qtbot.waitUntil(lambda: blocked.calls == 1 and window.driver_view.frames_shown >= 5, timeout=60000)
            # The driver is shown (with its chart) at its own rate; the output pane has nothing and says why.
            assert window.output_view.frames_shown == 0 and window.output_view.image() is None
            assert window.waiting_text.startswith("Generating the first frame")
            assert window.output_view.placeholder == window.waiting_text
            assert window.last_driven is not None and window.chart.values.shape == (52,)
            assert window.bridge.frames == 0 and window.bridge.driver_frames >= 5
            assert blocked.calls == 1  # still inside the first generate
            assert "live-generate" in blocked.threads
        finally:
            blocked.release.set()
        qtbot.waitUntil(lambda: window.output_view.frames_shown >= 3, timeout=60000)
    assert window.waiting_text is None and "Generating" not in window.output_view.placeholder
    qtbot.waitUntil(lambda: "out \u2013" not in window.fps_label.text(), timeout=30000)  # measured output fps shown
    assert "latency" in window.fps_label.text()
    _stop(qtbot, window)


def test_recording_with_no_frame_warns_while_recording_and_makes_no_file(qtbot, make_window, media, tmp_path, monkeypatch):
    import gui.live_status

    monkeypatch.setattr(gui.live_status, "RECORDING_STALL_S", 0.5)
    window = make_window(media / "identity_hepburn_small.png")
    window.add_video_driver(media / "driver_d11_audio.mp4")
    blocked = BlockedGenerator(window.retargeter.pipeline)
    folder = tmp_path / "takes"
    path = folder / "take.mp4"
    with mock.patch.object(window.retargeter.pipeline, "generate", side_effect=blocked):
        try:
            with qtbot.waitSignal(window.stream_started, timeout=20000):
                window.start_stream()
            window.start_recording(path)
            assert window.outputs.recorder is not None
            qtbot.waitUntil(lambda: "no frame yet" in window.rec_label.text(), timeout=10000)
            assert "0 frames" in window.rec_label.text()
            window.stop_recording()
            # Said at once (no encoder to wait for), and nothing on disk: not the name, not a partial file.
            assert "Nothing recorded" in window.banner.text()
            assert window.rec_label.text() == ""
            assert list(folder.iterdir()) == []
        finally:
            blocked.release.set()
        _stop(qtbot, window)


def test_recording_shows_frames_written_and_saves_a_playable_file(qtbot, make_window, media, tmp_path):
    window = make_window(media / "identity_hepburn_small.png")
    window.add_video_driver(media / "driver_d11_audio.mp4")
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: window.output_view.frames_shown >= 1, timeout=60000)
    path = tmp_path / "take.mp4"
    window.start_recording(path)
    qtbot.waitUntil(lambda: window.outputs.recorded_frames() >= 2, timeout=60000)
    qtbot.waitUntil(lambda: " frames" in window.rec_label.text() and "0 frames" not in window.rec_label.text(), timeout=5000)
    with qtbot.waitSignal(window.recording_saved, timeout=30000) as saved:
        window.stop_recording()
    assert saved.args[0] == str(path) and saved.args[1] >= 2
    assert f"Recorded {saved.args[1]} frames" in window.notice.text()
    _stop(qtbot, window)


def test_a_video_that_ends_says_so_with_start_again_and_loop(qtbot, make_window, media):
    window = make_window(media / "identity_hepburn_small.png")
    window.add_video_driver(media / "driver_d0.mp4")
    window.loop_check.setChecked(False)
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    with qtbot.waitSignal(window.stream_stopped, timeout=120000) as stopped:
        pass
    assert stopped.args == ["ended"]
    text = window.notice.text()
    assert text.startswith("Video ended after ") and " frames" in text
    frames = int(text.split("after ")[1].split()[0])
    assert frames > 10
    assert set(window.notice.actions) == {"Start again", "Loop"}
    assert text in window.statusBar().currentMessage()
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.notice.actions["Loop"].click()
    assert window.loop_check.isChecked()
    _stop(qtbot, window)


def test_every_state_change_shows_in_the_status_line(qtbot, make_window, media):
    window = make_window(media / "identity_hepburn_small.png")
    window.add_video_driver(media / "driver_d11_audio.mp4")
    messages = []
    window.statusBar().messageChanged.connect(messages.append)
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    assert any("Ready \u2192 Live" in m for m in messages)
    _stop(qtbot, window)
    assert any("Live \u2192 Ready" in m for m in messages)


def test_on_a_cpu_the_app_says_once_what_to_expect_and_offers_the_fastest_preset(qtbot, make_window, media):
    window = make_window(media / "identity_hepburn_small.png")
    assert str(window.device) == "cpu"  # the test machines have no GPU
    window.panel.set_preset("balanced")
    window.add_video_driver(media / "driver_d11_audio.mp4")
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: window.notice.kind == "slow-live", timeout=120000)
    text = window.notice.text()
    assert "on the CPU" in text and "'fast'" in text and "Render video" in text
    assert set(window.notice.actions) == {"Use 'fast'", "Render video..."}
    window.notice.actions["Use 'fast'"].click()
    assert window.panel.preset.currentData() == "fast"
    window.notice._dismiss()
    qtbot.wait(1500)  # more frames: said once, not again
    assert window.notice.kind is None
    _stop(qtbot, window)


def test_a_composed_still_leaves_no_stale_driver_frame_or_chart(qtbot, make_window, media):
    import numpy as np

    window = make_window(media / "identity_hepburn_small.png")
    window.add_video_driver(media / "driver_d11_audio.mp4")
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: window.driver_view.frames_shown >= 2 and window.chart.values.any(), timeout=60000)
    _stop(qtbot, window)
    assert window.driver_view.image() is not None  # the stream's last driver frame
    window.actions_by_name["compose"].trigger()
    with qtbot.waitSignal(window.composer.still_rendered, timeout=60000):
        window.composer.panel.render_button.click()
    # The output shown is a composed expression: no driver frame made it, and the tiny models' FLAME-55 values
    # are not blendshapes, so the driver pane and the chart clear.
    assert window.driver_view.image() is None and window.last_driven is None
    assert not np.asarray(window.chart.values).any()
    assert window.output_view.image() is not None
