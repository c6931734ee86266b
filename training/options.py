"""The options every trainer shares (TrainingOptions, knob fields), and their checks.

The model and generation knobs (--models, --exp-adapter, --ref-lora, --ref-scale, --no-reference, ...)
come from retarget.config, as on the `retarget` command line; these are the training-only ones, declared
the same way (retarget.config.knobs), so their flags, ranges and one-line errors come from one field each.
--data, --out and --resume stay hand-written: required paths and an option with an optional value.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from retarget.config import PAPER_STEPS, GenerationSettings, ModelOptions
from retarget.config.generation import check_seed
from retarget.config.cli_options import add_knob_options, from_args
from retarget.config.knobs import knob, knob_fields, validate_knobs
from retarget.errors import OneLineArgumentParser

DROP_OPTIONS = ("drop_expression", "drop_id")


@dataclass
class TrainingOptions:
    """One training run's loop settings; each trainer gives its own lr, max_steps and condition dropout."""

    max_steps: int = knob(1000, flag="--max-steps", low=1, help="optimizer steps")
    batch_size: int = knob(8, flag="--batch-size", low=1, help="samples per process and step (default 8)")
    # Above 1 AdamW diverges at once (weights inf/NaN, or torch's overflow error): refused before any work.
    lr: float = knob(1e-4, flag="--lr", low=0.0, low_open=True, high=1.0, help="AdamW learning rate")
    lr_warmup: int = knob(0, flag="--lr-warmup", low=0, help="linear warm-up steps, then constant (default 0)")
    weight_decay: float = knob(1e-2, flag="--weight-decay", low=0.0, high=1.0, help="AdamW weight decay (default 0.01)")
    max_grad_norm: float = knob(1.0, flag="--max-grad-norm", low=0.0, help="gradient clipping (default 1.0; 0 = off)")
    seed: int = knob(0, flag="--seed", check=check_seed, help="seed of every random draw (default 0; 0 to 2^63 - 1, as rendering's)")
    mixed_precision: str = knob("no", flag="--mixed-precision", choices=("no", "fp16", "bf16"),
                                help="compute precision of the frozen weights (default no)")
    gradient_checkpointing: bool = knob(False, flag="--gradient-checkpointing",
                                        help="recompute activations in backward (less memory)")
    drop_expression: float = knob(0.0, flag="--drop-expression", low=0.0, high=1.0, help="probability of a zero expression")
    drop_id: float = knob(0.0, flag="--drop-id", low=0.0, high=1.0, help="probability of the empty-prompt embedding")
    save_every: int = knob(1000, flag="--save-every", low=0, help="checkpoint every N steps (default 1000; 0 = only at the end)")
    sample_every: int = knob(0, flag="--sample-every", low=0, help="write sample images every N steps (default 0 = off)")
    sample_count: int = knob(2, flag="--sample-count", low=1, help="dataset samples rendered per sample image (default 2)")
    sample_steps: int = knob(PAPER_STEPS, flag="--sample-steps", low=1,
                             help=f"DPM-Solver++ steps for sample images (default {PAPER_STEPS}, the paper's)")
    log_every: int = knob(10, flag="--log-every", low=0, help="print the loss every N steps (default 10)")
    num_workers: int = knob(2, flag="--num-workers", low=0, help="data loading processes per training process (default 2)")
    subset: int | None = knob(None, flag="--subset", low=1, help="train on the first N samples only (overfitting checks)")
    fixed_timestep: int | None = knob(None, flag="--fixed-timestep", low=0, high=999,
                                      help="always this diffusion timestep (debugging/overfit checks)")
    fixed_noise: bool = knob(False, flag="--fixed-noise",
                             help="the same noise for a sample every step, and latents from the VAE mean (overfit checks)")
    tensorboard: bool = knob(True, flag="--no-tensorboard", help="do not write TensorBoard logs")

    def validate(self) -> None:
        validate_knobs(self)


def base_parser(prog: str, description: str, *, lr: float, max_steps: int, drop: float | None) -> argparse.ArgumentParser:
    """The options every trainer shares, with this trainer's defaults; drop=None leaves out the condition dropout."""
    parser = OneLineArgumentParser(prog=prog, description=description)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder from `python -m training.annotate`")
    add_knob_options(parser, ModelOptions, only=("models",))
    parser.add_argument("--out", type=Path, required=True, help="output folder: checkpoints, logs, samples, final weights")
    names = [f.name for f in knob_fields(TrainingOptions) if drop is not None or f.name not in DROP_OPTIONS]
    defaults = {"lr": lr, "max_steps": max_steps, **({name: drop for name in DROP_OPTIONS} if drop is not None else {})}
    helps = {"lr": f"AdamW learning rate (default {lr:g})", "max_steps": f"optimizer steps (default {max_steps})"}
    if drop is not None:
        helps.update(drop_expression=f"probability of a zero expression (default {drop:g})",
                     drop_id=f"probability of the empty-prompt embedding (default {drop:g})")
    add_knob_options(parser, TrainingOptions, only=names, defaults=defaults, helps=helps)
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                        help="continue from OUT's latest checkpoint (or the one given)")
    return parser


def check_args(args: argparse.Namespace) -> TrainingOptions:
    """Every training and generation knob the trainer takes, checked (one-line RetargetError); returns the options."""
    options = from_args(TrainingOptions, args)
    options.validate()
    from_args(GenerationSettings, args).validate()  # the generation knobs a trainer takes (e.g. distill's --ref-scale)
    return options
