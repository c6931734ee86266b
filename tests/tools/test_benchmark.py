"""`retarget bench` and `retarget bench gpu` run on the CPU with tiny models; figures are not asserted, structure is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from retarget.cli import main
from tests.conftest import needs_shared

ROOT = Path(__file__).resolve().parents[2]


@needs_shared
def test_bench_reports_every_stage_and_the_baseline(tmp_path, tiny_models_dir, landmarker_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "--models", str(tiny_models_dir), "--frames", "2", "--batch-size", "2", "--repeat", "1",
                 "--presets", "quality,fast", "--landmarker", str(landmarker_path), "--json", str(out)])
    assert code == 0
    results = json.loads(out.read_text())
    for stage in ("decode_fps", "decode_perception_mapping_fps", "mapping_ms_per_frame", "identity_context_ms",
                  "unet_step_ms", "vae_decode_ms_per_frame", "encode_ms_per_frame"):
        assert results["stages"][stage] > 0, stage
    assert set(results["presets"]) == {"quality", "fast"}
    assert results["presets"]["fast"]["steps"] < results["presets"]["quality"]["steps"]
    assert results["baseline"]["speedup_quality_vs_baseline"] > 0
    assert {"device", "versions", "models", "dtype"} <= set(results)
    table = capsys.readouterr().out
    assert "baseline" in table and "UNet step" in table


# The GPU machine has no PyAV, MediaPipe or (in a fresh venv) OpenCV: the run must not need them.
BLOCKED_RUN = "import sys; sys.modules.update(cv2=None, av=None, mediapipe=None); from retarget.cli import main; sys.exit(main(sys.argv[1:]))"


def test_bench_gpu_runs_the_whole_path_on_tiny_models_without_av_mediapipe_or_opencv(tmp_path, tiny_models_dir):
    """The command a GPU session runs once: every measurement present, random weights declared, targets tabled."""
    out = tmp_path / "gpu.json"
    temp = tmp_path / "temp"
    temp.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp),
           "OMP_NUM_THREADS": "1"}  # one thread: on oversubscribed CI cores two spinning threads are many times slower
    done = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, "bench", "gpu", "--models", str(tiny_models_dir), "--presets", "quality,lcm",
         "--batch-sizes", "1,2", "--offline-frames", "2", "--live-frames", "2", "--baseline-frames", "1",
         "--psnr-seeds", "2", "--budget", "3000", "--json", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["errors"] == []
    # Only perception is left out, and it says why (no PyAV/MediaPipe here).
    assert [s["measurement"] for s in results["skipped"]] == ["perception"]
    assert "not installed" in results["perception"]["skipped"]
    assert {"device", "gpu", "versions", "models", "dtype", "budget", "setup", "unet", "baseline", "offline", "live",
            "psnr", "channels_last", "compiled", "targets", "notes"} <= set(results)
    assert {"torch", "cuda", "diffusers", "transformers", "peft"} <= set(results["versions"])
    # Every measurement of the issue, with its figures.
    unet = results["unet"]
    assert unet["flops_per_frame_step_cfg"] > 0 and unet["matmul_peak_tflops"] > 0
    assert set(unet["step"]["eager"]) == {"batch_1", "batch_2"} and set(unet["step"]["compiled"]) == {"batch_2"}
    for step in (*unet["step"]["eager"].values(), unet["step"]["compiled"]["batch_2"], results["channels_last"]["unet_step"]):
        assert step["ms"] > 0 and step["achieved_tflops"] > 0 and 0 < step["fraction_of_matmul_peak"]
    assert results["baseline"]["offline_fps"] > 0 and results["baseline"]["steps"] == 25
    assert set(results["offline"]["quality"]["eager"]) == {"batch_1", "batch_2"}
    assert set(results["offline"]["quality"]["compiled"]) == {"batch_2"}
    assert set(results["offline"]) == {"quality", "lcm"}
    offline_figures = [*results["offline"]["quality"]["eager"].values(), results["offline"]["quality"]["compiled"]["batch_2"],
                       results["offline"]["lcm"]["eager"]["batch_2"], results["channels_last"]["offline_quality"]]
    assert all(f["fps"] > 0 and "peak_memory_gb" in f for f in offline_figures)
    assert set(results["live"]) == {"quality", "lcm", "lcm+taesd"}
    assert set(results["live"]["lcm+taesd"]) == {"eager", "compiled"}
    for live in (results["live"]["quality"]["eager"], results["live"]["lcm"]["eager"], *results["live"]["lcm+taesd"].values()):
        assert live["frames"] == 2 and live["p95_ms"] >= live["median_ms"] > 0 and "peak_memory_gb" in live
    psnr = results["psnr"]
    assert psnr["reduced"] == "bfloat16" and len(psnr["psnr_db"]) == 2 and psnr["min_db"] == min(psnr["psnr_db"])
    assert results["compiled"]["backend"].startswith("eager")  # the CPU checks the path; CUDA uses inductor
    # The random weights are declared: the models, the LCM-LoRA and TAESD.
    notes = " ".join(results["notes"])
    assert "random weights in the published layouts" in notes
    assert "LCM-LoRA: random weights" in notes and "latent-consistency/lcm-lora-sdv1-5" in notes
    assert "TAESD: a random AutoencoderTiny" in notes
    # Every target is stated; on a CPU with tiny models none of them is checked.
    names = [t["target"] for t in results["targets"]]
    assert len(names) == 5 and not any(t["applies"] for t in results["targets"])
    assert {t["status"] for t in results["targets"]} <= {"PASS", "MISS", "NOT MEASURED"}
    memory = next(t for t in results["targets"] if "memory" in t["target"])
    assert memory["status"] == "NOT MEASURED"  # no CUDA, no max_memory_allocated
    for name in names:
        assert name in done.stdout
    assert "PASS" in done.stdout or "MISS" in done.stdout
    assert not list(temp.glob("retarget-bench*"))  # the random LCM-LoRA and TAESD went with their temporary folder


def test_bench_gpu_skips_what_the_budget_cannot_fit_and_says_so(tmp_path, tiny_models_dir):
    out = tmp_path / "gpu.json"
    code = main(["bench", "gpu", "--models", str(tiny_models_dir), "--presets", "fast", "--batch-sizes", "1",
                 "--live-frames", "1", "--offline-frames", "1", "--budget", "0.001",
                 "--skip", "perception", "--json", str(out)])
    assert code == 0
    results = json.loads(out.read_text())
    skipped = {s["measurement"]: s["reason"] for s in results["skipped"]}
    assert skipped["perception"] == "--skip"
    assert "time budget" in skipped["baseline"] and "time budget" in skipped["compiled live lcm + TAESD"]
    assert results["live"]["lcm+taesd"]["compiled"]["skipped"].startswith("time budget")
    assert all(t["status"] == "NOT MEASURED" for t in results["targets"])


def test_bench_gpu_rejects_unknown_measurements(capsys):
    assert main(["bench", "gpu", "--models", "random:tiny", "--skip", "everything"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "everything" in err[0] and "compiled_live" in err[0]


def test_targets_pass_and_miss_on_gpu_figures():
    """The target logic on figures shaped like a CUDA run's (none can be measured here): each threshold, both sides."""
    from retarget.tools.benchmark.report import evaluate_targets, format_gpu_table

    def figures(offline_fps, baseline_fps, live_ms, p95_ms, memory_gb, psnr):
        live = {"frames": 60, "median_ms": live_ms, "p95_ms": p95_ms, "min_ms": live_ms, "max_ms": p95_ms,
                "fps_at_median": 1000 / live_ms, "peak_memory_gb": memory_gb}
        return {
            "gpu": {"name": "NVIDIA H100 80GB HBM3", "driver": "580"}, "dtype": "float16", "setup": {"image_size": 512},
            "device": "NVIDIA H100 80GB HBM3", "models": "random:sd15", "notes": [], "skipped": [], "errors": [],
            "versions": {"torch": "2.11", "cuda": "13.0", "diffusers": "0.42.1", "transformers": "5.17", "peft": "0.17"},
            "budget": {"seconds": 450, "used_s": 400}, "perception": {"skipped": "not installed"}, "unet": {},
            "baseline": {"offline_fps": baseline_fps, "frames": 8, "steps": 25, "batch": 1},
            "offline": {"quality": {"eager": {"batch_1": {"fps": offline_fps / 3, "frames": 16, "batch": 1, "peak_memory_gb": 3.0}},
                                    "compiled": {"batch_8": {"fps": offline_fps, "frames": 16, "batch": 8, "peak_memory_gb": 9.0}}}},
            "live": {"quality": {"eager": {**live, "peak_memory_gb": 3.5}}, "lcm+taesd": {"eager": live, "compiled": live}},
            "psnr": {"reduced": "float16", "reference": "float32 (TF32 off)", "psnr_db": [psnr, psnr + 1], "min_db": psnr, "seeds": [0, 1]},
            "channels_last": {}, "compiled": {},
        }

    good = figures(offline_fps=9.0, baseline_fps=2.0, live_ms=30.0, p95_ms=110.0, memory_gb=4.0, psnr=36.0)
    assert [t["status"] for t in evaluate_targets(good)] == ["PASS"] * 5
    assert all(t["applies"] for t in evaluate_targets(good))
    bad = figures(offline_fps=7.0, baseline_fps=2.0, live_ms=45.0, p95_ms=130.0, memory_gb=8.5, psnr=34.0)
    statuses = {t["target"]: t["status"] for t in evaluate_targets(bad)}
    assert list(statuses.values()) == ["MISS"] * 5
    # the batch-8 figure's 9 GB does not count against the batch-1 memory target
    assert next(t for t in evaluate_targets(good) if "memory" in t["target"])["value"] == "4.00 GB"
    good["targets"] = evaluate_targets(good)
    table = format_gpu_table(good)
    assert "9.00 frames/s (compiled, batch 8)" in table and "4.50x" in table and "PASS" in table and "*" not in table.split("targets")[-1]


