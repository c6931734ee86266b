"""Batches of drivers under accelerate: a folder split across processes, one long video split into frame ranges."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from retarget.cli import main
from tests.conftest import cut_clip, needs_shared
from tests.engine.test_offline import common_args, video_facts


pytestmark = needs_shared


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
