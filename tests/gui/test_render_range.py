"""Render video's time range (issue #21): the dialog offers Start and End (default: the whole video) and the window
passes them to the render job as RenderOptions.start/end (a stand-in job: the engine's range is tested in
tests/test_time_range.py)."""

from __future__ import annotations

import pytest
from PyQt6.QtWidgets import QDialog

from retarget.engine import JobSummary


@pytest.fixture
def clip(shared_dir):
    return shared_dir / "media" / "driver_d11_audio.mp4"  # 9 s


def test_the_dialog_offers_a_range_defaulting_to_the_whole_video(qtbot, tmp_path, clip):
    from gui.render_dialog import RenderDialog

    dialog = RenderDialog(str(clip), tmp_path / "out.mp4")
    qtbot.addWidget(dialog)
    assert dialog.time_range() == (0.0, None)
    assert dialog.end_box.maximum() == pytest.approx(9.0, abs=0.01)  # the clip's length, from its header
    dialog.start_box.setValue(1.5)
    dialog.end_box.setValue(4.0)
    assert dialog.time_range() == (1.5, 4.0)
    dialog.end_box.setValue(dialog.end_box.maximum())
    assert dialog.time_range() == (1.5, None)  # to the end


def test_the_dialog_takes_a_driver_it_cannot_read(qtbot, tmp_path):
    from gui.render_dialog import RenderDialog

    dialog = RenderDialog(str(tmp_path / "missing.mp4"), tmp_path / "out.mp4")  # the render says why, not the dialog
    qtbot.addWidget(dialog)
    dialog.end_box.setValue(2.0)
    assert dialog.time_range() == (0.0, 2.0)


def test_render_video_passes_the_dialogs_range_to_the_job(qtbot, make_window, shared_dir, clip, tmp_path, monkeypatch):
    from gui.render_dialog import RenderDialog

    window = make_window(shared_dir / "media" / "identity_hepburn_small.png")
    window._driver_spec = lambda: str(clip)

    def accept_with_a_range(dialog):
        dialog.out_edit.setText(str(tmp_path / "range.mp4"))
        dialog.start_box.setValue(2.0)
        dialog.end_box.setValue(3.5)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(RenderDialog, "exec", accept_with_a_range)
    jobs = []

    def stand_in_begin_render(drivers, out, *, options, **_):
        jobs.append(options)
        return lambda: [JobSummary(driver=str(drivers[0]), output=str(out), frames=38, rendered=38, seconds=1.0)]

    monkeypatch.setattr(window.session, "begin_render", stand_in_begin_render)
    with qtbot.waitSignal(window.render_finished, timeout=60000) as finished:
        window._choose_render()
    assert finished.args == ["done"]
    assert [(o.start, o.end) for o in jobs] == [(2.0, 3.5)]


def test_a_range_that_ends_before_it_starts_is_refused_in_the_window(make_window, shared_dir, clip, tmp_path, monkeypatch):
    window = make_window(shared_dir / "media" / "identity_hepburn_small.png")
    monkeypatch.setattr(window.session, "begin_render", lambda *a, **k: pytest.fail("a bad range reached the job"))
    assert not window.start_render(clip, tmp_path / "o.mp4", start=3.0, end=2.0)
    assert any("--end 2 must be after --start 3" in m for m in window.error_messages)
