"""The app as a new user meets it (#12): options, fixes in the window, keys, layout, small features.

Most tests here build the window without loading models (autoload=False): they check the UI itself.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def bare_window(qtbot, qsettings):
    """A window with no models loading: only the UI."""
    from gui.main_window import MainWindow

    def make(**kwargs):
        window = MainWindow(models="random:tiny", settings=qsettings, autoload=False, probe_cameras=False, **kwargs)
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


# ---------------------------------------------------------------- 1. the app takes the CLI's options
def test_retarget_with_app_options_opens_the_app(monkeypatch):
    import retarget_launcher

    opened = []
    monkeypatch.setattr(retarget_launcher, "run_app", lambda args: opened.append(args) or 0)
    args = ["--models", "random:tiny", "--landmarker", "x.task", "--device", "cpu"]
    assert retarget_launcher.main(args) == 0
    assert [(a.models, str(a.landmarker), a.device) for a in opened] == [("random:tiny", "x.task", "cpu")]


def test_headless_only_options_without_headless_say_which(capsys):
    from retarget_launcher import main

    assert main(["--models", "random:tiny", "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "--out needs --headless" in err and "--models" in err  # names the offender and what the app takes


def test_app_parser_takes_device_and_landmarker():
    from gui.app import parser

    args = parser().parse_args(["--models", "m", "--landmarker", "l.task", "--device", "cpu", "--lcm-lora", "lcm"])
    assert (args.models, str(args.landmarker), args.device, args.lcm_lora) == ("m", "l.task", "cpu", "lcm")


def test_device_option_selects_the_device(bare_window):
    window = bare_window(device="cpu")
    assert window.panel.device_name() == "cpu"
    other = bare_window(device="cuda:7")
    assert other.banner.kind == "device" and "cuda:7" in other.banner.text()


# ---------------------------------------------------------------- 1/6. download dialog
def _fake_download(chunks: int, gate):
    """Reports like huggingface_hub does (a tqdm bar per file), waiting on `gate` between chunks."""

    def run(counter):
        bar_class = counter.tqdm_class()
        with counter.lock:
            counter.files += 1
        with bar_class(name="huggingface_hub.http_get", desc="arc2face/model.safetensors", total=chunks * 1_000_000,
                       unit="B", unit_scale=True) as bar:
            for _ in range(chunks):
                gate.wait(5)
                time.sleep(0.01)  # a transfer in progress: Cancel lands part-way
                bar.update(1_000_000)
        return "folder"

    return run


def test_download_dialog_shows_bytes_and_cancels(qtbot):
    import threading

    from gui.downloads import DownloadDialog

    gate = threading.Event()
    dialog = DownloadDialog("Downloading", _fake_download(3000, gate), total_files=15)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start()
    gate.set()
    qtbot.waitUntil(lambda: " MB" in dialog.rate_label.text() and dialog.bar.value() > 0, timeout=10000)
    assert "file 1 of 15: arc2face/model.safetensors" in dialog.file_label.text()
    assert dialog.bar.maximum() == 3_000_000  # KB of a 3 GB file
    with qtbot.waitSignal(dialog.finished_with, timeout=10000) as finished:
        dialog.cancel_button.click()
    assert finished.args[0] == "cancelled" and "Download again to continue" in finished.args[1]


def test_download_dialog_reports_a_failure(qtbot):
    from gui.downloads import DownloadDialog

    def broken(counter):
        raise OSError("network is unreachable")

    dialog = DownloadDialog("Downloading", broken)
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.finished_with, timeout=10000) as finished:
        dialog.start()
    assert finished.args[0] == "failed" and "network is unreachable" in finished.args[1]


def test_rate_and_eta_text():
    from gui.downloads import describe

    assert describe(0, 0, 0.0) == "0.0 MB"
    assert describe(50_000_000, 100_000_000, 10.0) == "50.0 of 100.0 MB, 5.0 MB/s, 0:10 left"


def test_models_download_passes_progress_to_huggingface_hub(monkeypatch, tmp_path):
    """download_models hands our tqdm class to every hf_hub_download call (no network: the call is recorded)."""
    import huggingface_hub

    from gui.downloads import ProgressCounter, models_download
    from retarget.weights.assets import ARC2FACE_FILES, BASE_FILES

    from retarget.weights.downloads import DETECTOR_TARGET, LANDMARKER_TARGET, SMIRK_TARGET

    seen = []

    def fake_download(repo, name, local_dir, **kw):  # records the call and leaves the file, as a finished download does
        seen.append((name, kw["tqdm_class"]))
        (Path(local_dir) / name).parent.mkdir(parents=True, exist_ok=True)
        (Path(local_dir) / name).write_bytes(b"x")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    for present in (LANDMARKER_TARGET, SMIRK_TARGET, DETECTOR_TARGET):  # the files that come from elsewhere
        (tmp_path / present).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / present).write_bytes(b"x")
    counter = ProgressCounter()
    models_download(tmp_path)(counter)
    assert [name for name, _ in seen] == list(ARC2FACE_FILES + BASE_FILES)
    assert all(cls is not None and issubclass(cls, __import__("tqdm").tqdm) for _, cls in seen)
    assert counter.files == len(ARC2FACE_FILES + BASE_FILES)


# ---------------------------------------------------------------- 3. stale state
def test_numbers_show_a_dash_until_measured(bare_window):
    from retarget.engine import LiveStats

    window = bare_window()
    assert window.fps_label.text() == "in \u2013 fps | out \u2013 fps | latency \u2013 ms"
    window._show_stats(LiveStats(input_fps=25.0))  # frames arrive, none rendered yet
    assert window.fps_label.text() == "in 25.0 fps | out \u2013 fps | latency \u2013 ms"
    window._show_stats(LiveStats(input_fps=25.0, output_fps=3.0, latency_ms=420, rendered=5))
    assert window.fps_label.text() == "in 25.0 fps | out 3.0 fps | latency 420 ms"


def test_a_banner_goes_when_its_cause_ends(bare_window):
    window = bare_window()
    window.show_error("Choose an identity photo first", kind="identity")
    window.banner.clear("render-running")
    assert window.banner.isVisible()  # another kind's end leaves it
    window.banner.clear("identity")
    assert not window.banner.isVisible()
    window.show_error("No driver", kind="driver")
    window.add_video_driver("clip.mp4")
    assert not window.banner.isVisible()


def test_render_outcome_stays_until_dismissed(bare_window, qtbot):
    window = bare_window()
    window.show_notice("Render of a.mp4 cancelled after 40 frames; render the same video to b.mp4 to continue", kind="render")
    qtbot.wait(50)
    assert "cancelled after 40 frames" in window.notice.text()
    window.notice.findChildren(type(window.start_button))[-1].click()  # Dismiss
    assert window.notice.text() == ""


# ---------------------------------------------------------------- 4. keys and menus
def test_space_on_a_focused_control_is_the_controls(bare_window, qtbot):
    from PyQt6.QtCore import Qt

    window = bare_window()
    toggles = []
    window.toggle_stream = lambda: toggles.append(1)  # instance attribute: the shortcut calls the original slot
    check = window.panel.smoothing
    before = check.isChecked()
    check.setFocus()
    qtbot.waitUntil(check.hasFocus, timeout=2000)
    qtbot.keyClick(check, Qt.Key.Key_Space)
    assert check.isChecked() != before
    assert window.error_messages == []  # the stream was not asked to start
    window.output_view.setFocus()
    qtbot.waitUntil(window.output_view.hasFocus, timeout=2000)
    qtbot.keyClick(window.output_view, Qt.Key.Key_Space)
    # On the preview, Space is start/stop: with no models yet that says so.
    assert window.error_messages and "still loading" in window.error_messages[-1]


def test_menu_bar_and_about(bare_window):
    from gui.menus import versions_text

    window = bare_window()
    titles = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert titles == ["File", "Live", "View", "Help"]
    shortcuts = {name: a.shortcut().toString() for name, a in window.actions_by_name.items()}
    assert shortcuts["start"] == "Ctrl+Return" and shortcuts["record"] == "Ctrl+R" and shortcuts["quit"] == "Ctrl+Q"
    about = versions_text("cpu")
    for name in ("retarget:", "device: cpu", "PyTorch:", "diffusers:", "MediaPipe:", "Qt / PyQt:"):
        assert name in about


# ---------------------------------------------------------------- 5. fits 1024x768; layout saved
def test_fits_a_1024_by_768_screen_and_remembers_its_layout(qtbot, qsettings):
    from gui.main_window import MainWindow

    window = MainWindow(models="random:tiny", settings=qsettings, autoload=False, probe_cameras=False)
    qtbot.addWidget(window)
    window.show()
    assert window.minimumSizeHint().width() <= 1024 and window.minimumSizeHint().height() <= 768
    window.resize(1024, 768)
    qtbot.waitUntil(lambda: window.width() == 1024, timeout=2000)
    assert window.height() <= 768
    window.resize(760, 560)  # within the offscreen test screen (800x800), so restoring needs no clamping
    qtbot.waitUntil(lambda: window.width() == 760, timeout=2000)
    window.set_settings_visible(False)
    window.set_view_mode("blend")
    window.main_splitter.setSizes([0, 1000])
    window.centre.setSizes([300, 150])
    centre = window.centre.sizes()
    window.close()

    again = MainWindow(models="random:tiny", settings=qsettings, autoload=False, probe_cameras=False)
    qtbot.addWidget(again)
    again.show()
    assert again.settings_scroll.isHidden() and not again.actions_by_name["settings"].isChecked()
    assert again.view_mode == "blend" and again.actions_by_name["view_blend"].isChecked()
    assert (again.width(), again.height()) == (760, 560)
    assert again.centre.sizes() == centre


# ---------------------------------------------------------------- 7. features
def test_camera_hot_plug_is_announced(bare_window, qtbot):
    window = bare_window()
    window._set_cameras([0])
    with qtbot.waitSignal(window.cameras_changed) as changed:
        window._set_cameras([0, 1])
    assert changed.args == ["Camera 1 connected"]
    assert [window.driver_combo.itemData(i) for i in range(window.driver_combo.count())] == ["webcam:0", "webcam:1"]
    with qtbot.waitSignal(window.cameras_changed) as changed:
        window._set_cameras([1])
    assert changed.args == ["Camera 0 disconnected"]


def test_chart_names_and_legend(bare_window):
    from retarget.names.blendshapes import BLENDSHAPE_NAMES

    window = bare_window()
    values = np.linspace(0, 1, 52)
    window.chart.set_values(values)
    window.chart.resize(520, 100)
    assert window.chart.label_at(10 * 3 + 1) == f"{BLENDSHAPE_NAMES[3]}: {values[3]:.2f}"
    legend = window.legend.text()
    for region in ("brow", "eye", "mouth", "jaw", "cheek", "nose", "other"):
        assert region in legend


def test_blend_view_draws_the_driver_under_the_output(bare_window):
    from gui.views import rgb_to_qimage

    window = bare_window()

    class Frame:
        driver = rgb_to_qimage(np.zeros((8, 8, 3), np.uint8))

    window.last_frame = Frame()
    window.set_view_mode("blend")
    assert window.output_view._under is Frame.driver and window.driver_view.isHidden()
    window.set_view_mode("output")
    assert window.output_view._under is None and window.driver_view.isHidden()
    window.set_view_mode("side")
    assert not window.driver_view.isHidden()


def test_lcm_preset_only_with_an_lcm_lora(qtbot):
    from gui.settings_panel import SettingsPanel

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    assert panel.preset.findData("lcm") < 0
    panel.set_lcm_available(True)
    assert "Fast live (LCM)" in panel.preset.itemText(panel.preset.findData("lcm"))
    panel.set_preset("lcm")
    settings = panel.generation_settings()
    assert (settings.sampler, settings.steps, settings.cfg) == ("lcm", 4, 1.0)
    panel.set_lcm_available(False)
    assert panel.preset.findData("lcm") < 0 and panel.generation_settings().sampler == "dpmsolver++"


def _fake_hub(monkeypatch, root: Path, fail: bool = False):
    """huggingface_hub's two calls, without network: per-file downloads land in `root`; the cache check finds them."""
    import huggingface_hub

    calls = []

    def hf_hub_download(repo, name, tqdm_class=None, **kw):
        if fail:
            raise OSError("network is unreachable")
        calls.append((repo, name, tqdm_class))
        (root / repo / name).parent.mkdir(parents=True, exist_ok=True)
        (root / repo / name).write_bytes(b"x")
        return str(root / repo / name)

    def snapshot_download(repo, allow_patterns, local_files_only=False, **kw):
        if not all((root / repo / name).is_file() for name in allow_patterns):
            raise OSError(f"{repo} is not in the cache")
        return str(root / repo)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls


def test_hub_first_run_reports_every_file_to_the_progress_class(monkeypatch, tmp_path):
    from gui.downloads import ProgressCounter, hub_cache_download
    from retarget.weights.assets import ARC2FACE_FILES, BASE_FILES, user_cache_dir
    from retarget.weights.downloads import extras

    calls = _fake_hub(monkeypatch, tmp_path / "hf")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # this test's own: fake files must not reach others
    for item in extras():  # the non-hub files are already in our cache (they come through gdown/MediaPipe)
        (user_cache_dir() / item.target).parent.mkdir(parents=True, exist_ok=True)
        (user_cache_dir() / item.target).write_bytes(b"x")
    counter = ProgressCounter()
    files = hub_cache_download()(counter)
    assert [name for _, name, _ in calls] == list(ARC2FACE_FILES + BASE_FILES)
    assert all(cls is not None for _, _, cls in calls)
    assert counter.files == len(ARC2FACE_FILES + BASE_FILES)
    assert files.unet == tmp_path / "hf" / "FoivosPar/Arc2Face" / "arc2face"


def test_hub_not_in_the_cache_opens_the_download_instead_of_a_dead_end(bare_window, qtbot, monkeypatch, tmp_path):
    _fake_hub(monkeypatch, tmp_path / "hf", fail=True)
    window = bare_window()
    window.models_spec = "hub"
    window.load_models()
    qtbot.waitUntil(lambda: getattr(window, "download_dialog", None) is not None, timeout=60000)
    assert "Hugging Face cache" in window.download_dialog.windowTitle()
    qtbot.waitUntil(lambda: window.download_dialog.outcome == "failed", timeout=60000)
    qtbot.waitUntil(lambda: window.banner.kind == "download", timeout=10000)
    assert "network is unreachable" in window.banner.text()
    # Retry from the banner, after the cache check: the load goes on to a banner, not a second dialog by itself.
    first = window.download_dialog
    window.load_models()
    qtbot.waitUntil(lambda: window.banner.kind == "hub", timeout=60000)
    assert window.download_dialog is first
    assert {"Download", "Choose models folder...", "Retry"} <= set(window.banner.actions)