def test_bench_count_prints_and_writes_the_counts(tmp_path, capsys):
    """`retarget bench count` (without the minute of FLOPs): structural counts, the same on every machine."""
    from retarget.config.generation import PRESETS

    out = tmp_path / "counts.json"
    assert main(["bench", "--count", "--no-flops", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "python calls/generate" in printed and f"wrote {out}" in printed
    counts = json.loads(out.read_text())
    assert counts["commit"] and counts["modules_in_unet"] > 1000  # SD 1.5's module tree with the LoRAs
    for name, preset in PRESETS.items():
        host = counts["host"][name]
        assert host["unet_calls_per_frame"] == preset.steps and host["vae_calls_per_frame"] == 1
        assert 0 < host["python_calls_per_generate"] <= (3_000 if name == "lcm" else 10_000)
    assert counts["offline"]["perception_calls_per_frame"] == 1 and counts["offline"]["vae_calls_per_frame"] == 0.25
    ops = counts["ops_per_unet_call"]
    assert ops["lcm"] <= 1.1 * ops["lcm_bare_unet"] and ops["quality"] <= 1.1 * ops["quality_bare_unet"]


def test_bench_paste_prints_a_row_per_photo_size(capsys):
    from retarget.tools.benchmark.paste import benchmark_paste, print_paste_benchmark

    rows = benchmark_paste(sizes=((320, 240), (1280, 720)), frames=2, batch=2)
    print_paste_benchmark(rows)
    printed = capsys.readouterr().out
    assert "320x240" in printed and "1280x720" in printed and "CPUs" in printed
    assert [r["photo"] for r in rows[:-1]] == ["320x240", "1280x720"]
    assert rows[0]["upsampling"] < 1 < rows[1]["upsampling"] * 2 and all(r["ms_per_frame"] > 0 for r in rows[:-1])
