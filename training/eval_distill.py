"""`python -m training.eval_distill`: a distilled few-step student against its teacher.

For every identity photo x driver image pair, the teacher (the paper's sampler: DPM-Solver++,
25 steps, CFG 3, both adapters) and each student (`--lcm-lora`: our distilled LoRA, the generic
latent-consistency/lcm-lora-sdv1-5, or `untrained`, the distillation's zero starting point) at
2/4/8 LCM steps render the same frame from the same initial noise. Per (model, steps):

- ID sim: ArcFace cosine between the identity photo and the output (as `retarget eval`);
- exp err: mean absolute blendshape difference between driver and output (as `retarget eval`);
- PSNR: of the output against the teacher's image for the same pair (dB; higher = closer);
- s/frame: wall time of one frame (batch 1, as live mode renders), after a warm-up frame.

This lives in training/ rather than in `retarget eval`, which scores files that exist: this
command renders them, needs the generator and the LoRA files, and belongs with the trainer that
makes them.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from retarget.errors import OneLineArgumentParser, BadInputError, RetargetError, run_command

UNTRAINED = "untrained"


def build_parser() -> argparse.ArgumentParser:
    from retarget.config import PAPER_CFG, PAPER_STEPS, GenerationSettings, ModelOptions
    from retarget.config.cli_options import add_knob_options

    parser = OneLineArgumentParser(prog="python -m training.eval_distill",
                                     description="A distilled LCM-LoRA student at a few steps against the 25-step teacher.")
    parser.add_argument("--identity", type=Path, nargs="+", required=True, help="identity photo(s)")
    parser.add_argument("--driver", type=Path, nargs="+", required=True, help="driver face image(s); every identity x driver pair is rendered")
    parser.add_argument("--lcm-lora", action="append", required=True, metavar="SRC",
                        help=f"a student: LCM-LoRA file, folder or hub id, or `{UNTRAINED}` (the zero LoRA distillation starts from); repeatable")
    add_knob_options(parser, ModelOptions, only=("models", "exp_adapter", "ref_lora", "device", "dtype", "landmarker", "smirk"))
    add_knob_options(parser, GenerationSettings, only=("use_reference", "seed"))  # as the LoRA was distilled
    parser.add_argument("--student-steps", default="2,4,8", help="comma-separated LCM step counts (default 2,4,8)")
    parser.add_argument("--teacher-steps", type=int, default=PAPER_STEPS, help=f"teacher's DPM-Solver++ steps (default {PAPER_STEPS})")
    parser.add_argument("--teacher-cfg", type=float, default=PAPER_CFG, help=f"teacher's guidance (default {PAPER_CFG})")
    parser.add_argument("--images", type=Path, help="also write every rendered image into this folder")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser


def parse_steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RetargetError(f"--student-steps {text}: expected comma-separated whole numbers such as 2,4,8") from None
    if not steps or min(steps) < 1:
        raise RetargetError(f"--student-steps {text}: every step count must be at least 1")
    return steps


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images in dB (capped at 100 for identical images)."""
    mse = float(np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2))
    return 100.0 if mse <= 1e-10 else min(100.0, 10.0 * math.log10(255.0**2 / mse))


def render_all(pipeline, contexts, expressions, settings) -> tuple[list[np.ndarray], list[float]]:
    """Every identity x driver pair once, batch 1 (after one warm-up frame); images and seconds per frame."""
    pipeline.generate(contexts[0], expressions[0][None], settings)
    images, seconds = [], []
    for context in contexts:
        for expression in expressions:
            started = time.perf_counter()
            images.append(pipeline.generate(context, expression[None], settings)[0])  # numpy: the device has finished
            seconds.append(time.perf_counter() - started)
    return images, seconds


