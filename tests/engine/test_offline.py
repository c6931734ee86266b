"""The offline engine through the CLI: frame count, rate and audio kept, resume, bad driver files."""

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
from retarget.engine import work_dir_for
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
    from PIL import Image

    for a, b in zip(frames, sorted(straight.glob("*.png"))):
        # The same pixels (each file's signed C2PA manifest differs: its own id and signature, retarget.provenance).
        with Image.open(a) as image_a, Image.open(b) as image_b:
            assert a.name == b.name and np.array_equal(np.asarray(image_a), np.asarray(image_b))
    assert not work.exists()


def test_without_resume_a_stale_job_starts_over(tmp_path, tiny_models_dir, shared_dir, landmarker_path):
    clip = cut_clip(shared_dir / "media" / "driver_d0.mp4", tmp_path / "clip.mp4", 6)
    out = tmp_path / "o.mp4"
    work = work_dir_for(out)
    work.mkdir()
    (work / "frame_000000.png").write_bytes(b"stale")
    assert main([*common_args(tiny_models_dir, shared_dir, landmarker_path), "--driver", str(clip), "--out", str(out)]) == 0
    assert video_facts(out)["frames"] == 6 and not work.exists()


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
