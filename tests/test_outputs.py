"""Where output may go (retarget/outputs.py) and the engine's work folder: lock, resume checks, skipped
inputs, disk full, PNG-sequence folders. A fake generator and analyzer keep these fast (no models)."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from retarget.engine.driving import DrivenFrame
from retarget.engine import OfflineRenderer, job_key, work_dir_for, work_lock_for
from retarget.config.render import RenderOptions
from retarget.errors import OutputError
from retarget.config.mapping import MappingSettings
from retarget.outputs import (MARKER, JobLock, atomic_write, check_output, claim_folder, is_ours, replace_folder,
                              write_text)
from retarget.config.generation import GenerationSettings


# ------------------------------------------------------------------------------------------ outputs
def test_an_output_may_not_be_contain_or_lie_inside_an_input(tmp_path):
    photo, folder = tmp_path / "me.png", tmp_path / "frames"
    photo.write_bytes(b"x")
    folder.mkdir()
    with pytest.raises(OutputError, match="same path as --identity"):
        check_output(tmp_path / "sub" / ".." / "me.png", {"--identity": photo})
    with pytest.raises(OutputError, match="contains --identity"):
        check_output(tmp_path, {"--identity": photo})
    with pytest.raises(OutputError, match="lies inside --driver"):
        check_output(folder / "out.mp4", {"--driver": folder})
    link = tmp_path / "link.png"
    link.symlink_to(photo)
    with pytest.raises(OutputError, match="same path"):
        check_output(link, {"--identity": photo})
    assert check_output(tmp_path / "o.mp4", {"--driver": "webcam:0", "--identity": photo}) == tmp_path / "o.mp4"


def test_folders_are_claimed_only_when_new_empty_or_ours(tmp_path):
    new = claim_folder(tmp_path / "new")
    assert is_ours(new)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert is_ours(claim_folder(empty))
    assert claim_folder(new) == new  # ours again: a rerun may reuse it
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="other files"):
        claim_folder(foreign)
    assert (foreign / "keep.txt").read_text() == "mine" and not is_ours(foreign)


def test_replace_folder_removes_only_our_own_previous_output(tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "frame_000000.png").write_bytes(b"new")
    ours = claim_folder(tmp_path / "ours")
    (ours / "frame_000000.png").write_bytes(b"old")
    replace_folder(staging, ours)
    assert (ours / "frame_000000.png").read_bytes() == b"new" and is_ours(ours) and not staging.exists()

    staging.mkdir()
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(OutputError):
        replace_folder(staging, foreign)
    assert (foreign / "keep.txt").read_text() == "mine"


def test_atomic_write_leaves_the_target_untouched_on_failure(tmp_path):
    target = tmp_path / "report.json"
    write_text(target, "old")

    def fail(temp: Path) -> None:
        temp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device", str(temp))

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_second_job_on_a_work_folder_is_refused_naming_the_first(tmp_path):
    lock_path = tmp_path / ".o.mp4.work.lock"
    with JobLock(lock_path, what="the work folder"):
        with pytest.raises(OutputError, match=rf"in use by another job \(process {os.getpid()}"):
            with JobLock(lock_path, what="the work folder"):
                pass
    assert not lock_path.exists()  # released and removed
    with JobLock(lock_path, what="the work folder"):
        pass


# ------------------------------------------------------------------------------------------ engine
class FakePipeline:
    """Image i is filled with (i * 10) % 256, so outputs can be traced back to frames."""

    def __init__(self):
        self.calls = 0

    def generate(self, context, expressions, settings, frame_indices=None):
        self.calls += 1
        return np.stack([np.full((8, 8, 3), (i * 10) % 256, np.uint8) for i in frame_indices])


class FakeAnalyzer:
    expression_kind = "blendshapes52"

    def __init__(self):
        self.mapping = MappingSettings()
        self.frames_without_face = 0
        self.closed = False

    def __call__(self, frame, capture_time=None):
        return DrivenFrame(frame.index, frame.time, frame.image, np.zeros(52, np.float32), np.zeros(52, np.float32), True)

    def close(self):
        self.closed = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def image_folder(root: Path, count: int) -> Path:
    root.mkdir()
    for i in range(count):
        Image.fromarray(np.full((16, 16, 3), i, np.uint8)).save(root / f"f{i:02d}.png")
    return root


def renderer(pipeline=None, mapping=None) -> OfflineRenderer:
    return OfflineRenderer(pipeline or FakePipeline(), None, FakeAnalyzer, GenerationSettings(steps=1), {"identity": "x"},
                           mapping=mapping)


def test_png_sequence_never_replaces_a_foreign_folder_but_replaces_its_own(tmp_path):
    frames = image_folder(tmp_path / "frames", 3)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="other files"):
        renderer().render(str(frames), foreign, RenderOptions(progress=False))
    assert [p.name for p in foreign.iterdir()] == ["keep.txt"] and not work_dir_for(foreign).exists()

    out = tmp_path / "seq"
    renderer().render(str(frames), out, RenderOptions(progress=False))
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "frame_000000.png", "frame_000001.png", "frame_000002.png"]
    renderer().render(str(frames), out, RenderOptions(progress=False))  # our own output: replaced
    assert len(list(out.glob("frame_*.png"))) == 3
    assert not work_dir_for(out).exists() and not work_lock_for(out).path.exists()


def test_resume_rerenders_unreadable_cached_frames(tmp_path):
    frames = image_folder(tmp_path / "frames", 4)
    out = tmp_path / "seq"
    render = renderer()
    render.render(str(frames), out, RenderOptions(progress=False, assemble=False))
    work = work_dir_for(out)
    (work / "frame_000001.png").write_bytes(b"")  # emptied (e.g. by a full disk)
    (work / "frame_000002.png").write_bytes((work / "frame_000002.png").read_bytes()[:20])  # cut short
    summary = render.render(str(frames), out, RenderOptions(progress=False, resume=True))
    assert summary.rerendered == 2 and summary.rendered == 2 and summary.reused == 2
    for i in range(4):
        assert np.asarray(Image.open(out / f"frame_{i:06d}.png"))[0, 0, 0] == (i * 10) % 256


def test_an_unreadable_image_in_a_folder_is_skipped_and_reported(tmp_path):
    frames = image_folder(tmp_path / "frames", 5)
    (frames / "f02.png").write_bytes(b"not a png")
    out = tmp_path / "seq"
    summary = renderer().render(str(frames), out, RenderOptions(progress=False))
    assert summary.frames == 4 and summary.skipped_inputs == 1
    assert "1 unreadable image(s) skipped" in summary.incomplete and "f02.png" in summary.incomplete
    assert len(list(out.glob("frame_*.png"))) == 4  # the frames after it were not dropped


def test_a_full_disk_keeps_whole_frames_only_and_resume_finishes(tmp_path, monkeypatch):
    import retarget.engine.work_folder as work_folder  # where frames are written

    frames = image_folder(tmp_path / "frames", 4)
    out = tmp_path / "seq"
    real = work_folder.atomic_write
    written = []

    def disk_fills_up(path, write):
        if path.name.startswith("frame_") and len(written) == 2:
            def partial(temp):
                temp.write_bytes(b"\x89PNG half a frame")
                raise OSError(errno.ENOSPC, "No space left on device", str(temp))
            return real(path, partial)
        if path.name.startswith("frame_"):
            written.append(path)
        return real(path, write)

    monkeypatch.setattr(work_folder, "atomic_write", disk_fills_up)
    with pytest.raises(OutputError, match="no space left.*--resume"):
        renderer().render(str(frames), out, RenderOptions(progress=False, batch_size=1))
    work = work_dir_for(out)
    assert sorted(p.name for p in work.iterdir()) == ["frame_000000.png", "frame_000001.png", "job.json"]
    monkeypatch.setattr(work_folder, "atomic_write", real)
    summary = renderer().render(str(frames), out, RenderOptions(progress=False, resume=True))
    assert summary.reused == 2 and len(list(out.glob("frame_*.png"))) == 4


def test_the_job_key_follows_file_content_not_path(tmp_path):
    photo, adapter = tmp_path / "me.png", tmp_path / "exp_adapter.bin"
    photo.write_bytes(b"photo")
    adapter.write_bytes(b"first training")
    first = job_key(photo, "models", exp_adapter=adapter)
    assert job_key(photo, "models", exp_adapter=adapter) == first  # unchanged file: same job (hash cached)
    adapter.write_bytes(b"retrained, same path")
    assert job_key(photo, "models", exp_adapter=adapter) != first


def test_a_known_mapping_is_read_without_building_an_analyzer():
    def no_analyzer():
        raise AssertionError("an analyzer (which may load SMIRK) was built just to read its mapping")

    mapping = MappingSettings(intensity=0.5)
    assert OfflineRenderer(None, None, no_analyzer, GenerationSettings(), mapping=mapping).mapping_settings() is mapping
    built = []

    def make():
        built.append(FakeAnalyzer())
        return built[-1]

    assert OfflineRenderer(None, None, make, GenerationSettings()).mapping_settings() == MappingSettings()
    assert built[0].closed  # what it opens, it closes


def test_two_renders_to_one_output_cannot_share_the_work_folder(tmp_path):
    frames = image_folder(tmp_path / "frames", 2)
    out = tmp_path / "o.mp4"
    with work_lock_for(out):
        with pytest.raises(OutputError, match="in use by another job"):
            renderer().render(str(frames), out, RenderOptions(progress=False))
    assert not work_dir_for(out).exists()


def test_a_lock_is_held_for_the_whole_job(tmp_path):
    frames = image_folder(tmp_path / "frames", 2)
    out = tmp_path / "seq"
    seen = []

    class Probe(FakePipeline):
        def generate(self, *args, **kwargs):
            seen.append(work_lock_for(out).path.exists())
            with pytest.raises(OutputError):
                with work_lock_for(out):
                    pass
            return super().generate(*args, **kwargs)

    renderer(Probe()).render(str(frames), out, RenderOptions(progress=False))
    assert seen == [True]


def test_threads_started_by_a_render_are_gone_after_it(tmp_path):
    frames = image_folder(tmp_path / "frames", 3)
    before = set(threading.enumerate())
    renderer().render(str(frames), tmp_path / "seq", RenderOptions(progress=False))
    assert not [t for t in threading.enumerate() if t not in before and t.name in ("decode", "perception")]
