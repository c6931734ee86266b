"""`retarget bridge fit|eval|show`: calibrate, measure and inspect the blendshape -> FLAME-55 expression bridge.

  retarget bridge fit --models M (--videos V [V ...] | --renders N) [--out FILE]
  retarget bridge eval --models M --videos V [V ...] [--bridge FILE] [--json FILE]
  retarget bridge show [--models M | FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.generation import GenerationSettings
from retarget.config.models import ModelOptions
from retarget.errors import OneLineArgumentParser, BadInputError

MODEL_KNOBS = ("models", "exp_adapter", "landmarker", "smirk", "device", "dtype")
RENDER_KNOBS = ("steps", "cfg", "exp_scale", "seed")


def bridge_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="retarget bridge", description="The expression bridge: MediaPipe's 52 blendshapes -> "
                                     "the 55 FLAME values of the published Expression Adapter, fitted for your adapter file.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{fit,eval,show}")
    fit = commands.add_parser("fit", help="fit a bridge from videos (MediaPipe + SMIRK) or from the generator's renders",
                              description="Fit a bridge for the models' FLAME-55 Expression Adapter and write it where the "
                                          "loader finds it (the cache, keyed by the adapter's content), then print its report.")
    add_knob_options(fit, ModelOptions, only=MODEL_KNOBS)
    source = fit.add_mutually_exclusive_group(required=True)
    source.add_argument("--videos", nargs="+", type=Path, metavar="VIDEO",
                        help="videos (or webcam recordings) of an expressive face: a few minutes is enough; cheap on a CPU")
    source.add_argument("--renders", "--samples", dest="renders", type=int, metavar="N", help="fit from N renders of random people (no video, no SMIRK; "
                        "a GPU is advised; resumable: run again to continue)")
    fit.add_argument("--out", type=Path, help="bridge file (default: the cache, where the loader looks)")
    fit.add_argument("--every", type=int, default=1, help="videos: use every N-th frame (default 1)")
    fit.add_argument("--max-frames", type=int, help="videos: at most this many frames with a face per video")
    renders = fit.add_argument_group("--renders")
    renders.add_argument("--work", type=Path, help="folder of the renders so far (default: in the cache, by adapter)")
    renders.add_argument("--batch-size", type=int, default=8, help="renders per generator call (default 8)")
    renders.add_argument("--prior-videos", nargs="+", type=Path, metavar="VIDEO",
                         help="sample FLAME vectors from SMIRK's values on these videos' frames (default: a stated per-group "
                              "distribution, see retarget/expression/flame_prior.py)")
    add_knob_options(renders, GenerationSettings, only=RENDER_KNOBS)

    evaluate = commands.add_parser("eval", help="round trip b -> bridge -> render -> MediaPipe -> b', next to the SMIRK path",
                                   description="Mean |b - b'| per face region on held-out driver frames (the last 20% of each "
                                               "video), for the bridge path and the SMIRK path on the same frames.")
    add_knob_options(evaluate, ModelOptions, only=MODEL_KNOBS)
    evaluate.add_argument("--videos", nargs="+", type=Path, metavar="VIDEO", required=True)
    evaluate.add_argument("--bridge", type=Path, help="bridge file (default: the one found for the adapter)")
    evaluate.add_argument("--identity", type=Path, help="identity photo to render (default: a random person)")
    evaluate.add_argument("--frames", type=int, default=24, help="held-out frames to render per path (default 24)")
    evaluate.add_argument("--batch-size", type=int, default=4)
    evaluate.add_argument("--json", type=Path, help="also write the result as JSON here")
    add_knob_options(evaluate, GenerationSettings, only=RENDER_KNOBS)

    show = commands.add_parser("show", help="which bridge the loader finds for the adapter, and its report")
    show.add_argument("path", nargs="?", type=Path, help="a bridge file (instead of --models)")
    add_knob_options(show, ModelOptions, only=("models", "exp_adapter"))
    return parser


def _progress_bar(desc: str, unit: str):
    from tqdm.auto import tqdm

    bar = tqdm(desc=desc, unit=unit, file=sys.stderr, disable=not sys.stderr.isatty(), leave=False)

    def update(done: int, total) -> None:
        if total is not None and bar.total != total:
            bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def run_bridge(argv: list[str]) -> int:
    args = bridge_parser().parse_args(argv)
    return {"fit": _fit, "eval": _eval, "show": _show}[args.command](args)


def _fit(args) -> int:
    from retarget.errors import quiet_libraries
    from retarget.expression.bridge_fit import format_report

    for flag, value in (("--every", args.every), ("--batch-size", args.batch_size), ("--renders", args.renders),
                        ("--max-frames", args.max_frames)):
        if value is not None and value < 1:
            raise BadInputError(f"{flag} must be at least 1 (got {value})")
    if args.videos and (args.work or args.prior_videos):
        raise BadInputError("--work and --prior-videos belong to --renders; with --videos drop them")
    models = from_args(ModelOptions, args)
    quiet_libraries()
    from retarget.tools.bridge_jobs import fit_bridge_from_renders, fit_bridge_from_videos, model_files

    files = model_files(models.models)
    if args.videos:
        bar, progress = _progress_bar("frames", "frame")
        with bar:
            bridge, path = fit_bridge_from_videos(args.videos, models=files, exp_adapter=models.exp_adapter,
                                                  landmarker=models.landmarker, smirk=models.smirk, device=models.device,
                                                  out=args.out, every=args.every, max_frames=args.max_frames, progress=progress)
    else:
        prior = None
        from retarget.tools.bridge_jobs import check_bridge_output, flame_adapter_of

        flame_adapter_of(files, models.exp_adapter)  # refusals before any video is read
        if args.out is not None:
            check_bridge_output(args.out)
        if args.prior_videos:
            from retarget.tools.bridge_jobs import prior_from_videos

            prior = prior_from_videos(args.prior_videos, models=files, landmarker=models.landmarker, smirk=models.smirk,
                                      device=models.device)
        settings = from_args(GenerationSettings, args)
        settings.validate()
        bar, progress = _progress_bar("renders", "render")
        with bar:
            bridge, path = fit_bridge_from_renders(args.renders, models=files, exp_adapter=models.exp_adapter,
                                                   landmarker=models.landmarker, device=models.device, dtype=models.dtype,
                                                   settings=settings, out=args.out, work=args.work, batch_size=args.batch_size,
                                                   seed=settings.seed, prior=prior, progress=progress)
    print(format_report(bridge.report))
    print(f"wrote {path}")
    return 0


def _eval(args) -> int:
    from retarget.errors import quiet_libraries

    if args.json:
        from retarget.outputs import check_file_output

        check_file_output(args.json, [(f"--videos {v}", v) for v in args.videos] + [("--bridge", args.bridge)], "--json")
    models = from_args(ModelOptions, args)
    settings = from_args(GenerationSettings, args)
    settings.validate()
    quiet_libraries()
    from retarget.tools.bridge_eval import evaluate_bridge, format_eval

    bar, progress = _progress_bar("eval", "step")
    with bar:
        result = evaluate_bridge(args.videos, models, identity=args.identity, frames=args.frames, settings=settings, seed=settings.seed,
                                 batch_size=args.batch_size, progress=progress)
    print(format_eval(result))
    if args.json:
        from retarget.outputs import write_json

        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _show(args) -> int:
    from retarget.expression.bridge import ExpressionBridge, adapter_sha256, candidate_paths, find_bridge
    from retarget.expression.bridge_fit import format_report

    if args.path is not None:
        bridge = ExpressionBridge.load(args.path)
        print(f"{args.path} (fitted for the adapter with sha256 {bridge.adapter_sha256[:16]}…)")
        print(format_report(bridge.report))
        return 0
    models = from_args(ModelOptions, args)
    from retarget.tools.bridge_jobs import flame_adapter_of, model_files

    adapter = flame_adapter_of(model_files(models.models), models.exp_adapter)
    path = find_bridge(adapter)
    if path is None:
        from retarget.expression.bridge import missing_bridge_message

        places = ", ".join(str(p) for p in candidate_paths(adapter))
        raise BadInputError(f"no bridge for {adapter} (looked in {places}); " + missing_bridge_message("the adapter").split("; ", 1)[1])
    bridge = ExpressionBridge.load(path, adapter_sha256=adapter_sha256(adapter))
    print(f"{path} (for {adapter})")
    print(format_report(bridge.report))
    return 0