def untrained_lora(unet_folder: Path, folder: Path) -> Path:
    """The zero LoRA the distillation starts from (up = 0: the model itself, sampled by LCMScheduler)."""
    from diffusers import UNet2DConditionModel

    from training.distill import initial_lcm_lora, save_lcm_lora

    unet = UNet2DConditionModel.from_pretrained(unet_folder)
    path = folder / "untrained" / "pytorch_lora_weights.safetensors"
    save_lcm_lora(initial_lcm_lora(unet, rank=4), path)
    return path


def score(evaluator, identity_vectors, driver_faces, images, teacher_images) -> list[dict]:
    """Per pair: ID similarity, expression error (retarget.tools.evaluation.compare) and PSNR to the teacher."""
    from retarget.tools.evaluation import FrameFaces, compare

    rows = []
    for index, image in enumerate(images):
        identity, driver = divmod(index, len(driver_faces))
        observation = evaluator.landmarker.detect(image)
        output = FrameFaces(blendshapes=[None if observation is None else observation.blendshapes.astype(np.float64)],
                            embeddings=[None if observation is None else evaluator.embedder.embed_with_landmarks(image, observation.landmarks)])
        metrics = compare(identity_vectors[identity], driver_faces[driver], output)
        rows.append({"id_similarity": metrics["id_similarity"], "expression_error": metrics["expression_error"],
                     "psnr": psnr(image, teacher_images[index])})
    return rows


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def run(args) -> dict:
    from retarget.weights.assets import resolve_models
    from retarget.errors import quiet_libraries
    from retarget.config import ModelOptions
    from retarget.config.cli_options import from_args
    from retarget.tools.evaluation import Evaluator
    from retarget.face.landmarker import find_landmarker_model
    from retarget.face.image_io import load_image
    from retarget.pipeline import RetargetPipeline, pick_device, pick_dtype
    from retarget.session.retargeter import Retargeter
    from retarget.config.generation import GenerationSettings, preset_settings

    steps = parse_steps(args.student_steps)
    if args.teacher_steps < 1 or args.teacher_cfg < 1.0:
        raise RetargetError("--teacher-steps must be at least 1 and --teacher-cfg 1.0 or more")
    for path in (*args.identity, *args.driver):
        if not path.is_file():
            raise BadInputError(f"{path}: no such file")
    quiet_libraries()
    # --lcm-lora here lists the students, loaded one by one below: the teacher's options have none.
    models = from_args(ModelOptions, args, lcm_lora=None)
    files = resolve_models(models.models, progress=lambda line: print(line, file=sys.stderr))
    device = pick_device(models.device)
    dtype = pick_dtype(models.dtype, device)
    evaluator = Evaluator(files.arcface, find_landmarker_model(models.landmarker or files.landmarker))
    base = GenerationSettings(seed=args.seed, use_reference=args.use_reference)
    base.validate()
    pairs = [{"identity": str(i), "driver": str(d)} for i in args.identity for d in args.driver]
    results = {"device": str(device), "dtype": str(dtype).replace("torch.", ""), "models": files.description, "pairs": pairs, "rows": []}
    try:
        identity_vectors = [evaluator.identity_vector(p) for p in args.identity]
        driver_faces = [evaluator.analyse(p, embed=False) for p in args.driver]
        # Perception and identity contexts once, with the teacher; a context is plain tensors that any
        # pipeline of the same base models can use, so every student sees exactly the same inputs.
        with Retargeter(files, models, use_reference=args.use_reference) as teacher, \
                tempfile.TemporaryDirectory(prefix="retarget-eval-distill-") as work:
            contexts = [teacher.identity_from_image(load_image(p), source=str(p)) for p in args.identity]
            expressions = [teacher.expression_from_image(load_image(p), source=str(p)) for p in args.driver]
            teacher_images = None
            for label in ["teacher", *args.lcm_lora]:
                print(f"rendering {len(pairs)} pair(s) with {label}", file=sys.stderr)
                if label == "teacher":
                    pipeline, runs = teacher.pipeline, [replace(base, steps=args.teacher_steps, cfg=args.teacher_cfg)]
                else:
                    pipeline = RetargetPipeline.from_files(files, device, dtype, exp_adapter=models.exp_adapter, ref_lora=models.ref_lora,
                                                           use_ref_lora=args.use_reference)
                    pipeline.load_lcm_lora(untrained_lora(files.unet, Path(work)) if label == UNTRAINED else label)
                    runs = [replace(preset_settings("lcm", base), steps=n) for n in steps]
                for settings in runs:
                    images, seconds = render_all(pipeline, contexts, expressions, settings)
                    teacher_images = images if teacher_images is None else teacher_images
                    per_pair = score(evaluator, identity_vectors, driver_faces, images, teacher_images)
                    results["rows"].append({
                        "model": label, "sampler": settings.sampler, "steps": settings.steps, "cfg": settings.cfg,
                        "id_similarity": _mean(r["id_similarity"] for r in per_pair),
                        "expression_error": _mean(r["expression_error"] for r in per_pair),
                        "psnr": None if label == "teacher" else _mean(r["psnr"] for r in per_pair),
                        "seconds_per_frame": float(np.median(seconds)),
                        "per_pair": per_pair,
                    })
                    if args.images is not None:
                        _write_images(args.images, label, settings, images, len(args.driver))
                del pipeline
    finally:
        evaluator.close()
    return results


