"""Expected failures become one plain line (retarget/errors.py); NaN never reaches the filter; the
landmarker is found in the README's order; threads end before what they use is closed."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from retarget.errors import EXIT_ERROR, RetargetError, first_line, run_command


# ------------------------------------------------------------------------------------------ messages
def test_first_line_of_an_empty_message_is_the_type_not_an_index_error():
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(RuntimeError("\n  \n")) == "RuntimeError"
    assert first_line(OSError("one\ntwo")) == "one"


def test_first_line_never_relays_torchs_unsafe_advice():
    text = ("Weights only load failed. This file can still be loaded, to do so you have two options, do those steps "
            "only if you trust the source of the checkpoint.\n\t(1) In PyTorch 2.6, we changed the default value of the "
            "`weights_only` argument in `torch.load` from `False` to `True`. Re-running `torch.load` with "
            "`weights_only` set to `False` will likely succeed, but it can result in arbitrary code execution.")
    line = first_line(RuntimeError(text))
    assert "will likely succeed" not in line and "can still be loaded" not in line


@pytest.mark.parametrize("err, fragments", [
    (OSError(errno.ENOSPC, "No space left on device", "/out/o.mp4"), ["no space left", "/out/o.mp4", "--resume"]),
    (OSError(errno.EROFS, "Read-only file system", "/ro/o.png"), ["/ro/o.png", "read-only"]),
    (PermissionError(errno.EACCES, "Permission denied", "/x/o.png"), ["/x/o.png", "permission denied"]),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f.png/o.png"), ["/f.png/o.png", "is a file"]),
])
def test_os_errors_on_output_become_one_line(err, fragments, capsys):
    def body():
        raise err

    assert run_command("retarget", body) == EXIT_ERROR
    line = capsys.readouterr().err.strip()
    assert len(line.splitlines()) == 1 and line.startswith("retarget: error: ") and "unexpected" not in line
    for fragment in fragments:
        assert fragment in line


def test_a_decompression_bomb_and_a_corrupt_json_are_messages(capsys):
    import json

    from PIL import Image

    for err in (Image.DecompressionBombError("Image size (400000000 pixels) exceeds limit"), json.JSONDecodeError("x", "{", 0)):
        def body(err=err):
            raise err

        assert run_command("retarget", body) == EXIT_ERROR
        assert "unexpected" not in capsys.readouterr().err


def test_a_bug_still_reports_as_unexpected(capsys):
    def body():
        raise ZeroDivisionError()

    assert run_command("retarget", body) == 1
    assert "unexpected error: ZeroDivisionError: ZeroDivisionError" in capsys.readouterr().err


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


# ------------------------------------------------------------------------------------------ NaN
def test_nan_cells_in_a_csv_are_missing_values_and_never_reach_the_filter(tmp_path):
    from retarget.expression.blendshapes import BLENDSHAPE_NAMES
    from retarget.expression.mapping import ExpressionMapper, MappingSettings
    from retarget.media.sources import BlendshapeCsvSource

    rows = ["timestamp," + ",".join(BLENDSHAPE_NAMES)]
    for i in range(6):
        values = [0.1 * (i % 3)] * len(BLENDSHAPE_NAMES)
        cells = [f"{v}" for v in values]
        if i == 2:
            cells[10] = "nan"
        if i == 4:
            cells[3] = "inf"
        rows.append(f"{i / 25}," + ",".join(cells))
    path = tmp_path / "take.csv"
    path.write_text("\n".join(rows) + "\n")
    source = BlendshapeCsvSource(path)
    assert source.missing_values == 2
    mapper = ExpressionMapper(MappingSettings(smoothing=True))
    outputs = [mapper(frame.blendshapes, frame.time) for frame in source]
    assert all(np.isfinite(o).all() for o in outputs)
    np.testing.assert_array_equal(outputs[2], outputs[1])  # held
    assert mapper.frames_without_face == 2
    assert np.abs(outputs[5] - outputs[3]).max() > 0  # the filter kept working after the missing values


def test_a_nan_vector_handed_to_the_mapper_is_held_not_filtered():
    from retarget.expression.mapping import ExpressionMapper, MappingSettings

    mapper = ExpressionMapper(MappingSettings(smoothing=True))
    first = mapper(np.full(52, 0.5, np.float32), 0.0)
    bad = np.full(52, 0.5, np.float32)
    bad[7] = np.nan
    np.testing.assert_array_equal(mapper(bad, 0.04), first)
    assert np.isfinite(mapper(np.full(52, 0.2, np.float32), 0.08)).all()


# ------------------------------------------------------------------------------------------ landmarker
def test_landmarker_discovery_follows_the_readme_order(tmp_path, monkeypatch):
    from retarget.face.landmarker import LANDMARKER_ENV, LANDMARKER_FILENAME, landmarker_for

    class Files:
        landmarker = tmp_path / "models" / LANDMARKER_FILENAME

    Files.landmarker.parent.mkdir()
    Files.landmarker.write_bytes(b"models folder")
    flag, env = tmp_path / "flag.task", tmp_path / "env.task"
    flag.write_bytes(b"flag")
    env.write_bytes(b"env")
    monkeypatch.setenv(LANDMARKER_ENV, str(env))
    assert landmarker_for(flag, Files, download=False) == flag  # 1. the flag
    assert landmarker_for(None, Files, download=False) == env  # 2. the environment beats the models folder
    monkeypatch.delenv(LANDMARKER_ENV)
    assert landmarker_for(None, Files, download=False) == Files.landmarker  # 3. the models folder
    from retarget.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError):  # 4./5. no cache, and no download asked for
        landmarker_for(None, None, download=False)


# ------------------------------------------------------------------------------------------ threads
def test_overlapping_stderr_silencing_always_restores_stderr(monkeypatch):
    from retarget.face.landmarker import _native_stderr_silenced

    monkeypatch.delenv("RETARGET_DEBUG", raising=False)
    original = os.fstat(2)
    inside = threading.Barrier(2)
    first_out = threading.Event()

    def worker(index: int):
        with _native_stderr_silenced():
            inside.wait(timeout=10)
            if index == 0:
                pass  # leaves first, while the other is still inside
            else:
                first_out.wait(timeout=10)
                time.sleep(0.05)
        if index == 0:
            first_out.set()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    now = os.fstat(2)
    assert (now.st_dev, now.st_ino) == (original.st_dev, original.st_ino)


class SlowSource:
    """A source whose frames take a while; records whether any reader was still running at close()."""

    def __init__(self, frames: int = 50, delay: float = 0.02):
        from retarget.media.sources import Frame

        self.frames = [Frame(i, i / 25, np.zeros((8, 8, 3), np.uint8)) for i in range(frames)]
        self.delay = delay
        self.readers_alive_at_close: list[str] | None = None
        self.live = False
        self.fps = 25.0

    def __iter__(self):
        for frame in self.frames:
            time.sleep(self.delay)
            yield frame

    def close(self):
        self.readers_alive_at_close = [t.name for t in threading.enumerate()
                                       if t.name in ("decode", "perception", "live-capture", "live-render") and t.is_alive()]


def test_perception_threads_end_before_the_stream_returns():
    from retarget.engine import perception_stream

    class SlowAnalyzer:
        def __call__(self, frame):
            time.sleep(0.05)
            return frame

    source = SlowSource()
    stream = perception_stream(source, SlowAnalyzer())
    next(stream)
    stream.close()  # the consumer stops early: the workers are told to stop and waited for
    source.close()
    assert source.readers_alive_at_close == []


def test_live_stop_waits_for_a_slow_generate_before_closing_the_source():
    from retarget.engine import LiveSession
    from retarget.settings import GenerationSettings

    started = threading.Event()

    class SlowPipeline:
        def generate(self, context, expressions, settings):
            started.set()
            time.sleep(0.5)
            return np.zeros((1, 8, 8, 3), np.uint8)

    class Analyzer:
        frames_without_face = 0

        def __call__(self, frame, capture_time=None):
            from retarget.driving import DrivenFrame

            return DrivenFrame(frame.index, frame.time, frame.image, np.zeros(52, np.float32), np.zeros(52, np.float32), True)

    source = SlowSource(frames=1000, delay=0.01)
    session = LiveSession(SlowPipeline(), None, Analyzer(), GenerationSettings(), source, on_output=lambda *a: None)
    session.start()
    assert started.wait(timeout=10)
    session.stop()
    assert source.readers_alive_at_close == []


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


def test_eval_refuses_clips_of_different_length(tmp_path, shared_dir, landmarker_path, tiny_models_dir, capsys):
    from retarget.evaluation import main
    from tests.conftest import cut_clip

    video = shared_dir / "media" / "driver_d0.mp4"
    driver, output = cut_clip(video, tmp_path / "d.mp4", 3), cut_clip(video, tmp_path / "o.mp4", 2)
    code = main(["--models", str(tiny_models_dir), "--landmarker", str(landmarker_path),
                 "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"),
                 "--driver", str(driver), "--output", str(output)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "has 2 frames but its driver" in err and len(err.splitlines()) == 1


def test_retarget_error_message_is_printed_whole(capsys):
    def body():
        raise RetargetError("")

    assert run_command("retarget", body) == 2
    assert capsys.readouterr().err.strip() == "retarget: error: RetargetError"


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
