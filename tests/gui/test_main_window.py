"""The real window, driven headless with the tiny random models and the shared media."""

from __future__ import annotations

import threading
import time
from unittest import mock

import numpy as np
import pytest

from retarget.session.states import State


@pytest.fixture
def media(shared_dir):
    return shared_dir / "media"


def _assert_marked_snapshot(path, output_rgb) -> None:
    """A snapshot is the shown output, watermarked, with the AI-generated metadata (retarget.provenance)."""
    from PIL import Image

    from retarget import __version__
    from retarget.provenance.watermark import embed

    with Image.open(path) as im:
        assert im.text["AIGenerated"] == "true"
        assert np.array_equal(np.asarray(im.convert("RGB")), embed(output_rgb, __version__))


def _stop(qtbot, window):
    with qtbot.waitSignal(window.stream_stopped, timeout=20000):
        window.stop_stream()


def test_live_video_driver_shows_output_frames(qtbot, make_window, media):
    window = make_window(media / "identity_hepburn_small.png")
    # The 9 s clip (not the 3 s one): it plays in real time, and a loaded machine must still see frames
    # after the gain change before it ends (Loop would restart the stream with a new analyzer).
    window.add_video_driver(media / "driver_d11_audio.mp4")
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: window.output_view.frames_shown >= 3, timeout=60000)
    assert window.driver_view.image() is not None
    assert window.output_view.image().width() == 225  # the whole identity photo (View > Whole photo, the default)
    assert window.chart.values.shape == (52,)
    # The landmark overlay: MediaPipe's 478 points over the driver pane, inside the driver frame.
    window.actions_by_name["landmarks"].trigger()
    shown = window.driver_view.frames_shown
    qtbot.waitUntil(lambda: window.driver_view.frames_shown > shown and window.driver_view._points is not None, timeout=30000)
    points = window.driver_view._points
    image = window.driver_view.image()
    assert points.shape == (478, 2)
    assert 0 <= points[:, 0].min() and points[:, 0].max() < image.width() and points[:, 1].max() < image.height()
    window.set_landmark_overlay(False)
    assert window.driver_view._points is None
    shown_frame, shot = window.last_frame, window.store.fileName() + ".png"
    assert window.snapshot(shot)
    _assert_marked_snapshot(shot, shown_frame.output_rgb)
    assert window.provenance_label.text() == "AI marking: on"
    # Mapping changes apply live: a new mapper is swapped in; the stream's MediaPipe graph and SMIRK stay.
    import retarget.engine.driving
    import retarget.face.smirk

    analyzer = window.session.analyzer
    landmarker, smirk, first = analyzer._landmarker, analyzer.smirk, analyzer.mapper
    assert landmarker is not None
    # (jaw: the tiny models' adapter takes FLAME-55, which has jaw values but no mouth region)
    mouth = window.panel.gains["mouth"]
    assert not mouth.isEnabled() and "Not available" in mouth.toolTip()  # disabled with the reason, never ignored
    assert window.panel.gains["expression"].isEnabled()
    with mock.patch.object(retarget.engine.driving, "FaceLandmarker", wraps=retarget.engine.driving.FaceLandmarker) as landmarkers, \
            mock.patch.object(retarget.face.smirk, "SmirkExtractor", wraps=retarget.face.smirk.SmirkExtractor) as smirks:
        window.panel.gains["jaw"].setValue(1.5)
        qtbot.waitUntil(lambda: window.session.analyzer.mapper is not first, timeout=30000)
        shown = window.output_view.frames_shown
        qtbot.waitUntil(lambda: window.output_view.frames_shown > shown + 1, timeout=60000)
    assert landmarkers.call_count == 0 and smirks.call_count == 0
    assert window.session.analyzer is analyzer and analyzer._landmarker is landmarker and analyzer.smirk is smirk
    assert analyzer.mapping.gains["jaw"] == 1.5
    _stop(qtbot, window)
    assert window.session.state is State.READY
    assert not window.error_messages