def _write_images(folder: Path, label: str, settings, images, drivers: int) -> None:
    from retarget.outputs import claim_folder, write_image

    claim_folder(folder, "--images")  # new, empty or ours: never a folder of the user's files
    name = "teacher" if label == "teacher" else Path(label).parent.name if Path(label).name.endswith(".safetensors") else Path(label).name
    for index, image in enumerate(images):
        identity, driver = divmod(index, drivers)
        write_image(folder / f"id{identity}_drv{driver}_{name}_{settings.steps}steps.png", image)


def _fmt(value, digits: int = 3, width: int = 8) -> str:
    return ("-" if value is None else f"{value:.{digits}f}").rjust(width)


def format_table(results: dict) -> str:
    header = f"{'model':<32} {'sampler':<12} {'steps':>5} {'ID sim':>8} {'exp err':>8} {'PSNR dB':>8} {'s/frame':>8} {'frames/s':>8}"
    lines = [f"device: {results['device']} ({results['dtype']})   models: {results['models']}   pairs: {len(results['pairs'])}",
             header, "-" * len(header)]
    for row in results["rows"]:
        label = row["model"] if len(row["model"]) <= 32 else "..." + row["model"][-29:]
        fps = 1.0 / row["seconds_per_frame"] if row["seconds_per_frame"] > 0 else None
        lines.append(f"{label:<32} {row['sampler']:<12} {row['steps']:>5} {_fmt(row['id_similarity'])} {_fmt(row['expression_error'])} "
                     f"{_fmt(row['psnr'], 2)} {_fmt(row['seconds_per_frame'], 3)} {_fmt(fps, 2)}")
    lines.append("PSNR: against the teacher's image of the same pair (higher = closer); '-': no face found in the output")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.environ.setdefault("GLOG_minloglevel", "2")
    args = build_parser().parse_args(argv)

    def body() -> int:
        from retarget.outputs import check_file_output, check_folder_target, check_output, write_json

        # Before any work: never onto an input, into a place that cannot be written, or a folder of the user's files.
        inputs = [("--identity", p) for p in args.identity] + [("--driver", p) for p in args.driver]
        if args.json is not None:
            check_file_output(args.json, inputs, "--json")
        if args.images is not None:
            check_output(args.images, inputs, "--images")
            check_folder_target(args.images, "--images")
        results = run(args)
        print(format_table(results))
        if args.json is not None:
            write_json(args.json, results)
        return 0

    return run_command("python -m training.eval_distill", body)


if __name__ == "__main__":
    sys.exit(main())
