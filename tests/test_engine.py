"""The video engine through the CLI and its classes: audio, extract/CSV, resume, live mode, bad input, batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from retarget.cli import main
from retarget.engine import LiveSession, perception_stream, work_dir_for
from retarget.media.sources import Frame, FrameSource, open_source
from retarget.settings import GenerationSettings
from tests.conftest import cut_clip, needs_shared
from tests.test_cli import assert_one_line_error, run_cli

pytestmark = needs_shared


def video_facts(path: Path) -> dict:
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio
        frames = sum(1 for _ in container.decode(video=0))
        facts = {"frames": frames, "rate": video.average_rate, "audio": None}
    if audio:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            end = max(float((p.pts + p.duration) * stream.time_base) for p in container.demux(stream) if p.pts is not None)
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            facts["audio"] = end - max(start, 0.0)
    return facts


def common_args(models: Path, shared: Path, landmarker: Path) -> list[str]:
    return ["--headless", "--models", str(models), "--landmarker", str(landmarker), "--steps", "1",
            "--identity", str(shared / "media" / "identity_hepburn_small.png")]


def test_video_keeps_frame_count_rate_and_audio(tmp_path, tiny_models_dir, shared_dir, landmarker_path):
    media = shared_dir / "media"
    out = tmp_path / "talk.mp4"
    assert main([*common_args(tiny_models_dir, shared_dir, landmarker_path), "--driver", str(media / "driver_d11_audio.mp4"),
                 "--out", str(out), "--batch-size", "8"]) == 0
    source, result = video_facts(media / "driver_d11_audio.mp4"), video_facts(out)
    assert result["frames"] == source["frames"] == 225
    assert result["rate"] == source["rate"]
    assert abs(result["audio"] - source["audio"]) < 0.05
    assert not work_dir_for(out).exists()

    silent = tmp_path / "silent.mp4"
    both = tmp_path / "both.mp4"
    assert main([*common_args(tiny_models_dir, shared_dir, landmarker_path), "--driver", str(media / "driver_d0.mp4"),
                 "--out", str(silent), "--batch-size", "8", "--side-by-side", str(both)]) == 0
    facts = video_facts(silent)
    assert facts["frames"] == 78 and facts["audio"] is None
    assert video_facts(both)["frames"] == 78


def test_extract_then_csv_drives_like_the_video(tmp_path, shared_dir, landmarker_path, capsys):
    from retarget.driving import DriverAnalyzer
    from retarget.expression.blendshapes import BLENDSHAPE_NAMES
    from retarget.expression.mapping import MappingSettings

    video = shared_dir / "media" / "driver_d0.mp4"
    csv_path = tmp_path / "x.csv"
    assert main(["extract", str(video), "--out", str(csv_path), "--landmarker", str(landmarker_path)]) == 0
    lines = csv_path.read_text().splitlines()
    assert lines[0].split(",") == ["timestamp", *BLENDSHAPE_NAMES]
    assert len(lines) == 1 + 78

    mapping = MappingSettings(relative=True, calibration_window=10, gains={"mouth": 1.4}, mirror=True)

    def vectors(spec: str) -> np.ndarray:
        with open_source(spec) as source, DriverAnalyzer("blendshapes52", landmarker_path, mapping) as analyzer:
            return np.stack([f.expression for f in perception_stream(source, analyzer)])

    from_video, from_csv = vectors(str(video)), vectors(str(csv_path))
    assert from_video.shape == from_csv.shape == (78, 52)
    np.testing.assert_array_equal(from_video, from_csv)


def _count_pngs(work: Path) -> int:
    return len(list(work.glob("frame_*.png"))) if work.exists() else 0


def test_stopped_job_resumes_to_exactly_the_same_frames(tmp_path, tiny_models_dir, shared_dir, landmarker_path):
    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "clip.mp4", 30)
    args = [*common_args(tiny_models_dir, shared_dir, landmarker_path), "--driver", str(clip), "--batch-size", "1"]
    straight = tmp_path / "straight"
    assert main([*args, "--out", str(straight)]) == 0

    out = tmp_path / "resumed"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    process = subprocess.Popen([sys.executable, "-m", "retarget", *args, "--out", str(out)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    work = work_dir_for(out)
    deadline = time.monotonic() + 300
    while _count_pngs(work) < 8 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "--resume" in stderr and "Traceback" not in stderr
    assert not out.exists()  # nothing under the final name
    rendered_before = _count_pngs(work)
    assert 8 <= rendered_before < 30

    assert main([*args, "--out", str(out), "--resume"]) == 0
    frames = sorted(out.glob("*.png"))
    assert len(frames) == 30
    for a, b in zip(frames, sorted(straight.glob("*.png"))):
        assert a.name == b.name and a.read_bytes() == b.read_bytes()
    assert not work.exists()


def test_without_resume_a_stale_job_starts_over(tmp_path, tiny_models_dir, shared_dir, landmarker_path):
    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "clip.mp4", 6)
    out = tmp_path / "o.mp4"
    work = work_dir_for(out)
    work.mkdir()
    (work / "frame_000000.png").write_bytes(b"stale")
    assert main([*common_args(tiny_models_dir, shared_dir, landmarker_path), "--driver", str(clip), "--out", str(out)]) == 0
    assert video_facts(out)["frames"] == 6 and not work.exists()


class CountingSource(FrameSource):
    """A fast live source: frame i carries i in its pixels."""

    live = True

    def __init__(self, limit: int = 10_000):
        self.limit, self.i = limit, 0
        self.fps = 1000.0

    def __next__(self) -> Frame:
        if self.i >= self.limit:
            raise StopIteration
        time.sleep(0.001)
        frame = Frame(index=self.i, time=self.i / 1000.0, image=np.zeros((8, 8, 3), np.uint8))
        self.i += 1
        return frame


class SlowGenerator:
    def __init__(self, source: CountingSource):
        self.source = source
        self.picked: list[tuple[int, int]] = []  # (frame rendered, newest frame captured at that moment)

    def generate(self, context, expressions, settings, **kwargs):
        time.sleep(0.1)
        return np.zeros((len(expressions), 4, 4, 3), np.uint8)


class PassThroughAnalyzer:
    frames_without_face = 0

    def __init__(self, source, generator):
        self.source, self.generator = source, generator

    def __call__(self, frame, capture_time=None):
        from retarget.driving import DrivenFrame

        self.generator.picked.append((frame.index, self.source.i - 1))
        return DrivenFrame(frame.index, frame.time, frame.image, np.zeros(52, np.float32), np.zeros(52, np.float32), True, capture_time)


def test_live_mode_renders_the_newest_frame_with_bounded_memory():
    import tracemalloc

    source = CountingSource()
    generator = SlowGenerator(source)
    outputs = []
    session = LiveSession(generator, None, PassThroughAnalyzer(source, generator), GenerationSettings(), source,
                          on_output=lambda driven, image, stats: outputs.append((driven.index, stats.latency_ms)))
    tracemalloc.start()
    session.start()
    time.sleep(0.6)
    _, peak_early = tracemalloc.get_traced_memory()
    time.sleep(1.2)
    _, peak_late = tracemalloc.get_traced_memory()
    session.stop()
    tracemalloc.stop()
    assert len(outputs) >= 8
    assert session.stats.captured > 10 * len(outputs)  # the source ran far ahead ...
    assert session.stats.dropped > 0  # ... and old frames were dropped, not queued
    for rendered, newest in generator.picked[1:]:
        assert newest - rendered <= 2  # always (one of) the newest frames
    assert peak_late - peak_early < 2_000_000
    assert 90 <= outputs[-1][1] < 1000  # latency covers the 100 ms generation


BAD_DRIVERS = {
    "zero-byte": lambda p: p.write_bytes(b"") or p,
    "random bytes": lambda p: p.write_bytes(os.urandom(4096)) or p,
    "text file": lambda p: p.write_text("hello, not a video\n" * 50) or p,
}


@pytest.mark.parametrize("kind", sorted(BAD_DRIVERS))
def test_bad_driver_files_are_one_line(tmp_path, kind, tiny_models_dir, shared_dir, landmarker_path):
    driver = tmp_path / "bad.mp4"
    BAD_DRIVERS[kind](driver)
    out = tmp_path / "o.mp4"
    result = run_cli([*common_args(tiny_models_dir, shared_dir, landmarker_path), "--driver", str(driver), "--out", str(out)], tmp_path)
    assert_one_line_error(result, "bad.mp4")
    assert not out.exists() and not work_dir_for(out).exists()


def _write_audio_only(path: Path) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = np.zeros((1, 44100), np.float32)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate = 44100
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_more_bad_inputs_are_one_line(tmp_path, tiny_models_dir, shared_dir, landmarker_path):
    media = shared_dir / "media"
    base = common_args(tiny_models_dir, shared_dir, landmarker_path)
    out = tmp_path / "o.mp4"
    cases = []
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes((media / "driver_d0.mp4").read_bytes()[:20_000])
    cases.append(([*base, "--driver", str(truncated)], "truncated.mp4"))
    cases.append(([*base, "--driver", str(_write_audio_only(tmp_path / "voice.m4a"))], "voice.m4a"))
    cases.append(([*base, "--driver", str(tmp_path / "missing.mp4")], "missing.mp4"))
    cases.append(([*base, "--driver", "webcam:0"], "camera"))
    no_face = [a if a != str(media / "identity_hepburn_small.png") else str(media / "noface_alpaca_s23.jpg") for a in base]
    cases.append(([*no_face, "--driver", str(media / "driver_d0.mp4")], "no face"))
    for args, fragment in cases:
        result = run_cli([*args, "--out", str(out)], tmp_path)
        assert_one_line_error(result, fragment)
        assert not out.exists() and not work_dir_for(out).exists(), args


def _launch(launcher_flags: list[str], args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", *launcher_flags, "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "retarget", *args],
        capture_output=True, text=True, env=env, timeout=900,
    )


def _summary_rows(stdout: str, names: tuple[str, ...]) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.startswith(names)]


def test_accelerate_splits_a_folder_of_drivers(tmp_path, tiny_models_dir, shared_dir, landmarker_path):
    drivers = tmp_path / "drivers"
    drivers.mkdir()
    cut_clip(shared_dir / "media" / "driver_d0.mp4", drivers / "a.mp4", 4)
    cut_clip(shared_dir / "media" / "driver_d11_audio.mp4", drivers / "b.mp4", 5)
    base = common_args(tiny_models_dir, shared_dir, landmarker_path)
    # accelerate's torchrun launcher (`--multi_gpu`) starts 2 processes; on a CPU machine they form a gloo group.
    out = tmp_path / "out"
    result = _launch(["--multi_gpu"], [*base, "--driver", str(drivers), "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert video_facts(out / "a.mp4")["frames"] == 4 and video_facts(out / "b.mp4")["frames"] == 5
    rows = _summary_rows(result.stdout, ("a.mp4", "b.mp4"))
    assert sorted(r[0] for r in rows) == ["a.mp4", "b.mp4"]  # each rendered exactly once, reported once
    assert sorted(r[-1] for r in rows) == ["0", "1"]  # by different processes
    # `--cpu` makes accelerate start a single process: still every driver exactly once.
    out_cpu = tmp_path / "out_cpu"
    result = _launch(["--cpu"], [*base, "--driver", str(drivers), "--out", str(out_cpu)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(r[0] for r in _summary_rows(result.stdout, ("a.mp4", "b.mp4"))) == ["a.mp4", "b.mp4"]
    assert video_facts(out_cpu / "a.mp4")["frames"] == 4 and video_facts(out_cpu / "b.mp4")["frames"] == 5


def test_accelerate_splits_one_long_video_into_frame_ranges(tmp_path, tiny_models_dir, shared_dir, landmarker_path):
    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "clip.mp4", 12)
    base = [*common_args(tiny_models_dir, shared_dir, landmarker_path), "--driver", str(clip)]
    single = tmp_path / "single"
    assert main([*base, "--out", str(single)]) == 0
    split = tmp_path / "split"
    result = _launch(["--multi_gpu"], [*base, "--out", str(split)], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _summary_rows(result.stdout, ("clip.mp4",))
    assert sorted(r[-1] for r in rows) == ["0", "1"] and sum(int(r[4]) for r in rows) == 12  # 6 + 6 rendered
    frames = sorted(split.glob("*.png"))
    assert [f.name for f in frames] == [f.name for f in sorted(single.glob("*.png"))]
    # the same frames; pixel values may differ by rounding (other batch split and thread count per process)
    from PIL import Image

    for a, b in zip(frames, sorted(single.glob("*.png"))):
        diff = np.abs(np.asarray(Image.open(a)).astype(int) - np.asarray(Image.open(b)).astype(int))
        assert diff.max() <= 2, a.name


class StillAnalyzer(PassThroughAnalyzer):
    """Expression that changes only every 10th frame."""

    def __call__(self, frame, capture_time=None):
        driven = super().__call__(frame, capture_time)
        driven.expression = np.full(52, (frame.index // 10) * 0.5, np.float32)
        return driven


def test_live_skips_generation_while_the_expression_barely_changes():
    calls = []

    class CountingGenerator(SlowGenerator):
        def generate(self, context, expressions, settings, **kwargs):
            calls.append(float(expressions[0][0]))
            return np.full((1, 4, 4, 3), len(calls), np.uint8)

    source = CountingSource(limit=40)
    generator = CountingGenerator(source)
    outputs = []
    session = LiveSession(generator, None, StillAnalyzer(source, generator), GenerationSettings(), source,
                          on_output=lambda d, image, s: outputs.append(int(image[0, 0, 0])), pace=False, min_change=0.1)
    session.start()
    assert session.wait(timeout=30)
    session.stop()
    assert session.stats.skipped > 0 and len(calls) < session.stats.rendered
    assert len(set(calls)) == len(calls)  # generated only when the expression changed
