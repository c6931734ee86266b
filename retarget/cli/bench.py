"""`retarget bench [perception|gpu]`: figures printed (and written with --json), nothing asserted."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from retarget.tools.benchmark import GPU_MEASUREMENTS
from retarget.errors import quiet_libraries
from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.models import ModelOptions
from retarget.errors import OneLineArgumentParser, RetargetError
from retarget.config.generation import PRESETS


def bench_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="retarget bench",
        description="Benchmarks: figures printed (and written with --json), nothing asserted. "
                    "`retarget bench perception VIDEO` times decode + landmarks + mapping only. "
                    "`retarget bench paste` times full-frame output (paste-back: warp + blend) per photo size. "
                    "`retarget bench gpu` measures everything the performance targets need (speed per preset, "
                    "baseline, memory, compile, channels_last, batch sizes, fp16 vs fp32, FLOPs) in one process "
                    "within --budget seconds and prints each target with PASS/MISS (docs/benchmarks/README.md). "
                    "`retarget bench count` (also --count) counts the work per frame, independent of the machine: "
                    "Python calls per generate with the networks stubbed, aten ops per UNet call, FLOPs per frame.",
    )
    parser.add_argument("stage", nargs="?", choices=("all", "perception", "gpu", "count", "paste"), default="all")
    parser.add_argument("video", nargs="?", type=Path, help="perception: the video to time")
    parser.add_argument("--driver", type=Path, help="driver video (default: a synthetic one)")
    parser.add_argument("--identity", type=Path, help="identity photo for the reference pass (default: random pixels)")
    parser.add_argument("--frames", type=int, default=8, help="frames per end-to-end run (default 8)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--presets", help=f"comma-separated presets from {', '.join(PRESETS)} (default quality,balanced,fast; "
                                           "lcm needs --lcm-lora); bench gpu: default all, with random LCM-LoRA weights when none is given")
    add_knob_options(parser, ModelOptions, only=("models", "lcm_lora", "tiny_vae", "device", "dtype", "landmarker"),
                     defaults={"models": "random:sd15"},
                     helps={"models": "as for --headless; default random:sd15 (full-size shapes: timings do not depend on weights)",
                            "lcm_lora": "LCM-LoRA for the lcm preset", "tiny_vae": "time decoding with TAESD too"})
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions; the best is reported (default 2)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--count", action="store_true", help="the same as the stage `count`")
    parser.add_argument("--no-flops", action="store_true", help="bench count: leave out the FLOPs at SD 1.5 size (about a minute)")
    gpu = parser.add_argument_group("bench gpu")
    gpu.add_argument("--batch-sizes", default="1,4,8", help="offline batch sizes to compare (default 1,4,8)")
    gpu.add_argument("--offline-frames", type=int, default=16, help="frames per offline measurement (default 16)")
    gpu.add_argument("--live-frames", type=int, default=60, help="frames per live latency measurement (default 60; p95 needs >= 50)")
    gpu.add_argument("--baseline-frames", type=int, default=8, help="frames of the demo-structure baseline (default 8)")
    gpu.add_argument("--psnr-seeds", type=int, default=5, help="seeds of the fp16-vs-fp32 comparison (default 5)")
    gpu.add_argument("--budget", type=float, default=450.0,
                     help="wall-clock seconds for the whole run, model building included; measurements that do not fit "
                          "are skipped and listed (default 450)")
    gpu.add_argument("--skip", default="", help=f"comma-separated measurements to leave out: {', '.join(GPU_MEASUREMENTS)}")
    return parser


def run_bench(argv: list[str]) -> int:
    args = bench_parser().parse_args(argv)
    models = from_args(ModelOptions, args)
    if args.stage == "paste":
        from retarget.tools.benchmark.paste import benchmark_paste, print_paste_benchmark

        print_paste_benchmark(benchmark_paste())
        return 0
    if args.stage == "perception":
        if args.video is None:
            raise RetargetError("retarget bench perception needs a VIDEO")
        from retarget.tools.extract import benchmark_perception

        print(benchmark_perception(args.video, landmarker=models.landmarker, repeat=args.repeat))
        return 0
    if args.stage == "gpu":
        return _run_bench_gpu(args, models)
    if args.stage == "count" or args.count:
        return _run_bench_count(args)
    presets = [p.strip() for p in (args.presets or "quality,balanced,fast").split(",") if p.strip()]
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise RetargetError(f"--presets: unknown {unknown[0]}; choose from {', '.join(PRESETS)}")
    if args.frames < 1 or args.batch_size < 1:
        raise RetargetError("--frames and --batch-size must be at least 1")
    if args.repeat < 1:
        raise RetargetError("--repeat must be at least 1")
    if args.json:
        from retarget.outputs import check_file_output

        check_file_output(args.json, [("--driver", args.driver), ("--identity", args.identity)], "--json")
    quiet_libraries()
    from retarget.weights.assets import resolve_models
    from retarget.tools.benchmark.stages import format_table, run_benchmark
    from retarget.outputs import write_json
    from retarget.pipeline import pick_device, pick_dtype

    files = resolve_models(models.models, progress=lambda line: print(line, file=sys.stderr))
    device = pick_device(models.device)
    if "lcm" in presets and not models.lcm_lora:
        raise RetargetError("--presets lcm needs --lcm-lora (latent-consistency/lcm-lora-sdv1-5 or a local copy)")
    results = run_benchmark(files, models, device, pick_dtype(models.dtype, device), driver=args.driver,
                            identity=args.identity, frames=args.frames, batch_size=args.batch_size, presets=presets,
                            repeat=args.repeat, log=lambda line: print(line, file=sys.stderr))
    print(format_table(results))
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


def _positive_ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise RetargetError(f"{flag} {text}: expected whole numbers of at least 1, comma-separated (e.g. 1,4,8)")
    return values


def _run_bench_gpu(args: argparse.Namespace, models: ModelOptions) -> int:
    """`retarget bench gpu`: imports only what the generator needs (no OpenCV, PyAV or MediaPipe unless present)."""
    started = time.perf_counter()
    presets = tuple(p.strip() for p in (args.presets or ",".join(PRESETS)).split(",") if p.strip())
    unknown = [p for p in presets if p not in PRESETS] + [m for m in args.skip.split(",") if m.strip() and m.strip() not in GPU_MEASUREMENTS]
    if unknown:
        raise RetargetError(f"unknown preset or measurement {unknown[0]!r}; presets: {', '.join(PRESETS)}; "
                            f"measurements: {', '.join(GPU_MEASUREMENTS)}")
    for flag, value in (("--offline-frames", args.offline_frames), ("--live-frames", args.live_frames),
                        ("--baseline-frames", args.baseline_frames), ("--psnr-seeds", args.psnr_seeds)):
        if value < 1:
            raise RetargetError(f"{flag} must be at least 1 (got {value})")
    if args.budget <= 0:
        raise RetargetError(f"--budget must be a positive number of seconds (got {args.budget})")
    if args.json:
        from retarget.outputs import check_file_output

        check_file_output(args.json, [("--driver", args.driver)], "--json")
    quiet_libraries()
    from retarget.tools.benchmark.gpu import GpuBenchOptions, run_gpu_benchmark
    from retarget.outputs import write_json
    from retarget.tools.benchmark.report import format_gpu_table
    from retarget.pipeline import pick_device, pick_dtype

    device = pick_device(models.device)
    options = GpuBenchOptions(
        batch_sizes=_positive_ints(args.batch_sizes, "--batch-sizes"), offline_frames=args.offline_frames,
        live_frames=args.live_frames, baseline_frames=args.baseline_frames, psnr_seeds=args.psnr_seeds,
        budget_s=args.budget, presets=presets, lcm_lora=models.lcm_lora, tiny_vae=models.tiny_vae, driver=args.driver,
        landmarker=models.landmarker, skip=tuple(m.strip() for m in args.skip.split(",") if m.strip()), json_path=args.json,
    )
    results = run_gpu_benchmark(models.models, device, pick_dtype(models.dtype, device), options,
                                log=lambda line: print(line, file=sys.stderr, flush=True), started=started)
    print(format_gpu_table(results))
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


def _run_bench_count(args: argparse.Namespace) -> int:
    """`retarget bench count`: deterministic counts of the work per frame (retarget.tools.benchmark.counts)."""
    if args.json:
        from retarget.outputs import check_file_output

        check_file_output(args.json, [], "--json")
    quiet_libraries()
    from retarget.tools.benchmark.counts import format_counts, run_counts
    from retarget.outputs import write_json

    results = run_counts(log=lambda line: print(line, file=sys.stderr, flush=True), flops=not args.no_flops)
    print(format_counts(results))
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0
