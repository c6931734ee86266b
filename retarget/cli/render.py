"""`retarget --headless`: the render options, the checks made before any model loads, and the offline job."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from retarget.cli.common import MODELS_HELP, quiet_libraries
from retarget.cli.faces import check_face_flags, check_faces, face_choice_key
from retarget.cli.live import run_live
from retarget.errors import EXIT_INCOMPLETE, BadInputError, RetargetError
from retarget.media.kinds import IMAGE_SUFFIXES, is_webcam_spec, media_kind
from retarget.settings import PAPER_CFG, PAPER_EXP_SCALE, PAPER_REF_SCALE, PAPER_STEPS, PRESETS, GenerationSettings, check_number

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
    parser.add_argument("--identity-face", type=int, metavar="N",
                        help="which face of the identity photo, numbered from 1 left to right (default: the largest)")
    parser.add_argument("--driver-face", type=int, metavar="N",
                        help="drive with face N (from 1, left to right) of the first driver frame with faces, "
                             "tracked across frames (default: the largest face of each frame)")
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
    check_face_flags(args)
    drivers = args.driver
    still = len(drivers) == 1 and media_kind(drivers[0]) == "image"
    if still and media_kind(args.out) != "image":
        raise BadInputError(f"--out {args.out}: an image driver gives an image; use {', '.join(sorted(IMAGE_SUFFIXES))}")
    webcam = len(drivers) == 1 and is_webcam_spec(drivers[0])
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

    quiet_libraries()
    from retarget.assets import resolve_models
    from retarget.jobs import distributed_state
    from retarget.pipeline import pick_device, pick_dtype
    from retarget.retargeter import Retargeter

    started = time.perf_counter()
    state = None if still or webcam else distributed_state()
    main_process = state is None or state.is_main_process
    # Face numbers are checked before any download or model load when the landmarker is already on disk.
    faces_checked = main_process and check_faces(args, None, identity_image, drivers, still, webcam)
    files = resolve_models(args.models, progress=lambda line: print(line, file=sys.stderr))
    if files.is_test_model and (state is None or state.is_main_process):
        print(f"note: using {files.description}", file=sys.stderr)
    device = state.device if state is not None and state.device.type == "cuda" else pick_device(args.device)
    with Retargeter(
        files,
        device=device,
        dtype=pick_dtype(args.dtype, device),
        exp_adapter=args.exp_adapter,
        ref_lora=args.ref_lora,
        use_reference=settings.reference_active,
        landmarker_path=args.landmarker,
        smirk_path=args.smirk,
    ) as retargeter:
        if main_process and not faces_checked:
            check_faces(args, retargeter.landmarker_path, identity_image, drivers, still, webcam)
        if args.channels_last:
            retargeter.pipeline.enable_channels_last()
        if args.compile:
            retargeter.pipeline.enable_compile()
        if args.tiny_vae:
            retargeter.pipeline.use_tiny_vae(args.tiny_vae)
        if args.lcm_lora:
            retargeter.pipeline.load_lcm_lora(args.lcm_lora)
        context = retargeter.identity_from_image(identity_image, source=str(args.identity), face=args.identity_face)
        if still:
            from retarget.outputs import write_image

            expression = retargeter.expression_from_image(driver_image, source=str(drivers[0]), mapping=mapping,
                                                          identity_neutral=context.blendshapes, face=args.driver_face)
            image = retargeter.render(context, expression[None], settings, progress=sys.stderr.isatty())[0]
            write_image(args.out, image)
            size = f"{image.shape[1]}x{image.shape[0]}"
            print(f"wrote {args.out} ({size}) in {time.perf_counter() - started:.1f} s on {device} with {files.description}")
            return 0
        neutral = _neutral_from_frame(retargeter, str(drivers[0]), args.neutral_frame, mapping.mirror,
                                      args.driver_face) if args.neutral_frame is not None else None

        def make_analyzer():
            analyzer = retargeter.driver_analyzer(mapping, identity_neutral=context.blendshapes, identity_flame=context.flame,
                                                  face=args.driver_face)
            if neutral is not None:
                analyzer.set_neutral_from(neutral)
            return analyzer

        if webcam:
            return run_live(retargeter, context, make_analyzer(), settings, str(drivers[0]), args.out, args.min_change)
        return _run_offline(retargeter, context, make_analyzer, settings, drivers, batch, args, files, state, started, mapping)


def _neutral_from_frame(retargeter, driver: str, index: int, mirror: bool = False, face: int | None = None):
    from retarget.media.sources import open_source

    with open_source(driver) as source:
        for frame in source:
            if frame.index == index:
                if frame.image is None:
                    if frame.blendshapes is None:
                        raise BadInputError(f"--neutral-frame {index}: {driver} has no face in that row")
                    return frame.blendshapes
                return retargeter.driver_neutral(frame.image, f"frame {index} of {driver}", mirror, face)
    raise BadInputError(f"--neutral-frame {index}: {driver} has fewer frames")


def _run_offline(retargeter, context, make_analyzer, settings, drivers, batch, args, files, state, started, mapping) -> int:
    from retarget.engine import OfflineRenderer, RenderOptions, job_key
    from retarget.jobs import print_summary, run_video_jobs

    key = job_key(args.identity, files.description, args.exp_adapter, args.ref_lora, models=files)
    key.update(face_choice_key(args))  # another face is another job; none chosen leaves older work folders valid
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
