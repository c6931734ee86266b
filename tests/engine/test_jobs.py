"""Batches of drivers: which files a driver argument names, the batch's rules and summary, and under accelerate a
folder split across processes and one long video split into frame ranges."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from retarget.cli import main
from retarget.engine import JobSummary
from retarget.config.render import RenderOptions
from retarget.errors import BadInputError
from retarget.engine.jobs import expand_drivers, run_video_jobs, summary_table
from tests.conftest import cut_clip, needs_shared
from tests.engine.test_offline import common_args, video_facts


def _launch(launcher_flags: list[str], args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    return subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", *launcher_flags, "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "retarget", *args],
        capture_output=True, text=True, env=env, timeout=900,
    )


def _summary_rows(stdout: str, names: tuple[str, ...]) -> list[list[str]]:
    return [line.split() for line in stdout.splitlines() if line.startswith(names)]


@needs_shared
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


@needs_shared
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


def test_a_folder_of_images_is_one_driver_and_several_arguments_are_a_batch(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("f1.png", "f2.png"):
        (frames / name).write_bytes(b"")
    assert expand_drivers([frames]) == ([frames], False)  # an image sequence, not a batch of images
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert expand_drivers([clip]) == ([clip], False)
    assert expand_drivers([clip, frames]) == ([clip, frames], True)


class RecordingRenderer:
    """Stands for OfflineRenderer: records what it was asked to render, renders nothing."""

    def __init__(self):
        self.calls = []

    def render(self, driver, out, options, cancel=None, on_frame=None, rank=0):
        self.calls.append((Path(driver).name, Path(out)))
        return JobSummary(driver=str(driver), output=str(out), frames=3, rendered=3, seconds=1.5)


def test_a_batch_renders_each_driver_to_its_own_name_in_the_output_folder(tmp_path):
    renderer = RecordingRenderer()
    drivers = [tmp_path / "a.mp4", tmp_path / "b.csv"]
    summaries = run_video_jobs(renderer, drivers, True, tmp_path / "out", RenderOptions(progress=False))
    assert renderer.calls == [("a.mp4", tmp_path / "out" / "a.mp4"), ("b.csv", tmp_path / "out" / "b.mp4")]
    assert [s.output for s in summaries] == [str(tmp_path / "out" / "a.mp4"), str(tmp_path / "out" / "b.mp4")]


@pytest.mark.parametrize("drivers, out, phrase", [
    (["a.mp4", "b.mp4"], "out.mp4", "need an output folder"),
    (["x/a.mp4", "y/a.csv"], "out", "share the output name a.mp4"),
])
def test_a_batch_that_cannot_be_written_is_refused_before_any_render(tmp_path, drivers, out, phrase):
    renderer = RecordingRenderer()
    with pytest.raises(BadInputError, match=phrase):
        run_video_jobs(renderer, [tmp_path / d for d in drivers], True, tmp_path / out, RenderOptions(progress=False))
    assert renderer.calls == []


def test_the_summary_table_lines_up_its_columns():
    summaries = [JobSummary("/in/short.mp4", "/out/short.mp4", frames=5, rendered=5, seconds=2.0),
                 JobSummary("/in/a_much_longer_name.mp4", "/out/a_much_longer_name.mp4", frames=120, rendered=100,
                            reused=20, seconds=40.0, rank=1)]
    lines = summary_table(summaries).splitlines()
    # No time column (the command prints one total); the process column only for a job split across processes.
    assert lines[0].split() == ["driver", "output", "frames", "no", "face", "rendered", "reused", "frames/s", "process"]
    assert len(lines) == 4 and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[3].split() == ["a_much_longer_name.mp4", "a_much_longer_name.mp4", "120", "0", "100", "20", "2.50", "1"]
    single = summary_table(summaries[:1]).splitlines()
    assert "process" not in single[0] and single[2].split()[-1] == "2.50"
    # Every column starts at the same place on every line.
    column = lines[0].index("frames")
    assert lines[2][column:].split()[0] == "5" and lines[3][column:].split()[0] == "120"
