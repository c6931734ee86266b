"""`retarget --headless`: the render options, the checks made before any model loads, and the offline job."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from retarget.errors import quiet_libraries
from retarget.cli.expression import EXPRESSION_HELP, expression_for_still, read_expression_option
from retarget.cli.faces import check_face_flags, check_faces, face_choice_key
from retarget.cli.live import run_live
from retarget.cli.preload_checks import check_adapter_signal, check_before_loading
from retarget.config import (
    HEADLESS_KNOBS, FrameOptions, GenerationSettings, LiveOptions, MappingSettings, ModelOptions, PresetChoice,
    RenderOptions, VideoOptions, knob_fields, validate_knobs,
)
from retarget.config.cli_options import add_knob_options, from_args
from retarget.engine.time_range import TimeRange
from retarget.errors import OneLineArgumentParser, EXIT_INCOMPLETE, BadInputError, RetargetError
from retarget.names.kinds import IMAGE_SUFFIXES, is_webcam_spec, media_kind


HELP_EXAMPLES = """examples:
  retarget --headless --identity me.jpg --driver smile.png --out me_smiling.png
  retarget --headless --identity me.jpg --driver talk.mp4 --out me_talking.mp4 --side-by-side both.mp4

Subcommands: extract VIDEO --out X.csv | bench | eval | doctor | verify FILE... | bridge fit|eval|show |
download --to DIR | testmodels --size tiny|sd15 --out DIR (each with --help)."""


def headless_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="retarget",
        description="ID-consistent facial expression retargeting. With no arguments, opens the desktop app.",
        epilog=HELP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--headless", action="store_true", help="render without a window")
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--identity", type=Path, help="photo of the person to render")
    inputs.add_argument("--driver", type=Path, nargs="+",
                        help="driver: an image, a video, a folder of images, a blendshape CSV (ours or Live Link Face), "
                             "webcam:N; several files or a folder of videos render as a batch")
    inputs.add_argument("--expression", type=Path, metavar="EXPR.json", help=EXPRESSION_HELP)
    inputs.add_argument("--identity-face", type=int, metavar="N",
                        help="which face of the identity photo, numbered from 1 left to right (default: the largest)")
    inputs.add_argument("--driver-face", type=int, metavar="N",
                        help="drive with face N (from 1, left to right) of the first driver frame with faces, "
                             "tracked across frames (default: the largest face of each frame)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path,
                        help="output: an image for an image driver or --expression; a video (.mp4) for a video/CSV driver, or a folder "
                             "(PNG sequence); a folder for a batch")
    # Every other option is generated from the knob dataclasses (retarget.config): flag, default, help, --help group.
    add_knob_options(parser, *HEADLESS_KNOBS)
    return parser


def mapping_settings(args: argparse.Namespace) -> MappingSettings:
    settings = from_args(MappingSettings, args)
    settings.validate()
    return settings


def _input_paths(args: argparse.Namespace) -> list[tuple[str, object]]:
    """Every file or folder the job reads, by flag: no output may be, contain or lie inside one of them."""
    inputs = [("--identity", args.identity), ("--expression", args.expression), *(("--driver", d) for d in args.driver or ())]
    if args.models not in ("hub",) and not str(args.models).startswith("random:"):
        inputs.append(("--models", args.models))
    for field in knob_fields(ModelOptions):
        value = getattr(args, field.name)
        # The knobs that read files: a Path option (a missing one is refused later), or a source that is a
        # local file or folder rather than a hub id (--lcm-lora, --tiny-vae).
        if field.knob.reads and value and (field.type is Path or Path(value).exists()):
            inputs.append((field.knob.flag, value))
    return inputs


def check_outputs(args: argparse.Namespace, still: bool, batch: bool) -> None:
    """Before any work: every output is a new or our own path, writable, and none is an input."""
    from retarget.outputs import check_file_output, check_folder_target, check_output, check_writable

    inputs = _input_paths(args)
    png_sequence = not still and not batch and args.out.suffix == ""
    if batch or png_sequence:
        check_output(args.out, inputs)
        check_writable(args.out)
        check_folder_target(args.out)  # a batch folder, like a PNG sequence: new, empty or our own
    else:
        check_file_output(args.out, inputs)
    if args.side_by_side is not None:
        from retarget.engine.offline import check_side_by_side_name

        check_side_by_side_name(args.side_by_side)
        check_file_output(args.side_by_side, [*inputs, ("--out", args.out)], "--side-by-side")


def check_numbers(args: argparse.Namespace) -> None:
    """The knobs outside GenerationSettings/MappingSettings (checked where those are built): models, render, video, live."""
    for cls in (ModelOptions, RenderOptions, VideoOptions, LiveOptions, FrameOptions):
        validate_knobs(from_args(cls, args))


def apply_provenance(args: argparse.Namespace) -> None:
    """Every output of this process is marked as AI-generated unless --no-provenance (research use only)."""
    from retarget import provenance
    from retarget.config.provenance import ProvenanceOptions

    options = from_args(ProvenanceOptions, args)
    options.validate()
    provenance.configure(options)
    if not options.mark:
        print("note: --no-provenance: outputs carry NO AI-generated watermark, metadata or C2PA manifest "
              "(research use only, where the law allows)", file=sys.stderr)


@dataclass
class HeadlessRequest:
    """What a checked `--headless` command asks for, before any model loads."""

    settings: GenerationSettings
    mapping: MappingSettings
    composed: object | None  # the --expression values, for a still from named values
    drivers: list
    still: bool
    webcam: bool
    batch: bool


def run_headless(args: argparse.Namespace) -> int:
    from retarget.cli.stages import StageLog
    from retarget.face.image_io import load_image

    log = StageLog()  # one line per loading stage on stderr, each with the time since the command began
    request = check_request(args)
    identity_image = load_image(args.identity)
    driver_image = load_image(request.drivers[0]) if request.still and request.drivers else None
    probed = probe_drivers(args, request)

    quiet_libraries()
    from retarget.engine.jobs import distributed_state
    from retarget.pipeline import pick_device
    from retarget.session import Session

    settings, mapping, drivers, still, webcam = request.settings, request.mapping, request.drivers, request.still, request.webcam
    state = None if still or webcam else distributed_state()
    main_process = state is None or state.is_main_process
    # Face numbers are checked before any download or model load when the landmarker is already on disk.
    faces_checked = main_process and check_faces(args, None, identity_image, drivers, still, webcam)
    device = state.device if state is not None and state.device.type == "cuda" else pick_device(args.device)
    if not main_process:
        log.stream = open(os.devnull, "w")  # one process tells the stages
    with Session(keep_rows=False) as session:
        with log.stage(f"loading the models ({args.models}) on {device}"):
            session.load_models(from_args(ModelOptions, args, device=str(device)), use_reference=settings.reference_active,
                                expression_source=mapping.expression_source,
                                progress=lambda line: print(line, file=sys.stderr))
        check_drivers_reach_adapter(session.retargeter, drivers, mapping)
        if main_process and not faces_checked:
            check_faces(args, session.retargeter.landmarker_path, identity_image, drivers, still, webcam)
        prepare_identity(session, args, identity_image, log, main_process)
        log.line("rendering the still" if still else f"streaming from {drivers[0]}" if webcam else "rendering")
        if still:
            return _render_still(session, args, request, driver_image, log, device)
        neutral = (_neutral_from_frame(session.retargeter, str(drivers[0]), args.neutral_frame, mapping.mirror,
                                       args.driver_face, args.fps) if args.neutral_frame is not None else None)
        if webcam:
            return run_live(session, str(drivers[0]), args.out, settings, mapping, neutral,
                            from_args(LiveOptions, args).min_change, video=from_args(VideoOptions, args),
                            face=args.driver_face)
        return _run_offline(session, settings, mapping, neutral, drivers, request.batch, args, state, log.started, probed)


def check_request(args: argparse.Namespace) -> HeadlessRequest:
    """Every refusal that needs neither a model nor a driver file opened: flags, numbers, output paths."""
    for flag in ("identity", "out"):
        if getattr(args, flag) is None:
            raise RetargetError(f"--headless needs --{flag}")
    if args.driver is None and args.expression is None:
        raise RetargetError("--headless needs --driver (or --expression EXPR.json for a still from named values)")
    settings = from_args(PresetChoice, args).apply(from_args(GenerationSettings, args))
    settings.validate()
    mapping = mapping_settings(args)
    check_numbers(args)
    apply_provenance(args)
    composed = read_expression_option(args) if args.expression is not None else None
    check_face_flags(args)
    drivers = args.driver or []
    still = composed is not None or (len(drivers) == 1 and media_kind(drivers[0]) == "image")
    if still and media_kind(args.out) != "image":
        raise BadInputError(f"--out {args.out}: a still (an image driver or --expression) is an image; use {', '.join(sorted(IMAGE_SUFFIXES))}")
    webcam = len(drivers) == 1 and is_webcam_spec(drivers[0])
    batch = False
    if not still and not webcam:
        from retarget.engine.jobs import expand_drivers

        drivers, batch = expand_drivers(drivers)
    check_outputs(args, still, batch)
    from_args(RenderOptions, args).validate()  # --end after --start (validate_knobs checks one knob at a time)
    if (still or webcam) and not TimeRange(args.start, args.end).whole:
        raise BadInputError("--start/--end: a time range is for video, CSV and image-folder drivers, "
                            f"not {'a still' if still else 'a camera'}")
    check_before_loading(args, drivers, still, webcam, batch)  # every refusal that needs no model
    return HeadlessRequest(settings, mapping, composed, drivers, still, webcam, batch)


def probe_drivers(args: argparse.Namespace, request: HeadlessRequest) -> dict:
    """Every driver is probed once, before any model loads or any output exists: range, neutral frame, signal.
    Returns {driver: SourceInfo} for the render (a still or a camera: empty)."""
    from retarget.media.source_info import probe_source

    probed = {}
    if not request.still and not request.webcam:
        time_range = TimeRange(args.start, args.end)
        for driver in request.drivers:
            info = probed[str(driver)] = probe_source(str(driver), fps=args.fps)
            time_range.check(info, driver)
            count = info.frame_count
            if args.neutral_frame is not None and count is not None and args.neutral_frame >= count:
                raise BadInputError(f"--neutral-frame {args.neutral_frame}: {driver} has {count} frames (0 to {count - 1})")
    if request.webcam:
        probe_source(str(request.drivers[0]))  # a busy or missing camera fails here
    if request.drivers:
        check_adapter_signal(args, request.drivers)  # the drivers read well: can the adapter take their signal?
    return probed


def prepare_identity(session, args: argparse.Namespace, identity_image, log, main_process: bool) -> None:
    """The identity embedded and its frame set; notes about test models and the frame on the main process."""
    files = session.files
    if files.is_test_model and main_process:
        print(f"note: using {files.description}", file=sys.stderr)
    with log.stage(f"embedding the identity ({Path(args.identity).name})"):
        session.set_identity(args.identity, image=identity_image, source=str(args.identity), face=args.identity_face)
    session.set_frame(from_args(FrameOptions, args))  # full (default): the face pasted back into the photo
    note = session.frame_note(str(args.identity))
    if note and main_process:
        print(note, file=sys.stderr)


def _render_still(session, args: argparse.Namespace, request: HeadlessRequest, driver_image, log, device) -> int:
    drivers = request.drivers
    source = str(drivers[0]) if drivers else ""
    expression = None
    if request.composed is not None:
        expression = expression_for_still(session.retargeter, request.composed, str(args.expression), driver_image,
                                          source, request.mapping, session.identity.blendshapes, face=args.driver_face)
    image = session.render_still(driver_image, args.out, settings=request.settings, mapping=request.mapping,
                                 source=source, progress=sys.stderr.isatty(), expression=expression, face=args.driver_face)
    size = f"{image.shape[1]}x{image.shape[0]}"
    print(f"wrote {args.out} ({size}) in {log.elapsed():.1f} s in all, on {device} with {session.files.description}")
    return 0


def check_drivers_reach_adapter(retargeter, drivers, mapping) -> None:
    """Before any identity work or output: every driver's signal can drive the loaded adapter (a blendshape CSV
    or --expression-source bridge on a FLAME-55 adapter needs a fitted bridge; the refusal names the command)."""
    from retarget.expression.signals import check_signal, driver_signal

    for driver in drivers:
        check_signal(retargeter.pipeline.expression_kind, driver_signal(driver), driver=str(driver),
                     bridge_available=retargeter.bridge is not None, expression_source=mapping.expression_source)


def _neutral_from_frame(retargeter, driver: str, index: int, mirror: bool = False, face: int | None = None,
                        fps: float | None = None):
    from retarget.media.sources import open_source

    with open_source(driver, fps=fps) as source:
        for frame in source:
            if frame.index == index:
                if frame.image is None:
                    if frame.blendshapes is None:
                        raise BadInputError(f"--neutral-frame {index}: {driver} has no face in that row")
                    return frame.blendshapes
                return retargeter.driver_neutral(frame.image, f"frame {index} of {driver}", mirror, face)
    raise BadInputError(f"--neutral-frame {index}: {driver} has fewer frames")


def _run_offline(session, settings, mapping, neutral, drivers, batch, args, state, started, probed=None) -> int:
    from retarget.engine.jobs import print_summary

    options = from_args(RenderOptions, args, progress=sys.stderr.isatty())  # with its VideoOptions
    summaries = session.render_videos(drivers, args.out, settings=settings, mapping=mapping, options=options, batch=batch,
                                      neutral=neutral, state=state, driver_face=args.driver_face,
                                      key_extra=face_choice_key(args), probed=probed)  # another face is another job
    print_summary(summaries, state)
    incomplete = [s for s in summaries if s.incomplete]
    if state is None or state.is_main_process:
        outputs = f"{args.out}" + (f" and side by side {args.side_by_side}" if args.side_by_side is not None else "")
        print(f"done in {time.perf_counter() - started:.1f} s in all; wrote {outputs}")
        for summary in incomplete:
            print(f"retarget: warning: {summary.output} is shorter than its driver {summary.driver}: {summary.incomplete} "
                  f"(exit code {EXIT_INCOMPLETE})", file=sys.stderr)
    return EXIT_INCOMPLETE if incomplete else 0
