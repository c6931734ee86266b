"""The expression track editor: select with the mouse, edit, undo/redo, keys, save, preview off the UI thread, render."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PyQt6.QtCore import QPoint, Qt

from retarget.names.blendshapes import BLENDSHAPE_NAMES
from retarget.config.mapping import REGIONS
from retarget.expression.track import ExpressionTrack
from retarget.media.blendshape_csv import BlendshapeCsvWriter
from retarget.session import State

FRAMES = 12


@pytest.fixture
def track_csv(tmp_path) -> Path:
    """A short track in the format `retarget extract` writes; frame 3 without a face."""
    rng = np.random.default_rng(1)
    path = tmp_path / "take.csv"
    writer = BlendshapeCsvWriter(path)
    for i in range(FRAMES):
        writer.write(i / 25.0, None if i == 3 else rng.uniform(0.05, 0.45, 52).astype(np.float32))
    writer.close()
    return path


def drag(qtbot, view, start: int, stop: int) -> None:
    """Press on frame `start`, move to frame `stop`, release: selects [start, stop]."""
    y = view.height() // 2
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=QPoint(int(view.frame_x(start)), y))
    qtbot.mouseMove(view, QPoint(int(view.frame_x(stop)), y))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=QPoint(int(view.frame_x(stop)), y))


def test_select_scale_undo_redo_and_keys_in_the_editor(qtbot, track_csv):
    from gui.timeline import TimelineEditor

    editor = TimelineEditor()
    qtbot.addWidget(editor)
    editor.resize(900, 320)
    editor.set_track(ExpressionTrack.load(track_csv))
    with qtbot.waitActive(editor):  # shortcuts (Ctrl+Z) reach only the active window
        editor.show()
        editor.activateWindow()
    view = editor.view
    original = editor.track.values.copy()

    drag(qtbot, view, 4, 8)
    assert view.selection == (4, 9) and view.playhead == 8
    editor.select_channels("mouth")
    editor.set_operation("scale", 2.0)
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    edited = editor.track.values.copy()
    same = (edited == original) | (np.isnan(edited) & np.isnan(original))  # frame 3 has no face (NaN)
    rows, cols = np.nonzero(~same)
    assert set(rows.tolist()) == set(range(4, 9))
    assert set(cols.tolist()) <= {BLENDSHAPE_NAMES.index(n) for n in REGIONS["mouth"]}
    assert "scale mouth x2 on frames 4-8" in editor.status.text()

    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(editor.track.values, original)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(editor.track.values, edited)

    qtbot.keyClick(view, Qt.Key.Key_Left)
    assert view.playhead == 7
    qtbot.keyClick(view, Qt.Key.Key_Right)
    qtbot.keyClick(view, Qt.Key.Key_Right)
    assert view.playhead == 9
    qtbot.keyClick(view, Qt.Key.Key_Left, Qt.KeyboardModifier.ShiftModifier)
    assert view.playhead == 0
    qtbot.keyClick(view, Qt.Key.Key_Space)  # plays at the track's frame rate, stops at the end
    assert view.playing and editor.play_button.text() == "Pause"
    qtbot.waitUntil(lambda: not view.playing, timeout=10000)
    assert view.playhead == FRAMES - 1

    # Hovering names the curves nearest the pointer, with their values at that frame.
    label = view.label_at(view.frame_x(5), view.height() / 2)
    assert label.startswith("frame 5 (0.20 s): mouth") and label.count("mouth") == 3
    assert view.label_at(view.frame_x(3)) == "frame 3: no face"

    # No selection: a message, nothing changed.
    view.set_selection(0, 0)
    qtbot.mouseClick(editor.apply_button, Qt.MouseButton.LeftButton)
    assert "Select frames first" in editor.status.text()
    np.testing.assert_array_equal(editor.track.values, edited)


@pytest.fixture
def blendshape_window(make_window, blendshape_models_dir, shared_dir):
    """The real window on tiny random models whose adapter takes the 52 blendshapes, with an identity loaded."""
    return make_window(shared_dir / "media" / "identity_hepburn_small.png", models_dir=blendshape_models_dir)


def test_track_dock_saves_previews_off_the_ui_thread_and_renders(qtbot, blendshape_window, track_csv, tmp_path):
    import av

    from gui.track_dock import open_track_editor

    window = blendshape_window
    dock = open_track_editor(window, track_csv)
    editor = dock.editor
    assert editor.track.frame_count == FRAMES and editor.preview_check.isEnabled()
    editor.view.set_selection(2, 6)
    editor.select_channels("jawOpen")
    editor.set_operation("offset", 0.3)
    editor.apply_current()
    expected = editor.track.values.copy()

    # Save as: the edited values read back; the source file is never written over.
    source_bytes = track_csv.read_bytes()
    saved = dock.save(tmp_path / "edited.csv")
    np.testing.assert_array_equal(ExpressionTrack.load(saved).values, expected)
    assert dock.save(track_csv) is None and "same path" in window.error_messages[-1]
    assert track_csv.read_bytes() == source_bytes

    # Preview: generate() runs on a worker thread, through the session (its state table sees it: RENDERING
    # meanwhile), with the vector the render gives that frame.
    pipeline = window.retargeter.pipeline
    real_generate = pipeline.generate
    calls: list[tuple[bool, list[int], np.ndarray]] = []
    states_at_generate: list = []

    def spy(context, expressions, settings=None, noise=None, frame_indices=None, **kwargs):
        states_at_generate.append(window.session.state)
        calls.append((threading.current_thread() is threading.main_thread(), list(frame_indices),
                      np.array(expressions, copy=True)))
        return real_generate(context, expressions, settings, noise, frame_indices, **kwargs)

    pipeline.generate = spy
    try:
        editor.view.set_playhead(4)
        editor.preview_check.setChecked(True)
        qtbot.waitUntil(lambda: dock.previews_generated >= 1 and dock._preview_task is None, timeout=60000)
        assert editor.preview.image() is not None
        assert calls and not any(on_ui for on_ui, _, _ in calls)
        preview_vector = calls[-1][2][0]
        assert calls[-1][1] == [4]
        assert states_at_generate == [State.RENDERING]
        editor.preview_check.setChecked(False)

        out = tmp_path / "edited.mp4"
        with qtbot.waitSignal(window.render_finished, timeout=180000) as finished:
            csv = dock.render(out)
            assert csv is not None and csv.is_file()
        assert finished.args == ["done"]
    finally:
        pipeline.generate = real_generate
    assert not csv.exists()  # the render's CSV was ours and is gone
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES
    rendered = {i: v for on_ui, indices, vectors in calls[1:] for i, v in zip(indices, vectors)}
    assert not any(on_ui for on_ui, _, _ in calls)
    assert sorted(rendered) == list(range(FRAMES))
    np.testing.assert_array_equal(rendered[4], preview_vector)  # the preview shows what the render renders


def test_flame_adapter_edits_but_says_why_preview_and_render_are_off(qtbot, make_window, track_csv):
    from gui.track_dock import FLAME_REASON, open_track_editor

    window = make_window()  # the tiny models' adapter takes FLAME-55
    window.actions_by_name["edit_track"]  # the File menu entry exists
    dock = open_track_editor(window, track_csv)
    assert not dock.editor.preview_check.isEnabled() and not dock.editor.render_button.isEnabled()
    assert dock.editor.render_button.toolTip() == FLAME_REASON
    assert dock.editor.apply_button.isEnabled()
