"""Render video you can watch (tiny random models): the preview shows frames as they are rendered, the ETA never
invents a wait once every frame is made, and the finished banner opens the output and its folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt6.QtCore import QObject, pyqtSlot


@pytest.fixture
def media(shared_dir):
    return shared_dir / "media"


class UrlCatcher(QObject):
    """Receives the desktop's file: URLs (QDesktopServices.setUrlHandler) instead of a real viewer."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    @pyqtSlot("QUrl")
    def open(self, url):
        self.urls.append(url.toLocalFile())


def test_render_preview_shows_frames_and_the_banner_opens_the_output(qtbot, make_window, media, tmp_path):
    from PyQt6.QtGui import QDesktopServices

    window = make_window(media / "identity_hepburn_small.png")
    out, side = tmp_path / "render.mp4", tmp_path / "render_side_by_side.mp4"
    assert window.start_render(media / "driver_d0.mp4", out, batch_size=4, side_by_side=side)
    # While it renders, the panes show the frames being rendered (and the driver frame each came from).
    qtbot.waitUntil(lambda: window.output_view.frames_shown >= 2, timeout=120000)
    assert window._render_progress is not None  # still rendering
    assert window.driver_view.image() is not None and window.waiting_text is None
    with qtbot.waitSignal(window.render_finished, timeout=600000) as finished:
        pass
    assert finished.args == ["done"]
    assert out.is_file() and side.is_file()
    assert window.output_view.frames_shown >= 2
    actions = window.notice.actions
    assert {"Open", "Show in folder", "Open side-by-side"} <= set(actions)
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        actions["Open"].click()
        actions["Show in folder"].click()
        actions["Open side-by-side"].click()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [Path(u) for u in catcher.urls] == [out.resolve(), tmp_path.resolve(), side.resolve()]


def test_the_eta_says_finishing_once_every_frame_is_rendered():
    from gui.render_finish import RenderRate

    rate = RenderRate()
    t0 = rate.started
    assert rate.eta_text(0, 100, now=t0 + 1).startswith("first frames")
    rate.eta_text(10, 100, now=t0 + 10)
    # over the recent frames: 20 frames from t0+1 to t0+20
    assert rate.eta_text(20, 100, now=t0 + 20) == "1.05 frames/s \u00b7 ETA 1:16"
    assert rate.eta_text(100, 100, now=t0 + 100).startswith("finishing the video file")  # not "ETA 0:00"


def test_render_dialog_offers_the_side_by_side_output(qtbot, tmp_path):
    from gui.render_dialog import RenderDialog

    dialog = RenderDialog("clip.mp4", tmp_path / "clip_retargeted.mp4")
    qtbot.addWidget(dialog)
    assert dialog.side_by_side() is None
    dialog.side_check.setChecked(True)
    assert dialog.side_by_side() == tmp_path / "clip_retargeted_side_by_side.mp4"
    assert dialog.out() == tmp_path / "clip_retargeted.mp4"
