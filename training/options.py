"""The options every trainer shares, and their checks.

The model and generation knobs (--models, --exp-adapter, --ref-lora, --ref-scale, --no-reference, ...)
come from retarget.config, as on the `retarget` command line; these are the training-only ones.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from retarget.config import GenerationSettings, ModelOptions, check_number
from retarget.config.cli_options import add_knob_options, from_args
from retarget.errors import OneLineArgumentParser, RetargetError


def base_parser(prog: str, description: str, *, lr: float, max_steps: int, drop: float | None) -> argparse.ArgumentParser:
    """The options every trainer shares; drop=None leaves out the condition-dropout options."""
    parser = OneLineArgumentParser(prog=prog, description=description)
    parser.add_argument("--data", type=Path, required=True, help="dataset folder from `python -m training.annotate`")
    add_knob_options(parser, ModelOptions, only=("models",))
    parser.add_argument("--out", type=Path, required=True, help="output folder: checkpoints, logs, samples, final weights")
    parser.add_argument("--max-steps", type=int, default=max_steps, help=f"optimizer steps (default {max_steps})")
    parser.add_argument("--batch-size", type=int, default=8, help="samples per process and step (default 8)")
    parser.add_argument("--lr", type=float, default=lr, help=f"AdamW learning rate (default {lr:g})")
    parser.add_argument("--lr-warmup", type=int, default=0, help="linear warm-up steps, then constant (default 0)")
    parser.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient clipping (default 1.0; 0 = off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default="no")
    parser.add_argument("--gradient-checkpointing", action="store_true", help="recompute activations in backward (less memory)")
    if drop is not None:
        parser.add_argument("--drop-expression", type=float, default=drop, help=f"probability of a zero expression (default {drop:g})")
        parser.add_argument("--drop-id", type=float, default=drop, help=f"probability of the empty-prompt embedding (default {drop:g})")
    parser.add_argument("--save-every", type=int, default=1000, help="checkpoint every N steps (default 1000; 0 = only at the end)")
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="CHECKPOINT",
                        help="continue from OUT's latest checkpoint (or the one given)")
    parser.add_argument("--sample-every", type=int, default=0, help="write sample images every N steps (default 0 = off)")
    parser.add_argument("--sample-count", type=int, default=2, help="dataset samples rendered per sample image (default 2)")
    parser.add_argument("--sample-steps", type=int, default=25, help="DPM-Solver++ steps for sample images (default 25)")
    parser.add_argument("--log-every", type=int, default=10, help="print the loss every N steps (default 10)")
    parser.add_argument("--num-workers", type=int, default=2, help="data loading processes per training process (default 2)")
    parser.add_argument("--subset", type=int, default=None, help="train on the first N samples only (overfitting checks)")
    parser.add_argument("--fixed-timestep", type=int, default=None, help="always this diffusion timestep (debugging/overfit checks)")
    parser.add_argument("--fixed-noise", action="store_true",
                        help="the same noise for a sample every step, and latents from the VAE mean (overfit checks)")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not write TensorBoard logs")
    return parser


def check_args(args: argparse.Namespace) -> None:
    for name in ("max_steps", "batch_size"):
        if getattr(args, name) < 1:
            raise RetargetError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")
    for name in ("save_every", "sample_every", "lr_warmup", "num_workers"):
        if getattr(args, name) < 0:
            raise RetargetError(f"--{name.replace('_', '-')} must be 0 or more")
    for name in ("drop_expression", "drop_id"):
        if not 0.0 <= getattr(args, name, 0.0) <= 1.0:
            raise RetargetError(f"--{name.replace('_', '-')} must be within [0, 1]")
    # Above 1 AdamW diverges at once (weights inf/NaN, or torch's overflow error): refused before any work.
    check_number("--lr", args.lr, low=0.0, low_open=True, high=1.0)
    check_number("--weight-decay", args.weight_decay, low=0.0, high=1.0)
    check_number("--max-grad-norm", args.max_grad_norm, low=0.0)
    if not 0 <= args.seed < 2**32:  # numpy's generators take 32-bit seeds
        raise RetargetError(f"--seed must be a whole number from 0 to {2**32 - 1} (got {args.seed})")
    if args.fixed_timestep is not None and not 0 <= args.fixed_timestep < 1000:
        raise RetargetError("--fixed-timestep must be within [0, 999]")
    if args.subset is not None and args.subset < 1:
        raise RetargetError("--subset must be at least 1")
    from_args(GenerationSettings, args).validate()  # the generation knobs a trainer takes (e.g. distill's --ref-scale)