@pytest.mark.timing
def test_recording_plays_in_real_time_under_a_new_name(qtbot, make_window, media, tmp_path):
    import av

    window = make_window(media / "identity_hepburn_small.png")
    window.store.setValue("files/record_dir", str(tmp_path))
    window.add_video_driver(media / "driver_d0.mp4")
    window.loop_check.setChecked(True)
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: window.output_view.frames_shown >= 1, timeout=30000)
    mine = tmp_path / "mine.mp4"
    mine.write_bytes(b"user file")
    window.start_recording(mine)  # an existing file is never replaced
    assert window.outputs.recorder is None and "already exists" in window.banner.text()
    assert mine.read_bytes() == b"user file"
    window.start_recording()
    path = window.recording_path
    assert path.parent == tmp_path and path.name.startswith("retarget-") and path.suffix == ".mp4"
    assert window.banner.text() == ""  # the refusal's banner went when recording started
    qtbot.waitUntil(lambda: "REC" in window.rec_label.text() and "\u25cf" in window.rec_label.text(), timeout=5000)
    assert path.name in window.rec_label.text()
    assert window.record_button.text().startswith("\u25cf")
    qtbot.waitUntil(lambda: window.outputs.recorder is not None and window.outputs.recorder.frames_written >= 2, timeout=60000)
    recorder = window.outputs.recorder
    with qtbot.waitSignal(window.recording_saved, timeout=20000) as saved:
        window.stop_recording()
    # From the first recorded frame's capture time (it may be captured before Record was pressed and
    # generated after) to now, after Stop: the file cannot last longer, however loaded the machine.
    recorded_for = time.monotonic() - recorder.start_time
    assert saved.args[0] == str(path)
    reported = window.recorded_frames
    assert reported >= 2 and saved.args[1] == reported
    assert str(path) in window.notice.text()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        decoded = sum(1 for _ in container.decode(video=0))
        duration = float(stream.duration * stream.time_base)
    assert decoded in (reported, reported + 1)  # + the last frame held until Stop
    # The file lasts as long as the recording did (not frames / 25 s); the upper bound is the time we saw.
    # + the held last frame's own sample duration (at most one frame of the nominal 30 fps) and ms rounding
    assert duration <= recorded_for + 1 / 30 + 0.002
    assert duration >= window_first_to_last(path) - 0.01
    csv = tmp_path / "run.csv"
    task = window.export_csv(csv)
    qtbot.waitUntil(lambda: task.isFinished(), timeout=10000)
    assert csv.read_text().splitlines()[0].startswith("timestamp,")
    # A second recording in the same second gets another name.
    window.start_recording()
    second = window.recording_path
    assert second != path and second.parent == tmp_path
    with qtbot.waitSignal(window.recording_saved, timeout=30000):
        qtbot.waitUntil(lambda: window.outputs.recorder.frames_written >= 1, timeout=60000)
        window.stop_recording()
    assert path.stat().st_size > 0 and mine.read_bytes() == b"user file"
    _stop(qtbot, window)


def window_first_to_last(path) -> float:
    """Seconds between the first and the last frame's timestamps in the file."""
    import av

    with av.open(str(path)) as container:
        times = [float(f.pts * f.time_base) for f in container.decode(video=0)]
    return times[-1] - times[0]


def test_offline_render_progresses_and_cancels_without_a_final_file(qtbot, make_window, media, tmp_path):
    window = make_window(media / "identity_hepburn_small.png")
    out = tmp_path / "render.mp4"
    window.start_render(media / "driver_d0.mp4", out, batch_size=2)
    qtbot.waitUntil(lambda: window.render_bar.value() >= 2, timeout=60000)
    assert window.render_bar.maximum() == 78
    with qtbot.waitSignal(window.render_finished, timeout=30000) as finished:
        window.cancel_render()
    assert finished.args == ["cancelled"]
    assert not out.exists()
    assert not window.error_messages
    assert window.render_button.isEnabled()


def test_identity_without_a_face_is_a_message_not_a_crash(qtbot, make_window, media):
    window = make_window()
    with qtbot.waitSignal(window.error_shown, timeout=30000) as shown:
        window.load_identity(media / "noface_alpaca_s23.jpg")
    assert "no face" in shown.args[0].lower()
    assert window.banner.isVisible() and "no face" in window.banner.text().lower()
    assert window.context is None
    window.start_stream()  # still no identity: told so, nothing starts
    assert window.session.state is State.READY
    assert len(window.error_messages) == 2


