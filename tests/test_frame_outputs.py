"""--frame full|crop through the outputs: video renders (frame count, fps, audio, resume keys), stills, and the live
stream's screen frames, recording and virtual camera. The generator is a stand-in that returns the identity's own
aligned crop, so the full frame must give the identity photo back."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest

from retarget.config import FrameOptions, RenderOptions
from retarget.errors import JobInterrupted, RetargetError
from retarget.config.generation import GenerationSettings
from tests.conftest import cut_clip, needs_shared
from tests.session.test_session import FakeAnalyzer

FAST = GenerationSettings(steps=2)
FULL, CROP = FrameOptions(frame="full"), FrameOptions(frame="crop")


class StandInPipeline:
    """Returns the identity's own aligned crop for every expression (what a perfect neutral generator would)."""

    image_size = 512

    def __init__(self):
        self.calls: list[int] = []  # batch sizes

    def generate(self, context, expressions, settings, **kwargs):
        self.calls.append(len(expressions))
        return np.stack([context.placement.aligned] * len(expressions))


class StandInAnalyzer(FakeAnalyzer):
    """Every frame a neutral expression (the render engine asks for its mapping and uses it as a context manager)."""

    expression_kind = "blendshapes52"  # the engine asks the signal rule before a job
    mapping = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def psnr(a, b) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def identity(shared_dir, landmarker_path):
    """(photo path, photo, a context holding its FacePlacement) for the off-centre face."""
    from retarget.face.align import align_ffhq
    from retarget.face.image_io import load_image
    from retarget.face.landmarker import FaceLandmarker
    from retarget.face.paste import FacePlacement

    path = shared_dir / "media" / "identity_jackie_wide.png"
    photo = load_image(path)
    with FaceLandmarker(landmarker_path, mode="image") as landmarker:
        aligned, matrix = align_ffhq(photo, landmarker.detect(photo).landmarks)
    context = SimpleNamespace(placement=FacePlacement(photo, matrix, aligned=aligned), blendshapes=None, flame=None)
    return path, photo, context


def stand_in_session(identity, frame=FULL):
    from retarget.session import Session

    path, photo, context = identity
    pipeline = StandInPipeline()
    retargeter = SimpleNamespace(pipeline=pipeline, driver_analyzer=lambda *a, **k: StandInAnalyzer(),
                                 render=lambda context, expressions, settings, progress=False:
                                 pipeline.generate(context, expressions, settings))
    session = Session.with_retargeter(retargeter, identity=context)
    session.identity_path, session.identity_image = path, photo
    session.set_frame(frame)
    return session


@pytest.fixture(scope="module")
def talking(shared_dir, tmp_path_factory):
    """The first 8 frames of driver_d11_audio.mp4 with its audio (trimmed to them)."""
    from retarget.media.audio_mux import mux_audio

    folder = tmp_path_factory.mktemp("clips")
    silent = cut_clip(shared_dir / "media" / "driver_d11_audio.mp4", folder / "silent.mp4", 8)
    return mux_audio(silent, shared_dir / "media" / "driver_d11_audio.mp4", folder / "talk.mp4") and folder / "talk.mp4"


@pytest.fixture(scope="module")
def longer(shared_dir, tmp_path_factory):
    """150 frames (6 s at 25 fps): time for a live stream on a loaded machine to show frames before and after a change."""
    return cut_clip(shared_dir / "media" / "driver_d11_audio.mp4", tmp_path_factory.mktemp("clips") / "long.mp4", 150)


def probe(path):
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        return SimpleNamespace(frames=frames, rate=container.streams.video[0].average_rate,
                               audio=bool(container.streams.audio))


@needs_shared
def test_a_full_frame_render_is_the_photo_with_the_frame_count_fps_and_audio_of_the_driver(identity, talking, tmp_path):
    session = stand_in_session(identity)
    out = tmp_path / "out.mp4"
    both = tmp_path / "both.mp4"
    [summary] = session.render_videos([talking], out, settings=FAST, mapping=None,
                                      options=RenderOptions(batch_size=3, progress=False, side_by_side=both))
    source, result = probe(talking), probe(out)
    photo = identity[1]
    assert len(result.frames) == len(source.frames) == summary.frames == 8
    assert result.rate == source.rate and result.audio and summary.audio
    assert result.frames[0].shape == photo.shape  # 1440x810: the photo's resolution
    assert all(psnr(frame, photo) > 35 for frame in result.frames)  # the photo back, through H.264 at CRF 18
    assert session.retargeter.pipeline.calls == [3, 3, 2]  # still batched: one paste step per generator batch
    beside = probe(both)  # driver | output: the driver scaled to the photo's height
    assert len(beside.frames) == 8 and beside.frames[0].shape[0] == photo.shape[0]
    assert beside.frames[0].shape[1] > photo.shape[1] and beside.audio


