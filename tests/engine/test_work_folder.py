"""The offline job's work folder (retarget/engine/work_folder.py): manifest, resume check, frames."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retarget.engine import WorkFolder, work_dir_for
from retarget.errors import RetargetError


def test_it_lies_beside_the_output_and_prepare_writes_the_manifest(tmp_path):
    folder = WorkFolder.for_output(tmp_path / "out.mp4")
    assert folder.path == work_dir_for(tmp_path / "out.mp4") == tmp_path.resolve() / ".out.mp4.work"
    folder.prepare({"version": 1, "range": (0, 4)}, resume=False)
    assert json.loads(folder.manifest_path.read_text()) == {"version": 1, "range": [0, 4]}
    assert folder.holds({"version": 1, "range": (0, 4)})  # compared as stored: the tuple became a list
    assert not folder.holds({"version": 1, "range": (0, 5)})


def test_resume_keeps_its_frames_and_refuses_another_job(tmp_path):
    folder = WorkFolder(tmp_path / ".out.work")
    folder.prepare({"job": "a"}, resume=False)
    image = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    folder.write_frame(3, image)
    assert folder.frame_path(3).name == "frame_000003.png"
    folder.prepare({"job": "a"}, resume=True)
    assert folder.rendered_indices() == {3}
    np.testing.assert_array_equal(folder.read_frame(3), image)
    with pytest.raises(RetargetError, match="other inputs or settings; run without --resume"):
        folder.prepare({"job": "b"}, resume=True)
    folder.prepare({"job": "b"}, resume=False)  # without --resume: starts afresh
    assert folder.rendered_indices() == set() and folder.holds({"job": "b"})


def test_unreadable_frames_are_dropped_for_rendering_again(tmp_path):
    folder = WorkFolder(tmp_path / ".out.work")
    folder.prepare({}, resume=False)
    folder.write_frame(0, np.zeros((2, 2, 3), np.uint8))
    folder.frame_path(1).write_bytes(b"\x89PNG cut short")
    indices = folder.rendered_indices()
    assert folder.drop_unreadable_frames(indices) == 1
    assert indices == folder.rendered_indices() == {0}


def test_a_folder_without_a_manifest_is_not_this_job(tmp_path):
    folder = WorkFolder(tmp_path / ".out.work")
    assert not folder.holds({})
    folder.path.mkdir()
    with pytest.raises(RetargetError):
        folder.prepare({}, resume=True)


def test_resume_drops_a_cached_frame_of_the_wrong_size(tmp_path):
    """Issue #25: a frame of another size in the work folder (another model's, a hand-made one) is rendered again,
    never assembled beside full-size frames."""
    folder = WorkFolder(tmp_path / ".out.work")
    folder.path.mkdir()
    folder.write_frame(0, np.zeros((8, 8, 3), np.uint8))
    folder.write_frame(1, np.zeros((4, 4, 3), np.uint8))
    indices = folder.rendered_indices()
    assert folder.drop_unreadable_frames(indices, size=8) == 1
    assert indices == folder.rendered_indices() == {0}


def test_a_work_folder_that_is_a_link_is_refused_and_never_followed(tmp_path):
    from retarget.errors import OutputError

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    (tmp_path / ".out.work").symlink_to(mine)
    folder = WorkFolder(tmp_path / ".out.work")
    for resume in (False, True):
        with pytest.raises(OutputError, match="not a work folder"):
            folder.prepare({}, resume=resume)
    folder.remove()
    assert (mine / "keep.txt").read_text() == "mine" and (tmp_path / ".out.work").is_symlink()