def test_broken_video_driver_is_a_message(qtbot, make_window, media, tmp_path):
    window = make_window(media / "identity_hepburn_small.png")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    window.add_video_driver(broken)
    with qtbot.waitSignal(window.error_shown, timeout=20000):
        window.start_stream()
    assert window.session.state is State.READY


class SlowPipeline:
    """Delegates to the loaded pipeline, but every generate() takes 0.5 s more (a slow GPU, say).

    Records the thread of every call and how many calls overlap (there must never be two at once).
    """

    def __init__(self, inner):
        self._inner = inner
        self._lock = threading.Lock()
        self.threads: set[int] = set()
        self.running = 0
        self.most_at_once = 0
        self.calls = 0

    def generate(self, *args, **kwargs):
        with self._lock:
            self.running += 1
            self.calls += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.threads.add(threading.get_ident())
        try:
            time.sleep(0.5)
            return self._inner.generate(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.mark.timing
def test_slow_generator_runs_off_the_ui_thread_and_the_ui_keeps_ticking(qtbot, make_window, media):
    """Structural: generate() never runs on the UI thread, and the UI event loop keeps turning while a
    500 ms generate runs. The bound (250 ms) is generous: only a blocked UI thread exceeds it. The
    UI-gap figure itself is measured by `python -m gui.bench`, not asserted here."""
    from PyQt6.QtCore import QTimer

    window = make_window(media / "identity_hepburn_small.png")
    slow = window.retargeter.pipeline = SlowPipeline(window.retargeter.pipeline)
    window.add_video_driver(media / "driver_d0.mp4")
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: slow.calls >= 1, timeout=30000)

    gaps = []
    last = [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer(interval=20)
    timer.timeout.connect(tick)
    calls = slow.calls
    last[0] = time.perf_counter()
    timer.start()
    qtbot.waitUntil(lambda: slow.calls >= calls + 2, timeout=30000)  # at least one whole generate inside the window
    timer.stop()
    assert threading.main_thread().ident not in slow.threads
    assert gaps and max(gaps) < 0.25
    _stop(qtbot, window)


def test_a_second_generate_never_starts_while_one_runs(qtbot, make_window, media):
    """Stop waits for the frame in progress: the stream is idle only when its generate() has returned,
    so restarting at once (or reloading, or rendering) can never overlap two calls on the pipeline."""
    window = make_window(media / "identity_hepburn_small.png")
    slow = window.retargeter.pipeline = SlowPipeline(window.retargeter.pipeline)
    window.add_video_driver(media / "driver_d0.mp4")
    running_when_stopped = []
    window.stream_stopped.connect(lambda _: running_when_stopped.append(slow.running))
    for _ in range(2):
        with qtbot.waitSignal(window.stream_started, timeout=20000):
            window.start_stream()
        qtbot.waitUntil(lambda: slow.running == 1, timeout=30000)  # stop in the middle of a generate
        with qtbot.waitSignal(window.stream_stopped, timeout=20000):
            window.stop_stream()
    assert running_when_stopped == [0, 0]
    assert slow.most_at_once == 1


def test_presets_and_settings_persist(qtbot, qsettings):
    from gui.settings_panel import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.set_preset("balanced")
    assert (panel.steps.value(), panel.cfg.value()) == (12, 3.0)
    panel.set_preset("fast")
    assert (panel.steps.value(), panel.cfg.value()) == (6, 2.0)
    panel.steps.setValue(7)
    assert panel.preset.currentData() == "custom"
    panel.gains["jaw"].setValue(0.5)
    panel.relative.setChecked(True)
    assert panel.set_neutral.isEnabled()
    panel.save(qsettings)
    again = SettingsPanel()
    qtbot.addWidget(again)
    again.restore(qsettings)
    assert again.steps.value() == 7 and again.preset.currentData() == "custom"
    assert again.mapping_settings().gains["jaw"] == 0.5 and again.mapping_settings().relative
    settings = again.generation_settings()
    settings.validate()
    assert settings.cfg == 2.0


def test_models_option_comes_from_the_environment(monkeypatch):
    from gui.app import parser

    monkeypatch.setenv("RETARGET_MODELS", "random:tiny")
    assert parser().parse_args([]).models == "random:tiny"
    assert parser().parse_args(["--models", "hub"]).models == "hub"


def test_missing_models_folder_is_a_message_with_its_fixes(qtbot, qsettings, tmp_path, tiny_models_dir, landmarker_path):
    from gui.inputs import NO_CAMERA
    from gui.main_window import MainWindow

    window = MainWindow(models=str(tmp_path / "nowhere"), landmarker_path=landmarker_path, settings=qsettings,
                        probe_cameras=False)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: bool(window.error_messages), timeout=30000)
    assert "no such folder" in window.error_messages[0]
    assert window.banner.kind == "models"
    assert list(window.banner.actions) == ["Choose models folder...", "Download...", "Retry"]
    assert window.driver_combo.itemText(0) == NO_CAMERA and window.driver_combo.itemData(0) is None
    assert not window.start_button.isEnabled()
    assert not window.vcam_check.isEnabled() or window.vcam_check.toolTip()
    # The fix in the window: another folder, and the banner goes once the models are in.
    window.models_spec = str(tiny_models_dir)
    with qtbot.waitSignal(window.models_loaded, timeout=60000):
        window.banner.actions["Retry"].click()
    assert not window.banner.isVisible() and window.retargeter is not None
    window.close()


