"""The app's face picker: numbered boxes for a two-face identity photo and driver; a click or the list picks one."""

from __future__ import annotations

from PyQt6.QtCore import QPoint, Qt

from gui.face_picker import fitted_rect
from tests.face_media import inside, swap_video, two_face_photo


def _point_in_thumb(window, box) -> QPoint:
    """Where face `box` (photo pixels) is drawn on the identity thumbnail."""
    picker, thumb = window.face_picker, window.identity_thumb
    x0, y0, scale = fitted_rect(thumb.width(), thumb.height(), picker._identity_thumb.width(), picker._identity_thumb.height())
    return QPoint(round(x0 + (box[0] + box[2]) / 2 * scale), round(y0 + (box[1] + box[3]) / 2 * scale))


def test_identity_photo_with_two_faces_shows_two_numbered_boxes_and_a_click_picks_one(
        qtbot, make_window, shared_dir, landmarker_path, tmp_path):
    from PIL import Image

    photo, rects = two_face_photo(shared_dir, landmarker_path)
    path = tmp_path / "two.png"
    Image.fromarray(photo).save(path)
    window = make_window()
    picker = window.face_picker
    with qtbot.waitSignal(picker.identity_faces_listed, timeout=60000) as listed:
        window.load_identity(path)
    assert listed.args == [2]
    assert len(picker.identity_boxes) == 2
    assert inside(picker.identity_boxes[0], rects[0]) and inside(picker.identity_boxes[1], rects[1])  # left to right
    assert picker.combo_action.isVisible() and picker.combo.count() == 2
    assert picker.combo.currentText() == "Face 1 (largest)"  # the default, as the CLI's
    assert inside(window.retargeter.identity_box, rects[0])
    # A click on the right face in the thumbnail embeds that face.
    with qtbot.waitSignal(window.identity_loaded, timeout=60000):
        qtbot.mouseClick(window.identity_thumb, Qt.MouseButton.LeftButton, pos=_point_in_thumb(window, picker.identity_boxes[1]))
    assert picker.face_for(path) == 2
    assert inside(window.retargeter.identity_box, rects[1])
    qtbot.waitUntil(lambda: picker.combo.currentText() == "Face 2", timeout=30000)
    # The list does the same.
    with qtbot.waitSignal(window.identity_loaded, timeout=60000):
        picker.combo.setCurrentIndex(0)
    assert picker.face_for(path) == 1 and inside(window.retargeter.identity_box, rects[0])
    # A one-face photo: no boxes, no list, the largest (only) face.
    single = shared_dir / "media" / "identity_hepburn_small.png"
    window.load_identity(single)
    qtbot.waitUntil(lambda: picker.identity_path == single and len(picker.identity_boxes) == 1, timeout=60000)
    assert not picker.combo_action.isVisible() and picker.face_for(single) is None


def test_driver_with_two_faces_shows_boxes_and_a_click_tracks_that_face(qtbot, make_window, shared_dir, tmp_path):
    # The right face is the larger one throughout: without a choice it drives.
    video, rects = swap_video(shared_dir, tmp_path / "two.mp4", frames=75, left=(220, 220), right=(320, 320))
    window = make_window(shared_dir / "media" / "identity_hepburn_small.png")
    overlay = window.face_picker.driver_overlay
    window.add_video_driver(video)
    with qtbot.waitSignal(window.stream_started, timeout=20000):
        window.start_stream()
    qtbot.waitUntil(lambda: overlay.isVisible() and len(overlay.boxes) == 2, timeout=30000)
    assert window.last_driven.face_number == 2  # by default the largest: the right one
    # Click the left face's box on the driver pane.
    x0, y0, scale = overlay._mapping()
    box = overlay.boxes[0]
    qtbot.mouseClick(overlay, Qt.MouseButton.LeftButton,
                     pos=QPoint(round(x0 + (box[0] + box[2]) / 2 * scale), round(y0 + (box[1] + box[3]) / 2 * scale)))
    assert overlay.chosen == 1
    shown = window.driver_view.frames_shown
    qtbot.waitUntil(lambda: window.driver_view.frames_shown >= shown + 3, timeout=60000)
    frame = window.last_driven  # the driver frame on screen
    assert frame.face_number == 1 and overlay.chosen == 1
    assert frame.landmarks[:, 0].max() < 360  # the left half of the 720 px frame
    with qtbot.waitSignal(window.stream_stopped, timeout=20000):
        window.stop_stream()
    # An offline render of this driver tracks the clicked face from its first frame, as its own job.
    from retarget.engine.jobs import offline_renderer
    from retarget.media.sources import open_source

    key, box = window.face_picker.render_choice(window.identity_path, str(video))
    assert "driver_face_box" in key and "identity_face" not in key
    # The renderer the app's Render video builds (Session.begin_render), with the picker's choice.
    renderer = offline_renderer(window.retargeter, window.context, window.identity_path, window.session.files,
                                window.panel.generation_settings(), window.panel.mapping_settings(),
                                follow_box=box, key_extra=key)
    assert renderer.job_key["driver_face_box"] == key["driver_face_box"]
    with open_source(str(video)) as source, renderer.make_analyzer() as analyzer:
        first = analyzer(next(iter(source)))
    assert first.face_number == 1 and inside(first.face_boxes[0], rects[0][0])
