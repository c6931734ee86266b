"""Failures seen through the CLI: an unwritable output refused before any work, the webcam released when the
recording cannot open, a truncated video rendered as far as it decodes (exit 3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path, monkeypatch, capsys):
    from retarget.cli import main

    photo = tmp_path / "p.png"
    photo.write_bytes(b"not needed: refused first")
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    # Root ignores permission bits, so the folder is made unwritable where the check looks.
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False if Path(path) == locked else real_access(path, mode, **kw))
    code = main(["--headless", "--models", "random:tiny", "--identity", str(photo), "--driver", str(photo),
                 "--out", str(locked / "o.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot write in" in err and len(err.splitlines()) == 1
    assert list(locked.iterdir()) == []


def test_the_webcam_is_released_when_the_recording_cannot_open(tmp_path, monkeypatch):
    import retarget.media.sources as sources
    from retarget.cli.live import run_live
    from retarget.session import Session

    class Camera:
        fps = 30.0
        closed = False

        def close(self):
            self.closed = True

    camera = Camera()
    opened = []
    monkeypatch.setattr(sources, "open_source", lambda spec: opened.append(spec) or camera)

    class Retargeter:
        class pipeline:
            image_size = 64

    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder would go")
    with pytest.raises(OSError):
        run_live(Session.with_retargeter(Retargeter, identity="identity"), "webcam:0", blocker / "rec.mp4", None)
    assert camera.closed or not opened  # released, or never opened (the recording is opened first)


def test_a_truncated_video_renders_what_decodes_and_exits_3(tmp_path, shared_dir, landmarker_path, tiny_models_dir, capsys):
    import av

    from retarget.cli import main
    from retarget.errors import EXIT_INCOMPLETE

    whole = tmp_path / "whole.mp4"
    with av.open(str(shared_dir / "media" / "driver_d0.mp4")) as src, av.open(str(whole), "w", options={"movflags": "+faststart"}) as dst:
        stream = dst.add_stream("libx264", rate=src.streams.video[0].average_rate)
        stream.width, stream.height, stream.pix_fmt = src.streams.video[0].width, src.streams.video[0].height, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i >= 12:
                break
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.9)])  # the index (moov) is at the front: 12 frames declared, fewer readable
    out = tmp_path / "o.mp4"
    code = main(["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "1",
                 "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"), "--driver", str(cut), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == EXIT_INCOMPLETE == 3
    assert "shorter than its driver" in captured.err and "Traceback" not in captured.err
    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert 0 < frames < 12


def test_resume_after_a_same_size_same_mtime_driver_swap_is_refused(tmp_path):
    """Issue #25: the job's manifest identifies the driver by content, so a swapped driver never resumes with
    the old driver's frames (a video and an image folder)."""
    from retarget.engine import OfflineRenderer, WorkFolder
    from retarget.errors import RetargetError
    from retarget.config.generation import GenerationSettings

    renderer = OfflineRenderer(None, None, None, GenerationSettings())
    video = tmp_path / "driver.mp4"
    video.write_bytes(b"first driver, 25 bytes ..")
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "f0.png").write_bytes(b"first image")
    for driver, file in ((video, video), (folder, folder / "f0.png")):
        work = WorkFolder(tmp_path / f".{driver.name}.work")
        work.prepare(renderer.manifest(str(driver), None), resume=False)
        stamp = file.stat()
        swap = tmp_path / "swap"
        swap.write_bytes(b"B" * stamp.st_size)
        os.replace(swap, file)
        os.utime(file, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        with pytest.raises(RetargetError, match="other inputs or settings"):
            work.prepare(renderer.manifest(str(driver), None), resume=True)


def test_two_extracts_to_one_csv_one_is_refused_and_the_file_equals_a_lone_run(tmp_path, shared_dir, landmarker_path):
    """Issue #25: the CSV takes the job lock renders take, so a second writer is refused and writes nothing."""
    from retarget.engine import work_lock_for
    from retarget.errors import OutputError
    from retarget.tools.extract import extract_blendshapes
    from tests.conftest import cut_clip

    video = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "d.mp4", 3)
    lone = tmp_path / "lone.csv"
    extract_blendshapes(video, lone, landmarker_path, progress=False)
    out = tmp_path / "take.csv"
    with work_lock_for(out):  # the first extract, still running
        with pytest.raises(OutputError, match="in use by another job"):
            extract_blendshapes(video, out, landmarker_path, progress=False)
        assert not out.exists() and not (tmp_path / ".take.partial.csv").exists()
        extract_blendshapes(video, tmp_path / "other.csv", landmarker_path, progress=False)  # another CSV is free
    extract_blendshapes(video, out, landmarker_path, progress=False)
    assert out.read_bytes() == lone.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.mp4", "lone.csv", "other.csv", "take.csv"]