def test_missing_landmarker_offers_choose_download_retry(qtbot, qsettings, tmp_path, tiny_models_dir, landmarker_path):
    from gui.main_window import MainWindow

    window = MainWindow(models=str(tiny_models_dir), landmarker_path=tmp_path / "missing.task", settings=qsettings,
                        probe_cameras=False)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: bool(window.error_messages), timeout=60000)
    assert "face landmarker" in window.error_messages[0]
    assert window.banner.kind == "landmarker"
    assert list(window.banner.actions) == ["Choose file...", "Download", "Retry"]
    window.landmarker_path = landmarker_path  # what "Choose file..." sets
    with qtbot.waitSignal(window.models_loaded, timeout=60000):
        window.banner.actions["Retry"].click()
    assert window.banner.text() == ""
    window.close()


class RecordingVirtualCamera:
    """A pyvirtualcam backend registered for tests (no virtual camera device exists on the build
    machines): it implements pyvirtualcam's Backend interface and keeps the frames it is sent."""

    instances: list = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.frames = width, height, []
        RecordingVirtualCamera.instances.append(self)

    def close(self):
        self.closed = True

    def send(self, frame):
        self.frames.append(frame.copy())

    def device(self):
        return "test-camera"

    def native_fourcc(self):
        return None


def test_virtual_camera_ticked_while_loading_stays_on_and_receives_frames(qtbot, qsettings, tiny_models_dir,
                                                                         landmarker_path, media):
    pyvirtualcam = pytest.importorskip("pyvirtualcam", reason="pyvirtualcam (the gui extra) is not installed")
    from gui.main_window import MainWindow

    pyvirtualcam.register_backend("retarget-test", RecordingVirtualCamera)
    RecordingVirtualCamera.instances.clear()
    window = MainWindow(models=str(tiny_models_dir), landmarker_path=landmarker_path, settings=qsettings, probe_cameras=False)
    qtbot.addWidget(window)
    window.vcam_backend = "retarget-test"
    window.panel.set_preset("fast")
    window.panel.steps.setValue(2)
    assert window.retargeter is None  # still loading
    window.vcam_check.setChecked(True)
    assert window.vcam_check.isChecked()  # not silently unticked
    qtbot.waitUntil(lambda: bool(RecordingVirtualCamera.instances), timeout=60000)
    cam = RecordingVirtualCamera.instances[0]
    size = window.retargeter.pipeline.image_size
    assert (cam.width, cam.height) == (size, size)  # no identity photo yet: the crop's size
    with qtbot.waitSignal(window.identity_loaded, timeout=30000):
        window.load_identity(media / "identity_hepburn_small.png")
    # The output frame is now the whole 225x224 photo: the camera follows it (even sides: 226x224, padded).
    # The new camera is made on a worker thread; the old one is closed when it is handed over (GUI thread).
    first = cam
    qtbot.waitUntil(lambda: len(RecordingVirtualCamera.instances) == 2 and getattr(first, "closed", False), timeout=30000)
    cam = RecordingVirtualCamera.instances[1]
    assert (cam.width, cam.height) == (226, 224)
    width, height = 226, 224
    window.add_video_driver(media / "driver_d0.mp4")
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: len(cam.frames) >= 2, timeout=60000)
    # pyvirtualcam's Camera checked the (h, w, 3) RGB frame and hands backends the flat bytes.
    assert cam.frames[0].shape == (width * height * 3,) and cam.frames[0].dtype == np.uint8
    assert cam.frames[-1].reshape(height, width, 3).std() > 0  # an image, not a blank buffer
    window.vcam_check.setChecked(False)
    assert getattr(cam, "closed", False)
    _stop(qtbot, window)
    assert window.vcam_check.isEnabled() and not window.error_messages


