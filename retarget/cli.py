"""`retarget`: the desktop app with no arguments; `--headless` renders without a window.

Subcommands: `download` (the published weights), `testmodels` (random test sets).
Every failure ends in one line on stderr and a non-zero exit, never a traceback
(RETARGET_DEBUG=1 shows it for bug reports).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from retarget.benchmark import GPU_MEASUREMENTS
from retarget.errors import EXIT_INCOMPLETE, BadInputError, RetargetError, run_command
from retarget.settings import PAPER_CFG, PAPER_EXP_SCALE, PAPER_REF_SCALE, PAPER_STEPS, PRESETS, GenerationSettings, check_number

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}

MODELS_HELP = (
    "hub (default: FoivosPar/Arc2Face + SD 1.5 VAE/tokenizer/scheduler through the Hugging Face cache), "
    "a models folder, or random:tiny / random:sd15 (randomly initialised TEST MODELS: output is noise)"
)


def _quiet_libraries() -> None:
    os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.set_verbosity_error()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()


def headless_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retarget",
        description="ID-consistent facial expression retargeting. With no arguments, opens the desktop app.",
        epilog="Subcommands: extract VIDEO --out X.csv | bench | eval | download --to DIR | testmodels --size tiny|sd15 --out DIR "
               "(each with --help).",
    )
    parser.add_argument("--headless", action="store_true", help="render without a window")
    parser.add_argument("--identity", type=Path, help="photo of the person to render")
    parser.add_argument("--driver", type=Path, nargs="+",
                        help="driver: an image, a video, a folder of images, a blendshape CSV (ours or Live Link Face), "
                             "webcam:N; several files or a folder of videos render as a batch")
    parser.add_argument("--out", type=Path,
                        help="output: an image for an image driver; a video (.mp4) for a video/CSV driver, or a folder "
                             "(PNG sequence); a folder for a batch")
    parser.add_argument("--models", default="hub", help=MODELS_HELP)
    parser.add_argument("--exp-adapter", type=Path, help="use this Expression Adapter file instead of the models folder's")
    parser.add_argument("--ref-lora", type=Path, help="use this Reference Adapter LoRA file instead of the models folder's")
    parser.add_argument("--landmarker", type=Path, help="MediaPipe face_landmarker.task (default: models folder, $RETARGET_FACE_LANDMARKER, cache, download)")
    parser.add_argument("--smirk", type=Path, help="SMIRK_em1.pt for FLAME-55 adapters (default: MODELS/smirk/SMIRK_em1.pt)")
    parser.add_argument("--steps", type=int, default=PAPER_STEPS, help=f"DPM-Solver++ steps (default {PAPER_STEPS})")
    parser.add_argument("--cfg", type=float, default=PAPER_CFG, help=f"classifier-free guidance (default {PAPER_CFG})")
    parser.add_argument("--ref-scale", type=float, default=PAPER_REF_SCALE, help=f"Reference Adapter scale, 0 = off (default {PAPER_REF_SCALE})")
    parser.add_argument("--exp-scale", type=float, default=PAPER_EXP_SCALE, help=f"Expression Adapter scale (default {PAPER_EXP_SCALE})")
    parser.add_argument("--no-reference", action="store_true", help="switch the Reference Adapter off (and do not load it)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial noise (default 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--dtype", choices=("auto", "fp16", "bf16", "fp32"), default="auto", help="auto = fp16 on CUDA, fp32 elsewhere")
    speed = parser.add_argument_group("speed")
    speed.add_argument("--preset", choices=tuple(PRESETS),
                       help="sampling preset, overriding --steps/--cfg: "
                            + "; ".join(f"{p.name} = {p.steps} steps, CFG {p.cfg} ({p.trade})" for p in PRESETS.values()))
    speed.add_argument("--lcm-lora", metavar="SRC", help="load the LCM-LoRA (latent-consistency/lcm-lora-sdv1-5, a folder or file) for --preset lcm")
    speed.add_argument("--compile", action="store_true", help="torch.compile the UNet (CUDA graphs on CUDA); slow first frames, same output")
    speed.add_argument("--channels-last", action="store_true", help="NHWC memory layout (faster on GPUs, same output)")
    speed.add_argument("--tiny-vae", metavar="SRC", help="decode with TAESD (e.g. madebyollin/taesd or a folder): faster, slightly less detail")
    speed.add_argument("--min-change", type=float, default=0.0,
                       help="live: skip generation while the expression changed less than this (mean absolute change); 0 = off")
    video = parser.add_argument_group("video drivers")
    video.add_argument("--batch-size", type=int, default=4, help="frames per generator call (default 4)")
    video.add_argument("--resume", action="store_true", help="continue a stopped job from the frames already rendered")
    video.add_argument("--side-by-side", type=Path, help="also write a driver|output video here")
    video.add_argument("--per-frame-noise", action="store_true", help="new noise every frame (default: one fixed noise keeps video stable)")
    mapping = parser.add_argument_group("expression mapping")
    mapping.add_argument("--no-smoothing", action="store_true", help="turn One Euro smoothing off (on by default)")
    mapping.add_argument("--smoothing-cutoff", type=float, default=1.0, help="One Euro min cutoff in Hz (lower = smoother; default 1.0)")
    mapping.add_argument("--smoothing-beta", type=float, default=0.3, help="One Euro speed coefficient (higher = less lag; default 0.3)")
    mapping.add_argument("--relative", action="store_true", help="map the driver's change from its neutral face onto the identity's own expression")
    mapping.add_argument("--neutral-frame", type=int, help="relative mode: this driver frame is the neutral face (default: the median of the first second)")
    mapping.add_argument("--intensity", type=float, default=1.0, help="overall expression intensity (default 1.0)")
    mapping.add_argument("--gain", action="append", default=[], metavar="NAME=VALUE",
                         help="gain for a blendshape or a region (brows, eyes, mouth, jaw, cheeks, nose); repeatable. "
                              "The FLAME-55 adapter takes eyes (eyelids), jaw and expression (its 50 coefficients together)")
    mapping.add_argument("--mirror", action="store_true", help="swap left and right (selfie cameras); FLAME-55: the driver image is flipped before SMIRK")
    return parser


def mapping_settings(args: argparse.Namespace):
    from retarget.expression.mapping import MappingSettings

    gains = {}
    for item in args.gain:
        name, sep, value = item.partition("=")
        try:
            gains[name.strip()] = float(value)
        except ValueError:
            raise RetargetError(f"--gain {item}: expected NAME=VALUE, e.g. --gain mouth=1.5") from None
        if not sep:
            raise RetargetError(f"--gain {item}: expected NAME=VALUE, e.g. --gain mouth=1.5")
    settings = MappingSettings(
        smoothing=not args.no_smoothing,
        min_cutoff=args.smoothing_cutoff,
        beta=args.smoothing_beta,
        relative=args.relative,
        intensity=args.intensity,
        gains=gains,
        mirror=args.mirror,
    )
    settings.validate()
    return settings


def extract_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retarget extract", description="Write the 52 MediaPipe blendshapes of every frame of a video to CSV.")
    parser.add_argument("video", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="CSV file: a timestamp column and the 52 named columns, one row per frame")
    parser.add_argument("--landmarker", type=Path, help="MediaPipe face_landmarker.task")
    return parser


def bench_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retarget bench",
        description="Benchmarks: figures printed (and written with --json), nothing asserted. "
                    "`retarget bench perception VIDEO` times decode + landmarks + mapping only. "
                    "`retarget bench gpu` measures everything the performance targets need (speed per preset, "
                    "baseline, memory, compile, channels_last, batch sizes, fp16 vs fp32, FLOPs) in one process "
                    "within --budget seconds and prints each target with PASS/MISS (docs/benchmarks/README.md).",
    )
    parser.add_argument("stage", nargs="?", choices=("all", "perception", "gpu"), default="all")
    parser.add_argument("video", nargs="?", type=Path, help="perception: the video to time")
    parser.add_argument("--models", default="random:sd15", help="as for --headless; default random:sd15 (full-size shapes: timings do not depend on weights)")
    parser.add_argument("--driver", type=Path, help="driver video (default: a synthetic one)")
    parser.add_argument("--identity", type=Path, help="identity photo for the reference pass (default: random pixels)")
    parser.add_argument("--frames", type=int, default=8, help="frames per end-to-end run (default 8)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--presets", help=f"comma-separated presets from {', '.join(PRESETS)} (default quality,balanced,fast; "
                                           "lcm needs --lcm-lora); bench gpu: default all, with random LCM-LoRA weights when none is given")
    parser.add_argument("--lcm-lora", metavar="SRC", help="LCM-LoRA for the lcm preset")
    parser.add_argument("--tiny-vae", metavar="SRC", help="time decoding with TAESD too")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=("auto", "fp16", "bf16", "fp32"), default="auto")
    parser.add_argument("--landmarker", type=Path)
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions; the best is reported (default 2)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
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


def download_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retarget download",
        description="Fetch every file of the published pipeline into a models folder: the FoivosPar/Arc2Face repo, "
                    "the SD 1.5 VAE/tokenizer/scheduler, SMIRK_em1.pt and the antelopev2 detector (Google Drive, via gdown) "
                    "and MediaPipe's face_landmarker.task. Files already there are skipped; interrupted downloads resume.")
    parser.add_argument("--to", type=Path, required=True, help="models folder to fill (created if needed)")
    return parser


def testmodels_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="retarget testmodels",
        description="Write a RANDOMLY INITIALISED model set in the published layout (for tests and timing; output is noise).",
    )
    parser.add_argument("--size", choices=("tiny", "sd15"), default="tiny")
    parser.add_argument("--out", type=Path, required=True, help="folder to create")
    parser.add_argument("--exp-dim", type=int, choices=(55, 52, 51), default=55, help="Expression Adapter input width (55 = FLAME, 52/51 = blendshapes)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _dtype(name: str, device):
    from retarget.pipeline import pick_dtype

    return pick_dtype(name, device)


def _input_paths(args: argparse.Namespace) -> list[tuple[str, object]]:
    """Every file or folder the job reads, by flag: no output may be, contain or lie inside one of them."""
    inputs = [("--identity", args.identity), *(("--driver", d) for d in args.driver)]
    if args.models not in ("hub",) and not str(args.models).startswith("random:"):
        inputs.append(("--models", args.models))
    for flag in ("exp_adapter", "ref_lora", "landmarker", "smirk"):
        inputs.append((f"--{flag.replace('_', '-')}", getattr(args, flag)))
    for flag in ("lcm_lora", "tiny_vae"):
        value = getattr(args, flag)
        if value and Path(value).exists():
            inputs.append((f"--{flag.replace('_', '-')}", value))
    return inputs


def check_outputs(args: argparse.Namespace, still: bool, batch: bool) -> None:
    """Before any work: every output is a new or our own path, writable, and none is an input."""
    from retarget.outputs import check_file_output, check_folder_target, check_output, check_writable

    inputs = _input_paths(args)
    png_sequence = not still and not batch and args.out.suffix == ""
    if batch or png_sequence:
        check_output(args.out, inputs)
        check_writable(args.out)
        if png_sequence:
            check_folder_target(args.out)
    else:
        check_file_output(args.out, inputs)
    if args.side_by_side is not None:
        check_file_output(args.side_by_side, [*inputs, ("--out", args.out)], "--side-by-side")


def check_numbers(args: argparse.Namespace) -> None:
    """Numeric flags that GenerationSettings/MappingSettings do not hold (NaN passes a `<` check, so test finiteness)."""
    check_number("--min-change", args.min_change, low=0.0)
    if args.batch_size < 1:
        raise RetargetError(f"--batch-size must be at least 1 (got {args.batch_size})")
    if args.neutral_frame is not None and args.neutral_frame < 0:
        raise RetargetError(f"--neutral-frame must be 0 or more (got {args.neutral_frame})")


def run_headless(args: argparse.Namespace) -> int:
    for flag in ("identity", "driver", "out"):
        if getattr(args, flag) is None:
            raise RetargetError(f"--headless needs --{flag}")
    settings = GenerationSettings(
        steps=args.steps,
        cfg=args.cfg,
        ref_scale=args.ref_scale,
        exp_scale=args.exp_scale,
        use_reference=not args.no_reference,
        seed=args.seed,
        per_frame_noise=args.per_frame_noise,
    )
    if args.preset:
        from retarget.settings import preset_settings

        settings = preset_settings(args.preset, settings)
    settings.validate()
    mapping = mapping_settings(args)
    check_numbers(args)
    drivers = args.driver
    still = len(drivers) == 1 and drivers[0].suffix.lower() in IMAGE_SUFFIXES
    if still and args.out.suffix.lower() not in IMAGE_SUFFIXES:
        raise BadInputError(f"--out {args.out}: an image driver gives an image; use {', '.join(sorted(IMAGE_SUFFIXES))}")
    webcam = len(drivers) == 1 and (str(drivers[0]).startswith("webcam:") or str(drivers[0]).startswith("/dev/video"))
    batch = False
    if not still and not webcam:
        from retarget.jobs import expand_drivers

        drivers, batch = expand_drivers(drivers)
    check_outputs(args, still, batch)

    from retarget.face.image_io import load_image

    identity_image = load_image(args.identity)
    driver_image = load_image(drivers[0]) if still else None
    if not still and not webcam:
        from retarget.media.sources import open_source

        for driver in drivers:  # every driver is probed before any model loads or any output exists
            with open_source(str(driver)) as source:
                count = source.frame_count
            if args.neutral_frame is not None and count is not None and args.neutral_frame >= count:
                raise BadInputError(f"--neutral-frame {args.neutral_frame}: {driver} has {count} frames (0 to {count - 1})")
    if webcam:
        from retarget.media.sources import open_source

        open_source(str(drivers[0])).close()

    _quiet_libraries()
    from retarget.assets import resolve_models
    from retarget.jobs import distributed_state
    from retarget.pipeline import pick_device
    from retarget.retargeter import Retargeter

    started = time.perf_counter()
    state = None if still or webcam else distributed_state()
    files = resolve_models(args.models, progress=lambda line: print(line, file=sys.stderr))
    if files.is_test_model and (state is None or state.is_main_process):
        print(f"note: using {files.description}", file=sys.stderr)
    device = state.device if state is not None and state.device.type == "cuda" else pick_device(args.device)
    with Retargeter(
        files,
        device=device,
        dtype=_dtype(args.dtype, device),
        exp_adapter=args.exp_adapter,
        ref_lora=args.ref_lora,
        use_reference=settings.reference_active,
        landmarker_path=args.landmarker,
        smirk_path=args.smirk,
    ) as retargeter:
        if args.channels_last:
            retargeter.pipeline.enable_channels_last()
        if args.compile:
            retargeter.pipeline.enable_compile()
        if args.tiny_vae:
            retargeter.pipeline.use_tiny_vae(args.tiny_vae)
        if args.lcm_lora:
            retargeter.pipeline.load_lcm_lora(args.lcm_lora)
        context = retargeter.identity_from_image(identity_image, source=str(args.identity))
        if still:
            from retarget.outputs import write_image

            expression = retargeter.expression_from_image(driver_image, source=str(drivers[0]), mapping=mapping,
                                                          identity_neutral=context.blendshapes)
            image = retargeter.render(context, expression[None], settings, progress=sys.stderr.isatty())[0]
            write_image(args.out, image)
            size = f"{image.shape[1]}x{image.shape[0]}"
            print(f"wrote {args.out} ({size}) in {time.perf_counter() - started:.1f} s on {device} with {files.description}")
            return 0
        neutral = _neutral_from_frame(retargeter, str(drivers[0]), args.neutral_frame, mapping.mirror) if args.neutral_frame is not None else None

        def make_analyzer():
            analyzer = retargeter.driver_analyzer(mapping, identity_neutral=context.blendshapes, identity_flame=context.flame)
            if neutral is not None:
                analyzer.set_neutral_from(neutral)
            return analyzer

        if webcam:
            return _run_live(retargeter, context, make_analyzer(), settings, str(drivers[0]), args.out, args.min_change)
        return _run_offline(retargeter, context, make_analyzer, settings, drivers, batch, args, files, state, started, mapping)


def _neutral_from_frame(retargeter, driver: str, index: int, mirror: bool = False):
    from retarget.media.sources import open_source

    with open_source(driver) as source:
        for frame in source:
            if frame.index == index:
                if frame.image is None:
                    if frame.blendshapes is None:
                        raise BadInputError(f"--neutral-frame {index}: {driver} has no face in that row")
                    return frame.blendshapes
                return retargeter.driver_neutral(frame.image, f"frame {index} of {driver}", mirror)
    raise BadInputError(f"--neutral-frame {index}: {driver} has fewer frames")


def _run_offline(retargeter, context, make_analyzer, settings, drivers, batch, args, files, state, started, mapping) -> int:
    from retarget.engine import OfflineRenderer, RenderOptions, job_key
    from retarget.jobs import print_summary, run_video_jobs

    key = job_key(args.identity, files.description, args.exp_adapter, args.ref_lora, models=files)
    renderer = OfflineRenderer(retargeter.pipeline, context, make_analyzer, settings, key, mapping=mapping)
    options = RenderOptions(
        batch_size=args.batch_size,
        side_by_side=args.side_by_side,
        resume=args.resume,
        progress=sys.stderr.isatty(),
    )
    summaries = run_video_jobs(renderer, drivers, batch, args.out, options, state=state)
    print_summary(summaries, state)
    incomplete = [s for s in summaries if s.incomplete]
    if state is None or state.is_main_process:
        print(f"done in {time.perf_counter() - started:.1f} s; output: {args.out}")
        for summary in incomplete:
            print(f"retarget: warning: {summary.output} is shorter than its driver {summary.driver}: {summary.incomplete} "
                  f"(exit code {EXIT_INCOMPLETE})", file=sys.stderr)
    return EXIT_INCOMPLETE if incomplete else 0


def _run_live(retargeter, context, analyzer, settings, driver: str, out: Path, min_change: float = 0.0) -> int:
    """Webcam without a window: render the newest frame continuously and record it until Ctrl-C.

    The recording is written with each frame's capture time (TimedVideoSink), so it plays in real
    time however fast the generator is.
    """
    from retarget.engine import LiveSession
    from retarget.media.sinks import TimedVideoSink
    from retarget.media.sources import open_source

    if out.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise BadInputError(f"--out {out}: live recording writes a video (.mp4)")
    size = retargeter.pipeline.image_size
    sink = TimedVideoSink(out, (size, size))  # before the camera: a sink that cannot open leaves no camera open
    try:
        source = open_source(driver)
    except BaseException:
        sink.abort()
        raise
    session = LiveSession(retargeter.pipeline, context, analyzer, settings, source,
                          on_output=lambda driven, image, stats: sink.write(image, driven.capture_time),
                          min_change=min_change)
    session.start()
    try:
        while not session.wait(timeout=1.0):
            s = session.stats
            print(f"\rin {s.input_fps:5.1f} fps  out {s.output_fps:5.1f} fps  latency {s.latency_ms:6.0f} ms", end="", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stopped_at = time.monotonic()
        session.stop()
        print(file=sys.stderr)
    if session.error is not None and not isinstance(session.error, StopIteration):
        sink.abort()
        raise session.error if isinstance(session.error, RetargetError) else RetargetError(f"live stream stopped: {session.error}")
    if sink.frames_written == 0:
        sink.abort()
        raise RetargetError(f"no frame was rendered before the stream stopped, so {out} was not written")
    sink.close(end_time=stopped_at)
    print(f"recorded {sink.frames_written} frames ({sink.seconds:.1f} s) to {out}")
    return 0


def run_download(argv: list[str]) -> int:
    args = download_parser().parse_args(argv)
    from retarget.assets import download_models

    folder = download_models(args.to)
    print(f"models ready in {folder}; use --models {folder}")
    return 0


def run_testmodels(argv: list[str]) -> int:
    args = testmodels_parser().parse_args(argv)
    _quiet_libraries()
    from retarget.testmodels import write_test_models

    try:
        write_test_models(args.out, size=args.size, seed=args.seed, exp_dim=args.exp_dim)
    except FileExistsError as err:
        raise RetargetError(str(err)) from None
    print(f"wrote RANDOM {args.size} test models to {args.out} (not real weights; use --models {args.out} for tests only)")
    return 0


# Options the desktop app takes too: `retarget --models DIR` opens the window on those models.
APP_OPTIONS = ("--models", "--landmarker", "--device", "--smirk", "--lcm-lora", "--identity", "--driver")


def run_app(argv: list[str] | None = None) -> int:
    try:
        from gui.app import main as app_main
    except ImportError as err:
        raise RetargetError(
            f"the desktop app is not available ({err}); install it with `pip install -e .[gui]` or use `retarget --headless ...`"
        ) from None
    return app_main(argv or [])


def run_extract(argv: list[str]) -> int:
    args = extract_parser().parse_args(argv)
    from retarget.extract import extract_blendshapes

    summary = extract_blendshapes(args.video, args.out, landmarker=args.landmarker, progress=sys.stderr.isatty())
    print(f"wrote {args.out}: {summary.frames} rows, {summary.frames_without_face} without a face")
    return 0


def run_bench(argv: list[str]) -> int:
    args = bench_parser().parse_args(argv)
    if args.stage == "perception":
        if args.video is None:
            raise RetargetError("retarget bench perception needs a VIDEO")
        from retarget.extract import benchmark_perception

        print(benchmark_perception(args.video, landmarker=args.landmarker, repeat=args.repeat))
        return 0
    if args.stage == "gpu":
        return _run_bench_gpu(args)
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
    _quiet_libraries()
    from retarget.assets import resolve_models
    from retarget.benchmark.stages import format_table, run_benchmark
    from retarget.outputs import write_json
    from retarget.pipeline import pick_device

    files = resolve_models(args.models, progress=lambda line: print(line, file=sys.stderr))
    device = pick_device(args.device)
    if "lcm" in presets and not args.lcm_lora:
        raise RetargetError("--presets lcm needs --lcm-lora (latent-consistency/lcm-lora-sdv1-5 or a local copy)")
    results = run_benchmark(files, device, _dtype(args.dtype, device), driver=args.driver, identity=args.identity,
                            landmarker=args.landmarker, frames=args.frames, batch_size=args.batch_size,
                            presets=presets, repeat=args.repeat, log=lambda line: print(line, file=sys.stderr),
                            lcm_lora=args.lcm_lora, tiny_vae=args.tiny_vae)
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


def _run_bench_gpu(args: argparse.Namespace) -> int:
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
    _quiet_libraries()
    from retarget.benchmark.gpu import GpuBenchOptions, run_gpu_benchmark
    from retarget.outputs import write_json
    from retarget.benchmark.report import format_gpu_table
    from retarget.pipeline import pick_device

    device = pick_device(args.device)
    options = GpuBenchOptions(
        batch_sizes=_positive_ints(args.batch_sizes, "--batch-sizes"), offline_frames=args.offline_frames,
        live_frames=args.live_frames, baseline_frames=args.baseline_frames, psnr_seeds=args.psnr_seeds,
        budget_s=args.budget, presets=presets, lcm_lora=args.lcm_lora, tiny_vae=args.tiny_vae, driver=args.driver,
        landmarker=args.landmarker, skip=tuple(m.strip() for m in args.skip.split(",") if m.strip()), json_path=args.json,
    )
    results = run_gpu_benchmark(args.models, device, _dtype(args.dtype, device), options,
                                log=lambda line: print(line, file=sys.stderr, flush=True), started=started)
    print(format_gpu_table(results))
    if args.json:
        write_json(args.json, results)
        print(f"wrote {args.json}")
    return 0


def run_eval(argv: list[str]) -> int:
    from retarget.evaluation import main as evaluation_main

    return evaluation_main(argv)


SUBCOMMANDS = {
    "download": run_download,
    "testmodels": run_testmodels,
    "extract": run_extract,
    "bench": run_bench,
    "eval": run_eval,
}


def dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    if not argv:
        return run_app()
    args = headless_parser().parse_args(argv)
    if not args.headless:
        given = {token.split("=", 1)[0] for token in argv if token.startswith("--")}
        headless_only = sorted(given - set(APP_OPTIONS))
        if not headless_only:
            return run_app(argv)
        raise RetargetError(f"{', '.join(headless_only)} need --headless (render from the command line); the app takes only "
                            f"{', '.join(APP_OPTIONS)}")
    return run_headless(args)


def _stop_on_sigterm() -> None:
    """SIGTERM stops a job like Ctrl-C: files closed, rendered frames kept for --resume."""
    import signal
    import threading

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    _stop_on_sigterm()
    return run_command("retarget", lambda: dispatch(argv))


if __name__ == "__main__":
    sys.exit(main())