@needs_shared
def test_the_command_line_takes_frame_crop(identity, tmp_path, tiny_models_dir, landmarker_path, shared_dir, capsys):
    from PIL import Image

    from retarget.cli import main

    out = tmp_path / "crop.png"
    code = main(["--headless", "--models", str(tiny_models_dir), "--landmarker", str(landmarker_path), "--steps", "2",
                 "--identity", str(identity[0]), "--driver", str(shared_dir / "media" / "expression_exp1_rgba.png"),
                 "--out", str(out), "--frame", "crop"])
    assert code == 0 and np.asarray(Image.open(out)).shape == (64, 64, 3)  # the tiny models' square face
    assert "upsampled" not in capsys.readouterr().err  # no note: nothing is pasted


@needs_shared
def test_full_frame_and_crop_are_different_jobs_for_resume(identity, talking, tmp_path):
    from retarget.engine import WorkFolder

    session = stand_in_session(identity)
    out = tmp_path / "out.mp4"
    session.on("frame", lambda result: session.cancel_render())  # stop after the first batch
    with pytest.raises(JobInterrupted):
        session.render_videos([talking], out, settings=FAST, mapping=None, options=RenderOptions(batch_size=2, progress=False))
    work = WorkFolder.for_output(out)
    assert work.rendered_indices() == {0, 1} and work.read_frame(0).shape == identity[1].shape  # full frames kept
    crop = stand_in_session(identity, CROP)
    with pytest.raises(RetargetError, match="holds an unfinished job with other inputs or settings"):
        crop.render_videos([talking], out, settings=FAST, mapping=None,
                           options=RenderOptions(batch_size=2, progress=False, resume=True))
    full = stand_in_session(identity)
    [summary] = full.render_videos([talking], out, settings=FAST, mapping=None,
                                   options=RenderOptions(batch_size=2, progress=False, resume=True))
    assert summary.reused == 2 and summary.rendered == 6 and out.is_file()


@needs_shared
def test_crop_frame_renders_the_generated_square(identity, talking, tmp_path):
    session = stand_in_session(identity, CROP)
    [summary] = session.render_videos([talking], tmp_path / "crop", settings=FAST, mapping=None,
                                      options=RenderOptions(batch_size=4, progress=False))  # a PNG sequence
    from PIL import Image

    frames = sorted((tmp_path / "crop").glob("*.png"))
    assert len(frames) == 8 and np.asarray(Image.open(frames[0])).shape == (512, 512, 3)


@needs_shared
def test_a_still_follows_the_frame(identity, tmp_path):
    session = stand_in_session(identity)
    expression = np.zeros(52, np.float32)
    full = session.render_still(None, tmp_path / "full.png", settings=FAST, expression=expression)
    assert full.shape == identity[1].shape and psnr(full, identity[1]) >= 40
    session.set_frame(CROP)
    crop = session.render_still(None, settings=FAST, expression=expression)
    assert crop.shape == (512, 512, 3)
    with pytest.raises(RetargetError, match="--frame must be one of full, crop"):
        session.set_frame(FrameOptions(frame="wide"))


class FakeCamera:
    def __init__(self, width, height):
        self.width, self.height, self.frames = width, height, []

    def send(self, frame):
        self.frames.append(frame)

    def close(self):
        pass


@needs_shared
def test_live_screen_recording_and_virtual_camera_follow_the_frame(identity, longer, tmp_path):
    session = stand_in_session(identity)
    photo = identity[1]
    shown = []
    session.on("frame", lambda result: shown.append(result.image.shape))
    sink = session.start_recording(tmp_path / "rec.mp4")
    assert sink.size == (photo.shape[1], photo.shape[0])  # the recording is the whole photo's size
    camera = FakeCamera(*session.output_size())
    session.outputs.set_vcam(camera)
    session.start_live(str(longer), settings=FAST, analyzer=StandInAnalyzer(), pace=True)
    deadline = time.monotonic() + 30
    while len(shown) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    session.set_frame(CROP)  # the View changes while it streams and records
    while len(shown) < 4 and not session.stream.finished.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    session.stop_live()
    session.stop_recording()
    sink.close()
    assert shown[0] == photo.shape and shown[-1] == (512, 512, 3)
    assert all(frame.shape == photo.shape for frame in camera.frames)  # the camera's size, the crop fitted in
    recorded = probe(tmp_path / "rec.mp4")
    assert len(recorded.frames) >= len(shown) and all(f.shape == photo.shape for f in recorded.frames)
    assert psnr(recorded.frames[0], photo) > 35