def test_changing_the_device_mid_stream_restarts_the_stream(qtbot, make_window, media):
    window = make_window(media / "identity_hepburn_small.png")
    window.add_video_driver(media / "driver_d0.mp4")
    window.loop_check.setChecked(True)
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    old = window.retargeter
    target = "cpu" if window.panel.device_name() != "cpu" else "auto"
    with qtbot.waitSignals([window.stream_stopped, window.models_loaded, window.stream_started], order="strict",
                           timeout=120000):
        window.panel.device.setCurrentIndex(window.panel.device.findData(target))
    assert window.retargeter is not old and window.session.live_running
    assert not window.error_messages
    _stop(qtbot, window)


def test_bench_figures():
    from gui.bench import gap_figures

    worst, p99 = gap_figures([20.0] * 99 + [80.0])
    assert worst == 80.0 and 20.0 <= p99 <= 80.0


def test_a_finished_download_loads_that_folder(qtbot, qsettings, tmp_path, tiny_models_dir, landmarker_path, monkeypatch):
    """The window's Download: the dialog's job finishes, the window switches to the folder and loads it.
    (No network here: the transfer itself is replaced by one that finds the folder already complete.)"""
    import gui.downloads
    from gui.main_window import MainWindow

    monkeypatch.setattr(gui.downloads, "models_download", lambda to: (lambda counter: to))
    window = MainWindow(models=str(tmp_path / "nowhere"), landmarker_path=landmarker_path, settings=qsettings,
                        probe_cameras=False)
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.banner.kind == "models", timeout=60000)
    with qtbot.waitSignal(window.models_loaded, timeout=120000):
        window.download_models(tiny_models_dir)
    assert window.models_spec == str(tiny_models_dir) and window.download_dialog.outcome == "done"
    assert window.banner.text() == ""
    window.close()


def test_gains_the_adapter_cannot_apply_are_disabled_with_the_reason(qtbot):
    from gui.settings_panel import SettingsPanel
    from retarget.expression.flame import control_support

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    assert set(panel.gains) >= {"brows", "eyes", "mouth", "jaw", "cheeks", "nose", "expression"}
    panel.set_control_support(control_support("flame55"))
    panel.gains["mouth"].setValue(2.0)
    panel.gains["jaw"].setValue(1.5)
    assert not panel.gains["mouth"].isEnabled() and "Not available" in panel.gains["mouth"].toolTip()
    gains = panel.mapping_settings().gains
    assert "mouth" not in gains and gains["jaw"] == 1.5 and "expression" in gains
    panel.set_control_support(control_support("blendshapes52"))
    gains = panel.mapping_settings().gains
    assert gains["mouth"] == 2.0 and "expression" not in gains
    assert not panel.gains["expression"].isEnabled()


def test_help_diagnostics_shows_the_doctor_report_with_copy(make_window, qtbot):
    from PyQt6.QtGui import QGuiApplication

    window = make_window()
    window.actions_by_name["diagnostics"].trigger()
    dialog = window.diagnostics_dialog
    qtbot.addWidget(dialog)
    assert "MediaPipe face landmarker" in dialog.view.toPlainText() and "PyTorch" in dialog.view.toPlainText()
    assert "Qt window: this report is shown in one" in dialog.text
    dialog.copy_button.click()
    assert QGuiApplication.clipboard().text() == dialog.text
