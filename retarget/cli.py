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

from retarget.errors import BadInputError, RetargetError
from retarget.settings import PAPER_CFG, PAPER_EXP_SCALE, PAPER_REF_SCALE, PAPER_STEPS, GenerationSettings

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
        epilog="Subcommands: `retarget download --to DIR`, `retarget testmodels --size tiny|sd15 --out DIR`.",
    )
    parser.add_argument("--headless", action="store_true", help="render without a window")
    parser.add_argument("--identity", type=Path, help="photo of the person to render")
    parser.add_argument("--driver", type=Path, help="image whose facial expression is transferred")
    parser.add_argument("--out", type=Path, help="output image (.png, .jpg, .webp)")
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
    return parser


def download_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="retarget download", description="Fetch the published weights into a models folder.")
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
    import torch

    from retarget.pipeline import default_dtype

    if name == "auto":
        return default_dtype(device)
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def _write_image(image, out: Path) -> None:
    """Write next to the target and rename, so `out` never holds a partial file."""
    from PIL import Image

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial{out.suffix}")
    try:
        Image.fromarray(image).save(partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def run_headless(args: argparse.Namespace) -> int:
    for flag in ("identity", "driver", "out"):
        if getattr(args, flag) is None:
            raise RetargetError(f"--headless needs --{flag}")
    if args.driver.suffix.lower() not in IMAGE_SUFFIXES:
        raise BadInputError(f"{args.driver}: only image drivers are supported so far ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if args.out.suffix.lower() not in IMAGE_SUFFIXES:
        raise BadInputError(f"--out {args.out}: use an image file name ({', '.join(sorted(IMAGE_SUFFIXES))})")
    settings = GenerationSettings(
        steps=args.steps,
        cfg=args.cfg,
        ref_scale=args.ref_scale,
        exp_scale=args.exp_scale,
        use_reference=not args.no_reference,
        seed=args.seed,
    )
    settings.validate()

    from retarget.face.image_io import load_image

    identity_image = load_image(args.identity)
    driver_image = load_image(args.driver)

    _quiet_libraries()
    from retarget.assets import resolve_models
    from retarget.pipeline import pick_device
    from retarget.retargeter import Retargeter

    started = time.perf_counter()
    files = resolve_models(args.models, progress=lambda line: print(line, file=sys.stderr))
    if files.is_test_model:
        print(f"note: using {files.description}", file=sys.stderr)
    device = pick_device(args.device)
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
        context = retargeter.identity_from_image(identity_image, source=str(args.identity))
        expression = retargeter.expression_from_image(driver_image, source=str(args.driver))
        image = retargeter.render(context, expression[None], settings, progress=sys.stderr.isatty())[0]
    _write_image(image, args.out)
    size = f"{image.shape[1]}x{image.shape[0]}"
    print(f"wrote {args.out} ({size}) in {time.perf_counter() - started:.1f} s on {device} with {files.description}")
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


def run_app() -> int:
    try:
        from gui.app import main as app_main
    except ImportError as err:
        raise RetargetError(
            f"the desktop app is not available ({err}); install it with `pip install -e .[gui]` or use `retarget --headless ...`"
        ) from None
    return app_main()


SUBCOMMANDS = {"download": run_download, "testmodels": run_testmodels}


def dispatch(argv: list[str]) -> int:
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]](argv[1:])
    if not argv:
        return run_app()
    args = headless_parser().parse_args(argv)
    if not args.headless:
        raise RetargetError("options given without --headless; add --headless to render from the command line, or run `retarget` alone for the app")
    return run_headless(args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return dispatch(argv)
    except RetargetError as err:
        print(f"retarget: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("retarget: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug: still one line, the traceback on request
        if os.environ.get("RETARGET_DEBUG"):
            raise
        first = str(err).splitlines()[0] if str(err) else ""
        print(f"retarget: unexpected error: {type(err).__name__}: {first} (set RETARGET_DEBUG=1 for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
