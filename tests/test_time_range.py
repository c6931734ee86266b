"""--start/--end: an offline render of a time range of the driver (issue #21): only the frames in [start, end),
the output as long as the range, the audio the matching slice, another range another job."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from retarget.cli import main
from retarget.config.render import RenderOptions
from retarget.engine import OfflineRenderer
from retarget.errors import JobInterrupted, RetargetError
from tests.conftest import needs_shared
from tests.engine.test_offline_overlap import Recorder, StandInAnalyzer, StandInPipeline


def _video_facts(path):
    """(frames, video seconds, audio seconds or None, the audio's samples (mono float) and rate)."""
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        seconds = float(video.duration * video.time_base)
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return frames, seconds, None, None, None
        audio = container.streams.audio[0]
        samples = np.concatenate([f.to_ndarray().reshape(f.to_ndarray().shape[0], -1).mean(axis=0)
                                  for f in container.decode(audio=0)])
        return frames, seconds, len(samples) / audio.rate, samples, audio.rate


def _first_frame(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def _driver_frames(path, indices, size) -> dict:
    import av
    import cv2

    found = {}
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in indices:
                found[i] = cv2.resize(frame.to_ndarray(format="rgb24"), (size[1], size[0])).astype(float)
            if i >= max(indices):
                return found
    return found


def _source_audio(path, start: float, seconds: float, rate: int) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        chunks = [r.to_ndarray()[0] for f in container.decode(audio=0) for r in resampler.resample(f)]
    samples = np.concatenate(chunks)
    return samples[int(round(start * rate)):int(round((start + seconds) * rate))]


def _headless(models, shared_dir, landmarker_path, driver, out, *extra):
    return main(["--headless", "--models", str(models), "--landmarker", str(landmarker_path), "--steps", "1",
                 "--device", "cpu", "--frame", "crop", "--identity", str(shared_dir / "media" / "identity_hepburn_small.png"),
                 "--driver", str(driver), "--out", str(out), *extra])


@needs_shared
def test_a_video_range_has_those_frames_and_that_slice_of_the_audio(tmp_path, shared_dir, landmarker_path,
                                                                    blendshape_models_dir):
    driver = shared_dir / "media" / "driver_d11_audio.mp4"  # 25 fps, AAC audio
    out, side = tmp_path / "range.mp4", tmp_path / "side.mp4"
    assert _headless(blendshape_models_dir, shared_dir, landmarker_path, driver, out,
                     "--start", "1.0", "--end", "1.4", "--batch-size", "5", "--side-by-side", str(side)) == 0
    frames, seconds, audio_seconds, samples, rate = _video_facts(out)
    assert frames == 10  # frames 25..34: [1.0, 1.4) s at 25 fps
    assert seconds == pytest.approx(0.4, abs=1 / 25)
    assert audio_seconds == pytest.approx(0.4, abs=1 / 25)
    # The audio is the driver's from 1.0 s (re-encoded, so compared by correlation, against a slice 0.5 s away too).
    same = _source_audio(driver, 1.0, 0.4, rate)
    other = _source_audio(driver, 2.0, 0.4, rate)
    n = min(len(samples), len(same)) - 2048  # the encoder's last frame may be padded
    assert np.corrcoef(samples[:n], same[:n])[0, 1] > 0.9
    assert abs(np.corrcoef(samples[:n], other[:n])[0, 1]) < 0.5
    assert not list(tmp_path.glob(".*work*"))
    # The side-by-side video shows the same driver frames: its first is driver frame 25, not frame 0.
    side_frames, side_seconds, side_audio, _, _ = _video_facts(side)
    assert side_frames == 10 and side_seconds == pytest.approx(0.4, abs=1 / 25)
    assert side_audio == pytest.approx(0.4, abs=1 / 25)
    left = _first_frame(side)[:, : _first_frame(side).shape[1] // 2].astype(float)
    driver_frames = _driver_frames(driver, (0, 25), left.shape[:2])
    assert np.abs(left - driver_frames[25]).mean() < np.abs(left - driver_frames[0]).mean()


@needs_shared
def test_a_csv_take_range(tmp_path, shared_dir, landmarker_path, blendshape_models_dir):
    from tests.test_bridge_drivers_cli import write_csv

    take = write_csv(tmp_path / "take.csv", np.random.default_rng(3).uniform(0, 0.5, (25, 52)).astype(np.float32))
    out = tmp_path / "take.mp4"
    assert _headless(blendshape_models_dir, shared_dir, landmarker_path, take, out, "--start", "0.2", "--end", "0.6") == 0
    frames, seconds, audio, _, _ = _video_facts(out)
    assert frames == 10 and audio is None
    assert seconds == pytest.approx(0.4, abs=1 / 25)


@needs_shared
def test_a_vfr_range_keeps_its_frame_times_from_zero(tmp_path, shared_dir, landmarker_path, blendshape_models_dir):
    from tests.media.test_variable_frame_rate import packet_times, write_vfr

    driver = write_vfr(tmp_path / "vfr.mp4")  # frames at 0, .1, .15, .2, .45, .5, .9, 1.0
    out = tmp_path / "out.mp4"
    assert _headless(blendshape_models_dir, shared_dir, landmarker_path, driver, out, "--start", "0.15", "--end", "0.9") == 0
    times, last = packet_times(out)
    assert times == pytest.approx([0.0, 0.05, 0.3, 0.35], abs=1e-4)  # .15, .2, .45, .5 moved to start at 0
    assert last == pytest.approx(0.4, abs=1e-4)  # the last frame lasts until the range's next frame (0.9)


@pytest.mark.parametrize("flags, fragment", [
    (["--start", "2", "--end", "1"], "--end 1 must be after --start 2"),
    (["--start", "-1"], "--start"),
    (["--end", "0"], "--end"),
    (["--start", "30"], "--start 30: "),  # the clip lasts 9 s: known from its header
])
@needs_shared
def test_bad_ranges_are_refused_in_one_line_before_models_load(tmp_path, shared_dir, landmarker_path, capsys,
                                                               monkeypatch, flags, fragment):
    from retarget.session import Session

    def no_loading(*_, **__):
        raise AssertionError("models loaded before the range was checked")

    monkeypatch.setattr(Session, "load_models", no_loading)
    out = tmp_path / "o.mp4"
    code = _headless("random:tiny", shared_dir, landmarker_path, shared_dir / "media" / "driver_d11_audio.mp4", out, *flags)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("retarget: error")]
    assert code != 0 and len(err) == 1 and fragment in err[0], err
    assert not out.exists() and not list(tmp_path.glob(".*"))


@needs_shared
def test_a_range_of_a_still_is_refused(tmp_path, shared_dir, landmarker_path, capsys):
    code = _headless("random:tiny", shared_dir, landmarker_path, shared_dir / "media" / "expression_exp1_rgba.png",
                     tmp_path / "o.png", "--start", "1")
    assert code != 0 and "time range is for video" in capsys.readouterr().err


# ---------------------------------------------------------------- the engine, with stand-ins (no ../shared)
@pytest.fixture
def folder_driver(tmp_path):
    folder = tmp_path / "driver"
    folder.mkdir()
    for i in range(10):
        Image.fromarray(np.full((16, 16, 3), 10 * i, np.uint8)).save(folder / f"{i:03d}.png")
    return folder


class RangeAnalyzer(StandInAnalyzer):
    expression_kind = None  # any driver signal is accepted (retarget.expression.signals)

    def __init__(self, recorder):
        from retarget.config import MappingSettings

        super().__init__(recorder)
        self.mapping = MappingSettings()


def _renderer():
    from retarget.config.generation import GenerationSettings

    recorder = Recorder()
    return OfflineRenderer(StandInPipeline(recorder), None, lambda: RangeAnalyzer(recorder), GenerationSettings(),
                           {"identity": "x"})


def test_a_range_renders_only_its_frames_numbered_from_zero(tmp_path, folder_driver):
    out = tmp_path / "out"
    seen = []
    summary = _renderer().render(str(folder_driver), out, RenderOptions(start=0.12, end=0.3, progress=False),
                                 on_frame=lambda frame, image: seen.append(frame.index))
    assert seen == [3, 4, 5, 6, 7]  # 0.12, 0.16, 0.2, 0.24, 0.28 s at the folder's 25 fps
    assert summary.frames == 5
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 5
    assert np.asarray(Image.open(pngs[0]))[0, 0, 0] == 3  # output frame 0 is driver frame 3 (the stand-in paints it)


def test_another_range_is_another_job(tmp_path, folder_driver):
    out = tmp_path / "out.mp4"
    seen = []

    def stop_after_two(frame, image):
        seen.append(frame.index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(JobInterrupted):
        _renderer().render(str(folder_driver), out, RenderOptions(start=0.08, end=0.32, batch_size=1, progress=False),
                           on_frame=stop_after_two)
    other = RenderOptions(start=0.0, end=0.2, resume=True, progress=False)
    with pytest.raises(RetargetError, match="other inputs or settings"):
        _renderer().render(str(folder_driver), out, other)
    resumed = _renderer().render(str(folder_driver), out,
                                 RenderOptions(start=0.08, end=0.32, resume=True, progress=False))
    assert (resumed.frames, resumed.reused, resumed.rendered) == (6, 2, 4)
    assert out.exists()


def test_a_range_between_two_frames_is_refused_and_leaves_nothing(tmp_path, folder_driver):
    from retarget.errors import BadInputError

    out = tmp_path / "out.mp4"
    with pytest.raises(BadInputError, match="no frame of .* lies in that range"):
        _renderer().render(str(folder_driver), out, RenderOptions(start=0.37, end=0.39, progress=False))
    assert not out.exists() and not list(tmp_path.glob(".out*"))
